"""Forms and fitters: each fitter recovers the parameters that generated noise-free data."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.studies.scaling_laws.fit import (
    batched_lbfgs,
    bootstrap,
    fit,
    fit_huber_grid,
    fit_huber_loop,
    fit_least_squares,
    huber_objective,
    lbfgs_direction,
)
from lmlab.studies.scaling_laws.forms import (
    COLPRET_GRID,
    FORMS,
    ChinchillaForm,
    LinkedForm,
    MultiplicativeForm,
    OneModelForm,
    PCAForm,
    chinchilla_loss,
    get_form,
)
from lmlab.studies.scaling_laws.protocol import are

N = np.repeat([1e8, 3e8, 1e9, 3e9, 1e10], 25)
D = np.tile(np.geomspace(2e9, 3e11, 25), 5)
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

laws = st.fixed_dictionaries({
    "E": st.floats(0.5, 3.0),
    "A": st.floats(50.0, 5000.0),
    "B": st.floats(50.0, 20000.0),
    "alpha": st.floats(0.15, 0.7),
    "beta": st.floats(0.15, 0.7),
})


def _identifiable(p: dict[str, float]) -> bool:
    # Both reducible terms must matter somewhere in the data (5% of E at the largest N and D):
    # a term that stays below float resolution cannot be recovered by any fitter.
    return p["A"] / N.max() ** p["alpha"] >= 0.05 * p["E"] and \
        p["B"] / D.max() ** p["beta"] >= 0.05 * p["E"]


def _recovered(result, p: dict[str, float], loss: np.ndarray) -> None:
    got = result.params()
    for k in ("E", "alpha", "beta"):
        assert got[k] == pytest.approx(p[k], rel=0.01), (k, got, p)
    assert are(loss, result.predict(N, D)) < 1e-4


# Most draws of `laws` are not identifiable on this grid (about 1 in 7 passes `_identifiable`),
# so the filter health check would fail some runs at random; the filtering is intended.
FILTERED = [HealthCheck.too_slow, HealthCheck.filter_too_much]


@settings(max_examples=25, deadline=None, suppress_health_check=FILTERED)
@given(laws)
def test_least_squares_recovers_noise_free_laws(p):
    assume(_identifiable(p))
    loss = chinchilla_loss(N, D, **p)
    _recovered(fit_least_squares(ChinchillaForm(), N, D, loss), p, loss)


@settings(max_examples=8, deadline=None, suppress_health_check=FILTERED)
@given(laws)
def test_huber_grid_recovers_noise_free_laws(p):
    assume(_identifiable(p))
    loss = chinchilla_loss(N, D, **p)
    _recovered(fit_huber_grid(ChinchillaForm(), N, D, loss), p, loss)


@pytest.mark.parametrize("fitter", ["least-squares", "huber-grid"])
def test_golden_hoffmann_law(fitter):
    loss = chinchilla_loss(N, D, **HOFFMANN)
    r = fit(ChinchillaForm(), N, D, loss, fitter)
    assert r.success
    for k, v in HOFFMANN.items():
        assert r.params()[k] == pytest.approx(v, rel=1e-4)


@pytest.mark.parametrize(("form", "theta"), [
    (MultiplicativeForm(), (1.0, 2.0, 0.5, 0.05, 0.07)),
    (OneModelForm(), (7.0, 0.6, 0.3)),
    (OneModelForm(a=5.0, alpha=0.25), (6.5, 0.4, 0.33)),
    (LinkedForm(), (6.0, 7.0, 0.5)),
    (PCAForm(mean=np.array([6.0, 7.0, 0.5, 0.3, 0.3]), components=np.eye(5)[[0, 2, 4]],
             scales=np.ones(3)), (0.2, -0.1, 0.02)),
])
def test_every_form_fits_its_own_data(form, theta):
    loss = form.predict(theta, N, D)
    r = fit_least_squares(form, N, D, loss, p0=np.asarray(theta) * 1.1 + 0.01)
    assert r.success
    assert are(loss, r.predict(N, D)) < 1e-6
    if form.name != "multiplicative":  # only a + b + e is identified there
        np.testing.assert_allclose(r.theta, theta, rtol=1e-3, atol=1e-5)


def test_forms_agree_between_numpy_and_torch():
    for name, cls in FORMS.items():
        form = cls() if name != "pca" else PCAForm.from_params(
            np.random.default_rng(0).normal(size=(8, 5)) * 0.1 + np.array([6, 7, 0.5, 0.3, 0.3]))
        theta = np.array(form.guess) + 0.01
        a = form.log_predict(theta, np.log(N), np.log(D), np)
        b = form.log_predict(torch.as_tensor(theta)[None], torch.as_tensor(np.log(N)),
                             torch.as_tensor(np.log(D)), torch)[0].numpy()
        np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(np.log(form.predict(theta, N, D)), a, rtol=1e-12)


def test_chinchilla_describes_its_parameters():
    p = ChinchillaForm().describe([np.log(406.4), np.log(410.7), np.log(1.69), 0.34, 0.28])
    assert p["A"] == pytest.approx(406.4) and p["E"] == pytest.approx(1.69)
    assert get_form("one-model").describe([7.0, 0.5, 0.3])["alpha"] == pytest.approx(0.3526596)
    with pytest.raises(LmlabError, match="unknown form"):
        get_form("quadratic")


def test_the_start_grid_is_colprets_4_to_the_5():
    grid = ChinchillaForm().grid()
    assert grid.shape == (1024, 5)
    assert sorted(set(grid[:, 0])) == [3.0, 6.0, 9.0, 12.0] == list(COLPRET_GRID[0])
    assert sorted(set(grid[:, 2])) == [-0.5, 0.0, 0.5, 1.0]
    assert sorted(set(grid[:, 3])) == [0.25, 0.5, 0.75, 1.0]


def _two_loop(g, s_hist, y_hist):
    """The textbook L-BFGS two-loop recursion for one problem (oldest pair first)."""
    q = g.copy()
    rho = [1.0 / (y @ s) for s, y in zip(s_hist, y_hist, strict=True)]
    alphas = []
    for s, y, r in reversed(list(zip(s_hist, y_hist, rho, strict=True))):
        a = r * (s @ q)
        alphas.append(a)
        q -= a * y
    gamma = (s_hist[-1] @ y_hist[-1]) / (y_hist[-1] @ y_hist[-1])
    r_vec = gamma * q
    for (s, y, rr), a in zip(zip(s_hist, y_hist, rho, strict=True), reversed(alphas), strict=True):
        b = rr * (y @ r_vec)
        r_vec += s * (a - b)
    return -r_vec


def test_compact_lbfgs_direction_equals_the_two_loop_recursion():
    rng = np.random.default_rng(0)
    batch, m, p = 6, 5, 4
    s = rng.normal(size=(batch, m, p))
    y = s @ (np.eye(p) * 2 + 0.3) + 0.05 * rng.normal(size=(batch, m, p))  # positive curvature
    g = rng.normal(size=(batch, p))
    valid = np.ones((batch, m), dtype=bool)
    valid[1, :2] = False  # a problem with only 3 pairs so far: empty slots hold zeros
    s[~valid], y[~valid] = 0.0, 0.0
    gamma = np.array([(s[i, -1] @ y[i, -1]) / (y[i, -1] @ y[i, -1]) for i in range(batch)])
    got = lbfgs_direction(*(torch.as_tensor(x) for x in (g, s, y, valid, gamma))).numpy()
    for i in range(batch):
        keep = valid[i]
        np.testing.assert_allclose(got[i], _two_loop(g[i], s[i][keep], y[i][keep]), rtol=1e-10)


def test_batched_lbfgs_solves_independent_problems():
    # Each row is its own shifted, scaled quadratic bowl: one shared line search or history
    # would couple them and fail at least one.
    rng = np.random.default_rng(1)
    centers = torch.as_tensor(rng.normal(size=(50, 3)) * 5)
    scales = torch.as_tensor(10 ** rng.uniform(-2, 2, size=(50, 3)))

    def objective(x, rows):
        return (scales[rows] * (x - centers[rows]) ** 2).sum(-1)

    x, f, iters = batched_lbfgs(objective, torch.zeros(50, 3, dtype=torch.float64),
                                max_iter=500, tol_change=0.0)
    np.testing.assert_allclose(x.numpy(), centers.numpy(), atol=1e-6)
    assert f.max() < 1e-10 and iters.max() < 500


def test_huber_objective_matches_its_definition_and_gradient():
    loss = chinchilla_loss(N, D, **HOFFMANN) * np.exp(np.random.default_rng(2).normal(0, 0.01, len(N)))
    obj = huber_objective(ChinchillaForm(), *(torch.as_tensor(np.log(v)) for v in (N, D, loss)))
    theta = torch.as_tensor(ChinchillaForm().grid()[::97])
    f, g = obj.value_and_grad(theta)
    r = ChinchillaForm().log_predict(theta, torch.as_tensor(np.log(N)), torch.as_tensor(np.log(D)),
                                     torch) - torch.as_tensor(np.log(loss))
    want = torch.nn.functional.huber_loss(r, torch.zeros_like(r), delta=1e-3, reduction="none")
    torch.testing.assert_close(f, want.sum(-1))
    z = theta.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(obj(z).sum(), z)
    torch.testing.assert_close(g, auto)


def test_batched_grid_matches_the_loop_and_is_faster():
    # Benchmark-style: same grid subset, same objective. The full measurement is
    # `lmlab bench scaling-laws` (1024 starts on OPT, measured here: batched 0.27-0.62 s,
    # loop with numeric gradients 15 s (24x), loop with the exact gradient 2.7 s (4.4x)).
    rng = np.random.default_rng(3)
    loss = chinchilla_loss(N, D, **HOFFMANN) * np.exp(rng.normal(0, 0.01, len(N)))
    form = ChinchillaForm()
    grid = form.grid()[::16]  # 64 starts keep the loop short
    # CPU time, best of 3 interleaved repeats: wall time on a loaded machine measures the load
    loop_s = batched_s = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        loop = fit_huber_loop(form, N, D, loss, grid=grid, gradient="numeric")
        loop_s = min(loop_s, time.process_time() - t0)
        t0 = time.process_time()
        batched = fit_huber_grid(form, N, D, loss, grid=grid)
        batched_s = min(batched_s, time.process_time() - t0)
    assert batched.objective <= loop.objective * (1 + 1e-6)
    assert loop_s > 2 * batched_s  # 64 starts; the gap grows with the grid


def test_bootstrap_intervals_cover_the_truth_on_noisy_data():
    rng = np.random.default_rng(4)
    loss = chinchilla_loss(N, D, **HOFFMANN) * np.exp(rng.normal(0, 0.003, len(N)))
    for fitter in ("least-squares", "huber-grid"):
        ci = bootstrap(ChinchillaForm(), N, D, loss, fitter, n_boot=60, seed=0)
        for k in ("E", "alpha", "beta"):
            lo, hi = ci[k]
            assert lo < hi
            assert lo * 0.97 <= HOFFMANN[k] <= hi * 1.03, (fitter, k, ci[k])


def test_fit_input_errors():
    with pytest.raises(LmlabError, match="positive"):
        fit_least_squares(ChinchillaForm(), [1e9, -1], [1e10, 1e10], [2.0, 2.0])
    with pytest.raises(LmlabError, match="differ in length"):
        fit_least_squares(ChinchillaForm(), [1e9], [1e10, 2e10], [2.0, 2.0])
    with pytest.raises(LmlabError, match="unknown fitter"):
        fit(ChinchillaForm(), N, D, np.ones_like(N), "adam")
