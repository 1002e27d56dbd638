"""The `peoplejoin` study: run every agent on the chosen items, judge, score, summarize.

Each episode (one agent on one item, judged) is one executor job (`jobs.episode_job`); the tiny
preset runs them in two worker processes of one torch thread each. A run folder holds:
``transcripts/<agent>/<datum_id>.json`` (every episode; the resume point: an episode saved with
its verdict is not run again by ``--resume``), ``llm_records/<agent>/<datum_id>.jsonl`` (every
model call of that episode, replayable with ``replay:FILE``), ``judge_cache.jsonl``, ``scores.jsonl``
(one row per agent and item), ``gold_mismatches.json`` (items whose gold SQL does not reproduce
the reference rows), ``efficiency.md`` and ``figures/``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from lmlab.errors import LmlabError
from lmlab.studies.peoplejoin.claims import checks, claims
from lmlab.studies.peoplejoin.config import PRESETS, PeopleJoinConfig
from lmlab.study import Check, Claim, Study

__all__ = ["STUDY", "PeopleJoinStudy"]


class PeopleJoinStudy(Study):
    """LM agents that gather information from the people of an organization (PeopleJoin)."""

    id = "peoplejoin"
    Config = PeopleJoinConfig
    presets = PRESETS
    expected_s = {"tiny": 115}  # wall s measured in `make demo` on a fresh clone, quiet 2-core machine (207 CPU-s)

    def __init__(self) -> None:
        from lmlab.studies.peoplejoin.cli import app

        self.cli = app

    def validate(self, config: PeopleJoinConfig) -> None:  # type: ignore[override]
        super().validate(config)
        from lmlab.llm.spec import parse_spec
        from lmlab.studies.peoplejoin.agents import AGENTS
        from lmlab.studies.peoplejoin.data import data_dir

        bad = [a for a in config.agents if a not in AGENTS]
        if bad or not config.agents:
            raise LmlabError(f"unknown agent(s) {bad or '(none)'}; agents: {', '.join(AGENTS)}")
        for spec in (config.agent_model, config.teammate_model, config.judge_model):
            if spec:
                parse_spec(spec)
        if config.items < 0 or config.max_actions < 1 or config.max_invalid < 1 or config.max_turns < 1:
            raise LmlabError("items must be >= 0; max_actions, max_invalid, max_turns >= 1")
        if config.workers < 0 or config.threads < 0:
            raise LmlabError("workers and threads must be >= 0")
        from lmlab.studies.peoplejoin.evaluate import select_items

        select_items(data_dir(config.data), split=config.split, organizations=config.organizations,
                     max_member_chars=config.max_member_chars, n=config.items, seed=config.seed)

    def run(self, config: PeopleJoinConfig, run: Any) -> dict[str, Any]:
        from lmlab.studies.peoplejoin.data import data_source, load_items
        from lmlab.studies.peoplejoin.evaluate import gold_check, select_items

        source = data_source(config.data)
        root = source.path
        t0 = time.perf_counter()
        chosen = select_items(root, split=config.split, organizations=config.organizations,
                              max_member_chars=config.max_member_chars, n=config.items,
                              seed=config.seed)
        metrics: dict[str, Any] = {"items": len(chosen), **source.to_metrics()}
        # the execution checker's own check: does the gold SQL reproduce the reference rows?
        dev = load_items(root / "dev.jsonl")
        ok, n, bad = gold_check(root, dev)
        from lmlab.runs import atomic_write_json

        atomic_write_json(run.path / "gold_mismatches.json", bad)
        metrics.update({"gold.reproduced": ok, "gold.answerable": n, "gold.rate": ok / max(n, 1)})
        metrics.update(_episodes(config, run, chosen))
        metrics["timing.total_s"] = time.perf_counter() - t0
        return metrics

    def claims(self, config: PeopleJoinConfig, metrics: dict[str, Any]) -> list[Claim]:  # type: ignore[override]
        return claims(config, metrics)

    def checks(self, config: PeopleJoinConfig, metrics: dict[str, Any]) -> list[Check]:  # type: ignore[override]
        return checks(config, metrics)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _episodes(config: PeopleJoinConfig, run: Any, chosen: list) -> dict[str, Any]:
    """Run every agent on every chosen item (one executor job per episode), judge and score."""
    import resource

    from lmlab.executor import get_executor, map_jobs
    from lmlab.llm.usage import run_ledger
    from lmlab.studies.peoplejoin.agents import LLM_AGENTS
    from lmlab.studies.peoplejoin.data import data_source
    from lmlab.studies.peoplejoin.environment import Limits
    from lmlab.studies.peoplejoin.evaluate import rescore, summarize, transcript_path, write_rows
    from lmlab.studies.peoplejoin.figures import efficiency_table, plot_results
    from lmlab.studies.peoplejoin.jobs import EpisodeJob, episode_job
    from lmlab.studies.peoplejoin.metrics import JudgeCache, score_transcript
    from lmlab.studies.peoplejoin.transcript import Transcript

    agent_spec = config.agent_model
    mate_spec = config.teammate_model or agent_spec
    judge_spec = config.judge_model or agent_spec
    limits = Limits(config.max_actions, config.max_invalid, config.max_turns,
                    config.max_messages, config.max_time_s, config.reject_repeats)
    root = str(data_source(config.data).path)
    # item-major order: neighbouring jobs message the same members (their personas stay cached)
    jobs = [EpisodeJob(name, item.datum_id, root, config.split, agent_spec, mate_spec, judge_spec,
                       config.teammates, config.requester, config.query_aware_people, limits,
                       str(run.path), config.seed, config.batch_size, config.device, config.threads,
                       config.judge_cache)
            for item, _ in chosen for name in config.agents]
    cache = JudgeCache(run.path / "judge_cache.jsonl")
    shared = JudgeCache(config.judge_cache) if config.judge_cache else None
    done: dict[int, tuple[Transcript, str]] = {}
    # the resume point: an episode whose transcript and verdict were saved is not run again
    for i, job in enumerate(jobs):
        path = transcript_path(run.path, job.agent, job.datum_id)
        if run.resume and path.is_file():
            t = Transcript.load(path)
            verdict = cache.get(t, judge_spec)
            if verdict is not None:
                done[i] = (t, verdict)
    todo = [i for i in range(len(jobs)) if i not in done]
    ledger = run_ledger(run)
    worker_cpu = [0.0]

    def finished(k: int, res: dict[str, Any]) -> None:
        t = Transcript.from_dict(res["transcript"])
        verdict = res["judge"]
        if shared is not None and shared.get(t, judge_spec) is None:
            shared.put(t, judge_spec, verdict)
        cache.put(t, judge_spec, verdict)  # the verdict first: the transcript marks the job done
        t.save(transcript_path(run.path, t.agent, t.datum_id))
        for rec in res["usage"]:
            ledger.add(rec)
        worker_cpu[0] += res["cpu_s"]
        done[todo[k]] = (t, verdict)

    def describe(k: int, res: dict[str, Any]) -> str:
        t = res["transcript"]
        return (f"{t['agent']} {t['datum_id']} ({t['item_kind']}): {t['end_reason']}, "
                f"{len(t['steps'])} actions")

    c0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    start = time.perf_counter()
    ex = get_executor(config.executor, config.workers or None)
    map_jobs(episode_job, [jobs[i] for i in todo], ex, on_result=finished,
             progress="peoplejoin: episodes", describe=describe)
    episodes_s = time.perf_counter() - start
    items = {it.datum_id: it for it, _ in chosen}
    pairs = [done[i] for i in range(len(jobs))]
    rows = [score_transcript(t, items[t.datum_id], v) for t, v in pairs]
    write_rows(run.path / "scores.jsonl", rows)
    llm = [a for a in config.agents if a in LLM_AGENTS]
    m = summarize(rows, config.agents, n_boot=config.n_boot, seed=config.seed, llm_agents=llm)
    m.update(_own_checks(rows, [t for t, _ in pairs]))
    # re-scoring from disk gives the same numbers
    again = {(r["agent"], r["datum_id"]): r for r in rescore(run.path, items, judge_spec)}
    m["check.rescore_equal"] = float(all(again[(r["agent"], r["datum_id"])] == r for r in rows))
    m["episodes"] = len(jobs)
    from lmlab.runs import atomic_write_json

    # how many episodes this invocation ran and kept (not a metric: a resumed run differs)
    atomic_write_json(run.path / "episodes.json", {"run": len(todo), "kept": len(jobs) - len(todo)})
    m["timing.episodes_s"] = episodes_s
    m["timing.cpu_s"] = resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0 + worker_cpu[0]
    m["model.agent"], m["model.teammates"], m["model.judge"] = agent_spec, (
        mate_spec if config.teammates == "llm" else "table-server"), judge_spec
    plot_results(m, config.agents, run)
    efficiency_table(m, config.agents, run.path / "efficiency.md")
    return m


def _own_checks(rows: list[dict[str, Any]], transcripts: list[Any]) -> dict[str, Any]:
    """Numbers for the implementation's checks: the scripted policies' people scores, and how
    often the judge's full marks agree with the execution check."""
    m: dict[str, Any] = {}
    oracle = [r for r in rows if r["agent"] == "oracle-contacts"]
    nonempty = [r for r, t in zip(rows, transcripts, strict=True)
                if r["agent"] == "oracle-contacts" and set(t.reference_people) - {t.requester_id}]
    if oracle:
        m["check.oracle.items_nonempty"] = len(nonempty)
        m["check.oracle.min_precision"] = min((r["precision"] for r in nonempty), default=1.0)
        m["check.oracle.min_recall"] = min((r["recall"] for r in nonempty), default=1.0)
    bc = [r for r in rows if r["agent"] == "broadcast"]
    if bc:
        m["check.broadcast.min_recall"] = min(r["recall"] for r in bc)
    judged = [r for r in rows if r["match"] is not None]
    if judged:
        agree = [float((r["match"] == 100.0) == (r["exec"] == 1.0)) for r in judged]
        m["judge.agree_exec"] = sum(agree) / len(agree)
        m["judge.n"] = len(judged)
        m["judge.full_marks"] = sum(r["match"] == 100.0 for r in judged)
        m["judge.exec_pass"] = sum(r["exec"] == 1.0 for r in judged)
        # per class of the execution check: a judge that says 0 (or 2) to everything agrees on
        # one class only, however unbalanced the episodes are
        for name, cls in (("pass", 1.0), ("fail", 0.0)):
            same = [a for a, r in zip(agree, judged, strict=True) if r["exec"] == cls]
            if same:
                m[f"judge.agree_on_{name}"] = sum(same) / len(same)
    return m


STUDY = PeopleJoinStudy()
