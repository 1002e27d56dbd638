"""The test-time-training data of one task, built from its demonstrations alone.

For a task with N demonstrations (the paper's recipe, official `ttt/preprocess.py`):

1. **leave-one-out**: N tasks, each with one demonstration as the query and the other N-1 as
   demos (leave-two tasks, N-2 demos, are the filler of step 6);
2. each of the task-level transforms (default: the 23 of `TTT_TRANSFORMS`) is applied to every
   such task; tasks with a grid over 30x30 are dropped;
3. union with the untransformed tasks, deduplicated;
4. `permute_n` rounds: each task gets a colour permutation and a demo shuffle; the union is
   deduplicated again;
5. tasks of `max_tokens` tokens or more are dropped;
6. at most `max_tasks` (250): a seeded subsample when over, topped up with leave-two tasks when
   under.

Only `task.train` is read: the test inputs and outputs are never used (an `ArcTask`'s outputs
are behind the access guard, so a builder that touched them would fail).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lmlab.studies.ttt_arc.arc import ArcTask, Example, Grid
from lmlab.studies.ttt_arc.serialize import GridTokenizer
from lmlab.studies.ttt_arc.transforms import (
    TTT_TRANSFORMS,
    Transform,
    apply_colors,
    color_permutation,
    fits,
    shuffle_demos,
    transform_example,
)

__all__ = ["TTTItem", "build_ttt_tasks", "leave_out_tasks"]

TokenLen = Callable[[Sequence[Example], Grid, Grid], int]


@dataclass(frozen=True, eq=False)
class TTTItem:
    """One training task: demos and a query pair; `leave` demos were held out (1 or 2)."""

    demos: tuple[Example, ...]
    query: Example
    transform: str = "identity"
    colors: bool = False
    leave: int = 1

    def key(self) -> tuple:
        """Equal for items with the same grids in the same order (what deduplication uses)."""
        return tuple(e.key() for e in self.demos), self.query.key()

    def grids(self) -> list[Grid]:
        """Every grid of the item."""
        return [g for e in (*self.demos, self.query) for g in (e.input, e.output)]


def leave_out_tasks(train: Sequence[Example], n: int) -> list[TTTItem]:
    """For each demonstration i (the query), every way to drop n-1 more: N * C(N-1, n-1) tasks.

    Each keeps at least one demo; n=1 gives the N leave-one-out tasks.
    """
    N = len(train)
    if N - n < 1:
        return []
    items = []
    for i in range(N):
        others = [j for j in range(N) if j != i]
        for dropped in itertools.combinations(others, n - 1):
            demos = tuple(train[j] for j in others if j not in dropped)
            items.append(TTTItem(demos, train[i], leave=n))
    return items


def _dedupe(items: list[TTTItem]) -> list[TTTItem]:
    seen: set = set()
    out = []
    for it in items:
        k = it.key()
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


def _transformed(item: TTTItem, t: Transform) -> TTTItem | None:
    demos = tuple(transform_example(e, t) for e in item.demos)
    query = transform_example(item.query, t)
    out = TTTItem(demos, query, t.name, item.colors, item.leave)
    return out if fits(out.grids()) else None


def _recolored(item: TTTItem, rng: np.random.Generator, colors: bool) -> TTTItem:
    demos = list(item.demos)
    query = item.query
    if colors:
        perm = color_permutation(item.grids(), rng)
        demos = [Example(apply_colors(e.input, perm), apply_colors(e.output, perm)) for e in demos]
        query = Example(apply_colors(query.input, perm), apply_colors(query.output, perm))
    demos = shuffle_demos(demos, rng)
    return TTTItem(tuple(demos), query, item.transform, colors, item.leave)


def _augment(
    base: list[TTTItem],
    transforms: Sequence[Transform],
    permute_n: int,
    colors: bool,
    rng: np.random.Generator,
) -> list[TTTItem]:
    """Steps 2-4 on one list of leave-n tasks."""
    out = list(base)
    for t in transforms:
        for item in base:
            new = _transformed(item, t.bind(rng))
            if new is not None:
                out.append(new)
    out = _dedupe(out)
    extra = [_recolored(item, rng, colors) for _ in range(permute_n) for item in out]
    return _dedupe(out + extra)


def build_ttt_tasks(
    task: ArcTask | Sequence[Example],
    seed: int | np.random.Generator = 0,
    *,
    max_tasks: int = 250,
    transforms: Sequence[Transform] = TTT_TRANSFORMS,
    permute_n: int = 1,
    permute_colors: bool | None = None,
    max_tokens: int = 8192,
    token_len: TokenLen | None = None,
) -> list[TTTItem]:
    """The TTT training tasks of one ARC task (see the module docstring), deterministic per seed.

    `task` is an `ArcTask` (only its `train` is read) or its demonstrations. `permute_colors`
    defaults to "when there are transforms" (as in the official code: the no-transform ablation
    has no colour permutation either). `token_len(demos, query_input, query_output)` measures a
    task; the default counts `GridTokenizer` tokens. Returns no items for a single demonstration.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    train = list(task.train) if isinstance(task, ArcTask) else list(task)
    colors = bool(transforms) if permute_colors is None else permute_colors
    measure = token_len or GridTokenizer().count

    def short(it: TTTItem) -> bool:
        return measure(it.demos, it.query.input, it.query.output) < max_tokens

    leave1 = _sample(_augment(leave_out_tasks(train, 1), transforms, permute_n, colors, rng),
                     max_tasks, short, rng)
    if len(leave1) == max_tasks:
        return leave1
    leave2 = _augment(leave_out_tasks(train, 2), transforms, permute_n, colors, rng)
    return leave1 + _sample(leave2, max_tasks - len(leave1), short, rng)


def _sample(
    items: list[TTTItem], k: int, keep: Callable[[TTTItem], bool], rng: np.random.Generator
) -> list[TTTItem]:
    """A uniformly random subset of min(k, #kept) of the items that pass `keep`, in list order.

    Items are tested in a random order until k pass, so an expensive `keep` (a tokenizer) runs
    on few more items than are kept; the result is the same distribution as filtering first.
    """
    picked = []
    for i in rng.permutation(len(items)):
        if len(picked) == k:
            break
        if keep(items[i]):
            picked.append(int(i))
    return [items[i] for i in sorted(picked)]
