"""From per-task scores to metrics with confidence intervals (the claims are in `claims`).

Intervals: a task is the unit. Each condition's accuracy gets a 95% percentile-bootstrap
interval that resamples tasks within each seed (stratified by seed, `n_boot` resamples); each
difference between two conditions gets a *paired* bootstrap interval (the same resampled tasks
on both sides), so the task-to-task variation both conditions share cancels out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CONDITIONS", "bootstrap", "summarize_scores"]

# name -> what it is (the order of the figures and the table)
CONDITIONS: dict[str, str] = {
    "icl": "(a) in-context only, one identity query",
    "icl_vote": "(b) augmented inference + hierarchical voting",
    "ttt": "(c) per-task TTT, one identity query",
    "ttt_vote": "(d) per-task TTT + augmented inference + hierarchical voting",
    "notf": "ablation: TTT without transforms (leave-one-out only), identity query",
    "notf_vote": "ablation: TTT without transforms + voting",
    "shared": "ablation: one shared adapter for all tasks, identity query",
    "shared_vote": "ablation: one shared adapter + voting",
    "ttt_flat": "(d)'s predictions with a flat majority vote",
    "ttt_oracle": "oracle bound: any of (d)'s predictions right",
}
DIFFS = (("ttt_vote", "icl"), ("ttt", "icl"), ("ttt_vote", "ttt"), ("icl_vote", "icl"),
         ("ttt_vote", "shared_vote"), ("ttt_vote", "notf_vote"), ("ttt", "shared"),
         ("ttt", "notf"), ("ttt_vote", "ttt_flat"))


def bootstrap(values: np.ndarray, strata: np.ndarray, n_boot: int, seed: int
              ) -> tuple[float, float]:
    """95% percentile interval of the mean of `values`, resampling within each stratum."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    means = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g)) for g in groups])
        means[b] = values[idx].mean()
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def summarize_scores(rows: Sequence[dict[str, Any]], n_boot: int = 2000, seed: int = 0
                     ) -> dict[str, Any]:
    """Metrics from rows `{"seed", "family", "id", "scores": {condition: 0/1}}`."""
    m: dict[str, Any] = {"n_tasks": len(rows), "n_seeds": len({r["seed"] for r in rows})}
    if not rows:
        return m
    conds = [c for c in CONDITIONS if all(c in r["scores"] for r in rows)]
    strata = np.array([r["seed"] for r in rows])
    table = {c: np.array([float(r["scores"][c]) for r in rows]) for c in conds}
    for c in conds:
        v = table[c]
        lo, hi = bootstrap(v, strata, n_boot, seed)
        m[f"acc.{c}"], m[f"acc.{c}.ci_lo"], m[f"acc.{c}.ci_hi"] = float(v.mean()), lo, hi
        for s in np.unique(strata):
            m[f"acc.{c}.seed{int(s)}"] = float(v[strata == s].mean())
    for a, b in DIFFS:
        if a in table and b in table:
            d = table[a] - table[b]
            lo, hi = bootstrap(d, strata, n_boot, seed)
            m[f"diff.{a}-{b}"], m[f"diff.{a}-{b}.ci_lo"], m[f"diff.{a}-{b}.ci_hi"] = (
                float(d.mean()), lo, hi)
    fams: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        fams[r["family"]].append(i)
    for fam, idx in sorted(fams.items()):
        m[f"family.{fam}.n"] = len(idx)
        for c in conds:
            m[f"family.{fam}.{c}"] = float(table[c][idx].mean())
    return m
