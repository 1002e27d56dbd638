"""The intruders study's claims (the paper's findings) and checks (none: every verdict here is
a finding of the paper)."""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.studies.intruders.config import IntruderConfig
from lmlab.studies.intruders.summary import CONTINUAL_MARGIN, PAPER, _mean
from lmlab.study import Check, Claim

__all__ = ["checks", "claims", "claims_from_metrics"]


def claims(config: IntruderConfig, metrics: dict[str, Any]) -> list[Claim]:
    """The paper's headline claims, each evaluated from the metrics."""
    return claims_from_metrics(metrics, config.low_rank_max, config.mitigation_max_drop,
                               config.experiment)


def checks(config: IntruderConfig, metrics: dict[str, Any]) -> list[Check]:
    """Invariants of this implementation measured by a run (none yet)."""
    return []


def _lora_rank_keys(m: dict[str, Any], scheme: str) -> list[int]:
    pre = f"lora.{scheme}.r"
    return sorted(int(k[len(pre):].split(".")[0]) for k in m
                  if k.startswith(pre) and k.endswith(".intruders"))


def claims_from_metrics(m: dict[str, Any], low_rank_max: int = 8,
                        mitigation_max_drop: float = 0.05, experiment: str = "tiny"
                        ) -> list[Claim]:
    """The paper's headline claims, each evaluated from the metrics `m`."""
    out: list[Claim] = []
    full = get_metric(m, "full.intruders")
    low = [r for r in _lora_rank_keys(m, "alpha2r") if r <= low_rank_max]
    low_counts = [v for r in low if (v := get_metric(m, f"lora.alpha2r.r{r}.intruders")) is not None]
    statement = ("Low-rank LoRA (r <= 8) has intruder dimensions; full fine-tuning has about "
                 "none (fewer than a quarter of LoRA's)")
    if full is None or not low_counts:
        out.append(Claim.untestable("lowrank-intruders", statement, PAPER,
                                    "needs full FT and LoRA r <= 8 (alpha = 2r) runs"))
    else:
        lo_mean = _mean(low_counts)
        out.append(Claim.check(
            "lowrank-intruders", statement, PAPER,
            f"LoRA r<={low_rank_max} (alpha=2r): min {min(low_counts):.2f}, mean {lo_mean:.2f} "
            f"per model; full FT {full:.2f}",
            min(low_counts) >= 1 and full <= 0.25 * lo_mean))
    statement = "The number of intruder dimensions falls as the LoRA rank grows (alpha = 2r)"
    rho = get_metric(m, "trend.alpha2r.rho")
    lo, hi = get_metric(m, "trend.alpha2r.lowest_rank_intruders"), get_metric(
        m, "trend.alpha2r.highest_rank_intruders")
    if rho is None or lo is None or hi is None:
        out.append(Claim.untestable("rank-trend", statement, PAPER, "needs >= 3 LoRA ranks"))
    else:
        out.append(Claim.check(
            "rank-trend", statement, PAPER,
            f"Spearman rho(rank, intruders) = {rho:.2f}; lowest rank {lo:.2f}, highest "
            f"r={int(m['trend.alpha2r.highest_rank'])} {hi:.2f}", rho < 0 and hi < lo))
    statement = ("At (about) equal task accuracy, models with more intruder dimensions forget "
                 "more of the pre-training distribution")
    rho, p, n = get_metric(m, "corr.rho"), get_metric(m, "corr.p"), get_metric(m, "corr.n")
    if rho is None or p is None or n is None:
        out.append(Claim.untestable("forgetting-intruders", statement, PAPER,
                                    "needs >= 3 runs at the target accuracy with varied counts"))
    else:
        out.append(Claim.check(
            "forgetting-intruders", statement, PAPER,
            f"Spearman rho(intruders, forgetting) = {rho:.2f} (p = {p:.2g}) over {int(n)} runs "
            f"with accuracy {m.get('corr.acc_min', float('nan')):.3f}-"
            f"{m.get('corr.acc_max', float('nan')):.3f}", rho > 0 and p < 0.05))
    statement = "High-rank rank-stabilized LoRA is close to full fine-tuning in intruder dimensions"
    ranks = _lora_rank_keys(m, "rslora")
    rs_hi = get_metric(m, f"lora.rslora.r{ranks[-1]}.intruders") if ranks else None
    if rs_hi is None or full is None or not low_counts:
        out.append(Claim.untestable("rslora-high-rank", statement, PAPER,
                                    "needs rsLoRA, full FT and low-rank LoRA runs"))
    else:
        lo_mean = _mean(low_counts)
        out.append(Claim.check(
            "rslora-high-rank", statement, PAPER,
            f"rsLoRA r={ranks[-1]}: {rs_hi:.2f}; full FT {full:.2f}; low-rank LoRA {lo_mean:.2f}",
            abs(rs_hi - full) <= max(1.0, 0.25 * lo_mean) and rs_hi < lo_mean))
    statement = ("Scaling intruder dimensions down (lambda < 1) reduces forgetting at a small "
                 f"cost in task accuracy (at most {mitigation_max_drop:g})")
    f1, a1 = get_metric(m, "mitigation.lam1.forgetting"), get_metric(m, "mitigation.lam1.acc")
    pre, post = "mitigation.lam", ".forgetting"
    lams = sorted(float(k[len(pre):-len(post)]) for k in m
                  if k.startswith(pre) and k.endswith(post))
    cands = []
    for lam in (x for x in lams if x < 1):
        f, a = get_metric(m, f"mitigation.lam{lam:g}.forgetting"), get_metric(m, f"mitigation.lam{lam:g}.acc")
        if f is not None and a is not None and f1 is not None and a1 is not None:
            cands.append((lam, f, a))
    if f1 is None or a1 is None or not cands:
        out.append(Claim.untestable("mitigation", statement, PAPER,
                                    "needs a lambda sweep including lambda = 1"))
    else:
        ok = [(lam, f, a) for lam, f, a in cands if a1 - a <= mitigation_max_drop and f < f1]
        best = min(ok, key=lambda c: c[1]) if ok else min(cands, key=lambda c: c[1])
        out.append(Claim.check(
            "mitigation", statement, PAPER,
            f"lambda=1: forgetting {f1:.3f}, acc {a1:.3f}; lambda={best[0]:g}: forgetting "
            f"{best[1]:.3f}, acc {best[2]:.3f}", bool(ok) and best[1] < 0.9 * f1))
    out += _continual_claim(m)
    out.append(Claim.untestable(
        "dataset-size", "Intruder counts grow with the fine-tuning dataset size (r = 8)", PAPER,
        "not swept here: needs runs at several dataset sizes"))
    if experiment == "tiny":
        out.append(Claim.untestable(
            "llm-scale", "LLaMA-2-7B LoRA and full-FT checkpoints show the same contrast", PAPER,
            "needs 7B checkpoints (GPU); the smol preset tests SmolLM2-135M"))
    return out


def _continual_claim(m: dict[str, Any]) -> list[Claim]:
    statement = ("In continual learning low-rank LoRA forgets earlier tasks more than full "
                 f"fine-tuning (by > {CONTINUAL_MARGIN:g} accuracy), and its intruder dimensions "
                 "accumulate")
    lora = sorted(k.split(".")[1:-1] for k in m
                  if k.startswith("continual.lora.") and k.endswith(".first_task_final_acc"))
    full_acc = get_metric(m, "continual.full.first_task_final_acc")
    if not lora or full_acc is None:
        return [Claim.untestable("continual", statement, PAPER,
                                 "needs continual runs of full FT and LoRA")]
    # the lowest-rank LoRA of the continual runs
    name = min((".".join(p) for p in lora), key=lambda s: int(s.rsplit(".r", 1)[1]))
    acc = get_metric(m, f"continual.{name}.first_task_final_acc")
    stages = sorted(int(k.split(".")[-2][1:]) for k in m
                    if k.startswith(f"continual.{name}.t") and k.endswith(".intruders"))
    first = get_metric(m, f"continual.{name}.t{stages[0]}.intruders")
    last = get_metric(m, f"continual.{name}.t{stages[-1]}.intruders")
    assert acc is not None and first is not None and last is not None
    return [Claim.check(
        "continual", statement, PAPER,
        f"first-task accuracy after {stages[-1]} tasks: {name} {acc:.3f}, full FT "
        f"{full_acc:.3f}; {name} intruders {first:.2f} -> {last:.2f}",
        acc < full_acc - CONTINUAL_MARGIN and last > first)]
