"""Recorded LLM calls: a JSONL cache that replays a run offline, bit for bit.

A `Recorder` wraps any backend: each request it answers is appended to a JSONL file, keyed by
the backend's kind, the model, the request (every field, seed included) and its occurrence (the
k-th time this run asks that exact request, so repeated unseeded samples replay in order).
A request already in the file is answered from it, so the file is also a cache: re-running a
recorded run makes no model call. `ReplayBackend` (spec ``replay:FILE``) answers only from the
file, offline; a request the file does not hold is an error naming it.

Each line is one complete JSON object::

    {"v": 1, "backend": "hf", "model": "smollm2-135m-instruct", "key": "<sha256 of the request>",
     "occurrence": 0, "request": {...}, "completions": [{...}, ...]}

Floats go through JSON with their shortest exact representation, so replayed completions
(log-probabilities and hidden states included) equal the recorded ones exactly.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import lmlab
from lmlab.errors import LmlabError
from lmlab.llm.backend import Backend, CallStats
from lmlab.llm.request import Completion, Request

FORMAT = 1
Key = tuple[str, str, str, int]  # backend kind, model, request key, occurrence


def load_calls(path: Path) -> dict[Key, list[Completion]]:
    """The recorded calls in `path` ({} if it does not exist); a torn last line is ignored."""
    if not path.exists():
        return {}
    if not path.is_file():
        raise LmlabError(f"{path} is not a file")
    lines = path.read_text(encoding="utf-8").splitlines()
    out: dict[Key, list[Completion]] = {}
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            key = (rec["backend"], rec["model"], rec["key"], int(rec["occurrence"]))
            comps = [Completion.from_dict(c) for c in rec["completions"]]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            if no == len(lines) and not line.endswith("}"):
                continue  # a run killed mid-write leaves at most a torn last line
            raise LmlabError(f"{path}:{no}: not a recorded LLM call ({type(e).__name__}: {e})") from None
        out[key] = comps
    return out


def _append(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")  # one write per complete line
        f.flush()
        os.fsync(f.fileno())


def _record_line(kind: str, model: str, req: Request, occurrence: int, comps: list[Completion]) -> str:
    return json.dumps({
        "v": FORMAT,
        "backend": kind,
        "model": model,
        "key": req.key(),
        "occurrence": occurrence,
        "request": req.to_dict(),
        "completions": [c.to_dict() for c in comps],
        "lmlab": lmlab.__version__,
    }, ensure_ascii=False, separators=(",", ":"))


class Recorder(Backend):
    """Record `backend`'s calls to a JSONL file; answer requests already recorded from it."""

    def __init__(self, backend: Backend, path: str | os.PathLike):
        super().__init__(backend.model)
        self.inner = backend
        self.kind = backend.kind  # type: ignore[misc]  # a recorder stands in for its backend
        self.path = Path(path)
        self.calls = load_calls(self.path)
        self._seen: Counter[tuple[str, str, str]] = Counter()

    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        out: list[list[Completion] | None] = []
        misses: list[tuple[int, Request, int]] = []
        for i, r in enumerate(requests):
            ident = (self.kind, self.model, r.key())
            occ = self._seen[ident]
            self._seen[ident] += 1
            hit = self.calls.get((*ident, occ))
            out.append(hit)
            if hit is None:
                misses.append((i, r, occ))
            else:
                stats.replayed += len(hit)
        if misses:
            fresh = self.inner._generate([r for _, r, _ in misses], stats)
            lines = []
            for (i, r, occ), comps in zip(misses, fresh, strict=True):
                out[i] = comps
                self.calls[(self.kind, self.model, r.key(), occ)] = comps
                lines.append(_record_line(self.kind, self.model, r, occ, comps))
            _append(self.path, lines)
        return [c for c in out if c is not None]

    def close(self) -> None:
        """Close the wrapped backend."""
        self.inner.close()


class ReplayBackend(Backend):
    """Answer requests from a recorded JSONL file only, offline.

    When the file holds calls of several models, `source` (``kind:model``, e.g.
    ``hf:smollm2-135m-instruct``) chooses one.
    """

    kind = "replay"

    def __init__(self, path: str | os.PathLike, source: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise LmlabError(f"replay file not found: {self.path}")
        self.calls = load_calls(self.path)
        sources = sorted({f"{k[0]}:{k[1]}" for k in self.calls})
        if not sources:
            raise LmlabError(f"replay file {self.path} holds no recorded calls")
        if source is None:
            if len(sources) > 1:
                raise LmlabError(
                    f"replay file {self.path} holds calls of several models ({', '.join(sources)}); "
                    f"choose one with replay:{self.path}#SOURCE"
                )
            source = sources[0]
        if source not in sources:
            raise LmlabError(
                f"replay file {self.path} holds no calls of {source!r}; it has {', '.join(sources)}"
            )
        self.recorded_kind, self.recorded_model = source.split(":", 1)
        super().__init__(self.recorded_model)
        self._seen: Counter[str] = Counter()

    @property
    def source(self) -> str:
        """The recorded source this backend replays, ``kind:model``."""
        return f"{self.recorded_kind}:{self.recorded_model}"

    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        out = []
        for r in requests:  # look everything up before counting, so a miss consumes nothing
            occ = self._seen[r.key()] + sum(1 for q in requests[: len(out)] if q.key() == r.key())
            comps = self.calls.get((self.recorded_kind, self.recorded_model, r.key(), occ))
            if comps is None:
                recorded = sum(
                    1 for k in self.calls
                    if k[:3] == (self.recorded_kind, self.recorded_model, r.key())
                )
                raise LmlabError(
                    f"replay miss: {self.path} has no recorded answer from {self.source} for "
                    f"{r.describe()} (call {occ + 1} of this request; {recorded} recorded)"
                )
            out.append(comps)
        for r in requests:
            self._seen[r.key()] += 1
        stats.replayed += sum(len(c) for c in out)
        return out


def describe_sources(path: str | os.PathLike) -> dict[str, Any]:
    """How many requests and completions a recorded file holds, per ``kind:model``."""
    counts: dict[str, dict[str, int]] = {}
    for (kind, model, _, _), comps in load_calls(Path(path)).items():
        c = counts.setdefault(f"{kind}:{model}", {"requests": 0, "completions": 0})
        c["requests"] += 1
        c["completions"] += len(comps)
    return counts
