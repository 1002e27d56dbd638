"""The attainable attention logit gap (`gaps.py`) of the grid's random models, built as their
jobs build them (same seeds, same init) and never trained: the `gap.*` metrics (issue #22)."""

from __future__ import annotations

from typing import Any

import torch

from lmlab.nn import GPT
from lmlab.seeding import derive
from lmlab.studies.random_transformers.catalog import make_task
from lmlab.studies.random_transformers.config import RandomTransformersConfig
from lmlab.studies.random_transformers.experiments import build_model
from lmlab.studies.random_transformers.gaps import gap_metrics, model_gap
from lmlab.studies.random_transformers.jobs import task_kw

__all__ = ["measure_gaps"]


def measure_gaps(c: RandomTransformersConfig) -> dict[str, Any]:
    """The gap of each width's random models (the grid's widths and `grid.gap_widths`), seed by
    seed: the needle task's random grid models as their jobs build them (same seed, same init),
    or the first task's when the run has no needle. Cheap: the models are built, never trained."""
    task_name = "needle" if "needle" in c.tasks else c.tasks[0] if c.tasks else "needle"
    task = make_task(task_name, **dict(task_kw(c, task_name)))
    gaps: dict[int, list[float]] = {}
    for w in sorted({*c.grid.widths, *c.grid.gap_widths}):
        gaps[w] = []
        for i in range(c.grid.seeds):
            torch.manual_seed(derive(c.seed, task_name, i))
            model = build_model("random", task.vocab_size, task.block_size, w, c.n_layer,
                                c.n_head)
            assert isinstance(model, GPT)
            gaps[w].append(model_gap(model))
    # the answer's query sees every key-value pair and itself (needle); else the whole block
    n = 2 * c.needle.keys + 1 if task_name == "needle" else task.block_size
    m = gap_metrics(gaps, n)
    m["gap.task"] = task_name
    return m
