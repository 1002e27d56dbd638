"""Run a study as a user would (the real `lmlab` command in a subprocess) for the per-study
contract tests: the same seed twice gives identical metrics, and a run killed mid-way (SIGKILL)
then resumed ends with the metrics of an uninterrupted run.

    from tests.study_runs import assert_kill_resume_matches

    def test_kill_and_resume(tmp_path):
        assert_kill_resume_matches(tmp_path, "linear-attention", ["--preset", "tiny", "--set", ...],
                                   marker="jobs/**/*.pkl")

One full run and one killed-then-resumed run of the same configuration are compared, so a single
test shows both determinism (the jobs re-run after the kill must reproduce their first values)
and resume (the jobs kept before the kill are reused, not re-run). Timing metrics are left out of
the comparison by `TIMING`, or by a study's own pattern.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lmlab
from lmlab.threadcheck import TIMING  # keys of durations or rates measured by the clock

ROOT = Path(__file__).resolve().parents[1]


def env(**extra: str) -> dict[str, str]:
    src = str(Path(lmlab.__file__).resolve().parents[1])
    return {**os.environ, "LMLAB_PROGRESS": "lines", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), src, os.environ.get("PYTHONPATH", "")]),
            **extra}


def start(*args: str, **extra_env: str) -> subprocess.Popen[str]:
    """`lmlab ARGS...` in a subprocess, its output captured."""
    return subprocess.Popen([sys.executable, "-c", "from lmlab.cli import main; main()", *args],
                            cwd=ROOT, env=env(**extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_to_end(args: Sequence[str], timeout: float = 900, **extra_env: str) -> dict[str, Any]:
    """Run `lmlab run ...ARGS` (which must include --out) and return its result.json."""
    proc = start("run", *args, **extra_env)
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"lmlab run {' '.join(args)} failed:\n{err[-3000:]}"
    return json.loads((Path(_out_of(args)) / "result.json").read_text())


def _out_of(args: Sequence[str]) -> str:
    args = list(args)
    return args[args.index("--out") + 1]


def results_only(metrics: dict[str, Any], ignore: re.Pattern[str] = TIMING) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not ignore.search(k)}


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    return {c["id"]: c["holds"] for c in result["claims"] + result["checks"]}


def kill_when(proc: subprocess.Popen[str], out: Path, marker: str, count: int = 1,
              timeout: float = 600) -> int:
    """SIGKILL `proc` once `count` files match the glob `marker` under `out`; return how many."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if len(list(out.glob(marker))) >= count:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return len(list(out.glob(marker)))


def assert_kill_resume_matches(tmp_path: Path, study: str, args: Sequence[str], marker: str,
                               count: int = 1, ignore: re.Pattern[str] = TIMING,
                               timeout: float = 900, **extra_env: str) -> dict[str, Any]:
    """A full run and a run SIGKILLed after `count` files match `marker`, then resumed with
    `--resume`, must give identical metrics (timing keys aside) and identical verdicts.
    Returns the full run's result for further assertions."""
    full = run_to_end([study, *args, "--out", str(tmp_path / "full")], timeout, **extra_env)

    out = tmp_path / "killed"
    proc = start("run", study, *args, "--out", str(out), **extra_env)
    kept = kill_when(proc, out, marker, count, timeout)
    assert kept >= count and not (out / "result.json").exists()

    resumed = run_to_end([study, *args, "--out", str(out), "--resume"], timeout, **extra_env)
    assert results_only(resumed["metrics"], ignore) == results_only(full["metrics"], ignore)
    assert verdicts(resumed) == verdicts(full)
    return full
