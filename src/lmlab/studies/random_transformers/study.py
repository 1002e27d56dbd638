"""The `random-transformers` study: Zhong & Andreas (2024), "Algorithmic Capabilities of Random
Transformers".

Randomly initialized transformers in which only the embeddings (token, position, unembedding)
are trained, against fully trained ones, on the paper's tasks:

1. the algorithmic grid: tasks x freeze modes x widths x seeds (modular addition, needle in a
   haystack, decimal addition, parentheses), optional ablation modes and an LSTM at the widest
   width; accuracies are medians over seeds;
2. memorization capacity: bits per trainable parameter, full against random;
3. circuit imitation: KL of a random and a trained student against scaled random teachers of
   growing width;
4. language modelling on a grammar corpus (or TinyStories online);
5. analyses of the widest random models: subspace concentration per layer, and on the needle
   task the marker-to-value and query-to-value heads (with a figure).

Every job goes through `lmlab.executor` (`executor=serial|process|ray`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

from lmlab.device import device_name
from lmlab.executor import map_jobs
from lmlab.runs import Run
from lmlab.studies.random_transformers.claims import checks, claims
from lmlab.studies.random_transformers.config import (
    ALGO_TASKS,
    PAPER,
    PRESETS,
    TINY,
    RandomTransformersConfig,
)
from lmlab.studies.random_transformers.summary import summarize
from lmlab.study import Check, Claim, Study, StudyConfig

__all__ = ["ALGO_TASKS", "PAPER", "TINY", "RandomTransformersConfig", "RandomTransformersStudy",
           "grid_jobs", "imitation_jobs"]

def _task_kw(c: RandomTransformersConfig, task: str) -> tuple[tuple[str, Any], ...]:
    kw: dict[str, Any] = {
        "modadd": {"p": c.p, "test_fraction": c.modadd_test_fraction,
                   "val_fraction": c.modadd_val_fraction, "batch_size": c.modadd_batch},
        "needle": {"n_keys": c.needle_keys, "vocab": c.needle_vocab, "n_test": c.n_test,
                   "n_val": c.n_val, "batch_size": c.stream_batch},
        "decimal": {"n_digits": c.decimal_digits, "mask": c.decimal_mask, "n_test": c.n_test,
                    "n_val": c.n_val, "batch_size": c.stream_batch},
        "parens": {"n_pairs": c.parens_pairs, "n_test": c.n_test, "n_val": c.n_val,
                   "batch_size": c.stream_batch},
        "memorize": {"n": c.mem_n, "n_labels": c.mem_labels, "batch_size": c.mem_batch},
        "grammar": {"seq_len": c.lm_seq_len, "batch_size": c.lm_batch},
        "tinystories": {"seq_len": c.lm_seq_len, "batch_size": c.lm_batch},
    }[task]
    return tuple(kw.items())


def _steps(c: RandomTransformersConfig, task: str) -> int:
    return {"modadd": c.modadd_steps, "needle": c.needle_steps, "decimal": c.decimal_steps,
            "parens": c.parens_steps}[task]


def _lr(c: RandomTransformersConfig, mode: str) -> float:
    if mode == "lstm":
        return c.lstm_lr
    return c.full_lr if mode == "full" and c.full_lr is not None else c.lr


def grid_jobs(c: RandomTransformersConfig) -> list[Any]:
    """Every training job of the algorithmic grid, memorization and language modelling."""
    from lmlab.studies.random_transformers.experiments import Job

    wide = max(c.widths)
    common = {"n_layer": c.n_layer, "n_head": c.n_head, "weight_decay": c.weight_decay,
              "warmup_steps": c.warmup_steps, "threads": c.threads, "device": c.device}
    jobs = []
    for task in c.tasks:
        early = {"stop_at": c.stop_at or None, "eval_every": c.eval_every}
        base = c.baseline_seeds or c.seeds
        runs = [(m, w, s) for m in c.modes for w in c.widths
                for s in range(c.seeds if m == "random" else base)]
        runs += [(m, wide, s) for m in c.ablation_modes for s in range(base)]
        runs += [("lstm", wide, s) for s in range(base)] if c.lstm else []
        wd = c.modadd_weight_decay if task == "modadd" and c.modadd_weight_decay is not None \
            else c.weight_decay
        for mode, width, seed in runs:
            jobs.append(Job(task, mode, width, c.seed * 1000 + seed, _task_kw(c, task),
                            steps=_steps(c, task), lr=_lr(c, mode),
                            analyze=mode == "random" and width == wide and seed == 0,
                            **early, **{**common, "weight_decay": wd}))
    if c.memorize:
        for mode, s in itertools.product(("random", "full"), range(c.mem_seeds)):
            jobs.append(Job("memorize", mode, c.mem_width, c.seed * 1000 + s,
                            _task_kw(c, "memorize"), steps=c.mem_steps, lr=c.mem_lr, **common))
    if c.lm:
        lm_common = {**common, "weight_decay": c.lm_weight_decay}
        for mode, w, s in itertools.product(c.lm_modes, c.lm_widths, range(c.lm_seeds)):
            jobs.append(Job(c.lm_corpus, mode, w, c.seed * 1000 + s, _task_kw(c, c.lm_corpus),
                            steps=c.lm_steps, lr=c.lm_lr, **lm_common))
    return jobs


def imitation_jobs(c: RandomTransformersConfig) -> list[Any]:
    """The circuit-imitation jobs: student modes x teacher widths x seeds."""
    from lmlab.studies.random_transformers.imitation import ImitationJob

    if not c.imitation:
        return []
    return [
        ImitationJob(teacher_width=tw, mode=m, student_width=c.student_width,
                     seed=c.seed * 1000 + s, vocab_size=c.imit_vocab, seq_len=c.imit_len,
                     steps=c.imit_steps, batch_size=c.imit_batch, lr=c.lr,
                     weight_decay=c.weight_decay, warmup_steps=c.warmup_steps,
                     threads=c.threads, device=c.device)
        for m, tw, s in itertools.product(c.imit_modes, c.teacher_widths, range(c.imit_seeds))
    ]


def _run_any(job: Any) -> dict[str, Any]:
    """Dispatch one job (module level, so that process and Ray executors can pickle it)."""
    from lmlab.studies.random_transformers.experiments import Job, run_job
    from lmlab.studies.random_transformers.imitation import run_imitation

    return run_job(job) if isinstance(job, Job) else run_imitation(job)


class RandomTransformersStudy(Study):
    """Presets `tiny` (2-core CPU, minutes) and `paper` (the paper's grid, for GPUs)."""

    id = "random-transformers"
    Config = RandomTransformersConfig
    presets = PRESETS

    def validate(self, config: StudyConfig) -> None:
        """The Literal fields (tasks, modes), then sizes no job can use."""
        from lmlab.errors import LmlabError

        super().validate(config)
        assert isinstance(config, RandomTransformersConfig)
        c = config
        for name in ("seeds", "n_layer", "n_head", "p", "n_test", "mem_seeds", "imit_seeds",
                     "lm_seeds"):
            if getattr(c, name) < 1:
                raise LmlabError(f"random-transformers: {name} must be >= 1, "
                                 f"got {getattr(c, name)!r}")
        for name in ("widths", "teacher_widths", "lm_widths"):
            value = getattr(c, name)
            if (not value and name == "widths") or (value and min(value) < 1):
                raise LmlabError(f"random-transformers: {name} must hold widths >= 1, "
                                 f"got {value!r}")

    def run(self, config: StudyConfig, run: Run) -> dict[str, Any]:
        assert isinstance(config, RandomTransformersConfig)
        c = dataclasses.replace(config, device=config.device if config.device != "auto"
                                else device_name("auto"))
        if c.lm and c.lm_corpus == "tinystories":
            from lmlab.studies.random_transformers.language import TinyStories

            TinyStories().test_batch()  # fail now, in one line, if it cannot be loaded
        jobs = grid_jobs(c) + imitation_jobs(c)
        # Longest first, so that a pool's workers finish together.
        jobs.sort(key=_cost, reverse=True)
        results = map_jobs(_run_any, jobs, c.executor, _job_log(run, jobs), run=run,
                           progress="random-transformers: jobs", describe=_job_name)
        return summarize(c, results, run)

    def claims(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Claim]:
        assert isinstance(config, RandomTransformersConfig)
        return claims(config, metrics)

    def checks(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Check]:
        assert isinstance(config, RandomTransformersConfig)
        return checks(config, metrics)


def _job_log(run: Any, jobs: list[Any]) -> Callable[[int, dict[str, Any]], None]:
    """Log each job's numbers to the run as it finishes (progress is shown by lmlab.progress)."""

    def on_result(i: int, res: dict[str, Any]) -> None:
        run.log(**{k: v for k, v in res.items() if isinstance(v, int | float | str)},
                job=type(jobs[i]).__name__)

    return on_result


def _job_name(i: int, res: dict[str, Any]) -> str:
    """A finished job in the progress display: its key and score."""
    name = res.get("key") or f"imitation/{res.get('mode')}/t{res.get('teacher_width')}"
    score = (f"acc {res['test_acc']:.3f}" if "test_acc" in res
             else f"kl {res.get('test_kl', float('nan')):.4f}")
    return f"{name}: {score}"


def _cost(job: Any) -> float:
    """A rough relative cost of a job (steps x tokens x width^2), for ordering only."""
    from lmlab.studies.random_transformers.experiments import Job

    if not isinstance(job, Job):
        return job.steps * job.batch_size * job.seq_len * job.student_width**2 * 1.5
    kw = dict(job.task_kw)
    tokens = kw.get("batch_size", 1000) * {"modadd": 2, "memorize": 2}.get(
        job.task, 2 * kw.get("n_keys", 0) + 3 * kw.get("n_digits", 0) + 2 * kw.get("n_pairs", 0)
        + kw.get("seq_len", 0) + 3)
    return job.steps * tokens * job.width**2 * (1.5 if job.mode == "full" else 1.0)


STUDY = RandomTransformersStudy()
