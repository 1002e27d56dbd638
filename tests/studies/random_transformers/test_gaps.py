"""The attainable attention logit gap of frozen random models (gaps.py)."""

from __future__ import annotations

import math

import pytest
import torch

from lmlab.nn import GPT, GPTConfig
from lmlab.studies.random_transformers.config import TINY
from lmlab.studies.random_transformers.experiments import build_model
from lmlab.studies.random_transformers.gap_models import measure_gaps
from lmlab.studies.random_transformers.gaps import attention_share, head_gaps, model_gap
from lmlab.study import apply_overrides


def _model(d: int = 32, n_head: int = 2, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=n_head, d_model=d,
                         tie_embeddings=False))


def _logit(model: GPT, layer: int, head: int, xq: torch.Tensor, xk: torch.Tensor) -> float:
    """The head's pre-softmax logit for residual-stream inputs xq (query) and xk (key), through
    the block's own LayerNorm and projections."""
    block = model.blocks[layer]
    attn = block.attn
    dh = attn.d_head
    with torch.no_grad():
        q = attn.q_proj(block.ln1(xq))[head * dh : (head + 1) * dh]
        k = attn.k_proj(block.ln1(xk))[head * dh : (head + 1) * dh]
    return float(q @ k) / math.sqrt(dh)


def test_the_gap_is_attained_by_layernorm_outputs_and_never_exceeded() -> None:
    model = _model()
    gaps = head_gaps(model)
    d = model.config.d_model
    attn = model.blocks[1].attn
    dh = attn.d_head
    with torch.no_grad():
        p = torch.eye(d) - 1.0 / d
        m = p @ attn.q_proj.weight[dh : 2 * dh].T @ attn.k_proj.weight[dh : 2 * dh] @ p
        u, _, vh = torch.linalg.svd(m)
    # the top singular pair, scaled to LayerNorm's output norm sqrt(d), is a fixed point of it
    xq, xk = u[:, 0] * math.sqrt(d), vh[0] * math.sqrt(d)
    assert _logit(model, 1, 1, xq, xk) == pytest.approx(gaps[1][1], rel=1e-4)
    assert _logit(model, 1, 1, xq, torch.zeros(d)) == pytest.approx(0.0, abs=1e-6)
    # no pair of inputs does better, whatever the embeddings make of the stream
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(2000, 2, d, generator=gen) * 5 + torch.randn(2000, 2, 1, generator=gen)
    best = max(_logit(model, 1, 1, a, b) for a, b in xs)
    assert 0 < best < gaps[1][1]
    assert model_gap(model) == max(max(row) for row in gaps)


def test_the_gap_grows_with_width_and_attention_share_bounds_the_pattern() -> None:
    assert model_gap(_model(64)) > 2 * model_gap(_model(16))
    assert attention_share(0.0, 5) == pytest.approx(0.2)
    assert attention_share(math.log(4 * 9), 10) == pytest.approx(0.8)


def test_measure_gaps_reads_the_grid_models_as_their_jobs_build_them() -> None:
    c = apply_overrides(TINY, ["grid.widths=[8,16]", "grid.gap_widths=[32]", "grid.seeds=2"])
    m = measure_gaps(c)
    assert m["gap.task"] == "needle" and m["gap.positions"] == 2 * c.needle.keys + 1
    assert {k for k in m if k.endswith(".logit")} == {"gap.d8.logit", "gap.d16.logit",
                                                      "gap.d32.logit"}
    # seed 1 of width 16 is the needle job's random model of seed index 1
    from lmlab.seeding import derive
    from lmlab.studies.random_transformers.catalog import make_task
    from lmlab.studies.random_transformers.jobs import task_kw

    task = make_task("needle", **dict(task_kw(c, "needle")))
    torch.manual_seed(derive(c.seed, "needle", 1))
    model = build_model("random", task.vocab_size, task.block_size, 16, c.n_layer, c.n_head)
    assert m["gap.d16.logit.seed1"] == model_gap(model)
    assert m["gap.d8.logit"] < m["gap.d16.logit"] < m["gap.d32.logit"]
