"""The random-transformers study's claims (the paper's findings) and checks (our invariants)."""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.studies.random_transformers.config import ALGO_TASKS, RandomTransformersConfig
from lmlab.studies.random_transformers.summary import SATURATED
from lmlab.study import Check, Claim

__all__ = ["checks", "claims"]


def claims(c: RandomTransformersConfig, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims, each computed from the metrics (None: this preset cannot test it)."""
    wide, narrow = max(c.widths), min(c.widths)
    out: list[Claim] = []

    def acc(task: str, mode: str, w: int) -> float | None:
        return get_metric(m, f"{task}.{mode}.d{w}.acc")

    # Width: random wide >> random narrow.
    pw, pn = acc("parens", "random", wide), acc("parens", "random", narrow)
    out.append(Claim.check(
        "parens-width",
        f"parentheses (<= {c.parens_pairs} pairs): random d={wide} >= 0.90 and random "
        f"d={narrow} at least 5 points below",
        "Table 1: random 1024 = 100%, random 16 = 87.3%",
        None if pw is None or pn is None else
        f"{pw:.3f} vs {pn:.3f} (majority {m.get('parens.majority_acc', float('nan')):.3f})",
        None if pw is None or pn is None or narrow == wide else pw >= 0.90 and pn <= pw - 0.05))
    mw, mn = acc("modadd", "random", wide), acc("modadd", "random", narrow)
    out.append(Claim.check(
        "modadd-width",
        f"modular addition (p={c.p}): random d={wide} >= 0.90 and >= 5x random d={narrow}",
        "Table 1: random 1024 = 100%, random 16 = 1.3%",
        None if mw is None or mn is None else f"{mw:.3f} vs {mn:.3f}",
        None if mw is None or mn is None or narrow == wide else mw >= 0.90 and mw >= 5 * mn))
    for task, thr, paper in (("needle", 0.90, "Table 1: 100% at width 1024"),
                             ("decimal", 0.80, "Table 1: 100% at width 1024")):
        a, f = acc(task, "random", wide), acc(task, "full", wide)
        shown = None if a is None else round(a, 4) if f is None else \
            f"{a:.3f} (fully trained: {f:.3f})"
        out.append(Claim.check(
            f"{task}-random", f"{task}: random d={wide} reaches >= {thr:.2f} held-out accuracy",
            paper, shown, None if a is None else a >= thr))
    # Random close to fully trained.
    pairs = [(t, acc(t, "random", wide), acc(t, "full", wide)) for t in ALGO_TASKS]
    pairs = [(t, r, f) for t, r, f in pairs if r is not None and f is not None]
    out.append(Claim.check(
        "random-vs-full",
        f"random d={wide} within 5 points of fully trained d={wide} on every algorithmic task",
        "Table 1: both 100% at width 1024",
        "; ".join(f"{t} {r:.3f}/{f:.3f}" for t, r, f in pairs) or None,
        all(r >= f - 0.05 for _, r, f in pairs) if pairs else None))
    # Memorization.
    br, bf = get_metric(m, "memorize.random.bits_per_param"), get_metric(m, "memorize.full.bits_per_param")
    ar, af = get_metric(m, "memorize.random.acc"), get_metric(m, "memorize.full.acc")
    if br is None or bf is None or ar is None or af is None:
        out.append(Claim.untestable("memorization", "full training stores >= 3x the bits per "
                                    "parameter of random", "Table 3: 2.9 vs 0.4 bits/param",
                                    "memorization not run"))
    else:
        saturated = max(ar, af) >= SATURATED
        out.append(Claim.check(
            "memorization",
            "full training stores >= 3x the bits per trainable parameter of a random transformer",
            "Table 3: about 2.9 vs 0.4 bits/param",
            f"{bf:.3f} vs {br:.3f} bits/param (acc {af:.3f} / {ar:.3f})",
            None if saturated else bf >= 3 * br))
    # Subspace concentration.
    gap = get_metric(m, "subspace.min_gap")
    out.append(Claim.check(
        "subspace",
        f"in random d={wide} models the top-10 principal components explain at least 0.10 more "
        "of the variance than the top-10 neurons, at every layer",
        "Tables 4-5: variance concentrates in a few PCs not aligned with neurons",
        None if gap is None else f"smallest gap {gap:.3f}",
        None if gap is None or wide <= 10 else gap >= 0.10))
    # Imitation.
    tws = sorted(c.teacher_widths)
    kl_lo = get_metric(m, f"imitation.random.t{tws[0]}.kl") if tws else None
    kl_hi = get_metric(m, f"imitation.random.t{tws[-1]}.kl") if tws else None
    out.append(Claim.check(
        "imitation-kl",
        f"the random student's KL rises with teacher width ({tws[0] if tws else '?'} -> "
        f"{tws[-1] if tws else '?'})",
        "Fig. 6: KL rises steeply with target width",
        None if kl_lo is None or kl_hi is None else f"{kl_lo:.4f} -> {kl_hi:.4f}",
        None if kl_lo is None or kl_hi is None or len(tws) < 2 else kl_hi > kl_lo))
    # Language modelling: width helps random models.
    lw = sorted(c.lm_widths)
    lo = get_metric(m, f"{c.lm_corpus}.random.d{lw[0]}.loss") if lw else None
    hi = get_metric(m, f"{c.lm_corpus}.random.d{lw[-1]}.loss") if lw else None
    out.append(Claim.check(
        "lm-width", f"random transformers model language better when wider "
        f"({c.lm_corpus}, test loss at d={lw[0] if lw else '?'} vs d={lw[-1] if lw else '?'})",
        "Fig. 4: random models need far more width than trained ones",
        None if lo is None or hi is None else f"{lo:.3f} -> {hi:.3f} nats",
        None if lo is None or hi is None or len(lw) < 2 else hi < lo))
    # Ablations and the LSTM need the paper's grid.
    if c.ablation_modes:
        fails = {mode: min(acc(t, mode, wide) or 0.0 for t in c.tasks) for mode in c.ablation_modes}
        out.append(Claim.check(
            "ablations", "every partial ablation (U only, E only, E_token+U) fails (< 0.9) on "
            "some task", "Table 2",
            "; ".join(f"{k} min {v:.3f}" for k, v in fails.items()),
            all(v < 0.9 for v in fails.values())))
    else:
        out.append(Claim.untestable("ablations", "every partial ablation fails on some task",
                                    "Table 2", "ablation modes not run in this preset"))
    return out


def checks(c: RandomTransformersConfig, m: dict[str, Any]) -> list[Check]:
    """Invariants of this implementation: the freeze trains exactly the embeddings."""
    out: list[Check] = []
    fi, te = get_metric(m, "freeze.frozen_identical"), get_metric(m, "freeze.trainable_exact")
    out.append(Check.check(
        "freeze", "random mode trains only V*d + P*d + d*V parameters and leaves every other "
        "tensor bit-identical", "Sec. 2 (method)",
        None if fi is None else f"identical={int(fi)} exact_count={int(te or 0)}",
        None if fi is None else bool(fi) and bool(te)))
    return out
