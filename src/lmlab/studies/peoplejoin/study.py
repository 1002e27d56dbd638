"""The `peoplejoin` study: run every agent on the chosen items, judge, score, summarize.

A run folder holds: ``transcripts/<agent>/<datum_id>.json`` (every episode), ``llm_record.jsonl``
(every model call, replayable with ``replay:FILE``), ``judge_cache.jsonl``, ``scores.jsonl``
(one row per agent and item), ``gold_mismatches.json`` (items whose gold SQL does not reproduce
the reference rows), ``efficiency.md`` and ``figures/``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from lmlab.errors import LmlabError
from lmlab.executor import job_threads
from lmlab.studies.peoplejoin.claims import checks, claims
from lmlab.studies.peoplejoin.config import PRESETS, PeopleJoinConfig
from lmlab.study import Check, Claim, Study

__all__ = ["STUDY", "PeopleJoinStudy"]


class PeopleJoinStudy(Study):
    """LM agents that gather information from the people of an organization (PeopleJoin)."""

    id = "peoplejoin"
    Config = PeopleJoinConfig
    presets = PRESETS

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
        from lmlab.studies.peoplejoin.evaluate import select_items

        select_items(data_dir(config.data), split=config.split, organizations=config.organizations,
                     max_member_chars=config.max_member_chars, n=config.items, seed=config.seed)

    def run(self, config: PeopleJoinConfig, run: Any) -> dict[str, Any]:
        from lmlab.studies.peoplejoin.data import data_source, load_items
        from lmlab.studies.peoplejoin.evaluate import gold_check, select_items

        job_threads(config.threads)
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
    """Run every agent on every chosen item, judge and score the transcripts."""
    import resource

    from lmlab.llm import get_backend
    from lmlab.studies.peoplejoin.agents import LLM_AGENTS, make_agent
    from lmlab.studies.peoplejoin.environment import Limits, episode
    from lmlab.studies.peoplejoin.evaluate import (
        judge_all,
        summarize,
        transcript_path,
        write_rows,
    )
    from lmlab.studies.peoplejoin.figures import efficiency_table, plot_results
    from lmlab.studies.peoplejoin.metrics import JudgeCache, score_transcript
    from lmlab.studies.peoplejoin.rollout import run_episodes
    from lmlab.studies.peoplejoin.teammates import (
        LLMRequester,
        LLMTeammates,
        ScriptedRequester,
        TableServer,
    )

    record = run.path / "llm_record.jsonl"
    opts: dict[str, Any] = {}
    backends: dict[str, Any] = {}

    def backend(spec: str) -> Any:
        if spec not in backends:
            kind = spec.split(":", 1)[0]
            o = dict(opts)
            if kind == "hf":
                o = {"batch_size": config.batch_size, "seed": config.seed, "device": config.device}
            backends[spec] = get_backend(spec, run=run, record=record, **o)
        return backends[spec]

    agent_spec = config.agent_model
    mate_spec = config.teammate_model or agent_spec
    judge_spec = config.judge_model or agent_spec
    needs_llm = any(a in LLM_AGENTS for a in config.agents)
    roles: dict[str, Any] = {}
    if needs_llm:
        roles["agent"] = backend(agent_spec)
    if config.teammates == "llm":
        roles["teammate"] = backend(mate_spec)
    if config.requester == "llm":
        roles["requester"] = backend(mate_spec)
    limits = Limits(config.max_actions, config.max_invalid, config.max_turns,
                    config.max_messages, config.max_time_s, config.reject_repeats)
    gens, keys = [], []
    for name in config.agents:
        model = agent_spec if name in LLM_AGENTS else "scripted"
        for item, org in chosen:
            agent = make_agent(name, org, model, item.reference_people)
            mates = LLMTeammates(org, mate_spec) if config.teammates == "llm" else TableServer(org)
            req = (LLMRequester(org, item.question, mate_spec) if config.requester == "llm"
                   else ScriptedRequester(item.question))
            gens.append(episode(item, org, agent, mates, req, limits,
                                query_aware=config.query_aware_people))
            keys.append((name, item))
    total = len(gens)
    done = [0]
    start = time.perf_counter()

    def on_done(i: int, t: Any) -> None:
        done[0] += 1
        t.save(transcript_path(run.path, t.agent, t.datum_id))
        el = time.perf_counter() - start
        _log(f"[{done[0]}/{total}] {t.agent} {t.datum_id} ({t.item_kind}): {t.end_reason}, "
             f"{len(t.steps)} actions, {el:.0f}s elapsed")

    c0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    transcripts = run_episodes(gens, roles, on_done=on_done)
    episodes_s = time.perf_counter() - start
    # the judge reads each transcript (cached by item, transcript digest and judge model)
    cache = JudgeCache(config.judge_cache or run.path / "judge_cache.jsonl")
    if config.judge_cache:  # keep the run folder self-contained for rescoring
        own = JudgeCache(run.path / "judge_cache.jsonl")
    judge_start = time.perf_counter()
    outputs = judge_all(transcripts, backend(judge_spec), cache, judge_spec)
    if config.judge_cache:
        for t, o in zip(transcripts, outputs, strict=True):
            if o is not None and own.get(t, judge_spec) is None:
                own.put(t, judge_spec, o)
    judge_s = time.perf_counter() - judge_start
    items = {it.datum_id: it for _, it in keys}
    rows = [score_transcript(t, items[t.datum_id], o) for t, o in zip(transcripts, outputs, strict=True)]
    write_rows(run.path / "scores.jsonl", rows)
    m = summarize(rows, config.agents, n_boot=config.n_boot, seed=config.seed,
                  llm_agents=[a for a in config.agents if a in LLM_AGENTS])
    # the oracle's contacts: precision = recall = 1 wherever the reference set is non-empty
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
    # re-scoring from disk gives the same numbers
    from lmlab.studies.peoplejoin.evaluate import rescore

    again = {(r["agent"], r["datum_id"]): r for r in rescore(run.path, items, judge_spec)}
    m["check.rescore_equal"] = float(all(again[(r["agent"], r["datum_id"])] == r for r in rows))
    m["timing.episodes_s"] = episodes_s
    m["timing.judge_s"] = judge_s
    m["timing.cpu_s"] = resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0
    m["model.agent"], m["model.teammates"], m["model.judge"] = agent_spec, (
        mate_spec if config.teammates == "llm" else "table-server"), judge_spec
    plot_results(m, config.agents, run)
    efficiency_table(m, config.agents, run.path / "efficiency.md")
    for b in backends.values():
        b.close()
    return m


STUDY = PeopleJoinStudy()
