"""From fine-tuning results to flat metrics (the claims computed from them are in `claims`).

Metric names: `{method}.{acc,intruders,forgetting,...}` and `{method}.intruders_eps{e}` (the
count at other thresholds e) (means over seeds; methods `full`,
`lora.alpha2r.r1`, ...), `corr.*` (intruders against forgetting across runs), `trend.{scheme}.*`
(intruders against rank), `mitigation.lam{lam}.*`, `continual.{method}.*`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from lmlab.stats import spearman

__all__ = ["continual_metrics", "single_metrics"]

PAPER = "Shuttleworth et al. 2024"
# A first-task accuracy gap smaller than this is within the test sets' noise (512 examples: one
# standard error is about 0.02), so it does not count as "forgets more".
CONTINUAL_MARGIN = 0.02
STAGE_KEYS = ("acc", "intruders", "forgetting", "dw_over_sigma_k_max", "dw_over_sigma_k_mean",
              "eff_rank_delta", "steps")


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


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
