"""``python -m gpa_lib.bench sanitize`` without a GPU: the cases, the driver and its summary."""

from __future__ import annotations

import dataclasses
import stat

import torch

from gpa_lib.bench import sanitize


def test_the_cases_and_the_short_set():
    assert len(sanitize.all_cases()) == len(sanitize.PHASE2_CASES) + len(sanitize.PHASE1_CASES)
    short = sanitize.all_cases(short=True)
    expected = [c.name for c in (*sanitize.PHASE2_CASES[:3], *sanitize.PHASE1_CASES[:2])]
    assert [c.name for c in short] == expected
    assert any(c.name.startswith("phase2 pose") for c in sanitize.PHASE1_CASES)


def test_a_phase1_case_counts_the_picks_that_differ(monkeypatch):
    """The phase-1 case on the CPU, with the kernel executed by the emulation."""
    from gpa_lib.attention.kernel import host_build
    from gpa_lib.attention.kernel.cuda import emulation, phase1

    if host_build.compiler() is None:
        return
    monkeypatch.setattr(
        phase1,
        "select_key_blocks_fused",
        lambda q, k, problem, split=True: emulation.emulated_phase1(
            phase1.phase1_operands(q, k, problem, split=split)
        ),
    )
    spec = dataclasses.replace(sanitize.PHASE1_SPECS[4], q_grid=(16, 16), k_grid=(16, 16))
    result = sanitize.check_phase1_case(spec, "cpu")
    assert result.ok and result.worst == 0.0 and result.bound == 1e-3
    assert "picks differing split 0.0e+00" in result.detail


def test_a_case_checks_a_backend_against_the_float64_reference():
    spec = dataclasses.replace(sanitize.PHASE2_SPECS[2], head_dim=16)  # float32, small
    result = sanitize.check_gpa_case(spec, "cpu", backend="recompute")
    assert result.ok and result.worst < 1e-5 and "dq" in result.detail
    lines = []
    broken = sanitize.SanitizeCase("broken", lambda device, backend: 1 / 0, short=True)
    case = sanitize.SanitizeCase("ok", lambda device, backend: result, short=True)
    failed, worst = sanitize.run_cases([case, broken], "cpu", "recompute", log=lines.append)
    assert failed == 1 and worst == result.worst
    assert "FAILED: ZeroDivisionError" in lines[1]


def test_sanitizer_summaries_are_read():
    assert sanitize.sanitizer_findings("memcheck", "========= ERROR SUMMARY: 0 errors\n") == 0
    racecheck = "========= RACECHECK SUMMARY: 2 hazards displayed (2 errors, 0 warnings)"
    assert sanitize.sanitizer_findings("racecheck", racecheck) == 2
    assert sanitize.sanitizer_findings("initcheck", "Traceback ...") is None


def test_without_a_gpu_it_says_so(capsys):
    if torch.cuda.is_available():
        return
    assert sanitize.main([]) == 1
    assert "needs a CUDA GPU" in capsys.readouterr().out


def test_without_compute_sanitizer_the_step_is_skipped(monkeypatch, capsys):
    monkeypatch.setattr(sanitize, "gpu_unavailable_reason", lambda: None)
    monkeypatch.setattr(sanitize, "find_sanitizer", lambda: None)
    assert sanitize.main([]) == 2
    assert capsys.readouterr().out.startswith("sanitize: skipped: compute-sanitizer was not found")


def test_the_driver_runs_each_tool_and_sums_up(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "compute-sanitizer"  # prints what the real tool prints around the cases
    fake.write_text(
        "#!/bin/sh\n"
        'echo "case 0: bfloat16 ...: rel err out 2.1e-03"\n'
        'echo "sanitize cases: 1 cases, worst relative error 2.1e-03, all within their bounds"\n'
        'if [ "$2" = racecheck ]; then\n'
        '  echo "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)"\n'
        'else echo "========= ERROR SUMMARY: 0 errors"; fi\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sanitize, "gpu_unavailable_reason", lambda: None)
    monkeypatch.setattr(sanitize, "find_sanitizer", lambda: str(fake))
    assert sanitize.main(["--time-budget-s", "100"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        "sanitize: memcheck 1 cases, 0 errors; racecheck 1 cases, 0 hazards; "
        "initcheck 1 cases, 0 errors"
    )
