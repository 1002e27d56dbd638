"""Voting over augmented predictions: the paper's hierarchical vote, and a flat majority.

Predictions come as `(grid, group)` pairs: the grid already mapped back to the task's frame, the
group the name of the query's transform ("identity", "transpose", ...). None grids
(unparseable outputs) are dropped.

**Hierarchical** (official `arclib/voting.py`):

1. in each transform group and in the pooled group "all", take the 3 most frequent grids; when
   there are fewer than 3 distinct, the missing places go to the row-wise majority grid (the
   most common shape; per row, the most common row of that width) or, if that is already
   taken, the column-wise majority grid. The 3 places are always filled, so a unanimous group
   votes 3 times for its grid;
2. all the groups' candidates are pooled and ranked the same way; the top 2 are the attempts.
   When the 2nd and 3rd tie in count, the one the identity group predicted more often takes
   2nd place.

Deterministic: count ties go to the grid seen first (in prediction order, groups in the order
"all", "identity", then `GROUP_ORDER`, then the others by name). Where the official code, on a
tie in identity counts too, lets the 3rd replace the 2nd, lmlab keeps the 2nd; and it returns
one attempt instead of two copies when only one grid was ever predicted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from lmlab.studies.ttt_arc.arc import Grid, as_grid

__all__ = ["GROUP_ORDER", "col_majority", "flat_vote", "hierarchical_vote", "row_majority", "top3"]

GROUP_ORDER = ("identity", "transpose", "flipud", "fliplr", "rot180", "rot90", "rot270")

Key = tuple[tuple[int, ...], ...]  # a grid as a tuple of row tuples (hashable, ordered)


def _key(grid: Grid) -> Key:
    return tuple(tuple(int(v) for v in row) for row in np.asarray(grid))


def _ranked(keys: Sequence[Key]) -> list[Key]:
    """Distinct keys by count, ties by first appearance (Counter keeps insertion order)."""
    counts = Counter(keys)
    return sorted(counts, key=lambda k: -counts[k])  # sorted() is stable


def row_majority(grids: Sequence[Grid]) -> Grid:
    """The most common shape; row by row, the most common row among grids of that width."""
    return as_grid(_row_majority([_key(g) for g in grids]))


def col_majority(grids: Sequence[Grid]) -> Grid:
    """`row_majority` of the transposed grids, transposed back."""
    return as_grid(_col_majority([_key(g) for g in grids]))


def _row_majority(keys: Sequence[Key]) -> Key:
    shapes = [(len(k), len(k[0])) for k in keys]
    h, w = _ranked(shapes)[0]
    rows = []
    for r in range(h):
        candidates = [k[r] for k in keys if len(k) > r and len(k[r]) == w]
        rows.append(_ranked(candidates)[0])
    return tuple(rows)


def _col_majority(keys: Sequence[Key]) -> Key:
    transposed = [tuple(zip(*k, strict=True)) for k in keys]
    return tuple(zip(*_row_majority(transposed), strict=True))


def _top3(keys: Sequence[Key]) -> list[Key]:
    """The 3 places of one group (see the module docstring); [] for no keys."""
    if not keys:
        return []
    ranked = _ranked(keys)
    first = ranked[0]
    second = ranked[1] if len(ranked) > 1 else None
    third = ranked[2] if len(ranked) > 2 else None
    row, col = _row_majority(keys), _col_majority(keys)
    if second is None:
        second = row if row != first else col
    if third is None or third in (first, second):
        third = row if row not in (first, second) else col
    return [first, second, third]


def top3(grids: Sequence[Grid]) -> list[Grid]:
    """One group's 3 candidates (with the row/column majority fallbacks)."""
    return [as_grid(k) for k in _top3([_key(g) for g in grids])]


def _groups(predictions: Iterable[tuple[Grid | None, str]]) -> dict[str, list[Key]]:
    by: dict[str, list[Key]] = {}
    pooled: list[Key] = []
    for grid, group in predictions:
        if grid is None:
            continue
        k = _key(grid)
        by.setdefault(group, []).append(k)
        pooled.append(k)
    order = sorted(by, key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else 99, g))
    return {"all": pooled, **{g: by[g] for g in order}} if pooled else {}


def hierarchical_vote(predictions: Iterable[tuple[Grid | None, str]]) -> list[Grid]:
    """Up to 2 attempts by the paper's two-level vote (module docstring)."""
    groups = _groups(predictions)
    if not groups:
        return []
    candidates = [k for keys in groups.values() for k in _top3(keys)]
    c1, c2, c3 = _top3(candidates)
    counts = Counter(candidates)
    if c3 != c2 and counts[c2] == counts[c3]:
        identity = groups.get("identity", [])
        if identity.count(c3) > identity.count(c2):
            c2 = c3
    attempts = [c1] if c2 == c1 else [c1, c2]
    return [as_grid(k) for k in attempts]


def flat_vote(predictions: Iterable[tuple[Grid | None, str] | Grid | None]) -> list[Grid]:
    """Up to 2 attempts: the most frequent grids (ties: first seen), ignoring groups."""
    keys = []
    for p in predictions:
        grid = p[0] if isinstance(p, tuple) else p
        if grid is not None:
            keys.append(_key(grid))
    return [as_grid(k) for k in _ranked(keys)[:2]]
