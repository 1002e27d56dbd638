"""Pre-training the tiny decoder on generated in-context tasks (the paper's fine-tuning stage).

Each training sequence is one generated task in the compact grid-token format: demos then the
query input and its output, the loss on demo outputs 2..N and on the answer (the paper's mask,
from `GridTokenizer.encode_task`). Batches are drawn fresh from the generator at every step,
seeded by (seed, step), so pre-training is deterministic and never repeats a task. Each batch runs
as `buckets` groups of similar length, each cut to its longest (`lmlab.nn.train.bucketed_loss`):
the same loss as the padded batch for about a quarter less compute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from lmlab.nn import GPT
from lmlab.nn.train import TrainConfig, Trainer, bucketed_loss
from lmlab.studies.ttt_arc.config import ModelSpec, PretrainSettings
from lmlab.studies.ttt_arc.generator import (
    TRAIN_COMPOSITIONS,
    GenTask,
    generate_task,
    training_families,
)
from lmlab.studies.ttt_arc.model import build_model

__all__ = ["collate", "encode_gen_task", "pretrain"]


def encode_gen_task(tokenizer: Any, task: GenTask) -> tuple[list[int], list[int]]:
    """Token ids and loss mask of a generated task with its test pair as the query."""
    from lmlab.studies.ttt_arc.arc import Example, as_grid

    demos = [Example(as_grid(x), as_grid(y)) for x, y in task.demos]
    ids, mask = tokenizer.encode_task(demos, as_grid(task.test[0]), as_grid(task.test[1]))
    return list(ids), [int(m) for m in mask]


def collate(seqs: Sequence[tuple[list[int], list[int]]], pad_id: int,
            coords_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
            ) -> dict[str, torch.Tensor]:
    """Right-padded next-token batch: input_ids, targets (-100 on padding) and loss_mask, and
    with `coords_fn` the inputs' coordinates (`coords`, (B, T, n))."""
    T = max(len(ids) for ids, _ in seqs) - 1
    inp = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    tgt = torch.full((len(seqs), T), -100, dtype=torch.long)
    msk = torch.zeros((len(seqs), T), dtype=torch.float32)
    for b, (ids, mask) in enumerate(seqs):
        n = len(ids) - 1
        inp[b, :n] = torch.tensor(ids[:-1])
        tgt[b, :n] = torch.tensor(ids[1:])
        msk[b, :n] = torch.tensor(mask[1:], dtype=torch.float32)
    out = {"input_ids": inp, "targets": tgt, "loss_mask": msk}
    if coords_fn is not None:
        out["coords"] = coords_fn(inp)
    return out


def pretrain(tokenizer: Any, spec: ModelSpec, cfg: PretrainSettings, seed: int, *,
             max_side: int = 6, n_demos: int | None = None, run: Any = None,
             colours: str = "global") -> tuple[GPT, dict[str, Any]]:
    """Train a fresh tiny GPT on generated tasks (grids up to `max_side`, `n_demos` demos each,
    None: 3 or 4 at random; `colours`: the colour split's scheme); return it and its training
    metrics. `cfg.compositions` `("none",)` pre-trains on single families alone."""
    fams = training_families(cfg.compositions or TRAIN_COMPOSITIONS, cfg.single_weight)
    model = build_model(spec, tokenizer.vocab_size, seed)
    pad = int(tokenizer.PAD)
    coords_fn = tokenizer.coords if spec.coords else None

    def batches(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))
        seqs = []
        while len(seqs) < cfg.batch_size:
            fam = fams[int(rng.integers(len(fams)))]
            ids, mask = encode_gen_task(tokenizer, generate_task(fam, rng, split="train",
                                                                n_demos=n_demos,
                                                                max_side=max_side,
                                                                colours=colours))
            if len(ids) <= spec.block_size + 1:
                seqs.append((ids, mask))
        return collate(seqs, pad, coords_fn)

    tc = TrainConfig(steps=cfg.steps, lr=cfg.lr, warmup_steps=cfg.warmup_steps,
                     weight_decay=cfg.weight_decay, schedule="cosine", min_lr_ratio=0.1,
                     log_every=cfg.log_every, ckpt_every=cfg.ckpt_every if run is not None else 0,
                     device="cpu", seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    loss_fn = bucketed_loss(cfg.buckets, trim=("coords",)) if cfg.buckets > 1 else None
    out = Trainer(model, tc, batches, loss_fn=loss_fn, run=run).fit()
    out["pretrain_wall_s"] = time.perf_counter() - t0
    out["pretrain_cpu_s"] = time.process_time() - c0
    model.eval()
    return model, out
