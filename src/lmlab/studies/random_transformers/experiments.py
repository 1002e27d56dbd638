"""One training job of the grid (task x mode x width x seed), as a module-level function.

`run_job(job)` builds the task and the model, freezes it by `mode`, trains it with lmlab's
trainer and returns plain numbers: test accuracy (validation accuracy beside it, and the
validation curve `val_curve` of (step, accuracy) at every evaluation; only validation is read
during training, for early stopping), parameter counts, the freeze invariants
(were the frozen tensors left bit-identical?), and for analysed jobs the subspace concentration
per layer and the needle task's attention-head scores. Jobs carry their own seeds, so they give
the same numbers in any executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lmlab.device import resolve_device
from lmlab.executor import job_threads
from lmlab.nn import GPT, GPTConfig
from lmlab.nn.train import TrainConfig, Trainer, bucketed_loss
from lmlab.studies.random_transformers.analysis import (
    needle_head_scores,
    subspace_concentration,
    subspace_gap_interval,
)
from lmlab.studies.random_transformers.catalog import make_task
from lmlab.studies.random_transformers.gaps import model_gap
from lmlab.studies.random_transformers.lstm import LSTMLM
from lmlab.studies.random_transformers.steps import counting_steps
from lmlab.studies.random_transformers.tasks import Memorization, Task, majority_accuracy

__all__ = ["Job", "build_model", "expected_trainable", "run_job"]

MODES = ("full", "random", "unembed", "embed", "tok_unembed", "lstm")


@dataclass(frozen=True)
class Job:
    """Everything one training run needs, derived from the study config by `jobs.grid_jobs`
    (no defaults here: the config holds them); `task_kw` are the task's settings as (key, value).

    `seed` fixes the frozen random weights and the data order; `replicate` is its index among the
    seeds of one condition (for names and per-seed metrics); `experiment` the sub-experiment it
    belongs to ("grid", "width", "memorize", "lm"), which keeps the width sweep's results apart
    from the grid's.
    """

    experiment: str
    task: str
    mode: str
    width: int
    replicate: int
    seed: int
    task_kw: tuple[tuple[str, Any], ...]
    n_layer: int
    n_head: int
    steps: int
    lr: float
    weight_decay: float
    warmup_steps: int
    eval_every: int
    stop_at: float | None  # stop early once validation accuracy reaches this
    threads: int  # torch threads in this job (0: leave as is)
    device: str
    analyze: bool  # subspace concentration (and attention scores on the needle task)

    @property
    def key(self) -> str:
        own = "" if self.experiment in ("grid", "memorize", "lm") else f"{self.experiment}/"
        return f"{own}{self.task}/{self.mode}/d{self.width}/s{self.replicate}"


def build_model(mode: str, vocab_size: int, block_size: int, width: int, n_layer: int = 2,
                n_head: int = 4) -> nn.Module:
    """The paper's model for `mode`: untied GPT-2-style transformer, or the LSTM for "lstm"."""
    if mode == "lstm":
        return LSTMLM(vocab_size, width, n_layer)
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer,
                          n_head=n_head if width % n_head == 0 else 1, d_model=width,
                          tie_embeddings=False))
    model.set_trainable(mode)
    return model


def expected_trainable(mode: str, vocab_size: int, block_size: int, width: int) -> int | None:
    """Trainable parameters the paper's freeze modes imply (None for full training and LSTM)."""
    V, P, d = vocab_size, block_size, width
    return {"random": V * d + P * d + d * V, "unembed": d * V, "embed": V * d + P * d,
            "tok_unembed": V * d + d * V}.get(mode)


def _frozen_identical(model: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    """Whether every frozen parameter still equals its initial value bit for bit."""
    now = dict(model.named_parameters())
    return all(torch.equal(now[n], t) for n, t in before.items())


def _analyze(model: GPT, task: Task, job: Job) -> dict[str, Any]:
    """Subspace concentration per layer (and needle head scores) on up to 1000 test sequences."""
    batch = task.test_batch()
    x = batch["input_ids"][:1000]
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post"
                                           for i in range(model.config.n_layer)]
    want_attn = job.task == "needle"
    if want_attn:
        names += [f"blocks.{i}.attn.hook_pattern" for i in range(model.config.n_layer)]
    model.eval()
    with torch.no_grad():
        _, cache = model.run_with_cache(x, names_filter=names)
    out: dict[str, Any] = {}
    nonpad = (x != 0).reshape(-1) if job.task in ("needle", "parens") else None
    for i, name in enumerate(names[: model.config.n_layer + 1]):
        h = cache[name].reshape(-1, model.config.d_model)
        if nonpad is not None:
            h = h[nonpad]
        pc, neuron = subspace_concentration(h, k=10)
        out[f"pca10_l{i}"], out[f"neuron10_l{i}"] = pc, neuron
        _, lo, hi = subspace_gap_interval(h, k=10, seed=job.seed % 2**31)
        out[f"gap10_l{i}"] = [lo, hi]
    if want_attn:
        kw = dict(job.task_kw)
        seq = torch.cat([x, batch["targets"][:1000, -1:]], 1)
        for layer in range(model.config.n_layer):
            pat = cache[f"blocks.{layer}.attn.hook_pattern"]
            scores = needle_head_scores(pat[:200], seq[:200], kw.get("n_keys", 30),
                                        kw.get("vocab", 256))
            for k, v in scores.items():
                out[f"attn_l{layer}_{k}"] = [round(float(s), 4) for s in v]
        # one example's patterns, for the figure
        out["attn_example"] = {
            "tokens": x[0].tolist(),
            "patterns": [cache[f"blocks.{i}.attn.hook_pattern"][0].tolist()
                         for i in range(model.config.n_layer)],
        }
    return out


def run_job(job: Job) -> dict[str, Any]:
    """Train one model and measure it; returns a flat dict of results (plus analysis lists)."""
    job_threads(job.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    kw = dict(job.task_kw)
    if kw.get("sampler") == "torch":  # training batches drawn on the job's device
        kw["device"] = str(resolve_device(job.device))
    task = make_task(job.task, **kw)
    torch.manual_seed(job.seed)  # the model's random init is the object of study: seed it
    model = build_model(job.mode, task.vocab_size, task.block_size, job.width, job.n_layer,
                        job.n_head)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    frozen0 = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    cfg = TrainConfig(
        steps=job.steps, lr=job.lr, weight_decay=job.weight_decay,
        warmup_steps=min(job.warmup_steps, job.steps // 2), schedule="cosine", min_lr_ratio=0.0,
        grad_clip=1.0, log_every=max(job.steps, 1), eval_every=job.eval_every,
        stop_metric="val_acc" if job.stop_at else None, stop_at=job.stop_at,
        device=job.device, seed=job.seed,
    )
    # Training reads the validation set only (early stopping); the test set is scored once, after.
    validate = getattr(task, "validate", None)
    if job.stop_at and validate is None:
        from lmlab.errors import LmlabError

        raise LmlabError(f"{job.task}: early stopping needs a validation set, which it lacks")
    # The validation curve (step, val_acc) of every evaluation, for choosing step counts.
    curve: list[tuple[int, float]] = []
    at = [0]

    def batches(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        at[0] = step
        return task(step, gen)

    def validate_logged(m: nn.Module) -> dict[str, float]:
        assert validate is not None
        out = validate(m)
        curve.append((at[0], float(out["val_acc"])))
        return out

    # Sequences of varied length (needle, parentheses) train without their padding.
    metrics = Trainer(model, cfg, counting_steps(batches, job.key),
                      evaluate=validate_logged if validate is not None else None,
                      loss_fn=bucketed_loss()).fit()
    model.cpu()
    final = task.evaluate(model)
    acc = float(final["test_acc"])
    result: dict[str, Any] = {
        "key": job.key, "experiment": job.experiment, "task": job.task, "mode": job.mode, "width": job.width,
        "replicate": job.replicate, "seed": job.seed,
        "test_acc": acc, "steps_done": metrics["steps_done"], "train_loss": metrics["train_loss"],
        "n_trainable": n_trainable,
        "n_params": sum(p.numel() for p in model.parameters()),
        "expected_trainable": expected_trainable(job.mode, task.vocab_size, task.block_size,
                                                 job.width),
        "trainable_names": trainable,
        "frozen_identical": _frozen_identical(model, frozen0) if frozen0 else None,
        "majority_acc": majority_accuracy(task.test_batch()),
    }
    if validate is not None:  # the trainer's last evaluation is of the final model
        result["val_acc"] = curve[-1][1] if curve else float(validate(model)["val_acc"])
        result["val_curve"] = curve
    if "test_loss" in final:
        result["test_loss"] = float(final["test_loss"])
    if hasattr(task, "window_losses"):  # language modelling: per held-out window, for intervals
        result["window_losses"] = task.window_losses(model)
    if isinstance(task, Memorization):  # which table entries are right, for a paired interval
        result["correct_bits"] = np.packbits(task.correct(model).numpy()).tobytes()
    if job.mode == "random" and isinstance(model, GPT):  # the frozen heads' attainable gap
        result["logit_gap"] = model_gap(model)
    if job.analyze and isinstance(model, GPT):
        result.update(_analyze(model, task, job))
    result["wall_s"] = time.perf_counter() - t0
    result["cpu_s"] = time.process_time() - c0
    return result
