"""Sample tables: every query with its N sampled answers, their rewards and costs.

A table is the whole interface between the expensive part of the study (sampling a model, reading
its hidden states) and everything else (labels, predictors, allocation, curves), which runs on the
table alone. One row per query::

    {"id": "arith-00017", "split": "train", "domain": "arithmetic", "prompt": "What is 7 + 5? ...",
     "answer": "12", "meta": {"level": 0},
     "samples": [{"text": "12", "reward": 1.0, "cost": 3}, ...],        # N sampled answers
     "greedy": {"text": "12", "reward": 1.0, "cost": 3},               # optional: greedy decode
     "features": {"hidden": [...], "prompt_tokens": 31}}                # optional cached features

Stored as JSONL (one row a line) or Parquet (extra `parquet`); the format follows the suffix.
`SampleTable.validate` rejects duplicate ids, missing or non-finite rewards and ragged sample
counts, each with one line naming the first offending row.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import LmlabError, require
from lmlab.runs import atomic_write_text

__all__ = ["QueryRecord", "Sample", "SampleTable", "read_table", "write_table"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One sampled answer: its text, reward, and cost (generated tokens)."""

    text: str
    reward: float
    cost: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "reward": self.reward, "cost": self.cost}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> Sample:
        if not isinstance(d, dict):
            raise LmlabError(f"{where}: a sample must be an object with text, reward, cost")
        r = d.get("reward")
        if r is None or isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r):
            raise LmlabError(f"{where}: missing or non-finite reward ({r!r})")
        return cls(str(d.get("text", "")), float(r), float(d.get("cost", 1.0)))


@dataclass
class QueryRecord:
    """One query of a sample table (see the module docstring for the fields)."""

    id: str
    split: str
    domain: str
    prompt: str
    samples: list[Sample]
    answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    greedy: Sample | None = None
    features: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "split": self.split, "domain": self.domain, "prompt": self.prompt,
            "answer": self.answer, "meta": self.meta,
            "samples": [s.to_dict() for s in self.samples],
            "greedy": self.greedy.to_dict() if self.greedy is not None else None,
            "features": self.features,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "row") -> QueryRecord:
        if not isinstance(d, dict):
            raise LmlabError(f"{where}: expected an object, got {type(d).__name__}")
        for key in ("id", "split", "domain", "prompt", "samples"):
            if key not in d or d[key] is None:
                raise LmlabError(f"{where}: missing field {key!r}")
        qid = str(d["id"])
        if d["split"] not in SPLITS:
            raise LmlabError(f"{where} (id {qid}): split must be one of {', '.join(SPLITS)}, got {d['split']!r}")
        samples = d["samples"]
        if not isinstance(samples, list) or not samples:
            raise LmlabError(f"{where} (id {qid}): samples must be a non-empty list")
        greedy = d.get("greedy")
        meta = d.get("meta") or {}
        if isinstance(meta, str):  # Parquet stores it as JSON text
            meta = json.loads(meta)
        feats = d.get("features") or {}
        return cls(
            id=qid, split=d["split"], domain=str(d["domain"]), prompt=str(d["prompt"]),
            samples=[Sample.from_dict(s, f"{where} (id {qid}) sample {j}") for j, s in enumerate(samples)],
            answer=None if d.get("answer") is None else str(d["answer"]),
            meta=dict(meta),
            greedy=Sample.from_dict(greedy, f"{where} (id {qid}) greedy") if greedy else None,
            features={k: v for k, v in dict(feats).items() if v is not None},
        )


class SampleTable:
    """An ordered collection of `QueryRecord`s with array views for the analysis."""

    def __init__(self, records: Iterable[QueryRecord], *, validate: bool = True):
        self.records = list(records)
        if validate:
            self.validate()

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[QueryRecord]:
        return iter(self.records)

    def validate(self) -> None:
        """One LmlabError line for duplicate ids, missing rewards or ragged sample counts."""
        seen: set[str] = set()
        for r in self.records:
            if r.id in seen:
                raise LmlabError(f"duplicate query id {r.id!r} in the sample table")
            seen.add(r.id)
            for j, s in enumerate(r.samples):
                if not math.isfinite(s.reward):
                    raise LmlabError(f"query {r.id!r} sample {j}: missing or non-finite reward")
        counts = {len(r.samples) for r in self.records}
        if len(counts) > 1:
            first = self.records[0]
            odd = next(r for r in self.records if len(r.samples) != len(first.samples))
            raise LmlabError(
                f"ragged sample counts: query {first.id!r} has {len(first.samples)} samples, "
                f"query {odd.id!r} has {len(odd.samples)}; every query needs the same N"
            )
        greedy = {r.greedy is None for r in self.records}
        if len(greedy) > 1:
            raise LmlabError("some queries have a greedy answer and some do not")

    @property
    def n_samples(self) -> int:
        """N, the number of samples per query."""
        return len(self.records[0].samples) if self.records else 0

    def subset(self, split: str | Iterable[str]) -> SampleTable:
        """The queries of one split (or several)."""
        want = {split} if isinstance(split, str) else set(split)
        return SampleTable([r for r in self.records if r.split in want], validate=False)

    def rewards(self) -> np.ndarray:
        """``(n, N)`` rewards."""
        return np.array([[s.reward for s in r.samples] for r in self.records], dtype=float)

    def costs(self) -> np.ndarray:
        """``(n, N)`` costs."""
        return np.array([[s.cost for s in r.samples] for r in self.records], dtype=float)

    def greedy_rewards(self) -> np.ndarray:
        """``(n,)`` rewards of the greedy answers (every query must have one)."""
        if any(r.greedy is None for r in self.records):
            raise LmlabError("the sample table has no greedy answers (collect with greedy=True)")
        return np.array([r.greedy.reward for r in self.records], dtype=float)  # type: ignore[union-attr]

    def feature(self, name: str) -> np.ndarray:
        """A cached feature of every query, stacked: ``(n,)`` or ``(n, d)``."""
        missing = [r.id for r in self.records if name not in r.features]
        if missing:
            raise LmlabError(f"feature {name!r} missing for query {missing[0]!r} (and {len(missing) - 1} more)")
        return np.array([r.features[name] for r in self.records], dtype=float)

    def meta(self, name: str, default: Any = None) -> list[Any]:
        return [r.meta.get(name, default) for r in self.records]


def _suffix(path: Path) -> str:
    s = path.suffix.lower()
    if s not in (".jsonl", ".parquet"):
        raise LmlabError(f"{path}: sample tables are .jsonl or .parquet files")
    return s


def write_table(table: SampleTable, path: str | os.PathLike) -> Path:
    """Write `table` atomically as JSONL or Parquet (by suffix)."""
    p = Path(path)
    if _suffix(p) == ".jsonl":
        atomic_write_text(p, "".join(json.dumps(r.to_dict()) + "\n" for r in table))
        return p
    pa = require("pyarrow", extra="parquet")
    pq = require("pyarrow.parquet", extra="parquet")
    rows = []
    for r in table:
        d = r.to_dict()
        d["meta"] = json.dumps(d["meta"])
        d["features"] = json.dumps(d["features"])
        rows.append(d)
    tmp = p.with_name(p.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    os.replace(tmp, p)
    return p


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The raw rows of a JSONL or Parquet table (a torn last JSONL line is dropped)."""
    p = Path(path)
    if not p.is_file():
        raise LmlabError(f"no sample table at {p}")
    if _suffix(p) == ".parquet":
        pq = require("pyarrow.parquet", extra="parquet")
        rows = pq.read_table(p).to_pylist()
        for d in rows:
            if isinstance(d.get("features"), str):
                d["features"] = json.loads(d["features"])
        return rows
    lines = p.read_text(encoding="utf-8").splitlines()
    rows = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if k == len(lines) - 1:
                break  # a torn last line from an interrupted collection
            raise LmlabError(f"{p}:{k + 1}: not valid JSON") from None
    return rows


def read_table(path: str | os.PathLike) -> SampleTable:
    """Read and validate a JSONL or Parquet sample table."""
    p = Path(path)
    return SampleTable([QueryRecord.from_dict(d, f"{p.name}:{k + 1}") for k, d in enumerate(read_rows(p))])
