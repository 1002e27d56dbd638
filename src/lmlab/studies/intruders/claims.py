"""The intruders study's claims (the paper's findings) and checks (none: every verdict here is
a finding of the paper).

A difference or a correlation holds only when its 95% bootstrap interval (`summary`: over seeds
for paired differences, over runs for correlations) excludes the null; each statement says so.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from lmlab.stats import get_metric
from lmlab.studies.intruders.config import IntruderConfig, Rules
from lmlab.studies.intruders.summary import PAPER, key_number
from lmlab.study import Check, Claim

__all__ = ["checks", "claims", "claims_from_metrics"]


def claims(config: IntruderConfig, metrics: dict[str, Any]) -> list[Claim]:
    """The paper's headline claims, each evaluated from the metrics."""
    return claims_from_metrics(metrics, config.rules, config.experiment)


def checks(config: IntruderConfig, metrics: dict[str, Any]) -> list[Check]:
    """Preconditions of the comparison a run measured: at `smol`, that LoRA and full FT end at
    matched accuracy (the claims compare them "at equal accuracy")."""
    if config.experiment != "smol":
        return []
    band = config.rules.matched_acc
    statement = (f"Every LoRA run's test accuracy is within {band:g} of full fine-tuning's "
                 "(matched accuracy)")
    gap = get_metric(metrics, "smol.matched.max_gap")
    if gap is None:
        return [Check.untestable("matched-accuracy", statement, "this implementation",
                                 "needs full FT and LoRA single-task runs")]
    accs = ", ".join(f"{k[len('finetune.'):-len('.acc')]} {v:.3f}" for k, v in sorted(metrics.items())
                     if k.startswith("finetune.") and k.endswith(".acc") and ".seed" not in k)
    return [Check.check("matched-accuracy", statement, "this implementation",
                        f"largest gap {gap:.3f}; test accuracy {accs}", gap <= band)]


@dataclass(frozen=True)
class _Count:
    """Which intruder count a claim judges: over every matrix, or over the decidable ones."""

    key: str = "intruders"  # the per-method metric (`finetune.{method}.{key}`)
    prefix: str = ""  # of its trend, correlation and difference metrics
    suffix: str = ""  # of the claim id
    restriction: str = ""  # stated before the claim's statement
    note: str = ""  # added to the measured text


ALL = _Count()


def _decidable(m: dict[str, Any]) -> _Count:
    draws = m.get("base.null_draws")
    per = get_metric(m, "base.decidable.mean")
    total = m.get("base.matrices")
    note = (f"; decidable matrices per seed {per:.1f} of {total} (undecidable: "
            f"{m.get('base.undecidable')})" if per is not None else "")
    return _Count("intruders_decidable", "decidable.", "-decidable", (
        "Counting only the matrices where eps can decide (per seed, those where no intruder "
        f"appears in any of {draws} perturbations of the base by full FT's update spectrum "
        "in random directions): "), note)


def _dw(m: dict[str, Any]) -> str:
    """||dW||_2 / sigma_k (max and median over matrices) per method, for the measured text."""
    pre, post = "finetune.", ".dw_over_sigma_k_max"
    names = [k[len(pre):-len(post)] for k in m if k.startswith(pre) and k.endswith(post)]
    names.sort(key=lambda n: (n != "full", n.split(".r")[0],
                              int(n.split(".r")[-1]) if ".r" in n else 0))
    parts = []
    for n in names:
        median = m.get(f"{pre}{n}.dw_over_sigma_k_median", float("nan"))
        parts.append(f"{n} {m[f'{pre}{n}{post}']:.1f}/{median:.2f}")
    return "; ||dW||_2/sigma_k max/median over matrices: " + ", ".join(parts) if parts else ""


def _over(m: dict[str, Any]) -> str:
    """What a paired difference's interval is over: seeds (tiny), or the model's matrices
    (smol, one seed: the per-matrix differences, summed, bootstrapped over matrices)."""
    return str(m.get("diff.over", "seeds"))


def _ranks(m: dict[str, Any], scheme: str) -> list[int]:
    pre = f"finetune.{scheme}.r"
    return sorted({int(k[len(pre):].split(".")[0]) for k in m
                   if k.startswith(pre) and k.endswith(".intruders")})


def _ci(m: dict[str, Any], key: str) -> tuple[float | None, float | None, float | None]:
    return get_metric(m, f"{key}.mean"), get_metric(m, f"{key}.ci_lo"), get_metric(m, f"{key}.ci_hi")


def _iv(mean: float, lo: float, hi: float) -> str:
    return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def claims_from_metrics(m: dict[str, Any], rules: Rules | None = None,
                        experiment: str = "tiny") -> list[Claim]:
    """The paper's headline claims, each evaluated from the metrics `m`."""
    r = rules or Rules()
    out: list[Claim] = [_lowrank(m, r), _rank_trend(m), _forgetting(m), _rslora(m, r),
                        _mitigation(m, r), _continual(m)]
    if experiment == "tiny":  # the same four counts over the matrices where eps can decide
        d = _decidable(m)
        restricted = [_lowrank(m, r, d), _rank_trend(m, d), _forgetting(m, d), _rslora(m, r, d)]
        if get_metric(m, "base.decidable.mean") == 0:  # nothing left to count on any seed
            restricted = [Claim.untestable(c.id, c.statement, PAPER,
                                           "no matrix is decidable on any seed" + d.note)
                          for c in restricted]
        out += restricted
    out.append(Claim.untestable(
        "dataset-size", "Intruder counts grow with the fine-tuning dataset size (r = 8)", PAPER,
        "not swept here: needs runs at several dataset sizes"))
    if experiment == "tiny":
        out.append(Claim.untestable(
            "llm-scale", "LLaMA-2-7B LoRA and full-FT checkpoints show the same contrast", PAPER,
            "needs 7B checkpoints (GPU); the smol preset tests SmolLM2-135M"))
    return out


def _lowrank(m: dict[str, Any], r: Rules, c: _Count = ALL) -> Claim:
    cid = "lowrank-intruders" + c.suffix
    statement = c.restriction + (f"Low-rank LoRA (alpha = 2r, r <= {r.low_rank_max}) has intruder dimensions "
                 f"(at least 1 per model at every such rank, more than full FT: the 95% interval "
                 f"of the paired difference over {_over(m)} above 0); full fine-tuning has about "
                 f"none (at most {r.about_none:g} per model)")
    full = get_metric(m, f"finetune.full.{c.key}")
    low = [k for k in _ranks(m, "alpha2r") if k <= r.low_rank_max]
    counts = [v for k in low if (v := get_metric(m, f"finetune.alpha2r.r{k}.{c.key}")) is not None]
    d, lo, hi = _ci(m, f"{c.prefix}diff.lowrank_vs_full")
    if full is None or not counts:
        return Claim.untestable(cid, statement, PAPER,
                                f"needs full FT and LoRA r <= {r.low_rank_max} (alpha = 2r) runs"
                                + (" with null counts" if c.prefix else ""))
    measured = (f"LoRA r<={r.low_rank_max}: min {min(counts):.2f}, mean "
                f"{sum(counts) / len(counts):.2f} per model; full FT {full:.2f}")
    if c.prefix:  # the all-matrix count beside the restricted one
        every = [get_metric(m, f"finetune.alpha2r.r{k}.intruders") for k in low]
        measured += (f" (over all matrices: LoRA mean "
                     f"{sum(x or 0 for x in every) / len(every):.2f}, full FT "
                     f"{get_metric(m, 'finetune.full.intruders') or 0:.2f})")
    if d is None or lo is None or hi is None:
        return Claim.check(cid, statement, PAPER,
                           measured + "; no paired seeds for an interval" + c.note, False)
    return Claim.check(cid, statement, PAPER,
                       measured + f"; LoRA - full {_iv(d, lo, hi)}" + (c.note or _dw(m)),
                       min(counts) >= 1 and full <= r.about_none and lo > 0)


def _rank_trend(m: dict[str, Any], c: _Count = ALL) -> Claim:
    cid = "rank-trend" + c.suffix
    statement = c.restriction + ("The number of intruder dimensions falls as the LoRA rank grows (alpha = 2r): "
                 "Spearman rho(rank, intruders) over the runs, its 95% bootstrap interval below 0")
    t = f"{c.prefix}trend.alpha2r"
    drop, dlo, dhi = _ci(m, f"{t}.drop")
    if drop is not None and dlo is not None and dhi is not None:  # one seed: over matrices
        return _rank_drop(m, cid, t, (drop, dlo, dhi))
    rho, lo, hi = (get_metric(m, f"{t}.{k}") for k in ("rho", "ci_lo", "ci_hi"))
    low, high = (get_metric(m, f"{t}.{k}_rank_intruders") for k in ("lowest", "highest"))
    if None in (rho, lo, hi, low, high):
        return Claim.untestable(cid, statement, PAPER, "needs >= 3 LoRA runs"
                                + (" with null counts" if c.prefix else ""))
    assert rho is not None and lo is not None and hi is not None
    return Claim.check(
        cid, statement, PAPER,
        f"rho = {rho:.2f} [{lo:.2f}, {hi:.2f}] over {int(m[f'{t}.runs'])} runs; lowest "
        f"rank {low:.2f}, r={int(m[f'{t}.highest_rank'])} {high:.2f} per model", hi < 0)


def _rank_drop(m: dict[str, Any], cid: str, t: str, iv: tuple[float, float, float]) -> Claim:
    """The rank trend of a one-seed run: lowest rank minus highest, over the matrices."""
    ranks = _ranks(m, "alpha2r")
    counts = [get_metric(m, f"finetune.alpha2r.r{k}.intruders") or 0.0 for k in ranks]
    statement = ("The number of intruder dimensions falls as the LoRA rank grows (alpha = 2r): "
                 "it never rises from one rank to the next, and the lowest rank's count minus "
                 "the highest's (per matrix, summed; 95% bootstrap interval over the matrices) "
                 "is above 0")
    falls = all(b <= a for a, b in itertools.pairwise(counts))
    return Claim.check(
        cid, statement, PAPER,
        "per model " + ", ".join(f"r={k} {v:.0f}" for k, v in zip(ranks, counts, strict=True))
        + f"; r={ranks[0]} - r={ranks[-1]} {_iv(*iv)} over "
        f"{int(m.get('diff.lowrank_vs_full.matrices', 0))} matrices" + _dw(m),
        falls and iv[1] > 0)


def _forgetting(m: dict[str, Any], c: _Count = ALL) -> Claim:
    cid = "forgetting-intruders" + c.suffix
    statement = c.restriction + ("At (about) equal task accuracy, models with more intruder dimensions forget "
                 "more of the pre-training distribution: Spearman rho(intruders, forgetting) over "
                 "the runs, its 95% bootstrap interval above 0")
    k = f"{c.prefix}corr"
    rho, p, n = (get_metric(m, f"{k}.{x}") for x in ("rho", "p", "n"))
    lo, hi = get_metric(m, f"{k}.ci_lo"), get_metric(m, f"{k}.ci_hi")
    if None in (rho, p, n, lo, hi):
        return Claim.untestable(cid, statement, PAPER,
                                "needs >= 3 runs at the target accuracy with varied counts")
    assert rho is not None and lo is not None and hi is not None and n is not None
    return Claim.check(
        cid, statement, PAPER,
        f"rho = {rho:.2f} [{lo:.2f}, {hi:.2f}] (p = {p:.2g}) over {int(n)} runs with accuracy "
        f"{m.get(f'{k}.acc_min', float('nan')):.3f}-{m.get(f'{k}.acc_max', float('nan')):.3f}",
        lo > 0)


def _rslora(m: dict[str, Any], r: Rules, c: _Count = ALL) -> Claim:
    cid = "rslora-high-rank" + c.suffix
    ranks = _ranks(m, "rslora")
    top = ranks[-1] if ranks else 0
    statement = c.restriction + ("High-rank rank-stabilized LoRA is close to full fine-tuning in intruder "
                 f"dimensions (the 95% interval of rsLoRA - full, paired over {_over(m)}, within "
                 "+-max(1, a quarter of low-rank LoRA's count)) and has fewer than low-rank LoRA "
                 "(the interval of low-rank - rsLoRA above 0)")
    near, near_lo, near_hi = _ci(m, f"{c.prefix}diff.rslora_vs_full")
    gap, gap_lo, gap_hi = _ci(m, f"{c.prefix}diff.lowrank_vs_rslora")
    means = [get_metric(m, f"finetune.alpha2r.r{k}.{c.key}")
             for k in str(m.get(f"{c.prefix}diff.lowrank.ranks", "")).split(",") if k]
    if None in (near, near_lo, near_hi, gap, gap_lo, gap_hi) or not means or None in means:
        return Claim.untestable(cid, statement, PAPER,
                                "needs rsLoRA, full FT and low-rank LoRA runs over paired seeds")
    assert near is not None and near_lo is not None and near_hi is not None
    assert gap is not None and gap_lo is not None and gap_hi is not None
    lo_mean = sum(x for x in means if x is not None) / len(means)
    margin = max(1.0, 0.25 * lo_mean)
    return Claim.check(
        cid, statement, PAPER,
        f"rsLoRA r={top} - full {_iv(near, near_lo, near_hi)} (margin {margin:.2f}); low-rank - "
        f"rsLoRA {_iv(gap, gap_lo, gap_hi)}",
        -margin <= near_lo and near_hi <= margin and gap_lo > 0)


def _mitigation(m: dict[str, Any], r: Rules) -> Claim:
    statement = ("Scaling intruder dimensions down (lambda < 1) reduces forgetting (the 95% "
                 "interval of the cut, paired over seeds, above 0, and at least 10%) at a small "
                 f"cost in task accuracy (at most {r.mitigation_max_drop:g})")
    f1, a1 = get_metric(m, "mitigation.lam1.forgetting"), get_metric(m, "mitigation.lam1.acc")
    pre, post = "mitigation.lam", ".forgetting_cut"
    lams = sorted(k[len(pre):-len(post)] for k in m if k.startswith(pre) and k.endswith(post))
    cands = []
    for lam in lams:
        p = f"mitigation.lam{lam}"
        vals = [get_metric(m, f"{p}.{k}") for k in
                ("forgetting", "acc", "acc_drop", "forgetting_cut", "forgetting_cut_ci_lo")]
        if None not in vals:
            cands.append((float(lam.replace("p", ".")), *vals))
    if f1 is None or a1 is None or not cands:
        return Claim.untestable("mitigation", statement, PAPER,
                                "needs a lambda sweep including lambda = 1")
    # among the lambdas whose accuracy cost is small, the one that forgets least
    cheap = [c for c in cands if c[3] <= r.mitigation_max_drop]
    lam, f, a, _, cut, cut_lo = min(cheap or cands, key=lambda c: c[1])
    ok = bool(cheap) and cut_lo > 0 and f < 0.9 * f1
    return Claim.check(
        "mitigation", statement, PAPER,
        f"lambda=1: forgetting {f1:.3f}, acc {a1:.3f}; lambda={key_number(lam).replace('p', '.')}:"
        f" forgetting {f:.3f}, acc {a:.3f}; cut {cut:+.3f} (ci_lo {cut_lo:+.3f})", ok)


def _continual(m: dict[str, Any]) -> Claim:
    statement = ("In continual learning low-rank LoRA forgets earlier tasks more than full "
                 "fine-tuning (first-task accuracy after the last task, full minus LoRA: its 95% "
                 "interval over the test examples above 0), and its intruder dimensions "
                 "accumulate (grow from the first task to the last in every run)")
    lora = sorted({k.split(".")[1] + "." + k.split(".")[2] for k in m
                   if k.startswith("continual.") and k.endswith(".gap_vs_full")})
    full_acc = get_metric(m, "continual.full.first_task_final_acc")
    if not lora or full_acc is None:
        return Claim.untestable("continual", statement, PAPER,
                                "needs continual runs of full FT and LoRA")
    # the lowest-rank LoRA of the continual runs
    name = min(lora, key=lambda s: int(s.rsplit(".r", 1)[1]))
    p = f"continual.{name}"
    acc = get_metric(m, f"{p}.first_task_final_acc")
    gap, lo, hi = (get_metric(m, f"{p}.gap_vs_full{k}") for k in ("", "_ci_lo", "_ci_hi"))
    stages = sorted(int(k.split(".")[-2][1:]) for k in m
                    if k.startswith(f"{p}.t") and k.endswith(".intruders"))
    first = get_metric(m, f"{p}.t{stages[0]}.intruders")
    last = get_metric(m, f"{p}.t{stages[-1]}.intruders")
    grows = get_metric(m, f"{p}.accumulates")
    assert None not in (acc, gap, lo, hi, first, last, grows)
    assert acc is not None and gap is not None and lo is not None and hi is not None
    return Claim.check(
        "continual", statement, PAPER,
        f"first-task accuracy after {stages[-1]} tasks: {name} {acc:.3f}, full FT "
        f"{full_acc:.3f} (gap {_iv(gap, lo, hi)}); {name} intruders {first:.2f} -> {last:.2f}",
        lo > 0 and grows == 1.0)
