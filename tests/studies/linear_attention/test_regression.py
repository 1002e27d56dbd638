"""Algorithm 1: exact recovery, minimum norm, chunked normal equations, read-back into heads."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.studies.linear_attention.data import memory_data, teacher_data
from lmlab.studies.linear_attention.features import full_features, independent_features
from lmlab.studies.linear_attention.mhla import (
    Heads,
    mhla_prefixes,
    n_independent,
    p_distance,
    p_map,
    random_heads,
    w_from_p,
)
from lmlab.studies.linear_attention.models import normalized_mse
from lmlab.studies.linear_attention.regression import (
    NormalEquations,
    fit_mhla,
    lstsq_min_norm,
    solve_min_norm,
)

F64 = torch.float64
seeds = st.integers(0, 2**31 - 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@settings(max_examples=15, deadline=None)
@given(d=st.integers(1, 3), d_out=st.integers(1, 3), H=st.integers(1, 9), seed=seeds)
def test_ols_recovers_a_teacher_exactly(d, d_out, H, seed):
    """Noise-free data with more examples than features: p-distance to the teacher ~ 0."""
    g = gen(seed)
    teacher = random_heads(g, H, d, d_out)
    N = 3 * n_independent(d)
    Z = torch.randn(N, 6, d, generator=g, dtype=F64)
    fit = fit_mhla(Z, mhla_prefixes(teacher, Z))
    assert fit.rank == n_independent(d)
    assert p_distance(fit.p, p_map(teacher), relative=True) < 1e-9
    heads = fit.heads()
    assert heads.n_heads <= d * d
    assert p_distance(heads, teacher, relative=True) < 1e-9


def test_realizable_teacher_at_the_papers_size():
    """d = 4, T = 100, N = 2048 (Sec. 4.1, d_out = d): MSE/Var < 1e-12, heads reproduce to 1e-8."""
    data = teacher_data(seed=0, d=4, T=100, N=2048, n_val=256, teacher_heads=2)
    fit = fit_mhla(data.Z, data.Y)
    pred = fit.predict(data.Z_val)
    nmse = normalized_mse(pred, data.Y_val)
    assert nmse < 1e-12  # measured 3e-29
    heads = fit.heads()
    assert heads.n_heads <= 16
    gap = (mhla_prefixes(heads, data.Z_val) - pred).abs().max() / pred.abs().max()
    assert gap < 1e-8  # measured ~1e-14
    assert p_distance(fit.p, p_map(data.teacher), relative=True) < 1e-8  # measured 2e-14
    assert fit.n_examples == 2048 * 100


@settings(max_examples=10, deadline=None)
@given(d=st.integers(1, 3), chunk=st.integers(1, 40), seed=seeds, noise=st.sampled_from([0.0, 0.1]))
def test_chunked_normal_equations_equal_the_one_shot_solve(d, chunk, seed, noise):
    """Any chunking gives the W of minimum-norm least squares on the full d^3-column design."""
    g = gen(seed)
    teacher = random_heads(g, 2, d)
    N = 40
    Z = torch.randn(N, 5, d, generator=g, dtype=F64)
    Y = mhla_prefixes(teacher, Z) + noise * torch.randn(N, 5, d, generator=g, dtype=F64)
    fit = fit_mhla(Z, Y, chunk=chunk)
    F = full_features(Z, prefixes=True).reshape(-1, d**3)
    coef = lstsq_min_norm(F, Y.reshape(-1, d))  # (d^3, d_out): column a is row block a of W
    W_one_shot = coef.T.reshape(d, d, d * d).reshape(d * d, d * d)
    assert torch.allclose(fit.W, W_one_shot, rtol=1e-8, atol=1e-9 * float(W_one_shot.abs().max()))
    whole = fit_mhla(Z, Y, chunk=N)
    assert torch.allclose(fit.p, whole.p, rtol=1e-9, atol=1e-12)


def test_minimum_norm_when_the_data_do_not_identify_W():
    """Orthonormal memories leave directions unconstrained; the solution is still pinv's."""
    Z, Y = memory_data(seed=0, N=300, d=2, frac_orthonormal=1.0)
    fit = fit_mhla(Z, Y, prefixes=False)
    assert fit.rank < n_independent(4)
    F = full_features(Z)
    coef = lstsq_min_norm(F, Y)
    W_one_shot = coef.T.reshape(4, 4, 16).reshape(16, 16)
    assert torch.allclose(fit.W, W_one_shot, atol=1e-9)
    assert torch.allclose(fit.predict(Z, prefixes=False), Y, atol=1e-10)


def test_batches_stream_equals_arrays():
    data = teacher_data(seed=1, d=3, T=10, N=100)
    a = fit_mhla(data.Z, data.Y)
    stream = ((data.Z[i : i + 7], data.Y[i : i + 7]) for i in range(0, 100, 7))
    b = fit_mhla(batches=stream)
    assert torch.allclose(a.p, b.p, rtol=1e-10, atol=1e-14)
    assert a.n_examples == b.n_examples == 1000


def test_agnostic_least_squares_beats_every_mhla():
    """On non-realizable targets OLS's training error is at most any MHLA's (here: the teacher's)."""
    g = gen(5)
    teacher = random_heads(g, 2, 2)
    Z = torch.randn(200, 8, 2, generator=g, dtype=F64)
    clean = mhla_prefixes(teacher, Z)
    Y = torch.tanh(3 * clean) + 0.05 * torch.randn(clean.shape, generator=g, dtype=F64)
    fit = fit_mhla(Z, Y)
    ols = float(((fit.predict(Z) - Y) ** 2).mean())
    assert abs(ols - fit.train_mse) < 1e-9
    for heads in (teacher, random_heads(g, 4, 2), Heads(teacher.V * 2, teacher.Q)):
        assert ols <= float(((mhla_prefixes(heads, Z) - Y) ** 2).mean()) + 1e-12


def test_solve_min_norm_matches_pinv():
    g = gen(7)
    A = torch.randn(10, 4, generator=g, dtype=F64) @ torch.randn(4, 6, generator=g, dtype=F64)
    G = A.T @ A  # rank 4 of 6
    B = torch.randn(6, 2, generator=g, dtype=F64)
    B = G @ B  # consistent
    x, rank = solve_min_norm(G, B)
    assert rank == 4
    assert torch.allclose(x, torch.linalg.pinv(G) @ B, atol=1e-9)
    zero, r0 = solve_min_norm(torch.zeros(3, 3, dtype=F64), torch.ones(3, 1, dtype=F64))
    assert r0 == 0 and not zero.any()


def test_predict_without_prefixes_and_w_round_trip():
    g = gen(8)
    teacher = random_heads(g, 1, 3)
    Z = torch.randn(60, 4, 3, generator=g, dtype=F64)
    from lmlab.studies.linear_attention.mhla import mhla

    fit = fit_mhla(Z, mhla(teacher, Z), prefixes=False)
    assert torch.allclose(fit.predict(Z, prefixes=False), mhla(teacher, Z), atol=1e-12)
    assert torch.allclose(w_from_p(fit.p, 3), fit.W)
    assert torch.allclose(independent_features(Z) @ fit.p.T, mhla(teacher, Z), atol=1e-12)


def test_errors_name_the_problem():
    with pytest.raises(LmlabError, match="needs Z and Y"):
        fit_mhla()
    with pytest.raises(LmlabError, match="Z must be"):
        fit_mhla(torch.zeros(4, 3, 2), torch.zeros(4, 2))
    with pytest.raises(LmlabError, match="no data"):
        fit_mhla(batches=[])
    acc = NormalEquations(3, 1)
    with pytest.raises(LmlabError, match="features must be"):
        acc.add(torch.zeros(2, 4), torch.zeros(2, 1))
    with pytest.raises(LmlabError, match="targets must be"):
        acc.add(torch.zeros(2, 3), torch.zeros(3, 1))
    with pytest.raises(LmlabError, match="no examples"):
        acc.second_moment()


def test_gradient_descent_is_run_and_matches_its_closed_form():
    from lmlab.studies.linear_attention.regression import gradient_descent

    g = torch.Generator().manual_seed(0)
    F = torch.randn(40, 6, generator=g, dtype=torch.float64)
    F[:, 5] = F[:, 4]  # a null direction the data never constrains
    u_true = torch.randn(6, 2, generator=g, dtype=torch.float64)
    G, B = F.T @ F / 40, F.T @ (F @ u_true) / 40
    u0 = torch.randn(6, 2, generator=g, dtype=torch.float64)
    w, E = torch.linalg.eigh(G)
    for steps in (0, 1, 25):
        # the error along an eigenvector of eigenvalue w shrinks by (1 - w / w_max) per step
        closed = u_true + E @ (((1 - w / w[-1]) ** steps)[:, None] * (E.T @ (u0 - u_true)))
        got = gradient_descent(G, B, u0, steps)
        assert torch.allclose(got, closed, atol=1e-10), steps
    assert torch.equal(gradient_descent(G, B, u0, 0), u0)
    far = gradient_descent(G, B, u0, 5000)
    assert float(torch.linalg.norm(G @ far - B)) < 1e-8  # a minimizer, not the truth (null space)
    assert float(torch.linalg.norm(far - u_true)) > 1e-3


def test_the_memory_job_reports_gradient_descent_it_ran():
    from lmlab.studies.linear_attention.experiments import MemoryJob, memory_job

    def job(steps):
        return memory_job(MemoryJob(seed=0, d=2, N=256, frac=0.0, heads=2, steps=5, batch_size=64,
                                    lr=1e-2, gd_steps=steps, noise=None, threads=1,
                                    device="cpu"))

    start, some, many = (job(s)["pdist_gd"] for s in (0, 20, 2000))
    assert start > some > many
    assert many < 1e-3  # identifiable (Gaussian) memories: gradient descent finds the truth
