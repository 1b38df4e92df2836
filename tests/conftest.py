"""Shared test setup.

GPU tests carry ``@pytest.mark.gpu`` (the marker is registered in pyproject.toml); on a machine
where torch sees no CUDA device they are skipped here, with the reason, instead of failing.
"""

from __future__ import annotations

import pytest


def gpu_skip_reason() -> str | None:
    """Why GPU tests cannot run on this machine, or None when a CUDA device is visible."""
    from gpa_lib.results import gpu_unavailable_reason

    return gpu_unavailable_reason()


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    reason = gpu_skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def emulation():
    """The CUDA kernels' host emulation (``gpa_lib.attention.kernel.cuda.emulation``), built once; skips
    without a host C++ compiler."""
    from gpa_lib.attention.kernel import host_build
    from gpa_lib.attention.kernel.cuda import emulation

    if host_build.compiler() is None:
        pytest.skip("no C++ compiler (g++) to build the kernel emulation")
    emulation.emulation_library()
    return emulation


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory):
    """Every chapter executed under the smoke profile and the book built (-W): (project, index.html).

    One build per session, shared by test_book_smoke.py and test_book_browser.py.
    """
    from gpa_lib.book import BookProject, build_book, run_notebooks

    project = BookProject(build_dir=tmp_path_factory.mktemp("smoke_build"))
    before = git_status(project.root)
    records = run_notebooks(project, "smoke", jobs=1)
    assert all(r.status == "ok" for r in records)
    index = build_book(project, "smoke")
    # what the run and the build changed in the work tree besides their build folder (None: no git)
    project.git_status_change = None if before is None else (before, git_status(project.root))
    return project, index


def git_status(root) -> str | None:
    """``git status --porcelain`` of the project (tracked changes and untracked files), None outside git."""
    import subprocess

    proc = subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None
