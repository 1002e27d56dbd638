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

Every job goes through `lmlab.executor` (`executor=serial|process|ray`); a killed run resumes
with `--resume` (finished jobs are kept in the run folder). Progress shows the steps of the
running jobs, weighted by their cost, with an ETA (`steps.py`).

Metric keys (dotted, `task.condition.size.metric`; medians over seeds unless they end in
`.seedN`; every interval is a 95% bootstrap interval, `ci_lo`/`ci_hi` beside its value):

- `{task}.{mode}.d{width}.acc`, `.acc.seedN`, `.acc_min`, `.val_acc`, `.steps`, `.seeds`;
  `{task}.majority.acc`; for language modelling also `.loss`;
- `{task}.random.width_gain.diff` (widest minus narrowest random width, paired over seeds),
  `{task}.random.width_gain_5x.diff`, `{task}.random_minus_full.d{width}.diff`;
- `memorize.{mode}.d{width}.acc|bits_per_param|n_trainable|saturated`,
  `memorize.full_over_random.d{width}.ratio` (paired over the table's entries);
- `{task}.random.d{width}.l{layer}.pca10|neuron10|gap_ci_lo|gap_ci_hi`,
  `subspace.random.d{width}.min_gap|min_gap_ci_lo`, `needle.random.d{width}.l{layer}.*_max`;
- `imitation.{mode}.t{teacher}.kl`, `.kl.seedN`, `imitation.uniform.t{teacher}.kl`,
  `imitation.{mode}.trend.spearman` (over every (width, seed) point);
- `lm.corpus` (the corpus used), `lm.corpus_requested`, `lm.fallback`,
  `{corpus}.random_minus_full.d{width}.loss`, `{corpus}.random.width_gain.loss` (paired over
  test windows);
- `gap.d{width}.logit`, `.logit.seedN`, `.attention_share`, `gap.positions`, `gap.task`: the
  attainable attention logit gap of the frozen random models at the grid's widths and
  `grid.gap_widths` (defined in `gaps.py`), with a figure (`logit_gap`);
- `freeze.frozen_identical|trainable_exact|models_checked`, `jobs.count|wall_s|cpu_s`.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from lmlab.device import device_name
from lmlab.errors import LmlabError
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
from lmlab.studies.random_transformers.experiments import Job, run_job
from lmlab.studies.random_transformers.gap_models import measure_gaps
from lmlab.studies.random_transformers.gaps import gap_figure
from lmlab.studies.random_transformers.imitation import ImitationJob, run_imitation
from lmlab.studies.random_transformers.jobs import (
    grid_jobs,
    imitation_jobs,
    lm_jobs,
    memorize_jobs,
    width_jobs,
)
from lmlab.studies.random_transformers.steps import watch_steps
from lmlab.studies.random_transformers.summary import summarize
from lmlab.studies.random_transformers.width import width_figures, width_metrics, width_table
from lmlab.study import Check, Claim, Study, StudyConfig

__all__ = ["ALGO_TASKS", "PAPER", "TINY", "RandomTransformersConfig", "RandomTransformersStudy",
           "grid_jobs", "imitation_jobs", "lm_corpus"]


def lm_corpus(c: RandomTransformersConfig) -> tuple[str, str]:
    """The language-modelling corpus to use and why: TinyStories when asked for and loadable,
    else the grammar corpus (the paper's preset must not die offline; the metrics say so)."""
    if c.lm.corpus != "tinystories" or not c.lm.enabled:
        return c.lm.corpus, ""
    from lmlab.studies.random_transformers.language import TinyStories

    try:
        TinyStories().test_batch()
    except LmlabError as e:
        return "grammar", str(e)
    return "tinystories", ""


def _run_any(job: Job | ImitationJob) -> dict[str, Any]:
    """Dispatch one job (module level, so that process and Ray executors can pickle it)."""
    return run_job(job) if isinstance(job, Job) else run_imitation(job)


class RandomTransformersStudy(Study):
    """Presets `tiny` (2-core CPU, about 9 minutes), `small` (tiny plus the width sweep),
    `paper` (the paper's grid, for GPUs) and `gpu` (the width sweep up to d=1024, one H100)."""

    id = "random-transformers"
    Config = RandomTransformersConfig
    presets = PRESETS
    # ~1,290 CPU-s over 2 one-thread workers, longest job first: ~650 s of wall on a quiet 2-core
    # machine (estimated from a per-job profile at 1 thread; config.py's notes)
    # gpu: an ESTIMATE (no GPU lent): 136 PFLOP at 25-50% of an H100's fp32 peak (config.py)
    # small: tiny's 535 s plus the width sweep's ~1,330 CPU-s on 2 workers (an estimate)
    expected_s = {"tiny": 535, "small": 1200, "gpu": 74 * 60}  # wall s measured in `make demo` on a fresh clone, quiet 2-core machine (1,005 CPU-s)

    def validate(self, config: StudyConfig) -> None:
        """The Literal fields (tasks, modes, corpus), then sizes no job can use."""
        super().validate(config)
        assert isinstance(config, RandomTransformersConfig)
        c = config
        counts = {"n_layer": c.n_layer, "n_head": c.n_head, "grid.seeds": c.grid.seeds,
                  "grid.n_test": c.grid.n_test, "grid.n_val": c.grid.n_val,
                  "grid.batch": c.grid.batch, "modadd.p": c.modadd.p,
                  "memorize.seeds": c.memorize.seeds, "imitation.seeds": c.imitation.seeds,
                  "lm.seeds": c.lm.seeds, "width.seeds": c.width.seeds,
                  "width.steps": c.width.steps, "width.batch": c.width.batch}
        for name, value in counts.items():
            if value < 1:
                raise LmlabError(f"random-transformers: {name} must be >= 1, got {value!r}")
        streams = {t for t in (*c.tasks, *(c.width.tasks if c.width.enabled else ()))
                   if t in ("needle", "decimal", "parens")}
        if c.grid.sampler == "torch" and "parens" in streams:
            raise LmlabError("random-transformers: grid.sampler=torch draws needle and decimal "
                             "batches only; parentheses need grid.sampler=python")
        for name, value in (("width.baseline_seeds", c.width.baseline_seeds),
                            ("width.eval_every", c.width.eval_every)):
            if value < 0:
                raise LmlabError(f"random-transformers: {name} must be >= 0, got {value!r}")
        if c.grid.baseline_seeds < 0:
            raise LmlabError("random-transformers: grid.baseline_seeds must be >= 0 (0: "
                             f"grid.seeds), got {c.grid.baseline_seeds!r}")
        for name, value in (("grid.widths", c.grid.widths),
                            ("imitation.teacher_widths", c.imitation.teacher_widths),
                            ("lm.widths", c.lm.widths), ("grid.gap_widths", c.grid.gap_widths),
                            ("width.widths", c.width.widths)):
            needed = name == "grid.widths" or (name == "width.widths" and c.width.enabled)
            if (not value and needed) or (value and min(value) < 1):
                raise LmlabError(f"random-transformers: {name} must hold widths >= 1, "
                                 f"got {value!r}")

    def run(self, config: StudyConfig, run: Run) -> dict[str, Any]:
        assert isinstance(config, RandomTransformersConfig)
        c = dataclasses.replace(config, device=config.device if config.device != "auto"
                                else device_name("auto"))
        corpus, why = lm_corpus(c)
        if why:
            print(f"random-transformers: {why}; language modelling falls back to the grammar "
                  "corpus (lm.corpus in the metrics)", file=sys.stderr, flush=True)
        jobs: list[Job | ImitationJob] = [*grid_jobs(c), *width_jobs(c), *memorize_jobs(c),
                                          *lm_jobs(c, corpus), *imitation_jobs(c)]
        jobs.sort(key=_cost, reverse=True)  # longest first, so that a pool's workers end together
        sizes = [(j.key, j.steps, _cost(j) / max(j.steps, 1)) for j in jobs]
        with watch_steps("random-transformers", Path(run.path) / "steps", sizes,
                         _job_name) as on_result:

            def finished(i: int, res: dict[str, Any]) -> None:
                on_result(i, res)
                run.log(**{k: v for k, v in res.items() if isinstance(v, int | float | str)},
                        job=type(jobs[i]).__name__)

            results = map_jobs(_run_any, jobs, c.executor, finished, run=run)
        sweep = [r for r in results if r.get("experiment") == "width"]
        m = summarize(c, [r for r in results if r.get("experiment") != "width"], run,
                      corpus=corpus if c.lm.enabled else None, also_frozen=sweep)
        m.update(measure_gaps(c))
        gap_figure(m, run)
        if c.width.enabled:
            m.update(width_metrics(c, sweep))
            (Path(run.path) / "width_table.md").write_text(width_table(c, m))
            width_figures(c, sweep, m, run)
        return m

    def claims(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Claim]:
        assert isinstance(config, RandomTransformersConfig)
        return claims(config, metrics)

    def checks(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Check]:
        assert isinstance(config, RandomTransformersConfig)
        return checks(config, metrics)


def _job_name(i: int, res: dict[str, Any]) -> str:
    """A finished job in the progress display: its key and score."""
    score = (f"acc {res['test_acc']:.3f}" if "test_acc" in res
             else f"kl {res.get('test_kl', float('nan')):.4f}")
    return f"{res.get('key', f'job {i + 1}')}: {score}"


def _cost(job: Job | ImitationJob) -> float:
    """A job's expected CPU seconds at one thread: steps x tokens per step x a per-token cost
    that grows with width^2 (6 + d^2/700 microseconds per token for 2 layers; fully trained
    models x1.3), fitted to the per-step CPU time measured at `tiny` (within ~25% for every job
    kind). It orders the jobs longest first, so that the pool's workers end together, and
    weighs the progress display."""
    def per_token(width: int, layers: int) -> float:
        return (6.0 + width**2 / 700.0) * layers / 2 * 1e-6

    if isinstance(job, ImitationJob):
        # a student of 3 layers plus the teacher's forward pass
        return job.steps * job.batch_size * job.seq_len * per_token(job.student_width, job.n_layer) \
            * (1.3 if job.mode == "full" else 1.0) * 1.2
    kw = dict(job.task_kw)
    length = {"modadd": 2, "memorize": 2}.get(
        job.task, 2 * kw.get("n_keys", 0) + 3 * kw.get("n_digits", 0) + 2 * kw.get("n_pairs", 0)
        + kw.get("seq_len", 0) + 3)
    return job.steps * kw.get("batch_size", 1000) * length * per_token(job.width, job.n_layer) \
        * (1.3 if job.mode == "full" else 1.0)


STUDY = RandomTransformersStudy()
