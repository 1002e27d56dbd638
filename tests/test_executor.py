"""Executors: the same seeded jobs give identical results on every backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmlab.errors import LmlabError
from lmlab.executor import get_executor

ROOT = Path(__file__).resolve().parents[1]


def seeded_job(seed: int) -> tuple[int, float, list[float]]:
    """A few AdamW steps of a small seeded regression: any nondeterminism shows in the floats."""
    import torch

    torch.manual_seed(seed)
    x = torch.randn(64, 8)
    y = x @ torch.randn(8, 1) + 0.1 * torch.randn(64, 1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(20):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return seed, loss.item(), model[0].weight[0, :3].tolist()


SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def serial_results():
    return get_executor("serial").map(seeded_job, SEEDS)


def test_serial_preserves_order(serial_results):
    assert [r[0] for r in serial_results] == SEEDS
    assert len({r[1] for r in serial_results}) == len(SEEDS)


def test_process_pool_matches_serial(serial_results):
    assert get_executor("process", max_workers=2).map(seeded_job, SEEDS) == serial_results


def test_ray_matches_serial(serial_results, monkeypatch):
    """A real local Ray runtime (started and stopped by the executor)."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    # Ray workers import this test module by name: put the repository root on their path.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    seen: list[int] = []
    out = get_executor("ray").map(seeded_job, SEEDS, on_result=lambda i, r: seen.append(i))
    assert out == serial_results and sorted(seen) == list(range(len(SEEDS)))


def test_empty_map_and_unknown_backend():
    assert get_executor("process").map(seeded_job, []) == []
    with pytest.raises(LmlabError, match="unknown executor 'dask'"):
        get_executor("dask")


def failing_job(x: int) -> int:
    if x == 1:
        raise ValueError("job 1 failed")
    return x


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_on_result_streams_every_result_and_order_is_kept(backend, serial_results):
    seen: dict[int, tuple] = {}
    out = get_executor(backend, max_workers=2).map(seeded_job, SEEDS,
                                                  on_result=lambda i, r: seen.update({i: r}))
    assert out == serial_results
    assert seen == dict(enumerate(serial_results))
    with pytest.raises(ValueError, match="job 1 failed"):
        get_executor(backend, max_workers=2).map(failing_job, [0, 1, 2])



def test_pool_workers_die_with_a_killed_parent():
    """A run killed with SIGKILL cannot shut its pool down: its workers must not live on."""
    import signal
    import subprocess
    import sys
    import time

    import lmlab

    src = str(Path(lmlab.__file__).resolve().parents[1])
    code = "import time\nfrom lmlab.executor import get_executor\nget_executor('process', 2).map(time.sleep, [60, 60])\n"
    parent = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": src})

    def children() -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def state(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return "gone"

    deadline = time.time() + 120
    while time.time() < deadline:  # two workers plus the resource tracker, all asleep in their jobs
        kids = children()
        if len(kids) >= 3 and all(state(k) == "S" for k in kids):
            break
        time.sleep(0.5)
    assert len(kids) >= 3, f"the pool never started: {kids}"
    time.sleep(1.0)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(state(k) not in ("gone", "Z") for k in kids):
        time.sleep(0.2)
    alive = [k for k in kids if state(k) not in ("gone", "Z")]
    for k in alive:  # never leave them behind, even when the test fails
        os.kill(k, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their parent"
