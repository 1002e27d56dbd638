"""The gradient-trained baselines: same function as the exact model, causal, trainable."""

from __future__ import annotations

import torch

from lmlab.studies.linear_attention.data import teacher_data
from lmlab.studies.linear_attention.mhla import Heads, mhla_prefixes
from lmlab.studies.linear_attention.models import (
    MHLAModel,
    SoftmaxTransformer,
    StackedLinearAttention,
    train_regressor,
)

F64 = torch.float64


def test_mhla_model_is_the_exact_mhla():
    Z = torch.randn(3, 6, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    m = MHLAModel(3, 2, 5, seed=1)
    with torch.no_grad():
        via_features = m(m.encode(Z))
        assert torch.allclose(via_features, m.attend(Z), atol=1e-14)
        assert torch.allclose(via_features, mhla_prefixes(m.heads(), Z), atol=1e-14)
        assert torch.allclose(m(m.encode(Z, prefixes=False)), via_features[:, -1], atol=1e-14)


def test_one_layer_stack_is_a_one_head_mhla():
    Z = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    s = StackedLinearAttention(3, 3, 1, seed=0)
    heads = Heads(s.V[0].detach() * s.scale, s.Q[0].detach())
    with torch.no_grad():
        assert torch.allclose(s(s.encode(Z)), mhla_prefixes(heads, Z), atol=1e-14)


def test_models_are_causal():
    g = torch.Generator().manual_seed(2)
    Z = torch.randn(2, 6, 3, generator=g, dtype=F64)
    Z2 = Z.clone()
    Z2[:, 4:] = torch.randn(2, 2, 3, generator=g, dtype=F64)
    for m in (StackedLinearAttention(3, 2, 3), SoftmaxTransformer(3, 2, n_pos=6, d_model=16)):
        with torch.no_grad():
            a, b = m(m.encode(Z)), m(m.encode(Z2))
        assert a.shape == (2, 6, 2) and a.dtype == F64
        assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
        assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_training_reduces_the_error():
    data = teacher_data(seed=0, d=2, T=8, N=64, n_val=32, d_out=1)
    m = MHLAModel(2, 1, 4, seed=0)
    X, Xv = m.encode(data.Z), m.encode(data.Z_val)
    from lmlab.studies.linear_attention.models import normalized_mse

    before = normalized_mse(m(Xv).detach(), data.Y_val)
    res = train_regressor(m, X, data.Y, Xv, data.Y_val, steps=200, batch_size=16, lr=1e-2,
                          seed=0, eval_every=50)
    assert res.val_nmse < before / 10
    assert [s for s, _ in res.curve] == [50, 100, 150, 200]
    again = MHLAModel(2, 1, 4, seed=0)
    res2 = train_regressor(again, X, data.Y, Xv, data.Y_val, steps=200, batch_size=16, lr=1e-2,
                           seed=0, eval_every=50)
    assert res2.val_nmse == res.val_nmse  # seeded: the same numbers twice


def test_early_stop_at_a_target():
    data = teacher_data(seed=1, d=2, T=8, N=64, n_val=32, d_out=1)
    m = MHLAModel(2, 1, 4, seed=0)
    res = train_regressor(m, m.encode(data.Z), data.Y, m.encode(data.Z_val), data.Y_val,
                          steps=2000, batch_size=16, lr=1e-2, seed=0, eval_every=20,
                          stop_below=0.05)
    assert res.val_nmse < 0.05 and res.steps < 2000


def test_the_softmax_baseline_runs_at_the_precision_of_mhla():
    from lmlab.studies.linear_attention.models import build_model

    for kind in ("mhla", "stacked", "softmax"):
        model = build_model(kind, 3, 1, 1, n_pos=6, seed=0, d_model=16)
        assert {p.dtype for p in model.parameters()} == {F64}, kind
