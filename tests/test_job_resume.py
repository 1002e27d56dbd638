"""Job-level resume: `map_jobs(..., run=run)` keeps each finished job's result in the run folder,
so `lmlab run --resume` after a SIGKILL skips the finished jobs and ends with the metrics of an
uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmlab
from lmlab.executor import map_jobs
from lmlab.runs import Run

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    src = str(Path(lmlab.__file__).resolve().parents[1])
    return {**os.environ, "LMLAB_PLUGINS": "tests.plugins.toy_jobs", "LMLAB_PROGRESS": "lines",
            "PYTHONPATH": os.pathsep.join([str(ROOT), src, os.environ.get("PYTHONPATH", "")])}


def _lmlab(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from lmlab.cli import main; main()", *args],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_sigkill_then_resume_skips_finished_jobs_and_matches(tmp_path: Path) -> None:
    full = _lmlab("run", "toy-jobs", "--set", "sleep=0.05", "--out", str(tmp_path / "full"))
    assert full.wait(timeout=120) == 0, full.communicate()[1]
    expected = json.loads((tmp_path / "full" / "result.json").read_text())["metrics"]

    out2 = tmp_path / "killed"  # slower jobs, so the kill lands mid-way
    proc = _lmlab("run", "toy-jobs", "--set", "sleep=1.0", "--out", str(out2))
    jobs_dir = out2 / "jobs"
    deadline = time.time() + 120
    while time.time() < deadline:
        if len(list(jobs_dir.rglob("*.pkl"))) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    kept = len(list(jobs_dir.rglob("*.pkl")))
    assert 2 <= kept < 6 and not (out2 / "result.json").exists()

    resumed = _lmlab("run", "toy-jobs", "--set", "sleep=1.0", "--out", str(out2), "--resume")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    result = json.loads((out2 / "result.json").read_text())
    assert result["metrics"] == expected  # the job seeds do not depend on the sleep
    calls = (out2 / "calls.txt").read_text().split()
    # each finished job ran once; at most the job killed mid-way ran twice
    assert len(calls) - len(set(calls)) <= 1 and sorted(set(calls)) == [str(i) for i in range(6)]
    assert f"toy-jobs [{kept}/6 jobs]" in err or f"toy-jobs [{kept + 1}/6 jobs]" in err


def _double(x: int) -> int:
    return 2 * x


def test_kept_results_are_used_only_when_resuming(tmp_path: Path) -> None:
    run = Run(tmp_path / "run")
    assert map_jobs(_double, [1, 2, 3], run=run) == [2, 4, 6]
    files = sorted((tmp_path / "run" / "jobs").rglob("*.pkl"))
    assert len(files) == 3
    for f in files:  # tamper: a resumed run must read these, a fresh one must not
        f.write_bytes(__import__("pickle").dumps(-1))
    assert map_jobs(_double, [1, 2, 3], run=Run(tmp_path / "run")) == [2, 4, 6]
    for f in sorted((tmp_path / "run" / "jobs").rglob("*.pkl")):
        f.write_bytes(__import__("pickle").dumps(-1))
    seen = []
    out = map_jobs(_double, [1, 2, 3, 4], run=Run(tmp_path / "run", resume=True),
                   on_result=lambda i, r: seen.append(i))
    assert out == [-1, -1, -1, 8] and sorted(seen) == [0, 1, 2, 3]


def _scaled(x: int, log_dir: str) -> int:
    return 3 * x


def test_arguments_bound_with_partial_stay_out_of_the_key(tmp_path: Path) -> None:
    """A job's plumbing (a log folder inside the run) bound with functools.partial: a run folder
    moved elsewhere still resumes from its kept results."""
    import functools
    import shutil

    first = tmp_path / "a" / "run"
    assert map_jobs(functools.partial(_scaled, log_dir=str(first / "logs")), [1, 2],
                    run=Run(first)) == [3, 6]
    moved = tmp_path / "b" / "run"
    shutil.move(str(first), str(moved))
    for f in moved.rglob("*.pkl"):
        f.write_bytes(__import__("pickle").dumps(-1))  # a resumed run must read these
    out = map_jobs(functools.partial(_scaled, log_dir=str(moved / "logs")), [1, 2],
                   run=Run(moved, resume=True))
    assert out == [-1, -1]


def test_study_runs_harness_on_the_toy_study(tmp_path: Path) -> None:
    """The harness the per-study tests use (tests/study_runs.py) kills, resumes and compares."""
    from tests.study_runs import assert_kill_resume_matches

    full = assert_kill_resume_matches(tmp_path, "toy-jobs", ["--set", "sleep=0.5"],
                                      marker="jobs/**/*.pkl", count=2, timeout=120,
                                      LMLAB_PLUGINS="tests.plugins.toy_jobs")
    assert full["metrics"]


def test_resume_grows_a_run_by_its_growable_fields_only(tmp_path: Path) -> None:
    """`--resume --set n_jobs=6` on a finished 3-job run keeps the 3 finished jobs, runs the
    other 3, and gives a fresh 6-job run's metrics; a non-growable change is still refused."""
    def lmlab_run(out: Path, *sets: str, resume: bool = False) -> subprocess.CompletedProcess:
        args = [a for s in ("sleep=0", *sets) for a in ("--set", s)]
        p = _lmlab("run", "toy-jobs", *args, "--out", str(out), *(["--resume"] if resume else []))
        stdout, stderr = p.communicate(timeout=120)
        return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)

    assert lmlab_run(tmp_path / "fresh", "n_jobs=6").returncode == 0
    expected = json.loads((tmp_path / "fresh" / "result.json").read_text())["metrics"]
    grown = tmp_path / "grown"
    assert lmlab_run(grown, "n_jobs=3").returncode == 0
    again = lmlab_run(grown, "n_jobs=6")
    assert again.returncode != 0 and "--resume to grow it (n_jobs)" in again.stderr
    small = json.loads((grown / "result.json").read_text())
    assert small["config"]["n_jobs"] == 3 and len(small["metrics"]) == 3

    refused = lmlab_run(grown, "n_jobs=6", "sleep=0.01", resume=True)
    assert refused.returncode != 0 and "only n_jobs may change" in refused.stderr
    done = lmlab_run(grown, "n_jobs=6", resume=True)
    assert done.returncode == 0, done.stderr
    assert "growing" in done.stderr and "n_jobs 3 -> 6" in done.stderr
    result = json.loads((grown / "result.json").read_text())
    assert result["config"]["n_jobs"] == 6 and result["metrics"] == expected
    assert sorted((grown / "calls.txt").read_text().split()) == [str(i) for i in range(6)]
