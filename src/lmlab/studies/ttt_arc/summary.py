"""From per-task scores to metrics with 95% intervals (the claims are in `claims`).

A task is the unit. Every condition is scored at pass@1 and pass@2 (`evaluate.score_conditions`);
its accuracy gets a percentile-bootstrap interval over the tasks (`lmlab.stats.bootstrap_ci`),
and each difference between two conditions a *paired* one (`bootstrap_diff`: the same resampled
tasks on both sides, so the variation both conditions share cancels out).

Keys (dotted, general to particular): `heldout.<condition>.<pass1|pass2>.{mean,ci_lo,ci_hi,seedN}`,
`heldout.ttt_oracle.any.*`, `diff.<a>_vs_<b>.<pass1|pass2>.{mean,ci_lo,ci_hi}`,
`diff.<a>_vs_2x_<b>.*` (a - 2b: "a is at least twice b"),
`family.<family>.<condition>.<pass1|pass2>`, `family.<family>.n`, `tasks.n`, `tasks.seeds`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmlab.stats import bootstrap_ci, bootstrap_diff

__all__ = ["CONDITIONS", "DIFFS", "KS", "SCALED_DIFFS", "summarize_scores"]

# name -> what it is (the order of the figures and the table)
CONDITIONS: dict[str, str] = {
    "icl": "(a) in-context only, identity inference (all demos, given order then reversed)",
    "icl_vote": "(b) in-context, augmented inference + hierarchical voting",
    "ttt": "(c) per-task TTT, identity inference as (a)",
    "ttt_vote": "(d) per-task TTT + augmented inference + hierarchical voting",
    "notf": "ablation: TTT without transforms (leave-one-out only), identity inference",
    "notf_vote": "ablation: TTT without transforms + voting",
    "shared": "ablation: one shared adapter for all tasks, identity inference",
    "shared_vote": "ablation: one shared adapter + voting",
    "ttt_flat": "(d)'s predictions with a flat majority vote",
    "ttt_oracle": "oracle bound: any of (d)'s distinct predictions right",
    "nosim_icl": "ablation: (a) from the base pre-trained without similar tasks (singles only)",
    "nosim_icl_vote": "ablation: (b) from the base pre-trained without similar tasks",
    "nosim_ttt": "ablation: (c) from the base pre-trained without similar tasks",
    "nosim_ttt_vote": "ablation: (d) from the base pre-trained without similar tasks",
}
KS = ("pass1", "pass2")  # first attempt; either of the first two
# (a, b) pairs whose difference a - b gets a paired interval at pass@1 and pass@2
DIFFS = (
    ("ttt_vote", "icl_vote"),  # TTT's gain, both with augmented voting: like for like
    ("ttt", "icl"),  # TTT's gain, both with identity inference: like for like
    ("ttt_vote", "icl"),  # the whole pipeline against plain in-context, equal attempts
    ("ttt_vote", "ttt"),  # voting's gain with TTT
    ("icl_vote", "icl"),  # voting's gain without TTT
    ("ttt_vote", "shared_vote"), ("ttt", "shared"),  # per-task against one shared adapter
    ("ttt_vote", "notf_vote"), ("ttt", "notf"),  # the transforms in TTT
    ("ttt_vote", "ttt_flat"),  # hierarchical against flat voting
    ("ttt_vote", "nosim_ttt_vote"), ("icl", "nosim_icl"),  # pre-training on similar tasks
)
# (a, b, f): the paired interval of a - f * b ("a is at least f times b" when it lies above 0)
SCALED_DIFFS = (("ttt_vote", "icl", 2.0),)


def _put(m: dict[str, Any], key: str, value: float, lo: float, hi: float) -> None:
    m[f"{key}.mean"], m[f"{key}.ci_lo"], m[f"{key}.ci_hi"] = value, lo, hi


def summarize_scores(rows: Sequence[dict[str, Any]], n_boot: int = 2000, seed: int = 0
                     ) -> dict[str, Any]:
    """Metrics from rows `{"seed", "family", "id", "scores": {"<condition>.<k>": 0/1}}`."""
    m: dict[str, Any] = {"tasks.n": len(rows), "tasks.seeds": len({r["seed"] for r in rows})}
    if not rows:
        return m
    cols = [k for k in rows[0]["scores"] if all(k in r["scores"] for r in rows)]
    strata = np.array([r["seed"] for r in rows])
    table = {k: np.array([float(r["scores"][k]) for r in rows]) for k in cols}
    for k in cols:
        v = table[k]
        iv = bootstrap_ci(v, n_boot=n_boot, seed=seed)
        _put(m, f"heldout.{k}", iv.value, iv.lo, iv.hi)
        for s in np.unique(strata):
            m[f"heldout.{k}.seed{int(s)}"] = float(v[strata == s].mean())
    for a, b in DIFFS:
        for k in KS:
            ka, kb = f"{a}.{k}", f"{b}.{k}"
            if ka in table and kb in table:
                iv = bootstrap_diff(table[ka], table[kb], paired=True, n_boot=n_boot, seed=seed)
                _put(m, f"diff.{a}_vs_{b}.{k}", iv.value, iv.lo, iv.hi)
    for a, b, f in SCALED_DIFFS:
        for k in KS:
            ka, kb = f"{a}.{k}", f"{b}.{k}"
            if ka in table and kb in table:
                iv = bootstrap_diff(table[ka], f * table[kb], paired=True, n_boot=n_boot,
                                    seed=seed)
                _put(m, f"diff.{a}_vs_{f:g}x_{b}.{k}", iv.value, iv.lo, iv.hi)
    fams: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        fams[r["family"]].append(i)
    for fam, idx in sorted(fams.items()):
        m[f"family.{fam}.n"] = len(idx)
        for k in cols:
            m[f"family.{fam}.{k}"] = float(table[k][idx].mean())
    return m
