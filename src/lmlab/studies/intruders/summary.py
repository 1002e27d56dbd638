"""From fine-tuning results to flat metrics (the claims computed from them are in `claims`).

Metric keys, dotted from the general to the particular (`task.condition.size.metric`):

- `finetune.{method}.{metric}`: means over seeds, `method` = `full` or `SCHEME.rRANK`
  (`finetune.alpha2r.r1.intruders`, `finetune.rslora.r64.forgetting`); per seed
  `finetune.{method}.seed{i}.{acc,intruders,forgetting}`; the count at other thresholds
  `finetune.{method}.intruders_eps0p3` (eps 0.3, the point written `p`);
- `trend.{scheme}.*`: intruders against rank (Spearman rho with its bootstrap interval);
- `corr.*`: intruders against forgetting over the runs at the target accuracy (rho, p, interval);
- `diff.{a}_vs_{b}.{mean,ci_lo,ci_hi}`: a paired difference over seeds with its interval;
- `finetune.{method}.intruders_decidable` (and per seed): the count over the matrices where
  eps can decide (`decidable.py`); `finetune.{method}.null_intruders`: intruders from noise of
  the method's own update spectrum alone; `decidable.{trend,corr,diff}.*`: as above, of the
  restricted count; `base.*`: the base's spectral gaps and the decidable sets
  (`decidable.base_metrics`);
- `mitigation.lam{lam}.*` (`lam0p5`: lambda 0.5), `continual.{method}.t{i}.*`.

Every interval is a 95% percentile bootstrap (`lmlab.stats`): over seeds for a paired
difference (each seed's runs share their base model), over runs for a correlation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmlab.stats import Interval, bootstrap_ci, spearman

__all__ = ["continual_metrics", "key_number", "mitigation_metrics", "rho_interval",
           "single_metrics", "smol_metrics"]

PAPER = "Shuttleworth et al. 2024"
STAGE_KEYS = ("acc", "intruders", "forgetting", "dw_over_sigma_k_max", "dw_over_sigma_k_mean",
              "eff_rank_delta", "steps")
PER_SEED = ("acc", "intruders", "forgetting")
Z95 = 1.959964


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def key_number(x: float | str) -> str:
    """A number as one part of a dotted key: 0.5 -> `0p5`, 1.0 -> `1`."""
    return f"{float(x):g}".replace(".", "p")


def rho_interval(x: Sequence[float], y: Sequence[float], seed: int = 0) -> Interval:
    """Spearman's rho of (x, y) with its bootstrap interval over the pairs (a resample whose
    rho is undefined, e.g. constant, counts as 0: no evidence of a correlation)."""
    pts = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])

    def rho(a: np.ndarray) -> float:
        r, _ = spearman(a[:, 0], a[:, 1])
        return 0.0 if math.isnan(r) else r

    if len(pts) < 3:
        return Interval(math.nan, math.nan, math.nan)
    return bootstrap_ci(pts, rho, seed=seed)


def _put(m: dict[str, Any], key: str, iv: Interval) -> None:
    m[f"{key}.mean"], m[f"{key}.ci_lo"], m[f"{key}.ci_hi"] = iv.value, iv.lo, iv.hi


def _per_seed(results: list[dict[str, Any]], metric: str) -> dict[str, dict[int, float]]:
    """method -> seed index -> the first stage's `metric`."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in results:
        out[r["method"]][int(r.get("seed_index", 0))] = float(r["stages"][0][metric])
    return out


def _paired(a: dict[int, float], b: dict[int, float]) -> list[float]:
    return [a[s] - b[s] for s in sorted(a) if s in b]


def single_metrics(results: list[dict[str, Any]], target_acc: float, acc_band: float,
                   low_rank_max: int = 8) -> dict[str, Any]:
    """Per-method means (and per-seed values), rank trends, the intruders-forgetting
    correlation, and the paired differences the claims judge, each with its interval."""
    m: dict[str, Any] = {}
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_method[r["method"]].append(r)
    for name, rs in sorted(by_method.items()):
        p = f"finetune.{name}"
        stages = [r["stages"][0] for r in rs]
        for key in STAGE_KEYS:
            m[f"{p}.{key}"] = _mean([float(s[key]) for s in stages])
        if all("dw_over_sigma_k_median" in s for s in stages):
            m[f"{p}.dw_over_sigma_k_median"] = _mean(
                [float(s["dw_over_sigma_k_median"]) for s in stages])
        for r in sorted(rs, key=lambda r: int(r.get("seed_index", 0))):
            for key in PER_SEED:
                m[f"{p}.seed{int(r.get('seed_index', 0))}.{key}"] = float(r["stages"][0][key])
        sweeps = [s["sweep"] for s in stages if "sweep" in s]
        for e in sweeps[0] if len(sweeps) == len(stages) else ():
            m[f"{p}.intruders_eps{key_number(e)}"] = _mean([float(sw[e]) for sw in sweeps])
        m[f"{p}.lr"] = rs[0]["lr"]
        m[f"{p}.seeds"] = len(rs)
        if rs[0]["type"] == "lora":
            m[f"{p}.scaling"] = rs[0]["scaling"]
    # the count over the matrices where eps can decide (decidable.py), where measured
    restricted = [r for r in results if "intruders_decidable" in r["stages"][0]]
    for name, rs in sorted(by_method.items()):
        p = f"finetune.{name}"
        nulls = [float(x) for r in rs if (x := r["stages"][0].get("null_intruders")) is not None]
        if nulls:
            m[f"{p}.null_intruders"] = _mean(nulls)
        own = [r for r in rs if r in restricted]
        if own:
            m[f"{p}.intruders_decidable"] = _mean(
                [float(r["stages"][0]["intruders_decidable"]) for r in own])
            for r in own:
                m[f"{p}.seed{int(r.get('seed_index', 0))}.intruders_decidable"] = float(
                    r["stages"][0]["intruders_decidable"])
    m.update(_count_metrics(m, results, "intruders", "", target_acc, acc_band, low_rank_max))
    if restricted:
        m.update(_count_metrics(m, restricted, "intruders_decidable", "decidable.", target_acc,
                                acc_band, low_rank_max))
    return m


def _count_metrics(m: dict[str, Any], results: list[dict[str, Any]], count: str, prefix: str,
                   target_acc: float, acc_band: float, low_rank_max: int) -> dict[str, Any]:
    """Rank trends, the count-forgetting correlation and the paired differences of one count
    (`intruders`, or `intruders_decidable` under the key prefix `decidable.`)."""
    out: dict[str, Any] = {}
    # the count against rank, per alpha scheme (one point per run)
    for scheme in sorted({r["scheme"] for r in results if r["type"] == "lora"}):
        runs = [r for r in results if r["scheme"] == scheme]
        ranks = sorted({r["rank"] for r in runs})
        counts = [m[f"finetune.{scheme}.r{k}.{count}"] for k in ranks]
        iv = rho_interval([float(r["rank"]) for r in runs],
                          [float(r["stages"][0][count]) for r in runs])
        p = f"{prefix}trend.{scheme}"
        out[f"{p}.rho"], out[f"{p}.ci_lo"], out[f"{p}.ci_hi"] = iv.value, iv.lo, iv.hi
        out[f"{p}.runs"] = len(runs)
        out[f"{p}.lowest_rank_intruders"] = counts[0]
        out[f"{p}.highest_rank_intruders"] = counts[-1]
        out[f"{p}.highest_rank"] = ranks[-1]
    # at (about) equal accuracy: every run that reached the target band
    matched = [r["stages"][0] for r in results
               if r["stages"][0]["acc"] >= target_acc - acc_band]
    x = [float(s[count]) for s in matched]
    y = [float(s["forgetting"]) for s in matched]
    rho, pv = spearman(x, y)
    iv = rho_interval(x, y)
    c = f"{prefix}corr"
    out[f"{c}.rho"], out[f"{c}.p"], out[f"{c}.n"] = rho, pv, len(matched)
    out[f"{c}.ci_lo"], out[f"{c}.ci_hi"] = iv.lo, iv.hi
    out[f"{c}.runs"] = len(results)
    if matched:
        out[f"{c}.acc_min"] = min(s["acc"] for s in matched)
        out[f"{c}.acc_max"] = max(s["acc"] for s in matched)
    out.update(_differences(results, low_rank_max, count, prefix))
    return out


def _differences(results: list[dict[str, Any]], low_rank_max: int, count: str = "intruders",
                 prefix: str = "") -> dict[str, Any]:
    """Paired over seeds: low-rank LoRA (alpha = 2r, mean over r <= low_rank_max) minus full
    FT; the highest-rank rsLoRA minus full FT; low-rank LoRA minus that rsLoRA."""
    m: dict[str, Any] = {}
    counts = _per_seed(results, count)
    low = sorted(r["rank"] for r in results
                 if r["scheme"] == "alpha2r" and r["rank"] <= low_rank_max)
    low_names = [f"alpha2r.r{k}" for k in sorted(set(low))]
    seeds = sorted(set.intersection(*(set(counts[n]) for n in low_names))) if low_names else []
    lowrank = {s: _mean([counts[n][s] for n in low_names]) for s in seeds}
    full = counts.get("full", {})
    rs_ranks = sorted(r["rank"] for r in results if r["scheme"] == "rslora")
    rs = counts.get(f"rslora.r{rs_ranks[-1]}", {}) if rs_ranks else {}
    for key, a, b in (("lowrank_vs_full", lowrank, full), ("rslora_vs_full", rs, full),
                      ("lowrank_vs_rslora", lowrank, rs)):
        d = _paired(a, b)
        if d:
            _put(m, f"{prefix}diff.{key}", bootstrap_ci(d))
            m[f"{prefix}diff.{key}.seeds"] = len(d)
    if lowrank:
        m[f"{prefix}diff.lowrank.ranks"] = ",".join(str(k) for k in sorted(set(low)))
    return m


def smol_metrics(results: list[dict[str, Any]], low_rank_max: int = 8) -> dict[str, Any]:
    """The `smol` experiment's single-task metrics beside `single_metrics`: update sizes per
    matrix kind, and with one seed, the differences the claims judge with intervals over the
    model's matrices instead of over seeds.

    - `finetune.{method}.dw.{kind}.{median,max}`: ||dW||_2 / sigma_k over the kind's matrices
      (`q_proj` ... `down_proj`); `finetune.{method}.val_acc`: the validation accuracy;
    - `diff.{lowrank_vs_full,rslora_vs_full,lowrank_vs_rslora}.*`: per matrix, the count of one
      method minus the other's (low-rank: the mean over alpha = 2r, r <= low_rank_max); the
      per-model difference is their sum, its interval a bootstrap over the matrices;
    - `trend.alpha2r.drop.*`: the lowest rank's count minus the highest's, the same way;
    - `smol.matched.max_gap`: the largest |LoRA accuracy - full FT's| (test split).

    An interval over matrices says whether the difference is spread over the model's matrices
    or carried by a few; with one seed it cannot say whether another seed's training run would
    give the same counts.
    """
    m: dict[str, Any] = {"diff.over": "matrices"}
    if not results:
        return m
    first = {r["method"]: r["stages"][0] for r in results}
    for name, s in first.items():
        for kind, (med, top) in sorted(s.get("dw_kind", {}).items()):
            m[f"finetune.{name}.dw.{kind}.median"], m[f"finetune.{name}.dw.{kind}.max"] = med, top
        if "val_acc" in s:
            m[f"finetune.{name}.val_acc"] = float(s["val_acc"])
    full = first.get("full")
    if full is not None:
        gaps = [abs(float(s["acc"]) - float(full["acc"])) for n, s in first.items() if n != "full"]
        if gaps:
            m["smol.matched.max_gap"] = max(gaps)
    names = list(next(iter(first.values()))["per_matrix"])

    def counts(method: str) -> np.ndarray:
        return np.array([float(first[method]["per_matrix"][n]) for n in names])

    low = sorted({r["rank"] for r in results if r["scheme"] == "alpha2r"
                  and r["rank"] <= low_rank_max})
    rs = sorted({r["rank"] for r in results if r["scheme"] == "rslora"})
    lowrank = np.mean([counts(f"alpha2r.r{k}") for k in low], axis=0) if low else None
    rsl = counts(f"rslora.r{rs[-1]}") if rs else None
    full_c = counts("full") if full is not None else None
    for key, a, b in (("lowrank_vs_full", lowrank, full_c), ("rslora_vs_full", rsl, full_c),
                      ("lowrank_vs_rslora", lowrank, rsl)):
        if a is not None and b is not None:
            _put(m, f"diff.{key}", bootstrap_ci(a - b, np.sum))
            m[f"diff.{key}.matrices"] = len(names)
    if low:
        m["diff.lowrank.ranks"] = ",".join(str(k) for k in low)
    ranks = sorted({r["rank"] for r in results if r["scheme"] == "alpha2r"})
    if len(ranks) >= 2:
        _put(m, "trend.alpha2r.drop",
             bootstrap_ci(counts(f"alpha2r.r{ranks[0]}") - counts(f"alpha2r.r{ranks[-1]}"),
                          np.sum))
    return m


def mitigation_metrics(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, forgetting and intruders at each lambda (means over the runs that swept it),
    and per lambda < 1 the cut in forgetting and the drop in accuracy against lambda = 1, paired
    over seeds, the cut with its interval."""
    m: dict[str, Any] = {}
    rows: dict[float, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in results:
        for row in r.get("mitigation", []):
            rows[float(row["lam"])][int(r.get("seed_index", 0))] = row
    for lam, by_seed in sorted(rows.items()):
        p = f"mitigation.lam{key_number(lam)}"
        for key in ("acc", "forgetting", "intruders", "flagged"):
            m[f"{p}.{key}"] = _mean([float(x[key]) for x in by_seed.values()])
    base = rows.get(1.0, {})
    for lam, by_seed in sorted(rows.items()):
        seeds = [s for s in sorted(by_seed) if s in base]
        if lam >= 1.0 or not seeds:
            continue
        p = f"mitigation.lam{key_number(lam)}"
        cut = [float(base[s]["forgetting"]) - float(by_seed[s]["forgetting"]) for s in seeds]
        iv = bootstrap_ci(cut)
        m[f"{p}.forgetting_cut"], m[f"{p}.forgetting_cut_ci_lo"] = iv.value, iv.lo
        m[f"{p}.forgetting_cut_ci_hi"] = iv.hi
        m[f"{p}.acc_drop"] = _mean([float(base[s]["acc"]) - float(by_seed[s]["acc"])
                                    for s in seeds])
    if rows:
        m["mitigation.method"] = next(r["method"] for r in results if r.get("mitigation"))
        m["mitigation.seeds"] = len(base)
    return m


def _label_acc(stage: dict[str, Any], task: str) -> float:
    """Accuracy on `task` among its own label tokens (over the whole vocabulary if not measured)."""
    return float(stage.get("label_accs", stage["accs"])[task])


def continual_metrics(results: list[dict[str, Any]], n_test: int = 0) -> dict[str, Any]:
    """Per method: after each task, cumulative intruders, forgetting, accuracy on earlier tasks
    (`first_task_final_acc` among the first task's labels; `_vocab`: over the whole vocabulary).

    Against full FT, each LoRA method's first-task accuracy gap `gap_vs_full` (full minus LoRA)
    with a 95% interval for a difference of two proportions over the test examples (`n_test`
    per seed, pooled over the seeds), and whether intruders grew in every run (`accumulates`).
    """
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
            m[f"{p}.first_task_acc"] = _mean([_label_acc(s, tasks[0]) for s in st])
            if i:  # earlier tasks scored among their own labels (a head per task)
                m[f"{p}.earlier_acc"] = _mean([
                    _mean([_label_acc(s, t) for t in tasks[:i]]) for s in st])
        last = [r["stages"][-1] for r in rs]
        m[f"continual.{name}.first_task_final_acc"] = _mean([_label_acc(s, tasks[0])
                                                             for s in last])
        m[f"continual.{name}.first_task_final_acc_vocab"] = _mean([s["accs"][tasks[0]]
                                                                   for s in last])
        m[f"continual.{name}.accumulates"] = float(all(
            r["stages"][-1]["intruders"] > r["stages"][0]["intruders"] for r in rs))
        m[f"continual.{name}.seeds"] = len(rs)
    full = m.get("continual.full.first_task_final_acc")
    if full is not None and n_test > 0:
        m["continual.n_test"] = n_test
        n_full = n_test * len(by_method["full"])
        for name in sorted(by_method):
            if name == "full":
                continue
            acc = m[f"continual.{name}.first_task_final_acc"]
            n = n_test * len(by_method[name])
            gap = full - acc
            se = math.sqrt(full * (1 - full) / n_full + acc * (1 - acc) / n)
            p = f"continual.{name}"
            m[f"{p}.gap_vs_full"] = gap
            m[f"{p}.gap_vs_full_ci_lo"], m[f"{p}.gap_vs_full_ci_hi"] = gap - Z95 * se, gap + Z95 * se
    return m
