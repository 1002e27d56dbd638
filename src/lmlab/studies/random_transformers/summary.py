"""From job results to the study's flat metrics, figures and computed claims."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lmlab.studies.random_transformers.analysis import bits_per_parameter, median
from lmlab.studies.random_transformers.study import (
    ALGO_TASKS,
    RandomTransformersConfig,
    group_results,
)
from lmlab.study import Claim

__all__ = ["claims", "summarize"]

SATURATED = 0.9  # memorization accuracy above which capacity is not measured (the table is full)


def summarize(c: RandomTransformersConfig, results: list[dict[str, Any]], run: Any = None
              ) -> dict[str, Any]:
    """Flat metrics (medians over seeds) from the job results; figures go to `run`."""
    m: dict[str, Any] = {}
    groups = group_results(results)
    for (task, mode, width), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if task == "memorize":
            continue
        prefix = f"{task}.{mode}.d{width}"
        m[f"{prefix}.acc"] = median(r["test_acc"] for r in rs)
        m[f"{prefix}.acc_min"] = min(r["test_acc"] for r in rs)
        m[f"{prefix}.seeds"] = len(rs)
        m[f"{prefix}.steps"] = median(r["steps_done"] for r in rs)
        if "test_loss" in rs[0]:
            m[f"{prefix}.loss"] = median(r["test_loss"] for r in rs)
        m[f"{task}.majority_acc"] = rs[0]["majority_acc"]
    # freeze invariants over every partially frozen transformer
    frozen = [r for r in results if r.get("frozen_identical") is not None]
    if frozen:
        m["freeze.frozen_identical"] = int(all(r["frozen_identical"] for r in frozen))
        exp = [r for r in frozen if r.get("expected_trainable") is not None]
        m["freeze.trainable_exact"] = int(all(r["n_trainable"] == r["expected_trainable"]
                                              for r in exp))
        m["freeze.models_checked"] = len(frozen)
    # memorization
    for mode in ("random", "full"):
        rs = groups.get(("memorize", mode, c.mem_width), [])
        if rs:
            acc = median(r["test_acc"] for r in rs)
            n_correct = round(acc * c.mem_n * c.mem_n)
            m[f"memorize.{mode}.acc"] = acc
            m[f"memorize.{mode}.n_trainable"] = rs[0]["n_trainable"]
            m[f"memorize.{mode}.saturated"] = int(acc >= SATURATED)
            m[f"memorize.{mode}.bits_per_param"] = bits_per_parameter(
                n_correct, c.mem_labels, rs[0]["n_trainable"])
    # analyses of the widest random models
    gaps = []
    for r in results:
        for key in [k for k in r if k.startswith("pca10_l")]:
            layer = key.removeprefix("pca10_l")
            m[f"subspace.{r['task']}.l{layer}.pca10"] = r[key]
            m[f"subspace.{r['task']}.l{layer}.neuron10"] = r[f"neuron10_l{layer}"]
            gaps.append(r[key] - r[f"neuron10_l{layer}"])
        if "attn_l0_value_to_marker" in r:
            for key in [k for k in r if k.startswith("attn_l")]:
                m[f"needle.{key.removeprefix('attn_')}_max"] = max(r[key])
    if gaps:
        m["subspace.min_gap"] = min(gaps)
    # imitation
    imit: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in results:
        if "teacher_width" in r:
            imit[(r["mode"], r["teacher_width"])].append(r["test_kl"])
            m[f"imitation.uniform.t{r['teacher_width']}.kl"] = r["uniform_kl"]
    for (mode, tw), kls in sorted(imit.items()):
        m[f"imitation.{mode}.t{tw}.kl"] = median(kls)
    m["jobs"] = len(results)
    m["jobs_wall_s"] = round(sum(r.get("wall_s", 0.0) for r in results), 1)
    m["jobs_cpu_s"] = round(sum(r.get("cpu_s", 0.0) for r in results), 1)
    if run is not None:
        _figures(c, results, m, run)
    return m


def _figures(c: RandomTransformersConfig, results: list[dict[str, Any]], m: dict[str, Any],
             run: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in c.tasks if any(k.startswith(f"{t}.") for k in m)]
    if tasks:
        fig, ax = plt.subplots(figsize=(1.8 * len(tasks) + 2, 3.2))
        bars = [(mode, w) for mode in c.modes for w in c.widths]
        width = 0.8 / max(len(bars), 1)
        for i, (mode, w) in enumerate(bars):
            ys = [m.get(f"{t}.{mode}.d{w}.acc", float("nan")) for t in tasks]
            ax.bar([j + i * width for j in range(len(tasks))], ys, width, label=f"{mode} d={w}")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks))], tasks)
        ax.set_ylabel("held-out accuracy (median over seeds)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        run.save_figure(fig, "accuracy")
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
        for mode in (*c.imit_modes, "uniform"):
            ax.plot(imit, [m.get(f"imitation.{mode}.t{w}.kl", float("nan")) for w in imit],
                    marker="o", label=mode)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("teacher width")
        ax.set_ylabel("KL(teacher || student), nats")
        ax.legend(fontsize=7)
        run.save_figure(fig, "imitation_kl")


def _get(m: dict[str, Any], key: str) -> float | None:
    v = m.get(key)
    return None if v is None or v != v else float(v)


def claims(c: RandomTransformersConfig, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims, each computed from the metrics (None: this preset cannot test it)."""
    wide, narrow = max(c.widths), min(c.widths)
    out: list[Claim] = []

    def acc(task: str, mode: str, w: int) -> float | None:
        return _get(m, f"{task}.{mode}.d{w}.acc")

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
    br, bf = _get(m, "memorize.random.bits_per_param"), _get(m, "memorize.full.bits_per_param")
    ar, af = _get(m, "memorize.random.acc"), _get(m, "memorize.full.acc")
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
    gap = _get(m, "subspace.min_gap")
    out.append(Claim.check(
        "subspace",
        f"in random d={wide} models the top-10 principal components explain at least 0.10 more "
        "of the variance than the top-10 neurons, at every layer",
        "Tables 4-5: variance concentrates in a few PCs not aligned with neurons",
        None if gap is None else f"smallest gap {gap:.3f}",
        None if gap is None or wide <= 10 else gap >= 0.10))
    # Imitation.
    tws = sorted(c.teacher_widths)
    kl_lo = _get(m, f"imitation.random.t{tws[0]}.kl") if tws else None
    kl_hi = _get(m, f"imitation.random.t{tws[-1]}.kl") if tws else None
    out.append(Claim.check(
        "imitation-kl",
        f"the random student's KL rises with teacher width ({tws[0] if tws else '?'} -> "
        f"{tws[-1] if tws else '?'})",
        "Fig. 6: KL rises steeply with target width",
        None if kl_lo is None or kl_hi is None else f"{kl_lo:.4f} -> {kl_hi:.4f}",
        None if kl_lo is None or kl_hi is None or len(tws) < 2 else kl_hi > kl_lo))
    # Freeze invariants.
    fi, te = _get(m, "freeze.frozen_identical"), _get(m, "freeze.trainable_exact")
    out.append(Claim.check(
        "freeze", "random mode trains only V*d + P*d + d*V parameters and leaves every other "
        "tensor bit-identical", "Sec. 2 (method)",
        None if fi is None else f"identical={int(fi)} exact_count={int(te or 0)}",
        None if fi is None else bool(fi) and bool(te)))
    # Language modelling: width helps random models.
    lw = sorted(c.lm_widths)
    lo = _get(m, f"{c.lm_corpus}.random.d{lw[0]}.loss") if lw else None
    hi = _get(m, f"{c.lm_corpus}.random.d{lw[-1]}.loss") if lw else None
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
