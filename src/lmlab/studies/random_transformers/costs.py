"""What a preset's jobs cost on a device we do not have: FLOPs per training step, counted here.

No GPU is lent to this project's sessions, so the `gpu` preset's runtime is an ESTIMATE:

- `step_flops` counts the FLOPs of one real training step (the loss of a fresh batch through
  the study's own `bucketed_loss`, forward and backward) with torch's `FlopCounterMode`, on a
  sample of `sample` sequences scaled to the batch (every FLOP is linear in the batch);
- `batch_seconds` times drawing one fresh batch (CPU seconds): with the Python sampler a host
  cost paid every step, which at batch 1000 outweighs a GPU step; hence the `gpu` preset draws
  its batches with `sampler="torch"` on the device (no downloads either way);
- `runtime_estimate` adds, over the preset's jobs, steps x (FLOPs / (peak x fraction) + a
  per-step launch floor + the host's batch time), with the early stop ignored (an upper bound
  on the steps). The peak, the attained fraction and the floor are assumptions, stated with the
  result; `lmlab` measures nothing on the device here.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from lmlab.nn.train import bucketed_loss
from lmlab.studies.random_transformers.catalog import make_task
from lmlab.studies.random_transformers.experiments import Job, build_model

__all__ = ["H100_FP32_PEAK", "batch_seconds", "runtime_estimate", "step_flops"]

H100_FP32_PEAK = 67e12  # FLOP/s, H100 SXM fp32 without tensor cores (PyTorch's default)


def step_flops(job: Job, sample: int = 64) -> float:
    """FLOPs of one training step of `job` at its batch size: forward and backward of the
    study's loss on `sample` fresh sequences (frozen tensors get no weight gradient, as in
    training), counted by `FlopCounterMode` and scaled to the job's batch."""
    kw = dict(job.task_kw)
    batch_size = int(kw.get("batch_size", sample))
    task = make_task(job.task, **{**kw, "batch_size": min(sample, batch_size)})
    torch.manual_seed(job.seed)
    model = build_model(job.mode, task.vocab_size, task.block_size, job.width, job.n_layer,
                        job.n_head)
    gen = torch.Generator().manual_seed(job.seed % 2**31)
    batch = task(0, gen)
    loss_fn = bucketed_loss()
    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(model, batch).backward()
    n = int(batch["input_ids"].shape[0])
    return counter.get_total_flops() * batch_size / n


def batch_seconds(job: Job, reps: int = 3) -> float:
    """Median CPU seconds to draw one fresh training batch of `job` on this host (its sampler on
    the CPU: with `sampler="torch"` a proxy for the device's, which runs the same kernels)."""
    task = make_task(job.task, **dict(job.task_kw))
    gen = torch.Generator().manual_seed(job.seed % 2**31)
    task(0, gen)  # builds the held-out sets once, as a run does before its first step
    times = []
    for i in range(reps):
        t0 = time.process_time()
        task(i + 1, gen)
        times.append(time.process_time() - t0)
    return sorted(times)[len(times) // 2]


def runtime_estimate(jobs: list[Job], fraction: float,
                     peak: float = H100_FP32_PEAK, floor_s: float = 0.003,
                     host_s: dict[str, float] | None = None) -> dict[str, Any]:
    """Estimated seconds of `jobs` on a device of `peak` FLOP/s attaining `fraction` of it, with
    a `floor_s` per step (kernel launches of a small model) and `host_s[task]` seconds per batch
    drawn on the host (not overlapped with the device): every job runs all its steps. Returns
    the total and each job's FLOPs per step (the FLOPs of one width and task are counted once)."""
    flops: dict[tuple[str, str, int], float] = {}
    total = 0.0
    for j in jobs:
        k = (j.task, j.mode, j.width)
        if k not in flops:
            flops[k] = step_flops(j)
        per_step = max(flops[k] / (peak * fraction), floor_s) + (host_s or {}).get(j.task, 0.0)
        total += j.steps * per_step
    return {"seconds": total, "fraction": fraction, "peak": peak, "floor_s": floor_s,
            "flops_per_step": {f"{t}/{m}/d{w}": v for (t, m, w), v in sorted(flops.items())},
            "host_s": dict(host_s or {}), "jobs": len(jobs)}
