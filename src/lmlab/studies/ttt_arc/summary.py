"""From per-task scores to metrics with confidence intervals, and the study's computed claims.

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

from lmlab.study import Claim

__all__ = ["CONDITIONS", "bootstrap", "claims", "summarize_scores"]

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


def _get(m: dict[str, Any], key: str) -> float | None:
    v = m.get(key)
    return None if v is None or v != v else float(v)


def _interval(m: dict[str, Any], key: str) -> str | None:
    v, lo, hi = _get(m, key), _get(m, f"{key}.ci_lo"), _get(m, f"{key}.ci_hi")
    return None if v is None or lo is None or hi is None else f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def claims(m: dict[str, Any]) -> list[Claim]:
    """The paper's claims, each computed from the metrics (None: not measured by this run)."""
    out: list[Claim] = []
    n = int(m.get("n_tasks", 0))

    def diff_claim(cid: str, a: str, b: str, statement: str, paper: str, strict_ci: bool
                   ) -> Claim:
        key = f"diff.{a}-{b}"
        v, lo = _get(m, key), _get(m, f"{key}.ci_lo")
        measured = _interval(m, key)
        if v is None or lo is None:
            return Claim.untestable(cid, statement, paper, f"{a} or {b} not run")
        return Claim.check(cid, statement, paper, f"{measured} over {n} tasks",
                           lo > 0 if strict_ci else v > 0)

    out.append(diff_claim(
        "ttt-beats-icl", "ttt_vote", "icl",
        "TTT + voting (d) beats in-context only (a) on held-out tasks; the 95% CI of (d)-(a) "
        "excludes 0", "Fig. 1/Table: up to 6x the fine-tuned model's accuracy (1B); 53% with 8B",
        strict_ci=True))
    out.append(diff_claim(
        "ttt-identity-beats-icl", "ttt", "icl",
        "per-task TTT alone (c) beats in-context only (a), one identity query each; the 95% CI "
        "of (c)-(a) excludes 0", "Sec. 5: TTT is the largest single gain", strict_ci=True))
    out.append(diff_claim(
        "voting-adds", "ttt_vote", "ttt",
        "augmented inference with hierarchical voting adds to TTT: (d)-(c) > 0",
        "Sec. 6: augmented inference and voting improve over a single identity query",
        strict_ci=False))
    out.append(diff_claim(
        "voting-adds-icl", "icl_vote", "icl",
        "augmented inference with hierarchical voting helps without TTT too: (b)-(a) > 0",
        "Sec. 6", strict_ci=False))
    out.append(diff_claim(
        "ablation-shared-adapter", "ttt_vote", "shared_vote",
        "one adapter shared by all tasks is worse than per-task adapters: (d)-(shared) > 0",
        "Fig. 4 ablation: shared TTT loses accuracy against per-task TTT", strict_ci=False))
    out.append(diff_claim(
        "ablation-no-transforms", "ttt_vote", "notf_vote",
        "TTT without the transforms (leave-one-out tasks only) is worse: (d)-(no transforms) > 0",
        "Fig. 4 ablation: removing the transformations costs accuracy", strict_ci=False))
    a = _get(m, "acc.icl")
    out.append(Claim.check(
        "icl-headroom", "in-context accuracy on the held-out tasks is above 0 and below 1 "
        "(the base model is neither useless nor already perfect, so TTT has room)",
        "setup: the paper fine-tunes before TTT", None if a is None else round(a, 4),
        None if a is None else 0 < a < 1))
    return out
