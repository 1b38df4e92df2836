"""The provenance footer on figures drawn from committed results (:mod:`gpa_lib.stamp`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from gpa_lib.stamp import STAMP_COLOR, stamp_footer, stamp_provenance, stamp_text

GPU_RUN = {
    "commit": "7da81635d2224e2456ef03d655c21fb1991d3c9b",
    "date": "2026-12-04T18:13:50+00:00",
    "gpu": "NVIDIA H200",
    "device": {"cpu": "Intel(R) Xeon(R) Processor", "gpu": "NVIDIA H200"},
}


def test_the_text_names_file_short_commit_machine_and_date():
    text = stamp_text("kernel_bench_nvidia_h200.json", GPU_RUN)
    assert (
        text
        == "data/results/kernel_bench_nvidia_h200.json · commit 7da8163 · NVIDIA H200 · 2026-12-04"
    )
    cpu_run = {
        "commit": "fc5abd2642a8",
        "date": "2026-12-01T12:41:30",
        "device": {"cpu": "AMD EPYC", "gpu": None},
    }
    assert stamp_text("official_gpa.json", cpu_run).endswith(
        "commit fc5abd2 · AMD EPYC · 2026-12-01"
    )
    assert stamp_text("x.json", {}) == "data/results/x.json"
    with pytest.raises(ValueError, match="source=.* is empty"):
        stamp_text("", GPU_RUN)
    with pytest.raises(ValueError, match="one provenance per source"):
        stamp_text(["a.json", "b.json"], [GPU_RUN])


def test_several_files_are_named_together_with_their_commits_when_they_differ():
    other = {"commit": "fc5abd2642a8", "date": "2026-12-01T12:41:30", "gpu": "NVIDIA H200"}
    same = stamp_text(["drift0_stores.json", "drift0.7_stores.json"], [GPU_RUN, GPU_RUN])
    assert same == (
        "data/results/drift0_stores.json + drift0.7_stores.json · commit 7da8163 · NVIDIA H200"
        " · 2026-12-04"
    )
    differ = stamp_text(["a.json", "b.json"], [GPU_RUN, other], changed=True)
    assert differ == (
        "data/results/a.json + b.json · commits 7da8163 + fc5abd2 · NVIDIA H200"
        " · 2026-12-04 + 2026-12-01 · code changed since"
    )
    assert stamp_text(("a.json",), (GPU_RUN,)) == stamp_text("a.json", GPU_RUN)


def test_several_commits_changed_since_any_of_them(monkeypatch):
    import gpa_lib.results
    from gpa_lib.stamp import code_changed_since_all

    answers = {"aaaaaaa": True, "bbbbbbb": False, "ccccccc": None}
    monkeypatch.setattr(
        gpa_lib.results, "code_changed_since", lambda commit, paths: answers[commit]
    )
    assert code_changed_since_all(["bbbbbbb", "aaaaaaa"], ("lib",)) is True
    assert code_changed_since_all(["bbbbbbb", "bbbbbbb"], ("lib",)) is False
    assert code_changed_since_all(["bbbbbbb", "ccccccc"], ("lib",)) is None
    assert code_changed_since_all(["ccccccc", "aaaaaaa"], ("lib",)) is True
    assert code_changed_since_all([], ("lib",)) is None


def test_the_footer_is_small_light_grey_and_below_the_axes():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([1, 2], [1, 2])
    ax.set_xlabel("x (tokens)")
    fig.tight_layout()
    assert (
        stamp_provenance(fig, "kernel_bench_nvidia_h200.json", GPU_RUN, ("gpa_lib/attention",))
        is fig
    )
    (footer,) = [t for t in fig.texts if t.get_gid() == "provenance-stamp"]
    # the commit is in this clone: the footer also says whether gpa_lib/attention changed since
    assert footer.get_text().startswith(stamp_text("kernel_bench_nvidia_h200.json", GPU_RUN))
    assert footer.get_color() == STAMP_COLOR and footer.get_fontsize() < 8
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    footer_box = footer.get_window_extent(renderer)
    label_box = ax.xaxis.label.get_window_extent(renderer)
    assert footer_box.y1 <= label_box.y0 + 1  # the footer does not run into the axis label
    assert footer_box.x1 <= fig.bbox.x1 and footer_box.y0 >= fig.bbox.y0
    plt.close(fig)


_footer = stamp_footer


def test_the_figures_of_committed_results_carry_the_footer():
    from gpa_lib.attention.analysis import gpu_results
    from gpa_lib.attention.analysis import kernel_studies as ks
    from gpa_lib.attention.analysis.figures import official_figure
    from gpa_lib.attention.analysis.stored import official_comparison

    table, _ = official_comparison()
    (text,) = _footer(official_figure(table))
    assert text.startswith("data/results/official_gpa.json · commit ")
    run = gpu_results.newest_kernel_runs()["NVIDIA H200"]
    (text,) = _footer(ks.time_against_floor_figure(run))
    assert text.startswith(stamp_text("kernel_bench_nvidia_h200.json", run["provenance"]))
    assert "commit 7da8163 · NVIDIA H200 · 2026-12-04" in text
    # a table or run that did not come from a file gets no footer
    unsourced = {key: value for key, value in run.items() if key != "source"}
    assert _footer(ks.time_against_floor_figure(unsourced)) == []
    table.attrs.clear()
    assert _footer(official_figure(table)) == []


def test_the_text_says_whether_the_code_changed_since():
    assert stamp_text("x.json", GPU_RUN, changed=True).endswith("2026-12-04 · code changed since")
    assert stamp_text("x.json", GPU_RUN, changed=False).endswith("· code unchanged since")
    assert stamp_text("x.json", GPU_RUN, changed=None) == stamp_text("x.json", GPU_RUN)


def test_code_changed_since_reads_git(tmp_path):
    import subprocess

    from gpa_lib.results import code_changed_since

    def git(*args):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.md").write_text("notes\n")
    git("add", ".")
    git("commit", "-qm", "one")
    commit = git("rev-parse", "HEAD")
    assert code_changed_since(commit, ("lib",), tmp_path) is False
    (tmp_path / "notes.md").write_text("other notes\n")  # outside the paths: still unchanged
    assert code_changed_since(commit, ("lib",), tmp_path) is False
    (tmp_path / "lib" / "a.py").write_text("x = 2\n")
    assert code_changed_since(commit, ("lib",), tmp_path) is True
    assert code_changed_since(commit[:7], ("lib",), tmp_path) is True
    # what git cannot tell is None: a commit the clone lacks, a dirty or unknown commit, no repo
    assert code_changed_since("f" * 40, ("lib",), tmp_path) is None
    assert code_changed_since(commit + "-dirty", ("lib",), tmp_path) is None
    assert code_changed_since("unknown", ("lib",), tmp_path) is None
    assert code_changed_since(commit, ("lib",), tmp_path / "lib") is None


def test_a_constrained_layout_leaves_room_for_the_footer():
    fig, axes = plt.subplots(2, 2, figsize=(6, 4), constrained_layout=True)
    for ax in axes.flat:
        ax.set_xlabel("x (tokens)")
    stamp_provenance(fig, "x.json", GPU_RUN, ("gpa_lib/attention",))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (footer,) = [t for t in fig.texts if t.get_gid() == "provenance-stamp"]
    lowest_label = min(ax.xaxis.label.get_window_extent(renderer).y0 for ax in axes.flat)
    assert footer.get_window_extent(renderer).y1 <= lowest_label + 1
    plt.close(fig)


def test_only_payloads_with_provenance_are_named():
    from gpa_lib.stamp import stamp_results

    fig, _ = plt.subplots()
    assert stamp_results(fig, {"fresh": {"rows": []}, "none": None}, ("lib",)) is fig
    assert _footer(fig) == []
    stamp_results(fig, {"fresh": {"rows": []}, "kept": {"provenance": GPU_RUN}}, ("lib",))
    (text,) = _footer(fig)
    assert text.startswith(stamp_text("kept.json", GPU_RUN))
    plt.close(fig)


def test_a_long_footer_breaks_into_two_lines_that_fit():
    from gpa_lib.stamp import CHAR_WIDTH, STAMP_SIZE, fit_width, stamp_footer, stamp_provenance

    short = "data/results/x.json · commit 7da8163"
    assert fit_width(short, 500) == short
    names = ["claims_stores.json", "claims_stores_20k.json", "claims_stores_100k.json"]
    long = stamp_text(names, [GPU_RUN, GPU_RUN, GPU_RUN], changed=True)
    width = 7.2 * 72
    two = fit_width(long, width)
    first, second = two.split("\n")
    assert first.startswith("data/results/claims_stores.json + ")
    assert two.replace("\n", " · ") == long
    assert max(len(first), len(second)) * STAMP_SIZE * CHAR_WIDTH <= 0.98 * width
    fig, ax = plt.subplots(figsize=(7.2, 3))
    stamp_provenance(fig, names, [GPU_RUN] * 3, ("gpa_lib/recsys",))
    (text,) = stamp_footer(fig)  # read back on one line
    assert text.startswith(long.removesuffix(" · code changed since"))
    plt.close(fig)
