"""The state-tracking study's claims (the paper's findings) and checks (preconditions).

Only converged models (worst position within T >= accuracy_target on the test stories) enter
the claims; the others are counted (`mechanism.all.n_excluded`). A difference between groups of
models holds only when its 95% bootstrap interval excludes 0, and only with at least
`MIN_MODELS` models per group: below that a percentile bootstrap degenerates (two models of one
label against two of the other give a zero-width interval, where Fisher's exact test gives
p = 1/3). A single model's parity past its cutoff is set against chance with its own 95%
interval over the test stories (`paa-parity-above-chance`), which needs no group of models.
"""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.studies.state_tracking.config import StateTrackingConfig
from lmlab.studies.state_tracking.evaluation import CUTOFF
from lmlab.study import Check, Claim

__all__ = ["MIN_MODELS", "checks", "claims"]

MIN_MODELS = 4  # converged models per compared group before a bootstrap interval is trusted
CHANCE_PARITY = 0.5  # the parity accuracy of a guess


def _n(metrics: dict[str, Any], key: str) -> int:
    return int(get_metric(metrics, key, 0.0) or 0)


def _aa_or_paa(metrics: dict[str, Any]) -> Claim:
    cid, stmt = "aa-or-paa", ("every converged model shows the AA or the PAA signature (each "
                              "detected from its own probe and patching profile)")
    rule = "no converged model is neither; none hangs on a threshold"
    n = _n(metrics, "mechanism.all.n_converged")
    n_aa, n_paa = _n(metrics, "mechanism.all.n_AA"), _n(metrics, "mechanism.all.n_PAA")
    n_nei, n_amb = _n(metrics, "mechanism.all.n_neither"), _n(metrics, "mechanism.all.n_ambiguous")
    excl = _n(metrics, "mechanism.all.n_excluded")
    measured = (f"{n_aa} AA, {n_paa} PAA, {n_nei} neither, {n_amb} ambiguous of {n} converged"
                f" ({excl} excluded)")
    if not n:
        return Claim.untestable(cid, stmt, rule, f"no converged model ({excl} excluded)")
    if n_nei:
        return Claim.check(cid, stmt, rule, measured, False)
    if n_amb:
        return Claim.untestable(cid, stmt, rule, measured + ": a threshold decides")
    return Claim.check(cid, stmt, rule, measured, n_aa + n_paa == n)


def _both_mechanisms(metrics: dict[str, Any]) -> Claim:
    cid = "both-mechanisms"
    stmt = "both mechanisms appear: at least one AA and one PAA model among the converged models"
    rule = "n_AA >= 1 and n_PAA >= 1 among the converged models (ambiguous labels count for neither)"
    n = _n(metrics, "mechanism.all.n_converged")
    n_aa, n_paa = _n(metrics, "mechanism.all.n_AA"), _n(metrics, "mechanism.all.n_PAA")
    n_amb = _n(metrics, "mechanism.all.n_ambiguous")
    measured = f"{n_aa} AA, {n_paa} PAA ({n_amb} ambiguous) of {n} converged"
    if n < 2:
        return Claim.untestable(cid, stmt, rule, f"{measured}: two converged models needed")
    return Claim.check(cid, stmt, rule, measured, n_aa >= 1 and n_paa >= 1)


def _aa_generalizes(metrics: dict[str, Any]) -> Claim:
    cid = "aa-generalizes-further"
    stmt = "AA models generalize to longer inputs than PAA models"
    rule = (f"AA - PAA state cutoff > 0 with its 95% interval above 0 (>= {MIN_MODELS} "
            "converged models each)")
    n_aa, n_paa = _n(metrics, "mechanism.all.n_AA"), _n(metrics, "mechanism.all.n_PAA")
    if min(n_aa, n_paa) < MIN_MODELS:
        return Claim.untestable(cid, stmt, rule, f"{n_aa} AA and {n_paa} PAA converged models "
                                f"(>= {MIN_MODELS} of each needed for an interval)")
    d = get_metric(metrics, "cutoff.aa_minus_paa.diff")
    lo, hi = (get_metric(metrics, f"cutoff.aa_minus_paa.ci_{s}") for s in ("lo", "hi"))
    if d is None or lo is None or hi is None:
        return Claim.untestable(cid, stmt, rule, "no cutoff difference recorded")
    return Claim.check(cid, stmt, rule, f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]", lo > 0)


def _no_paa_cutoff(metrics: dict[str, Any]) -> str:
    """Why no PAA model's parity past its cutoff was measured."""
    return ("no converged PAA model" if not _n(metrics, "mechanism.all.n_PAA")
            else "no PAA model with a cutoff inside the evaluated lengths")


def _paa_keeps_parity(metrics: dict[str, Any]) -> Claim:
    cid = "paa-keeps-parity"
    stmt = "past its cutoff every PAA model still predicts the right parity"
    rule = f"parity accuracy past the cutoff >= {CUTOFF} for every converged PAA model"
    worst = get_metric(metrics, "parity_past_cutoff.PAA.min")
    if worst is None:
        return Claim.untestable(cid, stmt, rule, _no_paa_cutoff(metrics))
    mean = get_metric(metrics, "parity_past_cutoff.PAA.mean")
    return Claim.check(cid, stmt, rule, f"min {worst:.4f} (mean {mean:.4f})", worst >= CUTOFF)


def _paa_parity_above_chance(metrics: dict[str, Any]) -> Claim:
    cid = "paa-parity-above-chance"
    stmt = "past its cutoff a PAA model still predicts the parity of the state above chance"
    rule = (f"for every converged PAA model the 95% interval (bootstrap over its test stories) of "
            f"its parity accuracy past its state cutoff lies above chance, {CHANCE_PARITY}")
    lo = get_metric(metrics, "parity_past_cutoff.PAA.ci_lo_min")
    if lo is None:
        return Claim.untestable(cid, stmt, rule, _no_paa_cutoff(metrics))
    n = _n(metrics, "parity_past_cutoff.PAA.n")
    mean = get_metric(metrics, "parity_past_cutoff.PAA.mean")
    worst = get_metric(metrics, "parity_past_cutoff.PAA.min")
    hi = get_metric(metrics, "parity_past_cutoff.PAA.ci_hi_max")
    measured = (f"{n} PAA model(s): mean {mean:.4f}, worst {worst:.4f}; lowest lower bound "
                f"{lo:.4f} (highest upper bound {hi:.4f})")
    return Claim.check(cid, stmt, rule, measured, lo > CHANCE_PARITY)


def _shift(config: StateTrackingConfig, metrics: dict[str, Any]) -> Claim:
    cid, stmt = "intermediate-tasks-shift", "intermediate tasks shift the AA/PAA mix"
    conds = list(config.conditions)
    ref = "none" if "none" in conds else (conds[0] if conds else "none")
    others = [c for c in conds if c != ref]
    level = 1 - 0.05 / max(1, len(others))
    rule = (f"the PAA fraction of some condition differs from {ref!r}: its bootstrap interval "
            f"({level:.1%}, Bonferroni over {len(others)}) excludes 0, >= {MIN_MODELS} "
            "converged models per condition")
    if not others:
        return Claim.untestable(cid, stmt, rule,
                                "this preset trains one condition; set conditions=none,parity,ntp")
    parts, tested, holds = [], 0, False
    for c in [ref, *others]:
        n = _n(metrics, f"mechanism.{c}.n_converged")
        frac = get_metric(metrics, f"mechanism.{c}.paa_frac")
        excl = _n(metrics, f"mechanism.{c}.n_excluded")
        parts.append(f"{c}: " + ("no converged model" if frac is None else f"{frac:.2f} PAA of {n}")
                     + (f" ({excl} excluded)" if excl else ""))
    for c in others:
        key = f"shift.{c}_vs_{ref}"
        d, lo, hi = (get_metric(metrics, f"{key}.{s}") for s in ("diff", "ci_lo", "ci_hi"))
        if d is None or lo is None or hi is None:
            continue
        tested += 1
        parts.append(f"{c} - {ref} {d:+.2f} [{lo:+.2f}, {hi:+.2f}]")
        holds = holds or lo > 0 or hi < 0
    measured = "; ".join(parts)
    if not tested:
        return Claim.untestable(cid, stmt, rule, f"too few converged models: {measured}")
    return Claim.check(cid, stmt, rule, measured, holds)


def claims(config: StateTrackingConfig, metrics: dict[str, Any]) -> list[Claim]:
    """The paper's findings, each computed from the metrics (None: this run cannot test it)."""
    return [_aa_or_paa(metrics), _both_mechanisms(metrics), _aa_generalizes(metrics),
            _paa_keeps_parity(metrics), _paa_parity_above_chance(metrics),
            _shift(config, metrics)]


def checks(config: StateTrackingConfig, metrics: dict[str, Any]) -> list[Check]:
    """Preconditions of the analysis: every model learned the task within T; the stories that
    stop training early never overlap the stories the accuracy is reported on; a model trained
    twice from one seed comes out identical (when `recheck` > 0)."""
    out: list[Check] = []
    acc = get_metric(metrics, "accuracy.all.min_within_T")
    out.append(Check.check(
        "near-perfect-within-T",
        "models trained on length T track the state almost perfectly up to T (a precondition: "
        "the mechanism claims read only models that learned the task; the others are excluded)",
        f"worst position within T >= {config.accuracy_target}",
        None if acc is None else round(acc, 4),
        None if acc is None else acc >= config.accuracy_target))
    overlap = get_metric(metrics, "data.val_test.overlap")
    out.append(Check.check(
        "val-test-disjoint",
        "the validation stories (early stop) and the test stories (reported accuracy) are disjoint",
        "0 shared stories", None if overlap is None else int(overlap),
        None if overlap is None else overlap == 0))
    n = _n(metrics, "stability.all.n_rechecked")
    statement = ("a model trained twice from the same seed on the same machine gives identical "
                 "results (label, accuracies, probe and patching grids)")
    if not n:
        out.append(Check.untestable("same-seed-identical", statement, "every rechecked model "
                                    "identical", "no model rechecked (set recheck=N)"))
    else:
        same = _n(metrics, "stability.all.n_identical")
        out.append(Check.check("same-seed-identical", statement, "every rechecked model identical",
                               f"{same} of {n} identical", same == n))
    return out
