"""The study's job specs, each derived from the config (they hold no defaults of their own).

Every job seed comes from `lmlab.seeding.derive(config.seed, name, i)`, so `--seed 1` never
reruns a job of `--seed 0`. Within one experiment the models of seed index `i` share their seed
across modes and widths (random and fully trained models of seed `i` see the same data order),
which pairs them for the per-seed comparisons.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from lmlab.seeding import derive
from lmlab.studies.random_transformers.config import RandomTransformersConfig
from lmlab.studies.random_transformers.experiments import Job
from lmlab.studies.random_transformers.imitation import ImitationJob

__all__ = ["grid_jobs", "imitation_jobs", "job", "lm_jobs", "memorize_jobs", "task_kw",
           "width_jobs"]


def task_kw(c: RandomTransformersConfig, task: str) -> tuple[tuple[str, Any], ...]:
    """The task generator's settings for `task` (see `catalog.make_task`), from the config."""
    g = c.grid
    stream = {"n_test": g.n_test, "n_val": g.n_val, "batch_size": g.batch,
              # the default sampler stays out of the spec (the job caches of older runs match)
              **({"sampler": g.sampler} if g.sampler != "python" else {})}
    kw: dict[str, Any] = {
        "modadd": {"p": c.modadd.p, "test_fraction": c.modadd.test_fraction,
                   "val_fraction": c.modadd.val_fraction, "batch_size": c.modadd.batch},
        "needle": {"n_keys": c.needle.keys, "vocab": c.needle.vocab, **stream},
        "decimal": {"n_digits": c.decimal.digits, "mask": c.decimal.mask, **stream},
        "parens": {"n_pairs": c.parens.pairs, **stream},
        "memorize": {"n": c.memorize.n, "n_labels": c.memorize.labels,
                     "batch_size": c.memorize.batch},
        "grammar": {"seq_len": c.lm.seq_len, "batch_size": c.lm.batch},
        "tinystories": {"seq_len": c.lm.seq_len, "batch_size": c.lm.batch},
    }[task]
    return tuple(kw.items())


def job(c: RandomTransformersConfig, task: str, mode: str, width: int, i: int) -> Job:
    """The grid job of `task` x `mode` x `width` for seed index `i`."""
    g = c.grid
    steps = {"modadd": c.modadd.steps, "needle": c.needle.steps, "decimal": c.decimal.steps,
             "parens": c.parens.steps}[task]
    lr = g.lstm_lr if mode == "lstm" else \
        g.full_lr if mode == "full" and g.full_lr is not None else g.lr
    wd = c.modadd.weight_decay if task == "modadd" and c.modadd.weight_decay is not None \
        else g.weight_decay
    return Job(experiment="grid", task=task, mode=mode, width=width, replicate=i, seed=derive(c.seed, task, i),
               task_kw=task_kw(c, task), n_layer=c.n_layer, n_head=c.n_head, steps=steps, lr=lr,
               weight_decay=wd, warmup_steps=g.warmup_steps, eval_every=g.eval_every,
               stop_at=g.stop_at or None, threads=c.threads, device=c.device,
               analyze=mode == "random" and width == max(g.widths) and i == 0)


def grid_jobs(c: RandomTransformersConfig) -> list[Job]:
    """Every job of the algorithmic grid: modes x widths x seeds, ablations and the LSTM."""
    g = c.grid
    wide, base = max(g.widths), g.baseline_seeds or g.seeds
    runs = [(m, w, s) for m in g.modes for w in g.widths
            if m == "random" or g.baseline_widths == "all" or w == wide
            for s in range(g.seeds if m == "random" else base)]
    runs += [(m, wide, s) for m in g.ablation_modes for s in range(base)]
    runs += [("lstm", wide, s) for s in range(base)] if g.lstm else []
    return [job(c, task, m, w, s) for task in c.tasks for m, w, s in runs]


def width_jobs(c: RandomTransformersConfig) -> list[Job]:
    """The width sweep: random models of every `width.widths` x `width.seeds`, fully trained ones
    at the widest width, on each of `width.tasks`; every job trains `width.steps` steps of
    `width.batch` fresh sequences (one token budget), otherwise as the grid's job of the same
    task, mode and seed index (same seed, recipe and early stop on validation)."""
    wc = c.width
    if not wc.enabled:
        return []
    wide = max(wc.widths)
    runs = [("random", w, s) for w in wc.widths for s in range(wc.seeds)]
    runs += [("full", wide, s) for s in range(wc.baseline_seeds)]
    out = []
    for task in wc.tasks:
        kw = {**dict(task_kw(c, task)), "batch_size": wc.batch}
        for mode, w, s in runs:
            out.append(dataclasses.replace(job(c, task, mode, w, s), experiment="width",
                                           steps=wc.steps, task_kw=tuple(kw.items()),
                                           eval_every=wc.eval_every or c.grid.eval_every,
                                           analyze=False))
    return out


def memorize_jobs(c: RandomTransformersConfig) -> list[Job]:
    """Memorization capacity: a random and a fully trained model per seed."""
    mc = c.memorize
    if not mc.enabled:
        return []
    return [Job(experiment="memorize", task="memorize", mode=mode, width=mc.width, replicate=s,
                seed=derive(c.seed, "memorize", s), task_kw=task_kw(c, "memorize"),
                n_layer=c.n_layer, n_head=c.n_head, steps=mc.steps, lr=mc.lr,
                weight_decay=mc.weight_decay, warmup_steps=mc.warmup_steps, eval_every=0,
                stop_at=None, threads=c.threads, device=c.device, analyze=False)
            for mode, s in itertools.product(("random", "full"), range(mc.seeds))]


def lm_jobs(c: RandomTransformersConfig, corpus: str) -> list[Job]:
    """Language modelling on `corpus` (the configured one, or its offline fallback)."""
    lc = c.lm
    if not lc.enabled:
        return []
    return [Job(experiment="lm", task=corpus, mode=mode, width=w, replicate=s, seed=derive(c.seed, "lm", s),
                task_kw=task_kw(c, corpus), n_layer=c.n_layer, n_head=c.n_head, steps=lc.steps,
                lr=lc.lr, weight_decay=lc.weight_decay, warmup_steps=lc.warmup_steps,
                eval_every=0, stop_at=None, threads=c.threads, device=c.device, analyze=False)
            for mode, w, s in itertools.product(lc.modes, lc.widths, range(lc.seeds))]


def imitation_jobs(c: RandomTransformersConfig) -> list[ImitationJob]:
    """Circuit imitation: student modes x teacher widths x seeds (one teacher per width and
    seed, shared by the students of that seed)."""
    ic = c.imitation
    if not ic.enabled:
        return []
    return [ImitationJob(teacher_width=tw, mode=m, student_width=ic.student_width, replicate=s,
                         seed=derive(c.seed, "imitation", s), vocab_size=ic.vocab,
                         seq_len=ic.seq_len, n_layer=ic.n_layer, n_head=ic.n_head,
                         steps=ic.steps, batch_size=ic.batch, lr=ic.lr,
                         weight_decay=ic.weight_decay, warmup_steps=ic.warmup_steps,
                         n_test=ic.n_test, threads=c.threads, device=c.device)
            for m, tw, s in itertools.product(ic.modes, ic.teacher_widths, range(ic.seeds))]
