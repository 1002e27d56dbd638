"""From fine-tuning results to flat metrics, figures and the paper's claims, computed.

Metric names: `{method}.{acc,intruders,forgetting,...}` and `{method}.intruders_eps{e}` (the
count at other thresholds e) (means over seeds; methods `full`,
`lora.alpha2r.r1`, ...), `corr.*` (intruders against forgetting across runs), `trend.{scheme}.*`
(intruders against rank), `mitigation.lam{lam}.*`, `continual.{method}.*`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from lmlab.study import Claim

__all__ = ["claims", "continual_metrics", "single_metrics"]

PAPER = "Shuttleworth et al. 2024"
# A first-task accuracy gap smaller than this is within the test sets' noise (512 examples: one
# standard error is about 0.02), so it does not count as "forgets more".
CONTINUAL_MARGIN = 0.02
STAGE_KEYS = ("acc", "intruders", "forgetting", "dw_over_sigma_k_max", "dw_over_sigma_k_mean",
              "eff_rank_delta", "steps")


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value (nan when undefined)."""
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan"), float("nan")
    res = spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def single_metrics(results: list[dict[str, Any]], target_acc: float, acc_band: float
                   ) -> dict[str, Any]:
    """Per-method means over seeds, rank trends, and the intruders-forgetting correlation."""
    m: dict[str, Any] = {}
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_method[r["method"]].append(r)
    for name, rs in sorted(by_method.items()):
        stages = [r["stages"][0] for r in rs]
        for key in STAGE_KEYS:
            m[f"{name}.{key}"] = _mean([float(s[key]) for s in stages])
        sweeps = [s["sweep"] for s in stages if "sweep" in s]
        for e in sweeps[0] if len(sweeps) == len(stages) else ():
            m[f"{name}.intruders_eps{e}"] = _mean([float(sw[e]) for sw in sweeps])
        m[f"{name}.lr"] = rs[0]["lr"]
        m[f"{name}.seeds"] = len(rs)
        if rs[0]["type"] == "lora":
            m[f"{name}.scaling"] = rs[0]["scaling"]
    # intruders against rank, per alpha scheme
    for scheme in sorted({r["scheme"] for r in results if r["type"] == "lora"}):
        ranks = sorted({r["rank"] for r in results if r["scheme"] == scheme})
        counts = [m[f"lora.{scheme}.r{k}.intruders"] for k in ranks]
        rho, _ = spearman([float(k) for k in ranks], counts)
        m[f"trend.{scheme}.rho"] = rho
        m[f"trend.{scheme}.lowest_rank_intruders"] = counts[0]
        m[f"trend.{scheme}.highest_rank_intruders"] = counts[-1]
        m[f"trend.{scheme}.highest_rank"] = ranks[-1]
    # at (about) equal accuracy: every run that reached the target band
    matched = [r["stages"][0] for r in results
               if r["stages"][0]["acc"] >= target_acc - acc_band]
    rho, p = spearman([float(s["intruders"]) for s in matched],
                      [float(s["forgetting"]) for s in matched])
    m["corr.rho"], m["corr.p"], m["corr.n"] = rho, p, len(matched)
    m["corr.runs"] = len(results)
    if matched:
        m["corr.acc_min"] = min(s["acc"] for s in matched)
        m["corr.acc_max"] = max(s["acc"] for s in matched)
    return m


def mitigation_metrics(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, forgetting and intruders at each lambda (means over the runs that swept it)."""
    m: dict[str, Any] = {}
    rows: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        for row in r.get("mitigation", []):
            rows[float(row["lam"])].append(row)
    for lam, rs in sorted(rows.items()):
        for key in ("acc", "forgetting", "intruders", "flagged"):
            m[f"mitigation.lam{lam:g}.{key}"] = _mean([float(x[key]) for x in rs])
    if rows:
        m["mitigation.method"] = next(r["method"] for r in results if r.get("mitigation"))
    return m


def _label_acc(stage: dict[str, Any], task: str) -> float:
    """Accuracy on `task` among its own label tokens (over the whole vocabulary if not measured)."""
    return float(stage.get("label_accs", stage["accs"])[task])


def continual_metrics(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method: after each task, cumulative intruders, forgetting, accuracy on earlier tasks
    (`first_task_final_acc` among the first task's labels; `_vocab`: over the whole vocabulary)."""
    m: dict[str, Any] = {}
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_method[r["method"]].append(r)
    for name, rs in sorted(by_method.items()):
        tasks = rs[0]["tasks"]
        for i in range(len(tasks)):
            st = [r["stages"][i] for r in rs]
            p = f"continual.{name}.t{i + 1}"
            m[f"{p}.intruders"] = _mean([float(s["intruders"]) for s in st])
            m[f"{p}.forgetting"] = _mean([float(s["forgetting"]) for s in st])
            m[f"{p}.acc"] = _mean([float(s["acc"]) for s in st])
            if i:  # earlier tasks scored among their own labels (a head per task)
                m[f"{p}.earlier_acc"] = _mean([
                    _mean([_label_acc(s, t) for t in tasks[:i]]) for s in st])
        last = [r["stages"][-1] for r in rs]
        m[f"continual.{name}.first_task_final_acc"] = _mean([_label_acc(s, tasks[0])
                                                             for s in last])
        m[f"continual.{name}.first_task_final_acc_vocab"] = _mean([s["accs"][tasks[0]]
                                                                   for s in last])
    return m


def _get(m: dict[str, Any], key: str) -> float | None:
    v = m.get(key)
    if v is None or isinstance(v, str) or v != v:  # missing, text or NaN
        return None
    return float(v)


def _lora_rank_keys(m: dict[str, Any], scheme: str) -> list[int]:
    pre = f"lora.{scheme}.r"
    return sorted(int(k[len(pre):].split(".")[0]) for k in m
                  if k.startswith(pre) and k.endswith(".intruders"))


def claims(m: dict[str, Any], low_rank_max: int = 8, mitigation_max_drop: float = 0.05,
           experiment: str = "tiny") -> list[Claim]:
    """The paper's headline claims, each evaluated from the metrics `m`."""
    out: list[Claim] = []
    full = _get(m, "full.intruders")
    low = [r for r in _lora_rank_keys(m, "alpha2r") if r <= low_rank_max]
    low_counts = [v for r in low if (v := _get(m, f"lora.alpha2r.r{r}.intruders")) is not None]
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
    rho = _get(m, "trend.alpha2r.rho")
    lo, hi = _get(m, "trend.alpha2r.lowest_rank_intruders"), _get(
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
    rho, p, n = _get(m, "corr.rho"), _get(m, "corr.p"), _get(m, "corr.n")
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
    rs_hi = _get(m, f"lora.rslora.r{ranks[-1]}.intruders") if ranks else None
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
    f1, a1 = _get(m, "mitigation.lam1.forgetting"), _get(m, "mitigation.lam1.acc")
    pre, post = "mitigation.lam", ".forgetting"
    lams = sorted(float(k[len(pre):-len(post)]) for k in m
                  if k.startswith(pre) and k.endswith(post))
    cands = []
    for lam in (x for x in lams if x < 1):
        f, a = _get(m, f"mitigation.lam{lam:g}.forgetting"), _get(m, f"mitigation.lam{lam:g}.acc")
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
    full_acc = _get(m, "continual.full.first_task_final_acc")
    if not lora or full_acc is None:
        return [Claim.untestable("continual", statement, PAPER,
                                 "needs continual runs of full FT and LoRA")]
    # the lowest-rank LoRA of the continual runs
    name = min((".".join(p) for p in lora), key=lambda s: int(s.rsplit(".r", 1)[1]))
    acc = _get(m, f"continual.{name}.first_task_final_acc")
    stages = sorted(int(k.split(".")[-2][1:]) for k in m
                    if k.startswith(f"continual.{name}.t") and k.endswith(".intruders"))
    first = _get(m, f"continual.{name}.t{stages[0]}.intruders")
    last = _get(m, f"continual.{name}.t{stages[-1]}.intruders")
    assert acc is not None and first is not None and last is not None
    return [Claim.check(
        "continual", statement, PAPER,
        f"first-task accuracy after {stages[-1]} tasks: {name} {acc:.3f}, full FT "
        f"{full_acc:.3f}; {name} intruders {first:.2f} -> {last:.2f}",
        acc < full_acc - CONTINUAL_MARGIN and last > first)]
