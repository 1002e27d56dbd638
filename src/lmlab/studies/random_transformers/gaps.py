"""The attention logit gap a frozen random transformer can attain (issue #22, point 1).

A random model trains only its embeddings, so an attention head's query and key maps stay at
their initialization. Every head reads a LayerNorm of the residual stream; with the LayerNorm at
its initialization (gain 1, bias 0; random mode never trains it) its output `u` is a mean-zero
vector of norm sqrt(d). A head's logit for a query position with input `u_q` and a key position
with input `u_k` is

    s(u_q, u_k) = u_q^T W_Q^T W_K u_k / sqrt(d_head)        (q/k biases are 0 at init)

with `W_Q`, `W_K` the head's (d_head x d) slices of the frozen projections. We define a head's
**attainable logit gap** as the largest logit one key can get above a key the query ignores
(logit 0), over every pair of LayerNorm outputs the trainable embeddings could produce:

    gap = d * sigma_max(P W_Q^T W_K P) / sqrt(d_head),      P = I - 11^T / d

(P restricts both sides to the mean-zero vectors LayerNorm emits; the maximum is attained by the
top singular vectors of `P W_Q^T W_K P` scaled to norm sqrt(d), and a key at minus the top
vector is twice as far, so two keys never differ by more than 2 x gap). A model's gap is the
largest over its layers and heads. It is measured from the frozen matrices of the same models
the grid trains (the random models of the needle task, by seed), not from a formula of the init.

`gap_models.measure_gaps` measures the grid's models (this module imports no job code, so that
every job can record its own model's gap). With gap `g`, a query that sees `n` positions can put at most `e^g / (e^g + n - 1)` of its
attention on one of them while the other `n - 1` sit at logit 0: `attention_share` below.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lmlab.nn import GPT

__all__ = ["attention_share", "gap_figure", "gap_metrics", "head_gaps", "model_gap"]


def head_gaps(model: GPT) -> list[list[float]]:
    """Each head's attainable logit gap, per layer (layers x heads), from the frozen weights."""
    out: list[list[float]] = []
    with torch.no_grad():
        for block in model.blocks:
            attn = block.attn
            d, nh, dh = attn.q_proj.in_features, attn.n_head, attn.d_head
            gain = block.ln1.weight.double()  # 1 at init; kept for exactness
            wq = attn.q_proj.weight.double() * gain  # (d, d): rows = heads' output dims
            wk = attn.k_proj.weight.double() * gain
            wq = wq - wq.mean(1, keepdim=True)  # W P: only mean-zero inputs reach the head
            wk = wk - wk.mean(1, keepdim=True)
            row: list[float] = []
            for h in range(nh):
                a, b = wq[h * dh : (h + 1) * dh], wk[h * dh : (h + 1) * dh]  # (dh, d)
                # sigma_max(a^T b) from two thin QRs: a^T = Qa Ra, b^T = Qb Rb, so the nonzero
                # singular values of a^T b are those of Ra Rb^T (dh x dh), cheap at any width.
                ra = torch.linalg.qr(a.T, mode="r").R
                rb = torch.linalg.qr(b.T, mode="r").R
                sigma = float(torch.linalg.matrix_norm(ra @ rb.T, ord=2))
                row.append(d * sigma / math.sqrt(dh))
            out.append(row)
    return out


def model_gap(model: GPT) -> float:
    """The largest attainable logit gap over the model's layers and heads."""
    return max(max(row) for row in head_gaps(model))


def attention_share(gap: float, n: int) -> float:
    """The largest share of attention one of `n` positions can get when its logit is `gap`
    above the other `n - 1` (all at the same logit)."""
    return 1.0 / (1.0 + (n - 1) * math.exp(-gap))


def gap_metrics(gaps: dict[int, list[float]], n_positions: int) -> dict[str, Any]:
    """Dotted metrics from each width's per-seed gaps: `gap.d{W}.logit` (median over seeds),
    `gap.d{W}.logit.seedN`, and `gap.d{W}.attention_share` over `n_positions` positions."""
    from lmlab.stats import median

    m: dict[str, Any] = {}
    for w, values in sorted(gaps.items()):
        g = median(values)
        m[f"gap.d{w}.logit"] = g
        for i, v in enumerate(values):
            m[f"gap.d{w}.logit.seed{i}"] = v
        m[f"gap.d{w}.attention_share"] = attention_share(g, n_positions)
    m["gap.positions"] = n_positions
    return m


def gap_figure(m: dict[str, Any], run: Any) -> None:
    """Gap (median over seeds) against width, with the attention share it allows beside it."""
    widths = sorted(int(k.split(".")[1][1:]) for k in m
                    if k.startswith("gap.d") and k.endswith(".logit"))
    if not widths:
        return
    from lmlab.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(widths, [m[f"gap.d{w}.logit"] for w in widths], marker="o", label="logit gap")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width d (random model, frozen at init)")
    ax.set_ylabel("attainable attention logit gap")
    share = ax.twinx()
    share.plot(widths, [m[f"gap.d{w}.attention_share"] for w in widths], marker="s",
               color="tab:orange", label="attention share")
    share.set_ylim(0, 1.02)
    share.set_ylabel(f"max attention on 1 of {m.get('gap.positions', '?')} positions")
    fig.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    run.save_figure(fig, "logit_gap")
