"""Property tests of the formulas: marginals, order statistics, greedy optimality, routing."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.studies.adaptive_compute.allocation import (
    calibrate_threshold,
    exhaustive_allocate,
    greedy_allocate,
    random_allocate,
    threshold_allocate,
)
from lmlab.studies.adaptive_compute.evaluation import (
    Curve,
    budget_to_reach,
    greedy_curve,
    quality_gain,
    savings,
    uniform_curve,
)
from lmlab.studies.adaptive_compute.labels import (
    binary_curve,
    binary_marginals,
    curve_from_marginals,
    expected_max_curve,
    marginals_from_curve,
)
from lmlab.studies.adaptive_compute.routing import route_fraction, routed_quality, routing_curve

probs = st.floats(0.0, 1.0, allow_nan=False)


@given(p=probs, b=st.integers(1, 40))
def test_binary_marginals(p, b):
    m = binary_marginals(p, b)
    assert np.allclose(m, [p * (1 - p) ** (j - 1) for j in range(1, b + 1)], atol=1e-15)
    assert abs(m.sum() - (1 - (1 - p) ** b)) < 1e-12
    assert np.all(np.diff(m) <= 1e-15)
    q = binary_curve(p, b)
    assert q[0] == 0 and np.allclose(marginals_from_curve(q), m, atol=1e-15)
    assert np.allclose(curve_from_marginals(m), q, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(r=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=10), binary=st.booleans())
def test_expected_max_equals_brute_force(r, binary):
    r = np.array([float(x > 0) for x in r]) if binary else np.array(r)
    n = r.size
    curve = expected_max_curve(r)
    for b in range(1, n + 1):
        brute = np.mean([max(s) for s in itertools.combinations(r, b)])
        assert abs(curve[b] - brute) < 1e-9
    assert np.all(np.diff(marginals_from_curve(curve)[1:]) <= 1e-9)  # concave from b = 1 on


def test_expected_max_binary_is_hypergeometric():
    r = np.array([1, 0, 0, 1, 0, 0, 0, 0], dtype=float)  # k = 2 of N = 8
    q = expected_max_curve(r)
    for b in range(9):
        assert abs(q[b] - (1 - math.comb(6, b) / math.comb(8, b))) < 1e-12


def test_expected_max_batched_and_errors():
    rng = np.random.default_rng(0)
    r = rng.random((5, 6))
    q = expected_max_curve(r, b_max=4)
    assert q.shape == (5, 5)
    assert np.allclose(q[2], expected_max_curve(r[2])[:5])
    assert np.allclose(q[:, 1], r.mean(axis=1))
    with pytest.raises(ValueError):
        expected_max_curve(r, b_max=7)
    with pytest.raises(ValueError):
        expected_max_curve(np.array([1.0, np.nan]))


def _concave_instance(rng):
    n = int(rng.integers(1, 6))
    b_max = int(rng.integers(1, 7))
    # non-negative, non-increasing marginals; a few exact ties on purpose
    m = np.sort(rng.choice([0.0, 0.1, 0.25, 0.5], size=(n, b_max)) if rng.random() < 0.3
                else rng.random((n, b_max)), axis=1)[:, ::-1]
    b_min = int(rng.integers(0, b_max + 1))
    total = int(rng.integers(n * b_min, n * b_max + 1))
    return m, b_min, b_max, total


def test_greedy_equals_exhaustive_on_200_concave_instances():
    rng = np.random.default_rng(12345)
    for _ in range(200):
        m, b_min, b_max, total = _concave_instance(rng)
        curves = curve_from_marginals(m)
        b = greedy_allocate(m, total, b_min, b_max)
        assert b.sum() == total and b.min() >= b_min and b.max() <= b_max
        _, best = exhaustive_allocate(curves, total, b_min, b_max)
        assert abs(curves[np.arange(len(b)), b].sum() - best) < 1e-9
        assert np.array_equal(b, greedy_allocate(m.copy(), total, b_min, b_max))  # deterministic


def test_greedy_ties_break_by_sample_then_query():
    m = np.full((3, 4), 0.2)
    assert greedy_allocate(m, 5).tolist() == [2, 2, 1]
    assert greedy_allocate(m, 7, b_min=1).tolist() == [3, 2, 2]
    with pytest.raises(ValueError):
        greedy_allocate(m, 13)
    with pytest.raises(ValueError):
        greedy_allocate(m, 2, b_min=1)


@given(p=st.floats(0.0, 1.0), n=st.integers(1, 30), k=st.integers(1, 8))
def test_constant_p_gives_uniform(p, n, k):
    gains = binary_marginals(np.full(n, p), 8)
    assert greedy_allocate(gains, n * k).tolist() == [k] * n
    rng = np.random.default_rng(n)
    true = expected_max_curve((rng.random((n, 8)) < 0.5).astype(float))
    a = greedy_curve("a", gains, true, 0, 8)
    u = uniform_curve(true, 0, 8)
    for kk in range(9):
        assert abs(a.at(kk) - u.at(kk)) < 1e-6


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), target=st.floats(1.0, 7.0))
def test_threshold_calibration_hits_mean_budget(seed, target):
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 0.5, size=400)
    gains = binary_marginals(p, 8)
    lam = calibrate_threshold(gains, target, 1, 8)
    b = threshold_allocate(gains, lam, 1, 8)
    assert b.min() >= 1 and b.max() <= 8
    assert abs(b.mean() - target) <= 0.02 * target
    assert np.array_equal(threshold_allocate(gains[:7], lam, 1, 8), b[:7])  # per query


def test_random_allocate_bounds_and_seed():
    b = random_allocate(50, 200, 1, 8, seed=3)
    assert b.sum() == 200 and b.min() >= 1 and b.max() <= 8
    assert np.array_equal(b, random_allocate(50, 200, 1, 8, seed=3))


@given(n=st.integers(1, 60), alpha=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_routing_fraction_and_extremes(n, alpha, seed):
    rng = np.random.default_rng(seed)
    scores = rng.choice([0.0, 0.5, rng.random()], size=n)
    weak, strong = rng.random(n), rng.random(n)
    mask = route_fraction(scores, alpha)
    assert abs(mask.sum() - alpha * n) <= 1
    assert routed_quality(weak, strong, route_fraction(scores, 0.0)).mean() == weak.mean()
    assert routed_quality(weak, strong, route_fraction(scores, 1.0)).mean() == strong.mean()
    c = routing_curve(weak, strong, scores, np.array([0.0, 1.0]))
    assert c[0] == weak.mean() and c[1] == strong.mean()
    assert np.array_equal(mask, route_fraction(scores, alpha))


def test_savings_on_hand_built_curves():
    u = Curve("u", np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.2, 0.4, 0.5, 0.55]))
    a = Curve("a", np.array([1.0, 1.5, 2.0, 3.0, 4.0]), np.array([0.2, 0.45, 0.5, 0.54, 0.55]))
    assert budget_to_reach(a, 0.5) == 2.0
    assert abs(budget_to_reach(a, 0.4) - 1.4) < 1e-12
    assert abs(savings(a, u, 3) - (1 - 2.0 / 3)) < 1e-12
    assert abs(savings(a, u, 4) - 0.0) < 1e-12
    assert abs(quality_gain(a, u, 2.0) - 0.1) < 1e-12
    assert math.isnan(budget_to_reach(a, 0.9))


def test_oracle_at_least_uniform():
    rng = np.random.default_rng(1)
    for _ in range(20):
        true = expected_max_curve(rng.random((30, 8)) ** rng.uniform(0.2, 5, size=(30, 1)))
        oracle = greedy_curve("o", marginals_from_curve(true), true, 0, 8)
        uni = uniform_curve(true, 0, 8)
        for k in range(9):
            assert oracle.at(k) >= uni.at(k) - 1e-12
