"""The state-tracking study's claims (the paper's findings) and checks (preconditions)."""

from __future__ import annotations

from typing import Any

from lmlab.studies.state_tracking.config import StateTrackingConfig
from lmlab.studies.state_tracking.evaluation import CUTOFF
from lmlab.study import Check, Claim

__all__ = ["checks", "claims"]


def claims(config: StateTrackingConfig, metrics: dict[str, Any]) -> list[Claim]:
    """The paper's findings, each computed from the metrics (None: this run cannot test it)."""
    out: list[Claim] = []
    n, n_aa, n_paa = metrics.get("n_models", 0), metrics.get("n_AA", 0), metrics.get("n_PAA", 0)
    out.append(Claim.check(
        "aa-or-paa", "every model shows the AA or the PAA signature",
        "every model is AA or PAA", f"{n_aa} AA, {n_paa} PAA of {n}",
        n_aa + n_paa == n if n else None))
    aa_cut, paa_cut = metrics.get("AA.mean_cutoff"), metrics.get("PAA.mean_cutoff")
    if aa_cut is not None and paa_cut is not None:
        out.append(Claim.check(
            "aa-generalizes-further", "AA models generalize to longer inputs than PAA models",
            "AA cutoff > PAA cutoff", f"AA {aa_cut:.1f}, PAA {paa_cut:.1f}", aa_cut > paa_cut))
    else:
        out.append(Claim.untestable(
            "aa-generalizes-further", "AA models generalize to longer inputs than PAA models",
            "AA cutoff > PAA cutoff",
            f"needs both mechanisms; this run found {n_aa} AA and {n_paa} PAA"))
    par = metrics.get("PAA.parity_past_cutoff")
    if par is not None:
        out.append(Claim.check(
            "paa-keeps-parity", "past its cutoff a PAA model still predicts the right parity",
            f"parity accuracy >= {CUTOFF} past the cutoff", round(par, 4), par >= CUTOFF))
    else:
        out.append(Claim.untestable(
            "paa-keeps-parity", "past its cutoff a PAA model still predicts the right parity",
            f"parity accuracy >= {CUTOFF} past the cutoff",
            "no PAA model in this run" if not n_paa
            else "no PAA model with a cutoff inside the evaluated lengths"))
    conds = [cnd for cnd in config.conditions]
    if len(conds) >= 2:
        fr = {cnd: metrics.get(f"{cnd}.n_PAA", 0) / max(1, config.n_seeds) for cnd in conds}
        shift = max(fr.values()) - min(fr.values())
        out.append(Claim.check(
            "intermediate-tasks-shift", "intermediate tasks shift the AA/PAA mix",
            "the PAA fraction differs between conditions",
            ", ".join(f"{k}: {v:.2f} PAA" for k, v in fr.items()), shift > 0))
    else:
        out.append(Claim.untestable(
            "intermediate-tasks-shift", "intermediate tasks shift the AA/PAA mix",
            "the PAA fraction differs between conditions",
            "this preset trains one condition; set conditions=none,parity,ntp"))
    return out


def checks(config: StateTrackingConfig, metrics: dict[str, Any]) -> list[Check]:
    """Preconditions of the analysis: every model learned the task within T."""
    out: list[Check] = []
    acc = metrics.get("acc_min_within_T")
    out.append(Check.check(
        "near-perfect-within-T",
        "models trained on length T track the state almost perfectly up to T (a precondition: "
        "the mechanism analysis reads only models that learned the task)",
        "~1.0 per-position accuracy within T", None if acc is None else round(acc, 4),
        None if acc is None else acc >= config.accuracy_target))
    return out
