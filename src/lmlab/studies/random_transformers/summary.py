"""From job results to the study's flat metrics and figures."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from lmlab.stats import Interval, bootstrap_ci, bootstrap_diff, median, spearman
from lmlab.studies.random_transformers.analysis import bits_per_parameter, paired_ratio_interval
from lmlab.studies.random_transformers.config import RandomTransformersConfig

__all__ = ["SATURATED", "group_results", "summarize"]

SATURATED = 0.9  # memorization accuracy above which capacity is not measured (the table is full)


def summarize(c: RandomTransformersConfig, results: list[dict[str, Any]], run: Any = None,
              corpus: str | None = None,
              also_frozen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Flat dotted metrics (medians over seeds, per-seed values, intervals) from the job results;
    figures go to `run`. `corpus` is the language-modelling corpus actually used; `also_frozen`
    are results of other experiments (the width sweep) whose models the freeze check covers
    too, and the job totals count."""
    m: dict[str, Any] = {}
    groups = group_results(results)
    for (task, mode, width), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if task == "memorize":
            continue
        prefix = f"{task}.{mode}.d{width}"
        m[f"{prefix}.acc"] = median(r["test_acc"] for r in rs)
        m[f"{prefix}.acc_min"] = min(r["test_acc"] for r in rs)
        for r in rs:
            m[f"{prefix}.acc.seed{r['replicate']}"] = r["test_acc"]
        if "val_acc" in rs[0]:
            m[f"{prefix}.val_acc"] = median(r["val_acc"] for r in rs)
        m[f"{prefix}.seeds"] = len(rs)
        m[f"{prefix}.steps"] = median(r["steps_done"] for r in rs)
        if "test_loss" in rs[0]:
            m[f"{prefix}.loss"] = median(r["test_loss"] for r in rs)
        m[f"{task}.majority.acc"] = rs[0]["majority_acc"]
    _grid_comparisons(c, groups, m)
    _freeze([*results, *(also_frozen or [])], m)
    _memorization(c, groups, m)
    _analyses(c, results, m)
    _imitation(results, m)
    if corpus is not None:
        _language(c, corpus, groups, m)
    every = [*results, *(also_frozen or [])]
    m["jobs.count"] = len(every)
    m["jobs.wall_s"] = round(sum(r.get("wall_s", 0.0) for r in every), 1)
    m["jobs.cpu_s"] = round(sum(r.get("cpu_s", 0.0) for r in every), 1)
    if run is not None:
        _figures(c, results, m, run)
    return m


def _put(m: dict[str, Any], prefix: str, name: str, iv: Interval) -> None:
    m[f"{prefix}.{name}"], m[f"{prefix}.ci_lo"], m[f"{prefix}.ci_hi"] = iv.value, iv.lo, iv.hi


def _by_replicate(rs: list[dict[str, Any]], key: str = "test_acc") -> dict[int, float]:
    return {r["replicate"]: r[key] for r in rs}


def _grid_comparisons(c: RandomTransformersConfig, groups: dict[tuple[Any, ...], list[Any]],
                      m: dict[str, Any]) -> None:
    """Intervals (bootstrap over seeds) of the grid's comparisons: random wide minus random
    narrow (paired by seed), wide minus 5x narrow, and random minus fully trained at the widest
    width (independent: the two modes may have different numbers of seeds)."""
    wide, narrow = max(c.grid.widths), min(c.grid.widths)
    for task in c.tasks:
        w = _by_replicate(groups.get((task, "random", wide), []))
        n = _by_replicate(groups.get((task, "random", narrow), []))
        both = sorted(set(w) & set(n))
        if wide != narrow and len(both) >= 2:
            a, b = [w[i] for i in both], [n[i] for i in both]
            _put(m, f"{task}.random.width_gain", "diff", bootstrap_diff(a, b, paired=True))
            _put(m, f"{task}.random.width_gain_5x", "diff",
                 bootstrap_diff(a, [5 * x for x in b], paired=True))
        f = list(_by_replicate(groups.get((task, "full", wide), [])).values())
        if len(w) >= 2 and f:
            _put(m, f"{task}.random_minus_full.d{wide}", "diff",
                 bootstrap_diff(list(w.values()), f, paired=False))


def _freeze(results: list[dict[str, Any]], m: dict[str, Any]) -> None:
    """The freeze invariants over every partially frozen transformer."""
    frozen = [r for r in results if r.get("frozen_identical") is not None]
    if frozen:
        m["freeze.frozen_identical"] = int(all(r["frozen_identical"] for r in frozen))
        exp = [r for r in frozen if r.get("expected_trainable") is not None]
        m["freeze.trainable_exact"] = int(all(r["n_trainable"] == r["expected_trainable"]
                                              for r in exp))
        m["freeze.models_checked"] = len(frozen)


def _correct(rs: list[dict[str, Any]], n: int) -> dict[int, np.ndarray]:
    return {r["replicate"]: np.unpackbits(np.frombuffer(r["correct_bits"], np.uint8))[:n]
            .astype(bool) for r in rs}


def _memorization(c: RandomTransformersConfig, groups: dict[tuple[Any, ...], list[Any]],
                  m: dict[str, Any]) -> None:
    """Bits per trainable parameter of each mode, and the full/random ratio with a paired
    bootstrap interval over the table's entries (both modes learn the same table)."""
    mc = c.memorize
    size = mc.n * mc.n
    pre = f"memorize.{{mode}}.d{mc.width}"
    params = {}
    for mode in ("random", "full"):
        rs = groups.get(("memorize", mode, mc.width), [])
        if rs:
            p = pre.format(mode=mode)
            acc = median(r["test_acc"] for r in rs)
            params[mode] = rs[0]["n_trainable"]
            m[f"{p}.acc"] = acc
            m[f"{p}.n_trainable"] = params[mode]
            m[f"{p}.saturated"] = int(acc >= SATURATED)
            m[f"{p}.bits_per_param"] = bits_per_parameter(round(acc * size), mc.labels,
                                                          params[mode])
    if len(params) == 2:
        cf = _correct(groups[("memorize", "full", mc.width)], size)
        cr = _correct(groups[("memorize", "random", mc.width)], size)
        both = sorted(set(cf) & set(cr))
        if both:
            ratio, lo, hi = paired_ratio_interval(
                np.concatenate([cf[i] for i in both]), np.concatenate([cr[i] for i in both]),
                params["random"] / params["full"])
            p = f"memorize.full_over_random.d{mc.width}"
            m[f"{p}.ratio"], m[f"{p}.ci_lo"], m[f"{p}.ci_hi"] = ratio, lo, hi


def _analyses(c: RandomTransformersConfig, results: list[dict[str, Any]],
              m: dict[str, Any]) -> None:
    """Subspace concentration of the widest random models, and the needle heads."""
    wide = max(c.grid.widths)
    gaps, los = [], []
    for r in results:
        for key in [k for k in r if k.startswith("pca10_l")]:
            layer = key.removeprefix("pca10_l")
            p = f"{r['task']}.random.d{r['width']}.l{layer}"
            m[f"{p}.pca10"] = r[key]
            m[f"{p}.neuron10"] = r[f"neuron10_l{layer}"]
            m[f"{p}.gap_ci_lo"], m[f"{p}.gap_ci_hi"] = r[f"gap10_l{layer}"]
            gaps.append(r[key] - r[f"neuron10_l{layer}"])
            los.append(r[f"gap10_l{layer}"][0])
        if "attn_l0_value_to_marker" in r:
            for key in [k for k in r if k.startswith("attn_l")]:
                layer, score = key.removeprefix("attn_l").split("_", 1)
                m[f"needle.random.d{r['width']}.l{layer}.{score}_max"] = max(r[key])
    if gaps:
        m[f"subspace.random.d{wide}.min_gap"] = min(gaps)
        m[f"subspace.random.d{wide}.min_gap_ci_lo"] = min(los)


def _imitation(results: list[dict[str, Any]], m: dict[str, Any]) -> None:
    """KL per student mode and teacher width (medians, per seed), and the trend of KL with
    teacher width: Spearman over every (width, seed) point with a bootstrap interval."""
    imit: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if "teacher_width" in r:
            imit[(r["mode"], r["teacher_width"])].append(r)
            m[f"imitation.uniform.t{r['teacher_width']}.kl"] = r["uniform_kl"]
    for (mode, tw), rs in sorted(imit.items()):
        m[f"imitation.{mode}.t{tw}.kl"] = median(r["test_kl"] for r in rs)
        for r in rs:
            m[f"imitation.{mode}.t{tw}.kl.seed{r['replicate']}"] = r["test_kl"]
    for mode in sorted({mode for mode, _ in imit}):
        pts = [(math.log2(tw), r["test_kl"]) for (md, tw), rs in imit.items() if md == mode
               for r in rs]
        if len({x for x, _ in pts}) >= 2 and len(pts) >= 3:
            iv = bootstrap_ci(np.array(pts), _rank_correlation)
            _put(m, f"imitation.{mode}.trend", "spearman", iv)
            m[f"imitation.{mode}.trend.points"] = len(pts)


def _rank_correlation(xy: np.ndarray) -> float:
    """Spearman's rho of the two columns; 0 (no trend) where it is undefined (a constant
    column in a resample)."""
    rho, _ = spearman(xy[:, 0], xy[:, 1])
    return 0.0 if math.isnan(rho) else rho


def _language(c: RandomTransformersConfig, corpus: str,
              groups: dict[tuple[Any, ...], list[Any]], m: dict[str, Any]) -> None:
    """Random against fully trained at each width, and random narrow against random wide:
    differences of the held-out loss with paired bootstrap intervals over the test windows
    (each window's loss averaged over seeds)."""
    m["lm.corpus"] = corpus
    m["lm.corpus_requested"] = c.lm.corpus
    m["lm.fallback"] = int(corpus != c.lm.corpus)

    def windows(mode: str, w: int) -> np.ndarray | None:
        rs = groups.get((corpus, mode, w), [])
        return np.mean([r["window_losses"] for r in rs], 0) if rs else None

    widths = sorted(c.lm.widths)
    for w in widths:
        r, f = windows("random", w), windows("full", w)
        if r is not None and f is not None:
            _put(m, f"{corpus}.random_minus_full.d{w}", "loss", bootstrap_diff(r, f, paired=True))
    lo, hi = (windows("random", widths[0]), windows("random", widths[-1])) if widths else \
        (None, None)
    if lo is not None and hi is not None and len(widths) >= 2:
        _put(m, f"{corpus}.random.width_gain", "loss", bootstrap_diff(lo, hi, paired=True))


def _figures(c: RandomTransformersConfig, results: list[dict[str, Any]], m: dict[str, Any],
             run: Any) -> None:
    from lmlab.plotting import pyplot

    plt = pyplot()

    tasks = [t for t in c.tasks if any(k.startswith(f"{t}.") for k in m)]
    if tasks:
        fig, ax = plt.subplots(figsize=(1.8 * len(tasks) + 2, 3.2))
        bars = [(mode, w) for mode in c.grid.modes for w in c.grid.widths]
        width = 0.8 / max(len(bars), 1)
        for i, (mode, w) in enumerate(bars):
            ys = [m.get(f"{t}.{mode}.d{w}.acc", float("nan")) for t in tasks]
            ax.bar([j + i * width for j in range(len(tasks))], ys, width, label=f"{mode} d={w}")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks))], tasks)
        ax.set_ylabel("held-out accuracy (median over seeds)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        run.save_figure(fig, "accuracy")
    _curves_figure(c, results, run)
    ex = next((r["attn_example"] for r in results if "attn_example" in r), None)
    if ex is not None:
        pats = ex["patterns"]
        nh = len(pats[0])
        fig, axes = plt.subplots(len(pats), nh, figsize=(2.2 * nh, 2.2 * len(pats)),
                                 squeeze=False)
        for layer, heads in enumerate(pats):
            for h, pat in enumerate(heads):
                axes[layer][h].imshow(pat, cmap="viridis", vmin=0, vmax=1)
                axes[layer][h].set_title(f"layer {layer} head {h}", fontsize=8)
                axes[layer][h].axis("off")
        fig.suptitle("needle: attention of the widest random transformer (one example)")
        run.save_figure(fig, "needle_attention")
    imit = sorted({r["teacher_width"] for r in results if "teacher_width" in r})
    if imit:
        fig, ax = plt.subplots(figsize=(4, 3))
        for mode in (*c.imitation.modes, "uniform"):
            ax.plot(imit, [m.get(f"imitation.{mode}.t{w}.kl", float("nan")) for w in imit],
                    marker="o", label=mode)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("teacher width")
        ax.set_ylabel("KL(teacher || student), nats")
        ax.legend(fontsize=7)
        run.save_figure(fig, "imitation_kl")
    corpus = m.get("lm.corpus")
    if isinstance(corpus, str) and any(k.startswith(f"{corpus}.") for k in m):
        widths = sorted(c.lm.widths)
        fig, ax = plt.subplots(figsize=(4, 3))
        for mode in c.lm.modes:
            ax.plot(widths, [m.get(f"{corpus}.{mode}.d{w}.loss", float("nan")) for w in widths],
                    marker="o", label=mode)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width")
        ax.set_ylabel(f"held-out loss on {corpus}, nats")
        ax.legend(fontsize=7)
        run.save_figure(fig, "lm_width")


def _curves_figure(c: RandomTransformersConfig, results: list[dict[str, Any]], run: Any) -> None:
    """Validation accuracy against step, one panel per task, every model of the widest width:
    where the curves are flat, more steps buy nothing (how the preset's step counts are read)."""
    wide = max(c.grid.widths)
    tasks = [t for t in c.tasks if any(r.get("task") == t and r.get("val_curve") for r in results)]
    if not tasks:
        return
    from lmlab.plotting import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(3 * len(tasks), 2.8), squeeze=False)
    colors = {"random": "tab:blue", "full": "tab:orange"}
    for ax, task in zip(axes[0], tasks, strict=True):
        for r in results:
            if r.get("task") == task and r.get("width") == wide and r.get("val_curve"):
                steps, accs = zip(*r["val_curve"], strict=True)
                ax.plot(steps, accs, color=colors.get(r["mode"], "gray"), lw=1,
                        label=f"{r['mode']} s{r['replicate']}")
        ax.set_title(f"{task}, d={wide}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("validation accuracy")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    run.save_figure(fig, "validation_curves")


def group_results(results: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Results grouped by (task, mode, width)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if "task" in r:
            groups[(r["task"], r["mode"], r["width"])].append(r)
    return groups
