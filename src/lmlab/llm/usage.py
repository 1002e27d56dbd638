"""Accounting: tokens and wall time of every LLM call, totalled per run.

Every backend keeps a `Usage` in memory (``backend.usage``). Attached to a run folder, each call
is also appended to ``llm_calls.jsonl`` (one complete line per call) and the run's totals are
rewritten atomically to ``llm_usage.json``; all backends writing to the same folder in one
process share the folder's totals, and a resumed run continues them. The agent studies report
efficiency from ``llm_usage.json``.

Token counts are taken from the completions: a call's prompt tokens count each request's prompt
once (like the OpenAI API's usage for ``n`` samples), its completion tokens every sample.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CALLS_FILE = "llm_calls.jsonl"
USAGE_FILE = "llm_usage.json"
COUNTERS = (
    "calls", "requests", "completions", "prompt_tokens", "completion_tokens", "total_tokens",
    "http_calls", "retries", "replayed",
)


@dataclass
class CallRecord:
    """One `Backend.generate` call: what it asked, what it got, what it cost."""

    backend: str
    model: str
    requests: int
    completions: int
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    http_calls: int = 0
    retries: int = 0
    replayed: int = 0
    time: float = 0.0

    @property
    def source(self) -> str:
        return f"{self.backend}:{self.model}"


def _empty() -> dict[str, Any]:
    return {**dict.fromkeys(COUNTERS, 0), "wall_s": 0.0}


def _add(tot: dict[str, Any], rec: CallRecord) -> None:
    tot["calls"] += 1
    tot["requests"] += rec.requests
    tot["completions"] += rec.completions
    tot["prompt_tokens"] += rec.prompt_tokens
    tot["completion_tokens"] += rec.completion_tokens
    tot["total_tokens"] += rec.prompt_tokens + rec.completion_tokens
    tot["http_calls"] += rec.http_calls
    tot["retries"] += rec.retries
    tot["replayed"] += rec.replayed
    tot["wall_s"] += rec.wall_s


class Usage:
    """Running totals of LLM calls, overall and per ``backend:model``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals: dict[str, Any] = _empty()
        self.by_model: dict[str, dict[str, Any]] = {}

    def add(self, rec: CallRecord) -> None:
        """Count one call."""
        with self._lock:
            _add(self.totals, rec)
            _add(self.by_model.setdefault(rec.source, _empty()), rec)

    def as_dict(self) -> dict[str, Any]:
        """Totals and the per-model breakdown, as written to ``llm_usage.json``."""
        with self._lock:
            out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.totals.items()}
            out["by_model"] = {
                m: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in t.items()}
                for m, t in sorted(self.by_model.items())
            }
        return out


class RunLedger:
    """The usage of one run folder: appends ``llm_calls.jsonl``, rewrites ``llm_usage.json``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.usage = Usage()
        self._lock = threading.Lock()
        for rec in _read_calls(folder / CALLS_FILE):  # a resumed run continues its totals
            self.usage.add(rec)

    def add(self, rec: CallRecord) -> None:
        """Record one call in the folder."""
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / CALLS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(asdict(rec)) + "\n")
                f.flush()
            self.usage.add(rec)
            from lmlab.runs import atomic_write_json

            atomic_write_json(self.folder / USAGE_FILE, self.usage.as_dict())


def _read_calls(path: Path) -> list[CallRecord]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(CallRecord(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue  # a torn last line from a crash
    return out


_LEDGERS: dict[Path, RunLedger] = {}
_LEDGERS_LOCK = threading.Lock()


def run_ledger(run: Any) -> RunLedger:
    """The process-wide ledger of a run folder (a `lmlab.runs.Run` or a path)."""
    folder = Path(getattr(run, "path", run)).resolve()
    with _LEDGERS_LOCK:
        if folder not in _LEDGERS:
            _LEDGERS[folder] = RunLedger(folder)
        return _LEDGERS[folder]


def read_usage(run: Any) -> dict[str, Any]:
    """The LLM usage totals of a run folder (zeros when it made no LLM call)."""
    folder = Path(getattr(run, "path", run))
    path = folder / USAGE_FILE
    if path.is_file():
        from lmlab.runs import read_json

        return read_json(path)
    u = Usage()
    for rec in _read_calls(folder / CALLS_FILE):
        u.add(rec)
    return u.as_dict()


def now() -> float:
    """Wall-clock time stamp for call records."""
    return round(time.time(), 3)


__all__ = ["CALLS_FILE", "USAGE_FILE", "CallRecord", "RunLedger", "Usage", "read_usage", "run_ledger"]
