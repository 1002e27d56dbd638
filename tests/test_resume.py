"""`lmlab run --resume`: a run killed with SIGKILL mid-training ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from lmlab.runs import load_tensors

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["run", "toy-copy", "--set", "steps=200", "--set", "ckpt_every=10"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["LMLAB_PLUGINS"] = "tests.plugins.toy_studies"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def lmlab(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmlab.cli", *map(str, args)], env=_env(),
                          capture_output=True, text=True, timeout=300)


def _checkpoint_step(out: Path) -> int:
    try:
        return load_tensors(out / "checkpoints" / "last.safetensors")[1]["step"]
    except Exception:
        return 0


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    r = lmlab(*ARGS, "--out", full)
    assert r.returncode == 0, r.stderr

    proc = subprocess.Popen([sys.executable, "-m", "lmlab.cli", *ARGS, "--out", str(killed)],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _checkpoint_step(killed) < 40 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = _checkpoint_step(killed)
    assert 40 <= step < 200, f"kill landed at checkpoint step {step}"
    assert not (killed / "result.json").exists()

    # A plain re-run refuses to clobber the interrupted run.
    r = lmlab(*ARGS, "--out", killed)
    assert r.returncode == 2 and "--resume" in r.stderr

    r = lmlab(*ARGS, "--out", killed, "--resume")
    assert r.returncode == 0, r.stderr

    a = json.loads((full / "result.json").read_text())
    b = json.loads((killed / "result.json").read_text())
    assert a["metrics"] == b["metrics"]
    wa, _ = load_tensors(full / "checkpoints" / "last.safetensors")
    wb, _ = load_tensors(killed / "checkpoints" / "last.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    steps = [rec["step"] for rec in map(json.loads, (killed / "metrics.jsonl").read_text().splitlines())
             if "train_loss" in rec]
    assert steps == sorted(set(steps)), "metrics after the checkpoint were logged twice"


def test_resume_errors_are_one_line(tmp_path):
    out = tmp_path / "run"
    r = lmlab("run", "toy-copy", "--set", "steps=40", "--set", "ckpt_every=20", "--out", out,
              "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr

    assert lmlab("run", "toy-copy", "--set", "steps=40", "--set", "ckpt_every=20", "--out", out).returncode == 0
    (out / "result.json").unlink()  # pretend it was interrupted after its last checkpoint
    ckpt = out / "checkpoints" / "last.safetensors"
    ckpt.write_bytes(b"\x00garbage" * 10)
    r = lmlab("run", "toy-copy", "--set", "steps=40", "--set", "ckpt_every=20", "--out", out,
              "--resume")
    assert r.returncode == 2, r.stderr
    assert "corrupt checkpoint" in r.stderr and "Traceback" not in r.stderr
    # the error is one line; under load the study's first progress line may come before it
    assert [ln for ln in r.stderr.strip().splitlines() if ": elapsed " not in ln] == [
        r.stderr.strip().splitlines()[-1]]
    assert not (out / "result.json").exists()

    r = lmlab("run", "toy-copy", "--set", "steps=50", "--set", "ckpt_every=20", "--out", out,
              "--resume")
    assert r.returncode == 2 and "differs in steps" in r.stderr
