"""`lmlab bench state-tracking`: the pace of a preset's training step on this machine's device,
and the preset's longest runtime at that pace (every model using its whole step budget).

On a GPU this measures what `config.GPU_ESTIMATE` estimates; on a CPU it gives the throughput
the estimate starts from. Timed as the difference of two short training runs of the preset's
model (a few steps apart), so model building, data and the final evaluation cancel out.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from lmlab.device import device_name
from lmlab.studies.state_tracking.config import PRESETS
from lmlab.studies.state_tracking.data import make_story_data
from lmlab.studies.state_tracking.groups import make_group
from lmlab.studies.state_tracking.training import train_state_model

__all__ = ["bench_steps", "step_flops"]


def step_flops(n_layer: int, d_model: int, batch: int, length: int) -> float:
    """Training FLOPs of one step: 6 x non-embedding parameters x tokens, plus attention."""
    dense = 6 * 12 * d_model**2 * n_layer * batch * length
    attention = 6 * 2 * n_layer * batch * length**2 * d_model
    return float(dense + attention)


def _timed(fn: Any, cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench_steps(preset: str = "gpu", steps: int = 3, device: str = "auto",
                n_stories: int = 4000) -> dict[str, Any]:
    """Seconds per training step of `preset`'s model (T, width, depth, batch) on `device`
    (wall on a GPU, CPU time on the CPU), and the preset's longest runtime at that pace."""
    c = PRESETS[preset]
    dev = device_name(device)
    cuda = dev.startswith("cuda")
    group = make_group(c.group, c.convention)
    data = make_story_data(group, c.T, n_stories, 0.1, c.eval_len or 2 * c.T, 0, fresh=True)
    val = data.analysis[:64]

    def train(n: int) -> None:
        r = dataclasses.replace(c.train, steps=n, extra_steps=0, stop_at=0.0, eval_every=0,
                                log_every=n)
        train_state_model(data, c.model, r, seed=0, device=dev, val_stories=val)

    if cuda:
        clock = _timed
    else:
        def clock(fn: Any, cuda: bool) -> float:
            c0 = time.process_time()
            fn()
            return time.process_time() - c0
    train(1)  # warm-up (allocator, kernels)
    short, long = clock(lambda: train(1), cuda), clock(lambda: train(1 + steps), cuda)
    per_step = max(long - short, 1e-9) / steps
    length = c.T + int(c.model.bos)
    flops = step_flops(c.model.n_layer, c.model.d_model, c.train.batch_size, length)
    budget = sum(j.budget for j in c.jobs())
    return {
        "preset": preset, "device": dev, "clock": "wall" if cuda else "cpu",
        "gflop_per_step": flops / 1e9, "s_per_step": per_step,
        "gflop_per_s": flops / per_step / 1e9, "budget_steps": budget,
        "max_train_minutes": budget * per_step / 60,
    }
