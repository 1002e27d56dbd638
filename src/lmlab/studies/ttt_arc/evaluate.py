"""Run every task's jobs through the executor, then score, summarize, plot and submit.

Scoring is the only place that reads the test outputs (inside `reveal_solutions()`, through the
data layer's `score_task`). Every condition is scored at pass@1 (its first attempt) and pass@2
(either of its first two); the oracle bound at `any` (one of all its distinct predictions).
Per-task scores and TTT times go to the run's metrics.jsonl; the Kaggle submission of condition
(d) to `submission.json` in the run folder.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from lmlab.executor import get_executor, map_jobs
from lmlab.seeding import derive
from lmlab.studies.ttt_arc.arc import ArcTask, reveal_solutions
from lmlab.studies.ttt_arc.config import TTTArcConfig
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

__all__ = ["BASE_CONDITIONS", "build_jobs", "evaluate", "run_any", "score_conditions"]


def run_any(job: TaskJob | SharedJob) -> dict[str, Any]:
    """Dispatch one job (module level, so process and Ray workers can pickle it)."""
    return run_task_job(job) if isinstance(job, TaskJob) else run_shared_job(job)


def _job_name(job: TaskJob | SharedJob) -> str:
    if isinstance(job, TaskJob):
        return f"seed {job.rep} {job.family}"
    return f"seed {job.rep} shared adapter"


def _score(task: ArcTask, attempts: Sequence[Any]) -> float:
    """pass@2 of `attempts` (None: an unparseable answer) on the task's first test output."""
    with reveal_solutions():
        sols = task.test_outputs
    return score_task([[None if a is None else np.asarray(a) for a in attempts]], sols[:1])


def _task_timings(name: str, r: dict[str, Any]) -> dict[str, float]:
    """One task's timings (`timing.task.<seed>.<id>.*`): base inference, TTT fit (wall and
    CPU), inference with the adapter, and the whole job (wall and CPU of its worker)."""
    out = {"base_infer_s": r.get("base_infer_s"), "ttt_fit.wall_s": r["ttt_fit"]["wall_s"],
           "ttt_fit.cpu_s": r["ttt_fit"]["cpu_s"], "ttt_infer_s": r.get("ttt_infer_s"),
           "job.wall_s": r.get("wall_s"), "job.cpu_s": r.get("cpu_s")}
    return {f"timing.task.{name}.{k}": float(v) for k, v in out.items() if v is not None}


def score_conditions(task: ArcTask, preds: dict[str, Sequence[Any]]) -> dict[str, float]:
    """`{condition.pass1, condition.pass2: 0/1}` for every condition's attempts, and
    `ttt_oracle.any` (solved by one of all of (d)'s distinct predictions)."""
    scores: dict[str, float] = {}
    for cond, attempts in preds.items():
        if cond == "ttt_oracle":
            scores["ttt_oracle.any"] = max([_score(task, [a]) for a in attempts], default=0.0)
            continue
        scores[f"{cond}.pass1"] = _score(task, list(attempts)[:1])
        scores[f"{cond}.pass2"] = _score(task, list(attempts)[:2])
    return scores


# the conditions an ablation base (`extra_refs`) runs, kept under `<prefix>_<condition>`
BASE_CONDITIONS = ("icl", "icl_vote", "ttt", "ttt_vote")


def build_jobs(c: TTTArcConfig, ref: ModelRef, tasks: Sequence[tuple[int, str, ArcTask]],
               settings: TTTSettings) -> tuple[list[SharedJob], list[TaskJob]]:
    """The shared-adapter jobs (one per seed, if ablated) and one job per task. Each seed's
    TTT and query randomness comes from a stream derived from the run's seed."""
    jobs = [TaskJob(t, fam, s, derive(c.seed, "ttt", s), ref, settings) for s, fam, t in tasks]
    shared: list[SharedJob] = []
    if c.ablate.shared:
        for s in sorted({s for s, _, _ in tasks}):
            mine = tuple(t for s2, _, t in tasks if s2 == s)
            per_task = c.ablate.shared_steps_per_task or settings.lora.steps_for(
                settings.data.max_tasks)
            shared.append(SharedJob(mine, s, derive(c.seed, "ttt", s), ref, settings,
                                    steps=per_task * len(mine)))
    return shared, jobs


def evaluate(c: TTTArcConfig, ref: ModelRef, tasks: Sequence[tuple[int, str, ArcTask]],
             settings: TTTSettings, run: Any, extra_refs: dict[str, ModelRef] | None = None
             ) -> dict[str, Any]:
    """All conditions on `tasks` ((seed, family, task) triples); the study's metrics.

    `extra_refs` (prefix -> another base, e.g. the no-similar-tasks ablation's) runs
    `BASE_CONDITIONS` on the same tasks with the same seeds from that base, scored as
    `<prefix>_<condition>`."""
    shared, jobs = build_jobs(c, ref, tasks, settings)
    plain = replace(settings, ablate_no_transforms=False)
    extra = [(p, TaskJob(j.task, j.family, j.rep, j.seed, r, plain))
             for p, r in (extra_refs or {}).items() for j in jobs]
    # The shared-adapter jobs are the longest: start them first so the pool finishes together.
    todo = [*shared, *jobs, *(j for _, j in extra)]
    names = [_job_name(j) for j in (*shared, *jobs)] + [f"{_job_name(j)} ({p} base)"
                                                        for p, j in extra]
    results = map_jobs(run_any, todo, get_executor(c.executor, c.workers), run=run,
                       progress="ttt-arc: tasks", describe=lambda i, r: names[i])
    shared_res = results[:len(shared)]
    task_res = results[len(shared):len(shared) + len(jobs)]
    extra_res = results[len(shared) + len(jobs):]
    by_key: dict[tuple[int, str], dict[str, Any]] = {}
    for r in shared_res:
        for tr in r["tasks"]:
            by_key[(r["rep"], tr["id"])] = tr["preds"]
    for (prefix, job), r in zip(extra, extra_res, strict=True):
        by_key.setdefault((job.rep, job.task.id), {}).update(
            {f"{prefix}_{k}": r["preds"][k] for k in BASE_CONDITIONS})
    rows, times, cpu_times, predictions = [], [], [], {}
    per_task_times, timings = c.backend == "hf", {}
    for (s, fam, task), r in zip(tasks, task_res, strict=True):
        preds = dict(r["preds"])
        preds.update(by_key.get((s, task.id), {}))
        scores = score_conditions(task, preds)
        rows.append({"seed": s, "family": fam, "id": task.id, "scores": scores})
        fit = r["ttt_fit"]
        times.append(fit["wall_s"])
        cpu_times.append(fit["cpu_s"])
        if s == 0:
            predictions[task.id] = [np.asarray(a) for a in preds["ttt_vote"] if a is not None]
        if per_task_times:
            timings.update(_task_timings(f"seed{s}.{task.id}", r))
        run.log(task=task.id, family=fam, seed=s, **{f"score.{k}": v for k, v in scores.items()},
                ttt_wall_s=fit["wall_s"], ttt_cpu_s=fit["cpu_s"], ttt_steps=fit["steps"],
                ttt_seqs=fit.get("n_seqs", 0), ttt_loss=fit["train_loss"],
                adapter_initial=fit["initial_digest"], n_queries=r["n_queries"])
    m = summarize_scores(rows, n_boot=c.n_boot, seed=derive(c.seed, "bootstrap"))
    digests = {r["ttt_fit"]["initial_digest"] for r in task_res}
    digests |= {r[k]["initial_digest"] for r in task_res for k in ("notf_fit",) if k in r}
    m["adapter.initial_digests"] = len(digests)  # 1: every task started from the same adapter
    m.update(timings)
    if times:
        m["ttt_fit.wall.mean_s"] = statistics.fmean(times)
        m["ttt_fit.wall.median_s"] = statistics.median(times)
        m["ttt_fit.wall.max_s"] = max(times)
        m["ttt_fit.cpu.mean_s"] = statistics.fmean(cpu_times)
        m["ttt_fit.cpu.median_s"] = statistics.median(cpu_times)
        m["ttt_fit.steps.mean"] = statistics.fmean(r["ttt_fit"]["steps"] for r in task_res)
    for r in shared_res:
        m[f"shared_fit.seed{r['rep']}.steps"] = r["fit"]["steps"]
        m[f"shared_fit.seed{r['rep']}.cpu_s"] = r["fit"]["cpu_s"]
    write_submission(merge_split_predictions(predictions), run.path / "submission.json")
    from lmlab.studies.ttt_arc.figures import save_figures

    save_figures(m, cpu_times, run)
    return m
