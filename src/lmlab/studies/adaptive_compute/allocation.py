"""Spending a batch's sampling budget where it helps most.

Every allocator here reads a matrix of (predicted) marginal gains ``gains[i, j-1]`` = the gain
of query i's j-th sample, j = 1..B_max, and returns integer budgets ``b[i]`` in
``[b_min, b_max]``.

* `greedy_allocate` (the paper's "online": the whole batch is seen at once): maximise
  sum_i q(x_i, b_i) subject to sum_i b_i = total. Because q is concave in b (the gains are
  non-increasing in j), taking the `total - n*b_min` largest gains across the batch is optimal and
  the chosen gains always form a prefix of each query's row. Ties break deterministically: larger
  gain first, then the lower sample index j, then the lower query index i (so equal queries fill
  level by level, and a constant predictor gives the uniform allocation).
* `calibrate_threshold` / `threshold_allocate` (the paper's "offline": a rule fixed on training
  data, applied to each query alone): b(x) = clip(#{j : gain(x, j) >= lambda}, b_min, b_max),
  with lambda set so that the mean budget on the training queries is the target. The realised
  budget on new queries is whatever the rule gives; it is reported, never rescaled.
* `random_allocate`: the same total spread at random (a baseline).
* `exhaustive_allocate`: brute force over every budget vector, for tests on small instances.

Predicted gains that are not non-increasing in j (a regression head need not be) are first made
so by a running minimum along j (`monotone`), which keeps the prefix property.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = [
    "allocation_value",
    "calibrate_threshold",
    "exhaustive_allocate",
    "greedy_allocate",
    "greedy_order",
    "monotone",
    "random_allocate",
    "threshold_allocate",
]


def _check(gains: np.ndarray, b_min: int, b_max: int | None) -> tuple[np.ndarray, int]:
    g = np.asarray(gains, dtype=float)
    if g.ndim != 2:
        raise ValueError(f"gains must be a 2-D (queries, B_max) array, got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("gains must be finite")
    b_max = g.shape[1] if b_max is None else int(b_max)
    if not 0 <= b_min <= b_max <= g.shape[1]:
        raise ValueError(f"need 0 <= b_min <= b_max <= {g.shape[1]}, got b_min={b_min}, b_max={b_max}")
    return g, b_max


def monotone(gains: np.ndarray) -> np.ndarray:
    """Gains made non-increasing along j by a running minimum."""
    return np.minimum.accumulate(np.asarray(gains, dtype=float), axis=-1)


def greedy_order(gains: np.ndarray, b_min: int = 0, b_max: int | None = None) -> np.ndarray:
    """The query index of each extra sample in the order greedy grants them (after b_min each).

    Allocating the first ``t`` entries on top of ``b_min`` per query is the greedy allocation of
    total ``n*b_min + t``, for every t at once.
    """
    g, b_max = _check(gains, b_min, b_max)
    g = monotone(g)
    n = g.shape[0]
    j = np.arange(b_min, b_max)  # 0-based column of samples b_min+1 .. b_max
    cand = g[:, j]  # (n, b_max - b_min)
    rows = np.broadcast_to(np.arange(n)[:, None], cand.shape).ravel()
    cols = np.broadcast_to(j[None, :], cand.shape).ravel()
    order = np.lexsort((rows, cols, -cand.ravel()))  # last key is primary: -gain, then j, then i
    return rows[order]


def greedy_allocate(gains: np.ndarray, total: int, b_min: int = 0, b_max: int | None = None) -> np.ndarray:
    """The optimal budgets (for concave curves) with sum exactly `total`."""
    g, b_max = _check(gains, b_min, b_max)
    n = g.shape[0]
    if not n * b_min <= total <= n * b_max:
        raise ValueError(f"total budget {total} outside [{n * b_min}, {n * b_max}] for {n} queries")
    order = greedy_order(g, b_min, b_max)
    return b_min + np.bincount(order[: total - n * b_min], minlength=n)


def random_allocate(n: int, total: int, b_min: int, b_max: int, seed: int) -> np.ndarray:
    """`total` samples spread over `n` queries at random, within [b_min, b_max]."""
    if not n * b_min <= total <= n * b_max:
        raise ValueError(f"total budget {total} outside [{n * b_min}, {n * b_max}] for {n} queries")
    rng = np.random.default_rng(seed)
    slots = np.repeat(np.arange(n), b_max - b_min)  # one entry per extra sample a query may get
    pick = rng.permutation(slots.size)[: total - n * b_min]
    return b_min + np.bincount(slots[pick], minlength=n)


def threshold_allocate(gains: np.ndarray, lam: float, b_min: int = 0, b_max: int | None = None) -> np.ndarray:
    """Each query alone: b = clip(#{j : gain(j) >= lam}, b_min, b_max)."""
    g, b_max = _check(gains, b_min, b_max)
    count = (monotone(g)[:, :b_max] >= lam).sum(axis=1)
    return np.clip(count, b_min, b_max)


def calibrate_threshold(gains: np.ndarray, mean_budget: float, b_min: int = 0,
                        b_max: int | None = None) -> float:
    """The lambda whose `threshold_allocate` mean budget on these (training) gains is closest to
    `mean_budget` (ties: the larger lambda, i.e. the cheaper rule)."""
    g, b_max = _check(gains, b_min, b_max)
    g = monotone(g)[:, :b_max]
    cands = np.unique(np.concatenate([g.ravel(), [np.inf]]))[::-1]  # decreasing lambda
    # mean budget is non-decreasing along cands (smaller lambda, more samples): binary search
    lo, hi = 0, cands.size - 1

    def mean_at(k: int) -> float:
        return float(threshold_allocate(g, cands[k], b_min, b_max).mean())

    while lo < hi:
        mid = (lo + hi) // 2
        if mean_at(mid) >= mean_budget:
            hi = mid
        else:
            lo = mid + 1
    best = lo
    if lo > 0 and abs(mean_at(lo - 1) - mean_budget) <= abs(mean_at(lo) - mean_budget):
        best = lo - 1
    return float(cands[best])


def allocation_value(curves: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Per-query quality q(x_i, b_i) read off curves ``(n, B+1)``."""
    c = np.asarray(curves, dtype=float)
    return c[np.arange(c.shape[0]), np.asarray(budgets, dtype=int)]


def exhaustive_allocate(curves: np.ndarray, total: int, b_min: int = 0,
                        b_max: int | None = None) -> tuple[np.ndarray, float]:
    """Brute force: the budget vector with sum `total` maximising sum q(x_i, b_i), and that sum.
    For tests only (exponential in the number of queries)."""
    c = np.asarray(curves, dtype=float)
    n, width = c.shape
    b_max = width - 1 if b_max is None else b_max
    best, best_v = None, -np.inf
    for b in itertools.product(range(b_min, b_max + 1), repeat=n):
        if sum(b) != total:
            continue
        v = float(c[np.arange(n), b].sum())
        if v > best_v + 1e-12:
            best, best_v = np.array(b), v
    if best is None:
        raise ValueError(f"no allocation of {total} within [{b_min}, {b_max}] for {n} queries")
    return best, best_v
