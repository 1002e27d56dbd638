"""One episode as an executor job: run one agent on one item, judge it, hand back the transcript.

`episode_job(EpisodeJob)` is a module-level function, so `lmlab.executor` can run the episodes in
worker processes (the tiny preset: two workers of one torch thread each). A worker loads each
model once and keeps it for its later jobs; every call of an episode goes to the model alone
(no padded batch), so the local backend starts each prompt from the kept KV cache of the recent
prompt sharing its longest prefix: the agent's fixed system message and its growing chat, a
member's persona and documents, the judge's rubric. Each job records its model calls in its own
replayable file (``llm_records/<agent>/<datum_id>.jsonl``) and returns its usage records, which
the parent process adds to the run's ledger (one writer for ``llm_usage.json``).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lmlab.executor import job_threads
from lmlab.studies.peoplejoin.environment import Limits

__all__ = ["EpisodeJob", "episode_job", "record_path"]

PREFIX_ENTRIES = 12  # kept KV caches per worker: agent, judge and a few members' personas


@dataclass(frozen=True)
class EpisodeJob:
    """Everything one episode needs (picklable, so a worker process can take it)."""

    agent: str
    datum_id: str
    data: str  # the data folder (dev.jsonl, tenant_data_v2/)
    split: str
    agent_model: str
    teammate_model: str
    judge_model: str
    teammates: str  # llm | table-server
    requester: str  # scripted | llm
    query_aware: bool
    limits: Limits
    out: str  # the run folder (for the job's record file)
    seed: int = 0
    batch_size: int = 16
    device: str = "cpu"
    threads: int = 0
    judge_cache: str = ""  # a shared JSONL judge cache consulted before the judge is asked


def record_path(run_dir: str | Path, agent: str, datum_id: str) -> Path:
    """Where one episode's model calls are recorded (replayable with ``replay:FILE``)."""
    return Path(run_dir) / "llm_records" / agent / f"{datum_id}.jsonl"


@cache
def _items(data: str, split: str) -> dict[str, Any]:
    from lmlab.studies.peoplejoin.data import load_items

    return {it.datum_id: it for it in load_items(Path(data) / f"{split}.jsonl")}


@cache
def _organization(data: str, tenant_id: str) -> Any:
    from lmlab.studies.peoplejoin.data import load_organization

    return load_organization(Path(data), tenant_id)


_MODELS: dict[tuple[str, int, int, str], Any] = {}


def _model(spec: str, job: EpisodeJob) -> Any:
    """The worker's one copy of a model (loaded on its first job)."""
    from lmlab import llm

    key = (spec, job.batch_size, job.seed, job.device)
    if key not in _MODELS:
        opts: dict[str, Any] = {}
        if spec.split(":", 1)[0] == "hf":
            opts = {"batch_size": job.batch_size, "seed": job.seed, "device": job.device}
        lm = llm.get_backend(spec, **opts)
        if hasattr(lm, "prefix_cache"):
            from lmlab.llm.prefix import PrefixCache

            lm.prefix_cache = PrefixCache(max_entries=PREFIX_ENTRIES)
        _MODELS[key] = lm
    return _MODELS[key]


class _Tap:
    """Collects the usage record of every call a job's backends make."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def add(self, rec: Any) -> None:
        self.records.append(rec)


def episode_job(job: EpisodeJob) -> dict[str, Any]:
    """Run one episode and judge it: ``{"transcript": dict, "judge": str, "usage": [CallRecord],
    "cpu_s": float}``."""
    from lmlab.llm.replay import Recorder
    from lmlab.studies.peoplejoin.agents import LLM_AGENTS, make_agent
    from lmlab.studies.peoplejoin.environment import episode
    from lmlab.studies.peoplejoin.evaluate import judge_one
    from lmlab.studies.peoplejoin.rollout import run_episodes
    from lmlab.studies.peoplejoin.teammates import (
        LLMRequester,
        LLMTeammates,
        ScriptedRequester,
        TableServer,
    )

    job_threads(job.threads)
    c0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    item = _items(job.data, job.split)[job.datum_id]
    org = _organization(job.data, item.tenant_id)
    tap = _Tap()
    path = record_path(job.out, job.agent, job.datum_id)
    recorders: dict[str, Recorder] = {}

    def backend(spec: str) -> Recorder:
        if spec not in recorders:
            recorders[spec] = Recorder(_model(spec, job), path).account(tap)  # usage -> parent
        return recorders[spec]

    llm_agent = job.agent in LLM_AGENTS
    model = job.agent_model if llm_agent else "scripted"
    roles: dict[str, Any] = {}
    if llm_agent:
        roles["agent"] = backend(job.agent_model)
    if job.teammates == "llm":
        roles["teammate"] = backend(job.teammate_model)
        mates: Any = LLMTeammates(org, job.teammate_model)
    else:
        mates = TableServer(org)
    if job.requester == "llm":
        roles["requester"] = backend(job.teammate_model)
        req: Any = LLMRequester(org, item.question, job.teammate_model)
    else:
        req = ScriptedRequester(item.question)
    agent = make_agent(job.agent, org, model, item.reference_people)
    gen = episode(item, org, agent, mates, req, job.limits, query_aware=job.query_aware)
    t = run_episodes([gen], roles, batch=False)[0]
    verdict = None
    if job.judge_cache:
        from lmlab.studies.peoplejoin.metrics import JudgeCache

        verdict = JudgeCache(job.judge_cache).get(t, job.judge_model)
    if verdict is None:
        verdict = judge_one(t, lambda: backend(job.judge_model))
    return {"transcript": t.to_dict(), "judge": verdict, "usage": tap.records,
            "cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0}
