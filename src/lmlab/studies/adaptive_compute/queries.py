"""Generated queries of graded difficulty: arithmetic and short word problems.

Eight arithmetic levels, from one-digit addition to three-digit multiplication, and four word-
problem levels (GSM8K-style, with the answer after ``####`` accepted): the kind ``word-Kstep``
has K sentences of facts, i.e. K-1 operations after the opening count (``word-1step`` asks for
the count just stated, which a small model tends to "update": a trick question, not the easiest). Every
query is determined by (seed, index): the same seed gives the same queries on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmlab.seeding import derive

__all__ = ["ARITHMETIC_LEVELS", "WORD_LEVELS", "Query", "arithmetic_query", "make_queries", "word_query"]

# (name, operator, digits of a, digits of b)
ARITHMETIC_LEVELS: tuple[tuple[str, str, int, int], ...] = (
    ("add-1x1", "+", 1, 1),
    ("add-2x2", "+", 2, 2),
    ("add-3x3", "+", 3, 3),
    ("mul-1x1", "*", 1, 1),
    ("mul-2x1", "*", 2, 1),
    ("mul-2x2", "*", 2, 2),
    ("mul-3x2", "*", 3, 2),
    ("mul-3x3", "*", 3, 3),
)
WORD_LEVELS = 4
INSTRUCTION = "Answer with just the final number."


@dataclass(frozen=True)
class Query:
    """One question: its id, domain, prompt, reference answer and metadata (difficulty level...)."""

    id: str
    domain: str
    prompt: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


def _number(rng: np.random.Generator, digits: int) -> int:
    lo = 0 if digits == 1 else 10 ** (digits - 1)
    return int(rng.integers(max(lo, 1 if digits > 1 else 0), 10**digits))


def arithmetic_query(level: int, rng: np.random.Generator, qid: str) -> Query:
    """One arithmetic question at `level` (0..7, see ARITHMETIC_LEVELS)."""
    name, op, da, db = ARITHMETIC_LEVELS[level]
    a, b = _number(rng, da), _number(rng, db)
    ans = a + b if op == "+" else a * b
    return Query(qid, "arithmetic", f"What is {a} {op} {b}? {INSTRUCTION}", str(ans),
                 {"level": level, "kind": name})


_ITEMS = ("apples", "books", "coins", "marbles", "stickers", "pencils")
_NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana")


def word_query(level: int, rng: np.random.Generator, qid: str) -> Query:
    """A word problem with `level` operations after the opening count (level 0..3); numbers grow
    with the level."""
    name = _NAMES[int(rng.integers(len(_NAMES)))]
    item = _ITEMS[int(rng.integers(len(_ITEMS)))]
    hi = (10, 20, 50, 100)[level]
    total = int(rng.integers(2, hi))
    text = [f"{name} has {total} {item}."]
    for step in range(level):
        kind = ("buy", "give", "boxes")[int(rng.integers(3))] if step else "buy"
        if kind == "buy":
            k = int(rng.integers(2, hi))
            text.append(f"Then {name} buys {k} more {item}.")
            total += k
        elif kind == "give" and total > 1:
            k = int(rng.integers(1, total))
            text.append(f"Then {name} gives {k} {item} to a friend.")
            total -= k
        else:
            k, m = int(rng.integers(2, 6)), int(rng.integers(2, 10))
            text.append(f"Then {name} gets {k} boxes with {m} {item} in each box.")
            total += k * m
    text.append(f"How many {item} does {name} have now? {INSTRUCTION}")
    return Query(qid, "word", " ".join(text), str(total), {"level": level, "kind": f"word-{level + 1}step"})


def make_queries(n: int, seed: int, domains: tuple[str, ...] = ("arithmetic", "word")) -> list[Query]:
    """`n` queries cycling through the domains and their levels (balanced difficulty)."""
    cells = [(d, lv) for d in domains
             for lv in range(len(ARITHMETIC_LEVELS) if d == "arithmetic" else WORD_LEVELS)]
    out = []
    for i in range(n):
        domain, level = cells[i % len(cells)]
        rng = np.random.default_rng(derive(seed, "query", i))
        qid = f"{domain[:5]}-{i:05d}"
        make = arithmetic_query if domain == "arithmetic" else word_query
        out.append(make(level, rng, qid))
    return out
