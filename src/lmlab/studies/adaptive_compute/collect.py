"""Collecting a sample table: N answers per query from a language model, scored, cached.

`collect` asks `lmlab.llm` for `n` samples of each query (one batched call per chunk of queries:
the ``hf`` backend generates all rows of a chunk together; an ``openai:`` backend sends ``n`` and
falls back to one request per sample where the server ignores it; ``best_of`` is never sent),
optionally one greedy answer (temperature 0, the weak decoder for routing) and the hidden state of
each prompt's last token (``hf`` only), scores the answers, and appends each finished query to a
JSONL file. A second call with the same file skips the queries already there, so an interrupted
collection resumes where it stopped. Each query's samples are seeded from (seed, query id) alone,
so they do not depend on the chunking or on what was collected before.

`collect_job` is the same work for one chunk as a picklable job, for `lmlab.executor.map_jobs`:
the study fans its chunks out to a pool of worker processes (one torch thread each, the model
loaded once per worker) and keeps each finished chunk in the run folder, its resume point.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError
from lmlab.llm import Backend, Request
from lmlab.seeding import derive
from lmlab.studies.adaptive_compute.queries import Query
from lmlab.studies.adaptive_compute.tables import QueryRecord, Sample, read_rows
from lmlab.studies.adaptive_compute.verifiers import Scorer

__all__ = ["ChunkResult", "CollectJob", "CollectSettings", "CollectStats", "collect", "collect_chunk", "collect_job",
           "release_backends"]


@dataclass(frozen=True)
class CollectSettings:
    """How to sample: N samples at `temperature`, up to `max_tokens` each, `chunk` queries per call."""

    n: int = 8
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 24
    greedy: bool = True
    hidden_layer: int | None = None  # hf only: cache this layer's last-token hidden state
    chunk: int = 8
    seed: int = 0
    system: str | None = None


@dataclass
class CollectStats:
    """What collecting cost in this call (resumed queries are not counted)."""

    queries: int = 0
    samples: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    sample_wall_s: float = 0.0  # time inside the sampling calls alone (greedy answers included)
    resumed: int = 0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.sample_wall_s if self.sample_wall_s > 0 else float("nan")


def _request(q: Query, s: CollectSettings, n: int, temperature: float, seed: int) -> Request:
    return Request.chat(q.prompt, system=s.system, n=n, temperature=temperature, top_p=s.top_p,
                        max_tokens=s.max_tokens, seed=seed)


def collect(
    queries: Sequence[Query],
    splits: dict[str, str],
    backend: Backend,
    scorer: Scorer | Callable[[Query, list[str]], list[float]],
    path: str | Path,
    settings: CollectSettings = CollectSettings(),
    on_chunk: Callable[[int, int], None] | None = None,
) -> tuple[list[QueryRecord], CollectStats]:
    """Sample, score and cache every query (skipping those already in `path`); the records in the
    order of `queries`, and this call's costs. `splits` maps query id to train/val/test."""
    path = Path(path)
    stats = CollectStats()
    t0 = time.perf_counter()
    done: dict[str, QueryRecord] = {}
    if path.is_file():
        for k, d in enumerate(read_rows(path)):
            rec = QueryRecord.from_dict(d, f"{path.name}:{k + 1}")
            if len(rec.samples) != settings.n:
                raise LmlabError(f"{path}: cached query {rec.id!r} has {len(rec.samples)} samples, "
                                 f"this run asks for {settings.n}; use a fresh run folder")
            done[rec.id] = rec
        stats.resumed = len(done)
    todo = [q for q in queries if q.id not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), settings.chunk):
        chunk = todo[start:start + settings.chunk]
        records = collect_chunk(chunk, splits, backend, scorer, settings, stats)
        for rec in records:
            done[rec.id] = rec
        with open(path, "a", encoding="utf-8") as f:  # one chunk at a time: resumable
            f.writelines(json.dumps(rec.to_dict()) + "\n" for rec in records)
            f.flush()
        if on_chunk is not None:
            on_chunk(stats.resumed + stats.queries, len(queries))
    stats.wall_s = time.perf_counter() - t0
    return [done[q.id] for q in queries], stats


def collect_chunk(
    chunk: Sequence[Query],
    splits: dict[str, str],
    backend: Backend,
    scorer: Scorer | Callable[[Query, list[str]], list[float]],
    settings: CollectSettings,
    stats: CollectStats | None = None,
) -> list[QueryRecord]:
    """Sample and score one chunk of queries in one batched call (plus one hidden-state pass);
    adds its costs to `stats` when given."""
    stats = stats if stats is not None else CollectStats()
    want_hidden = settings.hidden_layer is not None
    if want_hidden and not hasattr(backend, "hidden_states"):
        raise LmlabError(f"backend {backend.source} gives no hidden states; use an hf: backend or hidden_layer=None")
    seeds = [derive(settings.seed, "samples", q.id) for q in chunk]
    reqs = [_request(q, settings, settings.n, settings.temperature, sd) for q, sd in zip(chunk, seeds, strict=True)]
    if settings.greedy:  # the greedy answers ride in the same batched call
        reqs += [_request(q, settings, 1, 0.0, 0) for q in chunk]
    ts = time.perf_counter()
    answers = backend.generate(reqs)
    stats.sample_wall_s += time.perf_counter() - ts
    outs, greedy = answers[:len(chunk)], (answers[len(chunk):] if settings.greedy else None)
    reqs = reqs[:len(chunk)]
    hidden = backend.hidden_states(reqs, settings.hidden_layer).tolist() if want_hidden else None  # type: ignore[attr-defined]
    records = []
    for k, (q, comps) in enumerate(zip(chunk, outs, strict=True)):
        texts = [c.text for c in comps]
        rewards = scorer(q, texts)
        samples = [Sample(c.text, float(r), float(c.completion_tokens))
                   for c, r in zip(comps, rewards, strict=True)]
        g = None
        if greedy is not None:
            gc = greedy[k][0]
            g = Sample(gc.text, float(scorer(q, [gc.text])[0]), float(gc.completion_tokens))
        feats: dict[str, Any] = {"prompt_tokens": comps[0].prompt_tokens, "prompt_chars": len(q.prompt)}
        if hidden is not None:
            feats["hidden"] = [round(x, 6) for x in hidden[k]]
        records.append(QueryRecord(q.id, splits[q.id], q.domain, q.prompt, samples, q.answer, dict(q.meta), g, feats))
        stats.samples += len(comps) + (1 if g is not None else 0)
        stats.tokens += sum(c.completion_tokens for c in comps)
    stats.queries += len(chunk)
    return records


@dataclass(frozen=True)
class CollectJob:
    """One chunk of queries to collect in a worker process: the model (a backend spec and its
    options), the sampling settings, the queries and their splits. Picklable, and its hash keys
    the chunk's kept result in a run folder (`lmlab.executor.map_jobs`)."""

    model: str
    options: tuple[tuple[str, Any], ...]
    settings: CollectSettings
    queries: tuple[Query, ...]
    splits: tuple[tuple[str, str], ...]
    threads: int = 1


@dataclass(frozen=True)
class ChunkResult:
    """A collected chunk: its records (as table rows) and what collecting them cost."""

    rows: tuple[dict[str, Any], ...]
    stats: CollectStats


_BACKENDS: dict[tuple[str, tuple[tuple[str, Any], ...]], Backend] = {}


def collect_job(job: CollectJob) -> ChunkResult:
    """Collect one chunk (module level, for a process pool): the model is loaded once per
    process and kept for the process's next chunk; `release_backends` drops it."""
    from lmlab.executor import job_threads
    from lmlab.llm import get_backend
    from lmlab.studies.adaptive_compute.verifiers import exact_match

    job_threads(job.threads)
    key = (job.model, job.options)
    if key not in _BACKENDS:
        release_backends()  # one model per process
        _BACKENDS[key] = get_backend(job.model, **dict(job.options))
    stats = CollectStats()
    t0 = time.perf_counter()
    records = collect_chunk(job.queries, dict(job.splits), _BACKENDS[key], exact_match, job.settings, stats)
    stats.wall_s = time.perf_counter() - t0
    return ChunkResult(tuple(r.to_dict() for r in records), stats)


def release_backends() -> None:
    """Drop the models `collect_job` keeps loaded in this process."""
    for backend in _BACKENDS.values():
        backend.close()
    _BACKENDS.clear()
