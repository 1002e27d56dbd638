"""Quality against average budget, and the two headline numbers read off the curves.

Each method is judged on the same held-out queries, with the same exact per-query curves
``true[i, b]`` = E[max of b of query i's N collected samples] (`labels.expected_max_curve`), so
no sampling noise enters the comparison:

* `greedy_curve`: a predictor's gains ordered greedily; the quality at every total budget
  n*b_min .. n*b_max at once (the paper's "online" allocation).
* `uniform_curve`: best-of-k for every query, k = b_min..b_max (linear between integers: a
  fraction of the queries get k+1, in expectation over which).
* `threshold_points`: per-query thresholds calibrated on training queries (the paper's
  "offline"), at their realised test budgets.
* `savings`: 1 - B_adaptive / k, where B_adaptive is the average budget at which the adaptive
  curve first reaches uniform best-of-k's quality (the horizontal gap, linearly interpolated).
* `quality_gain`: adaptive minus uniform quality at a fixed average budget (the vertical gap).
* `bootstrap_savings`: a percentile interval over queries (the allocation is recomputed on each
  resample, since the batch changes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lmlab.stats import Interval, bootstrap_ci
from lmlab.studies.adaptive_compute.allocation import (
    calibrate_threshold,
    greedy_order,
    threshold_allocate,
)

__all__ = [
    "Curve",
    "bootstrap_savings",
    "budget_to_reach",
    "greedy_curve",
    "quality_gain",
    "savings",
    "threshold_points",
    "uniform_curve",
]


@dataclass(frozen=True)
class Curve:
    """Mean quality (`quality`) at each average budget per query (`budget`), increasing budget."""

    name: str
    budget: np.ndarray
    quality: np.ndarray

    def at(self, b: float) -> float:
        """Quality at average budget `b` (linear interpolation; NaN outside the curve)."""
        if b < self.budget[0] - 1e-12 or b > self.budget[-1] + 1e-12:
            return math.nan
        return float(np.interp(b, self.budget, self.quality))


def _cumcount(a: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries have the same value."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    first = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    starts = np.repeat(first, np.diff(np.r_[first, s.size]))
    out = np.empty_like(a)
    out[order] = np.arange(s.size) - starts
    return out


def greedy_curve(name: str, gains: np.ndarray, true: np.ndarray, b_min: int, b_max: int) -> Curve:
    """Quality of greedy allocation by `gains` (n, >= b_max), judged by `true` (n, >= b_max+1)."""
    t = np.asarray(true, dtype=float)
    n = t.shape[0]
    order = greedy_order(gains, b_min, b_max)
    j = b_min + _cumcount(order)  # the granted sample is query order[k]'s (j+1)-th
    gained = t[order, j + 1] - t[order, j]
    total = t[:, b_min].sum() + np.r_[0.0, np.cumsum(gained)]
    budget = (n * b_min + np.arange(total.size)) / n
    return Curve(name, budget, total / n)


def uniform_curve(true: np.ndarray, b_min: int, b_max: int, name: str = "uniform") -> Curve:
    """Best-of-k for every query, k = b_min..b_max."""
    t = np.asarray(true, dtype=float)
    ks = np.arange(b_min, b_max + 1)
    return Curve(name, ks.astype(float), t[:, ks].mean(axis=0))


def threshold_points(name: str, train_gains: np.ndarray, test_gains: np.ndarray, true: np.ndarray,
                     targets: np.ndarray, b_min: int, b_max: int) -> Curve:
    """Per-query thresholds calibrated on training gains for each target mean budget, applied to
    the test queries: their realised mean budget (sorted) and quality."""
    t = np.asarray(true, dtype=float)
    pts = []
    for target in targets:
        lam = calibrate_threshold(train_gains, float(target), b_min, b_max)
        b = threshold_allocate(test_gains, lam, b_min, b_max)
        pts.append((b.mean(), t[np.arange(t.shape[0]), b].mean()))
    pts.sort()
    return Curve(name, np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))


def budget_to_reach(curve: Curve, target: float, tol: float = 1e-12) -> float:
    """The smallest average budget at which `curve` (piecewise linear) reaches `target`; NaN if
    it never does."""
    y, x = curve.quality, curve.budget
    hit = np.flatnonzero(y >= target - tol)
    if hit.size == 0:
        return math.nan
    k = int(hit[0])
    if k == 0 or y[k] == y[k - 1]:
        return float(x[k])
    return float(x[k - 1] + (target - y[k - 1]) * (x[k] - x[k - 1]) / (y[k] - y[k - 1]))


def savings(adaptive: Curve, uniform: Curve, k: int) -> float:
    """Compute saved at uniform best-of-k's quality: 1 - B_adaptive / k (NaN if never reached)."""
    b = budget_to_reach(adaptive, uniform.at(k))
    return 1.0 - b / k if math.isfinite(b) else math.nan


def quality_gain(adaptive: Curve, uniform: Curve, budget: float) -> float:
    """Adaptive minus uniform quality at the same average budget."""
    return adaptive.at(budget) - uniform.at(budget)


def bootstrap_savings(gains: np.ndarray, true: np.ndarray, k: int, b_min: int, b_max: int, *,
                      n_boot: int = 1000, seed: int = 0,
                      stat: Callable[[Curve, Curve], float] | None = None) -> Interval:
    """Percentile interval over queries of `savings` at best-of-k (or of `stat(adaptive,
    uniform)`), re-allocating greedily on each resample."""
    g, t = np.asarray(gains, dtype=float), np.asarray(true, dtype=float)
    stat = stat or (lambda a, u: savings(a, u, k))

    def one(idx: np.ndarray) -> float:
        i = idx[:, 0].astype(int)
        return stat(greedy_curve("a", g[i], t[i], b_min, b_max), uniform_curve(t[i], b_min, b_max))

    iv = bootstrap_ci(np.arange(t.shape[0])[:, None], one, n_boot=n_boot, seed=seed)
    return iv
