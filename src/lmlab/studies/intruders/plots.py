"""The study's own figures: intruders against rank, forgetting against intruders, the lambda
sweep, continual-learning curves. (Per-model figures, such as the cosine-similarity matrices,
are the tooling's, in `figures.py`.)"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from matplotlib.figure import Figure

from lmlab.plotting import pyplot

plt = pyplot()  # the Agg backend, chosen in one place (lmlab.plotting)

__all__ = ["continual_curves", "forgetting_vs_intruders", "intruders_vs_rank", "lambda_sweep",
           "spectral_gaps", "update_sizes"]


def intruders_vs_rank(results: list[dict[str, Any]]) -> Figure:
    """Mean intruders (all linear layers) against LoRA rank, one line per alpha scheme."""
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    per: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    full = []
    for r in results:
        count = float(r["stages"][0]["intruders"])
        if r["type"] == "full":
            full.append(count)
        else:
            per[r["scheme"]][r["rank"]].append(count)
    for scheme, by_rank in sorted(per.items()):
        ranks = sorted(by_rank)
        ax.plot(ranks, [sum(by_rank[k]) / len(by_rank[k]) for k in ranks], marker="o",
                label=scheme)
    if full:
        ax.axhline(sum(full) / len(full), color="k", ls="--", lw=1, label="full FT")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("LoRA rank r")
    ax.set_ylabel("intruder dimensions per model")
    ax.set_title("intruders against rank (mean over seeds)", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def forgetting_vs_intruders(results: list[dict[str, Any]]) -> Figure:
    """One point per run: intruders against forgetting, coloured by method family."""
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in results:
        s = r["stages"][0]
        label = "full FT" if r["type"] == "full" else f"LoRA {r['scheme']}"
        groups[label].append((float(s["intruders"]), float(s["forgetting"])))
    for label, pts in sorted(groups.items()):
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, label=label, alpha=0.8)
    ax.set_xlabel("intruder dimensions")
    ax.set_ylabel("forgetting (rise in held-out LM loss)")
    ax.set_title("forgetting against intruders (one point per run)", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def lambda_sweep(results: list[dict[str, Any]]) -> Figure:
    """Task accuracy and forgetting against the mitigation's lambda (means over runs)."""
    rows: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        for row in r.get("mitigation", []):
            rows[float(row["lam"])].append(row)
    lams = sorted(rows)
    acc = [sum(x["acc"] for x in rows[lam]) / len(rows[lam]) for lam in lams]
    forget = [sum(x["forgetting"] for x in rows[lam]) / len(rows[lam]) for lam in lams]
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    ax.plot(lams, acc, marker="o", color="C0", label="task accuracy")
    ax.set_xlabel("lambda (1 = unchanged, 0 = intruders removed)")
    ax.set_ylabel("task accuracy", color="C0")
    ax2 = ax.twinx()
    ax2.plot(lams, forget, marker="s", color="C3", label="forgetting")
    ax2.set_ylabel("forgetting", color="C3")
    ax.set_title("mitigation: scaling intruders by lambda", fontsize=9)
    return fig


def continual_curves(results: list[dict[str, Any]]) -> Figure:
    """Per method, after each task: first-task accuracy and cumulative intruders."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8.4, 3.3))
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_method[r["method"]].append(r)
    for name, rs in sorted(by_method.items()):
        tasks = rs[0]["tasks"]
        xs = list(range(1, len(tasks) + 1))
        acc = [sum(r["stages"][i].get("label_accs", r["stages"][i]["accs"])[tasks[0]]
                   for r in rs) / len(rs) for i in range(len(xs))]
        intr = [sum(r["stages"][i]["intruders"] for r in rs) / len(rs) for i in range(len(xs))]
        a1.plot(xs, acc, marker="o", label=name)
        a2.plot(xs, intr, marker="o", label=name)
    a1.set_xlabel("tasks learnt")
    a1.set_ylabel("first-task accuracy (among its labels)")
    a2.set_xlabel("tasks learnt")
    a2.set_ylabel("cumulative intruder dimensions")
    a1.legend(fontsize=7)
    fig.suptitle("continual learning", fontsize=9)
    return fig


def spectral_gaps(gaps: dict[int, dict[str, dict[str, Any]]], sets: dict[int, list[str]],
                  results: list[dict[str, Any]], eps: float) -> Figure:
    """Left: each base matrix's gaps sigma_i / sigma_i+1 over the detector's top-k region, one
    dot per gap and seed, red where the matrix is undecidable on that seed. Right: per matrix,
    intruders summed over seeds of full FT and of the lowest-rank alpha = 2r LoRA, and the
    null count of full FT's update size (mean over draws, summed over seeds)."""
    from lmlab.studies.intruders.decidable import short_name

    names = list(next(iter(gaps.values()))) if gaps else []
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 3.6), layout="constrained")
    for x, n in enumerate(names):
        for i, g in gaps.items():
            bad = i in sets and n not in sets[i]
            ys = g[n]["gaps"]
            a1.scatter([x + 0.08 * (i - 1)] * len(ys), ys, s=9, alpha=0.7,
                       color="C3" if bad else "C0")
    a1.axhline(1.0, color="grey", lw=0.6)
    a1.set_xticks(range(len(names)), [short_name(n) for n in names], rotation=60, fontsize=7)
    a1.set_ylabel("base gap sigma_i / sigma_i+1 (i = 1..k)")
    a1.set_title("base spectral gaps (red: eps cannot decide on that seed)", fontsize=9)
    lora = [r for r in results if r["scheme"] == "alpha2r"]
    low = min((r["rank"] for r in lora), default=None)
    rows = [("full FT", [r for r in results if r["type"] == "full"]),
            (f"LoRA alpha=2r r={low}", [r for r in lora if r["rank"] == low])]
    width = 0.38
    for j, (label, rs) in enumerate(rows):
        ys = [sum(r["stages"][0]["per_matrix"].get(n, 0) for r in rs) for n in names]
        a2.bar([x + (j - 0.5) * width for x in range(len(names))], ys, width, label=label,
               color=f"C{j}")
    null = [sum(sum(c) / len(c) for r in rows[0][1]
                if (c := (r["stages"][0].get("null_counts") or {}).get(n))) for n in names]
    a2.plot(range(len(names)), null, "k_", markersize=12, mew=2,
            label="null: full FT's update size in random directions")
    a2.set_xticks(range(len(names)), [short_name(n) for n in names], rotation=60, fontsize=7)
    a2.set_ylabel(f"intruders (eps = {eps:g}), summed over seeds")
    a2.set_title("intruders per matrix against the null", fontsize=9)
    a2.legend(fontsize=7)
    return fig


def update_sizes(results: list[dict[str, Any]]) -> Figure:
    """Per method and matrix kind, ||dW||_2 / sigma_k (median over the kind's matrices, the bar's
    top; the maximum, a tick), with the method's intruders in its legend label: whether the
    updates were large enough for intruders (about 1 and above) or not."""
    fig, ax = plt.subplots(figsize=(7.4, 3.4), layout="constrained")
    kinds = sorted({k for r in results for k in r["stages"][0]["dw_kind"]},
                   key=lambda k: ("q", "k", "v", "o", "g", "u", "d").index(k[0])
                   if k[0] in "qkvogud" else 9)
    width = 0.8 / max(len(results), 1)
    for j, r in enumerate(results):
        s = r["stages"][0]
        xs = [x + (j - (len(results) - 1) / 2) * width for x in range(len(kinds))]
        med = [s["dw_kind"].get(k, [0.0, 0.0])[0] for k in kinds]
        top = [s["dw_kind"].get(k, [0.0, 0.0])[1] for k in kinds]
        ax.bar(xs, med, width, color=f"C{j}",
               label=f"{r['method']} ({s['intruders']} intruders, acc {s['acc']:.2f})")
        ax.plot(xs, top, "_", color=f"C{j}", markersize=9, mew=2)
    ax.axhline(1.0, color="grey", lw=0.7, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(range(len(kinds)), kinds, fontsize=8)
    ax.set_ylabel("||dW||_2 / sigma_k (bar: median, tick: max)")
    ax.set_title("update size against the base's k-th singular value, per matrix kind", fontsize=9)
    ax.legend(fontsize=6)
    return fig
