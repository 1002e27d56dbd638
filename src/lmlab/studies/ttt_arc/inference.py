"""Augmented inference queries for one test input, and mapping predictions back.

Per test input (official `inference/preprocess.py`, `include_n=[1]`, `permute_n=2`):

1. the N leave-one-out demo subsets (N-1 demos each; all demos when N=1);
2. each subset as given plus `n_orderings` random reorderings, deduplicated;
3. each non-identity transform of `transforms` (default: transpose, flip-ud, flip-lr, rot90,
   rot180) applied to the demos and test input of one randomly chosen variant from step 2;
   a transformed query equal to an existing one is skipped;
4. queries of `max_tokens` tokens or more are dropped; when none is left, subsets with one
   more demo left out are added (the official fallback).

A prediction for a transformed query is mapped back with `invert(prediction, query.transform)`.
Only the test *input* is read; the test output stays sealed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lmlab.errors import LmlabError
from lmlab.studies.ttt_arc.arc import ArcTask, Example, Grid, grid_key
from lmlab.studies.ttt_arc.serialize import GridTokenizer
from lmlab.studies.ttt_arc.transforms import (
    IDENTITY,
    INFERENCE_TRANSFORMS,
    Transform,
    shuffle_demos,
    transform_example,
)

__all__ = ["Query", "build_queries", "invert"]


@dataclass(frozen=True, eq=False)
class Query:
    """One inference query: demos and a test input, in the frame of `transform`."""

    demos: tuple[Example, ...]
    test_input: Grid
    transform: Transform = IDENTITY

    def key(self) -> tuple:
        """Equal for queries with the same grids in the same order."""
        return tuple(e.key() for e in self.demos), grid_key(self.test_input)


def invert(prediction: Grid | None, transform: Transform) -> Grid | None:
    """A prediction mapped back to the task's frame (None stays None)."""
    return None if prediction is None else transform.inverse(prediction)


def _variants(
    train: Sequence[Example], leave: int, n_orderings: int, rng: np.random.Generator
) -> list[tuple[Example, ...]]:
    N = len(train)
    leave = min(leave, N - 1)
    out = []
    for dropped in itertools.combinations(range(N), leave):
        subset = tuple(train[j] for j in range(N) if j not in dropped)
        out.append(subset)
        out.extend(tuple(shuffle_demos(subset, rng)) for _ in range(n_orderings))
    return out


def _dedupe(queries: list[Query]) -> list[Query]:
    seen: set = set()
    out = []
    for q in queries:
        if q.key() not in seen:
            seen.add(q.key())
            out.append(q)
    return out


def _queries(
    train: Sequence[Example],
    x: Grid,
    leave: int,
    n_orderings: int,
    transforms: Sequence[Transform],
    rng: np.random.Generator,
) -> list[Query]:
    base = _dedupe([Query(d, x) for d in _variants(train, leave, n_orderings, rng)])
    seen = {q.key() for q in base}
    extra = []
    for t in transforms:
        if t.name == IDENTITY.name:
            continue
        pick = base[int(rng.integers(len(base)))]
        q = Query(tuple(transform_example(e, t) for e in pick.demos), t.apply(x), t)
        if q.key() not in seen:
            seen.add(q.key())
            extra.append(q)
    return (base if any(t.name == IDENTITY.name for t in transforms) else []) + extra


def build_queries(
    task: ArcTask,
    test_index: int = 0,
    rng: int | np.random.Generator = 0,
    n_orderings: int = 2,
    transforms: Sequence[Transform] = INFERENCE_TRANSFORMS,
    *,
    leave: int = 1,
    max_tokens: int | None = None,
    token_len: Callable[[Sequence[Example], Grid], int] | None = None,
) -> list[Query]:
    """The augmented queries for test input `test_index` of `task` (module docstring).

    Leaving identity out of `transforms` keeps only the transformed queries. `token_len(demos,
    test_input)` measures a query (default: `GridTokenizer` tokens); with `max_tokens`, longer
    queries are dropped, and if none is left one more demo is left out.
    """
    if not 0 <= test_index < len(task.test_inputs):
        raise LmlabError(f"task {task.id} has no test input {test_index}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    x = task.test_inputs[test_index]
    measure = token_len or GridTokenizer().count
    n_train = len(task.train)
    while True:
        qs = _queries(task.train, x, leave, n_orderings, transforms, rng)
        if max_tokens is not None:
            qs = [q for q in qs if measure(q.demos, q.test_input) < max_tokens]
        if qs or leave >= n_train - 1:
            return qs
        leave += 1
