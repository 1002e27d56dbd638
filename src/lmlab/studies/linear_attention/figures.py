"""The study's figures: error against model (a), certificate against recovery (b), DFA accuracy (c)."""

from __future__ import annotations

from typing import Any

from lmlab.stats import median

__all__ = ["figure_dfa", "figure_memory", "figure_teacher"]


def figure_teacher(run: Any, table: dict[int, dict[str, list[float]]]) -> None:
    from lmlab.plotting import pyplot

    plt = pyplot()

    dims = sorted(table)
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4), squeeze=False)
    for ax, d in zip(axes[0], dims, strict=True):
        labels = list(table[d])
        for i, label in enumerate(labels):
            vals = [max(v, 1e-32) for v in table[d][label]]
            color = "tab:red" if label == "alg1" else ("tab:blue" if label.startswith("mhla") else "tab:gray")
            ax.scatter([i] * len(vals), vals, color=color, alpha=0.6, s=18)
            ax.plot([i - 0.3, i + 0.3], [median(vals)] * 2, color=color)
        ax.set_xticks(range(len(labels)), [lb.replace("_", " ") for lb in labels], rotation=45,
                      ha="right")
        ax.set_yscale("log")
        ax.set_title(f"random MHLA teacher, d = {d}")
        ax.set_ylabel("held-out MSE / Var(y)")
    fig.tight_layout()
    run.save_figure(fig, "mse_vs_heads_layers")

def figure_memory(run: Any, res: list[dict[str, Any]]) -> None:
    from lmlab.plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    floor = 1e-9
    lam = [max(r["lambda_min"], floor) for r in res]
    for key, label, color in (("pdist_exact", "Algorithm 1, exact min-norm", "tab:red"),
                              ("pdist_gd", "Algorithm 1 by gradient descent", "tab:orange"),
                              ("pdist_sgd", "MHLA trained by Adam", "tab:blue")):
        ax.scatter(lam, [max(r[key], 1e-16) for r in res], label=label, color=color, s=20)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"smallest eigenvalue of Lambda_D (0 shown at {floor:g})")
    ax.set_ylabel("relative p-distance to the truth")
    ax.set_title("associative memory: certificate vs recovery")
    ax.legend(fontsize=8)
    fig.tight_layout()
    run.save_figure(fig, "eigenvalue_vs_pdistance")

def figure_dfa(run: Any, cfg: Any, res: list[dict[str, Any]]) -> None:
    from lmlab.plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    key = {"states": "n_states", "symbols": "n_symbols", "word_len": "word_len"}[cfg.dfa.vary]
    for v in cfg.dfa.values:
        rs = sorted((r for r in res if r[key] == v), key=lambda r: r["train_tokens"])
        ax.plot([r["train_tokens"] for r in rs], [r["history_acc"] for r in rs], "o-",
                label=f"{cfg.dfa.vary} = {v}")
    ax.axhline(0.99, color="gray", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens (N x sequence length)")
    ax.set_ylabel("test next-token accuracy (history)")
    ax.set_title("DFA execution in context")
    ax.legend(fontsize=8)
    fig.tight_layout()
    run.save_figure(fig, "dfa_accuracy")
