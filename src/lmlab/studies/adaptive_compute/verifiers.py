"""Rewards for sampled answers: exact-match verifiers, code tests, and reward models.

Every scorer is a callable ``(query, texts) -> list[float]``:

* `exact_match`: 1.0 when the answer's number equals the reference (arithmetic and GSM8K-style
  word problems: the number after ``####`` if present, else the last number in the text; commas
  and a trailing ``.0`` ignored).
* `CodeTests`: HumanEval-style problems (``meta`` holds ``test`` and ``entry_point``); the prompt
  plus the completion plus the tests run as one program in `lmlab.sandbox.run_program` (a limited
  child process, whitelisted imports, no files, no network, a time limit); 1.0 if they pass.
* `RewardModel`: wraps a reward model in TRL's convention, a callable ``list[str] -> list[float]``
  scoring prompt-plus-answer strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from lmlab.sandbox import run_program
from lmlab.studies.adaptive_compute.queries import Query

__all__ = ["CodeTests", "RewardModel", "Scorer", "exact_match", "extract_number", "scorer_for"]

_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


class Scorer(Protocol):
    def __call__(self, query: Query, texts: list[str]) -> list[float]: ...


def _canonical(s: str) -> str | None:
    s = s.replace(",", "").strip()
    try:
        x = float(s)
    except ValueError:
        return None
    return str(int(x)) if x == int(x) else repr(x)


def extract_number(text: str) -> str | None:
    """The answer's number: after ``####`` when present, else the last number; None if none."""
    if "####" in text:
        text = text.split("####")[-1]
    nums = _NUM.findall(text)
    return _canonical(nums[-1]) if nums else None


def exact_match(query: Query, texts: list[str]) -> list[float]:
    """1.0 where the extracted number equals the reference answer."""
    ref = _canonical(query.answer)
    return [float(ref is not None and extract_number(t) == ref) for t in texts]


_FENCE = re.compile(r"```(?:python)?\n(.*?)```", re.S)


class CodeTests:
    """HumanEval-style check: run prompt + completion + the problem's tests in the sandbox."""

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512):
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb

    def program(self, query: Query, text: str) -> str:
        m = _FENCE.search(text)
        body = m.group(1) if m else query.prompt + text
        entry = query.meta["entry_point"]
        return f"{body}\n\n{query.meta['test']}\n\ncheck({entry})\n"

    def __call__(self, query: Query, texts: list[str]) -> list[float]:
        return [float(run_program(self.program(query, t), timeout_s=self.timeout_s, memory_mb=self.memory_mb).ok)
                for t in texts]


class RewardModel:
    """A reward model ``list[str] -> list[float]`` (TRL's convention) scoring prompt + answer."""

    def __init__(self, fn: Callable[[list[str]], list[float]], join: str = "\n"):
        self.fn = fn
        self.join = join

    def __call__(self, query: Query, texts: list[str]) -> list[float]:
        scores = list(self.fn([query.prompt + self.join + t for t in texts]))
        if len(scores) != len(texts):
            raise ValueError(f"reward model returned {len(scores)} scores for {len(texts)} texts")
        return [float(s) for s in scores]


def scorer_for(domain: str) -> Scorer:
    """The default scorer of a domain (exact match for arithmetic and word problems, tests for code)."""
    if domain in ("arithmetic", "word", "gsm8k", "math"):
        return exact_match
    if domain == "code":
        return CodeTests()
    raise ValueError(f"no default scorer for domain {domain!r}; pass a RewardModel")
