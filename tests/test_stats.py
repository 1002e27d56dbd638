"""lmlab.stats and lmlab.seeding.derive."""

import math

import numpy as np
import pytest

from lmlab.seeding import derive
from lmlab.stats import bootstrap_ci, bootstrap_diff, get_metric, median, spearman, wilson_lower


def test_get_metric_nan_safe():
    m = {"a": 1, "b": float("nan"), "c": "x", "d": None, "e": True}
    assert get_metric(m, "a") == 1.0
    assert get_metric(m, "b") is None
    assert get_metric(m, "c", -1.0) == -1.0
    assert get_metric(m, "d") is None
    assert get_metric(m, "e") is None
    assert get_metric(m, "missing", 0.0) == 0.0


def test_median_drops_nan():
    assert median([1, float("nan"), 3, None]) == 2.0
    assert math.isnan(median([float("nan")]))


def test_spearman_matches_ranks():
    r, p = spearman([1, 2, 3, 4, 5], [2, 4, 6, 8, 100])
    assert abs(r - 1.0) < 1e-12 and p < 0.05
    assert all(math.isnan(v) for v in spearman([1, 1, 1], [1, 2, 3]))


def test_bootstrap_interval_covers_and_excludes():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, size=200)
    ci = bootstrap_ci(x, seed=1)
    assert ci.lo < x.mean() < ci.hi and ci.excludes(0.0) and ci.above(0.0)
    z = rng.normal(0.0, 1.0, size=200)
    assert not bootstrap_ci(z - z.mean(), seed=1).excludes(0.0)
    d = bootstrap_diff(x, z, paired=False, seed=2)
    assert d.above(0.0)
    assert bootstrap_diff(x, x, seed=3).to_list() == [0.0, 0.0, 0.0]


def test_derive_is_stable_and_distinct():
    assert derive(0, "modadd", 2) == derive(0, "modadd", 2)
    seen = {derive(s, k) for s in range(20) for k in range(50)}
    assert len(seen) == 1000
    assert derive(1, 0) != derive(0, 1000)
    assert derive(0, "a") != derive(0, "b")
    assert 0 <= derive(123, "x", 4) < 2**63


def test_wilson_lower_bound() -> None:
    assert float(wilson_lower(996, 1000)) == pytest.approx(0.98976, abs=1e-5)
    assert float(wilson_lower(0, 10)) == pytest.approx(0.0, abs=1e-12)
    assert float(wilson_lower(10, 10)) < 1.0
    lo = wilson_lower(np.array([990, 995, 1000]), 1000)
    assert np.all(np.diff(lo) > 0) and lo.shape == (3,)
    with pytest.raises(ValueError, match="n must be positive"):
        wilson_lower(1, 0)
