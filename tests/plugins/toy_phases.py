"""Plugin studies for the `reproduce` ordering/report test and the phase profiler (plumbing only,
never shown as results).

`toy-phases` spends known shares of its time training (torch backward and optimizer steps),
evaluating and analysing; `toy-quick` is instant. Both declare their expected time, so
`reproduce` runs `toy-quick` first. `toy-threads` gives a verdict that depends on the torch
thread count, for the thread-comparison test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lmlab.study import Claim, Study, StudyConfig, StudyInfo, register


def _busy(seconds: float) -> float:
    """Burn `seconds` of this thread's CPU in Python (a stand-in for analysis work)."""
    end, x = time.thread_time() + seconds, 0.0
    while time.thread_time() < end:
        x += sum(i * i for i in range(200))
    return x


def train_toy(seconds: float) -> float:
    """A training loop: forward, backward, optimizer step, for about `seconds` of CPU."""
    import torch

    g = torch.Generator().manual_seed(0)
    w = torch.zeros(64, 1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=1e-3)
    x, y = torch.randn(256, 64, generator=g), torch.randn(256, 1, generator=g)
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
    return float(loss.detach())


def evaluate_toy(seconds: float) -> float:
    """An evaluation: Python work named for it."""
    return _busy(seconds)


@dataclass
class PhasesConfig(StudyConfig):
    train_s: float = 0.6
    eval_s: float = 0.3
    analysis_s: float = 0.3


class ToyPhases(Study):
    id = "toy-phases"
    Config = PhasesConfig
    presets = {"tiny": PhasesConfig()}
    expected_s = {"tiny": 2.0}

    def run(self, config: PhasesConfig, run: Any) -> dict[str, Any]:
        loss = train_toy(config.train_s)
        evaluate_toy(config.eval_s)
        _busy(config.analysis_s)
        return {"train.loss": loss}

    def claims(self, config: PhasesConfig, metrics: dict[str, Any]) -> list[Claim]:
        return [Claim.check("finite", "the loss is finite", "-", metrics["train.loss"],
                            metrics["train.loss"] == metrics["train.loss"])]


@dataclass
class QuickConfig(StudyConfig):
    n: int = 10


class ToyQuick(Study):
    id = "toy-quick"
    Config = QuickConfig
    presets = {"tiny": QuickConfig()}
    expected_s = {"tiny": 0.1}

    def run(self, config: QuickConfig, run: Any) -> dict[str, Any]:
        return {"sum.value": float(sum(range(config.n)))}

    def claims(self, config: QuickConfig, metrics: dict[str, Any]) -> list[Claim]:
        v = metrics["sum.value"]
        return [Claim.check("sum", "the sum of 0..n-1 is n(n-1)/2", "-", v,
                            v == config.n * (config.n - 1) / 2)]


@dataclass
class ThreadsConfig(StudyConfig):
    threads: int = 1


def worker_threads(_: int) -> int:
    """A pool job that gives itself one thread, as the language-model studies' jobs do."""
    import torch

    from lmlab.executor import job_threads

    job_threads(1)
    return torch.get_num_threads()


class ToyThreads(Study):
    """Measures its torch thread count here and in two pool workers whose jobs set one thread;
    its claims hold on one thread only (so the comparison of 1 and 2 threads must report both
    as differing: the setting reaches the workers)."""

    id = "toy-threads"
    Config = ThreadsConfig
    presets = {"tiny": ThreadsConfig()}

    def run(self, config: ThreadsConfig, run: Any) -> dict[str, Any]:
        import torch

        from lmlab.executor import get_executor, torch_threads

        with torch_threads(config.threads):
            n = torch.get_num_threads()
        workers = get_executor("process", max_workers=2).map(worker_threads, [0, 1])
        return {"threads.used": n, "threads.worker": max(workers), "const.value": 1.0}

    def claims(self, config: ThreadsConfig, metrics: dict[str, Any]) -> list[Claim]:
        n, w = metrics["threads.used"], metrics["threads.worker"]
        return [Claim.check("one_thread", "ran on one thread", "1", n, n == 1),
                Claim.check("worker_one_thread", "the pool's jobs ran on one thread", "1", w,
                            w == 1),
                Claim.check("const", "the constant is 1", "1", metrics["const.value"],
                            metrics["const.value"] == 1.0)]


for _study in (ToyPhases(), ToyQuick(), ToyThreads()):
    register(_study, StudyInfo(_study.id, f"{_study.id} (test plugin)", "tests", 2026, "plumbing"))
