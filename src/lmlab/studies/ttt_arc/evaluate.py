"""Run every task's jobs through the executor, then score, summarize, plot and submit.

Scoring is the only place that reads the test outputs (inside `reveal_solutions()`, through the
data layer's `score_task`). Per-task scores and TTT times go to the run's metrics.jsonl; the
Kaggle submission of condition (d) to `submission.json` in the run folder.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmlab.executor import get_executor, map_jobs
from lmlab.studies.ttt_arc.arc import ArcTask, reveal_solutions
from lmlab.studies.ttt_arc.experiments import (
    ModelRef,
    SharedJob,
    TaskJob,
    TTTSettings,
    run_shared_job,
    run_task_job,
)
from lmlab.studies.ttt_arc.scoring import merge_split_predictions, score_task, write_submission
from lmlab.studies.ttt_arc.summary import summarize_scores

__all__ = ["evaluate", "run_any"]


def run_any(job: TaskJob | SharedJob) -> dict[str, Any]:
    """Dispatch one job (module level, so process and Ray workers can pickle it)."""
    return run_task_job(job) if isinstance(job, TaskJob) else run_shared_job(job)


def _job_name(job: TaskJob | SharedJob) -> str:
    if isinstance(job, TaskJob):
        return f"seed {job.seed} {job.family}"
    return f"seed {job.seed} shared adapter"


def _score(task: ArcTask, attempts: Sequence[Any]) -> float:
    with reveal_solutions():
        sols = task.test_outputs
    return score_task([[np.asarray(a) for a in attempts]], sols[:1])


def evaluate(c: Any, ref: ModelRef, tasks: Sequence[tuple[int, str, ArcTask]],
             settings: TTTSettings, run: Any) -> dict[str, Any]:
    """All conditions on `tasks` ((seed, family, task) triples); the study's metrics."""
    jobs: list[TaskJob | SharedJob] = [TaskJob(t, fam, s, ref, settings) for s, fam, t in tasks]
    shared: list[SharedJob] = []
    if getattr(c, "ablate_shared", False):
        for s in sorted({s for s, _, _ in tasks}):
            mine = tuple(t for s2, _, t in tasks if s2 == s)
            per_task = c.shared_steps_per_task or settings.lora.steps_for(settings.max_tasks)
            shared.append(SharedJob(mine, s, ref, settings, steps=per_task * len(mine)))
    # The shared-adapter jobs are the longest: start them first so the pool finishes together.
    todo = [*shared, *jobs]
    results = map_jobs(run_any, todo, get_executor(c.executor, c.workers), run=run,
                       progress="ttt-arc: tasks", describe=lambda i, r: _job_name(todo[i]))
    shared_res, task_res = results[:len(shared)], results[len(shared):]
    by_key: dict[tuple[int, str], dict[str, Any]] = {}
    for r in shared_res:
        for tr in r["tasks"]:
            by_key[(r["seed"], tr["id"])] = tr["preds"]
    rows, times, cpu_times, predictions = [], [], [], {}
    for (s, fam, task), r in zip(tasks, task_res, strict=True):
        preds = dict(r["preds"])
        preds.update(by_key.get((s, task.id), {}))
        scores = {}
        for cond, attempts in preds.items():
            if cond == "ttt_oracle":  # right if any distinct prediction is right
                scores[cond] = max([_score(task, [a]) for a in attempts], default=0.0)
            else:
                scores[cond] = _score(task, attempts)
        rows.append({"seed": s, "family": fam, "id": task.id, "scores": scores})
        fit = r["ttt_fit"]
        times.append(fit["wall_s"])
        cpu_times.append(fit["cpu_s"])
        if s == 0:
            predictions[task.id] = [np.asarray(a) for a in preds["ttt_vote"]]
        run.log(task=task.id, family=fam, seed=s, **{f"score.{k}": v for k, v in scores.items()},
                ttt_wall_s=fit["wall_s"], ttt_cpu_s=fit["cpu_s"], ttt_steps=fit["steps"],
                ttt_seqs=fit.get("n_seqs", 0), ttt_loss=fit["train_loss"],
                adapter_initial=fit["initial_digest"], n_queries=r["n_queries"])
    m = summarize_scores(rows, n_boot=c.n_boot, seed=c.seed)
    digests = {r["ttt_fit"]["initial_digest"] for r in task_res}
    digests |= {r[k]["initial_digest"] for r in task_res for k in ("notf_fit",) if k in r}
    m["adapter_initial_digests"] = len(digests)  # 1: every task started from the same adapter
    if times:
        m["ttt_time.wall_mean_s"] = statistics.fmean(times)
        m["ttt_time.wall_median_s"] = statistics.median(times)
        m["ttt_time.wall_max_s"] = max(times)
        m["ttt_time.cpu_mean_s"] = statistics.fmean(cpu_times)
        m["ttt_time.cpu_median_s"] = statistics.median(cpu_times)
        m["ttt_steps_per_task"] = statistics.fmean(r["ttt_fit"]["steps"] for r in task_res)
    for r in shared_res:
        m[f"shared.seed{r['seed']}.steps"] = r["fit"]["steps"]
        m[f"shared.seed{r['seed']}.cpu_s"] = r["fit"]["cpu_s"]
    write_submission(merge_split_predictions(predictions), run.path / "submission.json")
    from lmlab.studies.ttt_arc.figures import save_figures

    save_figures(m, cpu_times, run)
    return m
