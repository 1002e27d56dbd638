"""Collecting a sample table: N answers per query from a language model, scored, cached.

`collect` asks `lmlab.llm` for `n` samples of each query (one batched call per chunk of queries:
the ``hf`` backend generates all rows of a chunk together; an ``openai:`` backend sends ``n`` and
falls back to one request per sample where the server ignores it; ``best_of`` is never sent),
optionally one greedy answer (temperature 0, the weak decoder for routing) and the hidden state of
each prompt's last token (``hf`` only), scores the answers, and appends each finished query to a
JSONL file. A second call with the same file skips the queries already there, so an interrupted
collection resumes where it stopped. Each query's samples are seeded from (seed, query id) alone,
so they do not depend on the chunking or on what was collected before.
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

__all__ = ["CollectSettings", "CollectStats", "collect"]


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
    want_hidden = settings.hidden_layer is not None
    if want_hidden and not hasattr(backend, "hidden_states"):
        raise LmlabError(f"backend {backend.source} gives no hidden states; use an hf: backend or hidden_layer=None")
    path.parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), settings.chunk):
        chunk = todo[start:start + settings.chunk]
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
        lines = []
        for k, (q, comps) in enumerate(zip(chunk, outs, strict=True)):
            texts = [c.text for c in comps]
            rewards = scorer(q, texts)
            samples = [Sample(c.text, float(r), float(c.completion_tokens))
                       for c, r in zip(comps, rewards, strict=True)]
            g = None
            if greedy is not None:
                gc = greedy[k][0]
                g = Sample(gc.text, float(scorer(q, [gc.text])[0]), float(gc.completion_tokens))
            feats: dict[str, Any] = {"prompt_tokens": comps[0].prompt_tokens,
                                     "prompt_chars": len(q.prompt)}
            if hidden is not None:
                feats["hidden"] = [round(x, 6) for x in hidden[k]]
            rec = QueryRecord(q.id, splits[q.id], q.domain, q.prompt, samples, q.answer, dict(q.meta), g, feats)
            done[q.id] = rec
            lines.append(json.dumps(rec.to_dict()) + "\n")
            stats.samples += len(comps) + (1 if g is not None else 0)
            stats.tokens += sum(c.completion_tokens for c in comps)
        with open(path, "a", encoding="utf-8") as f:  # one chunk at a time: resumable
            f.writelines(lines)
            f.flush()
        stats.queries += len(chunk)
        if on_chunk is not None:
            on_chunk(stats.resumed + stats.queries, len(queries))
    stats.wall_s = time.perf_counter() - t0
    return [done[q.id] for q in queries], stats
