"""End to end on synthetic tables: the perfect predictor saves compute; a probe on informative
features saves compute over seeds; the pieces agree with each other."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from lmlab.studies.adaptive_compute.analysis import AnalysisSettings, analyze
from lmlab.studies.adaptive_compute.config import AdaptiveComputeConfig
from lmlab.studies.adaptive_compute.evaluation import greedy_curve, savings, uniform_curve
from lmlab.studies.adaptive_compute.labels import expected_max_curve, pilot_curves
from lmlab.studies.adaptive_compute.predictors import Probe, gains_from_prediction
from lmlab.studies.adaptive_compute.synthetic import synthetic_split

FAST = replace(AnalysisSettings.from_config(AdaptiveComputeConfig()), n_boot=200, probe_epochs=150,
               probe_weight_decays=(1e-2,))


def test_perfect_predictor_saves_at_best_of_8():
    test = synthetic_split(2000, seed=0)
    true = expected_max_curve(test.rewards, 8)
    a = greedy_curve("perfect", gains_from_prediction(test.true_p, 8), true, 1, 8)
    s = savings(a, uniform_curve(true, 1, 8), 8)
    assert s > 0.05  # measured 0.13: the last bit of best-of-8 quality costs the most


def test_probe_on_informative_features_saves_over_5_seeds():
    out = []
    for seed in range(5):
        tr, va, te = (synthetic_split(n, seed=10 * seed + k) for k, n in enumerate((600, 200, 400)))
        res = analyze(tr, va, te, FAST)
        m = res.metrics
        out.append(m["alloc.probe.savings_k8"])
        assert m["alloc.oracle.savings_k8"] >= m["alloc.probe.savings_k8"] - 1e-9
        assert m["check.oracle_margin_min"] >= -1e-9
        assert m["routing.alpha0_minus_weak"] == 0.0 and m["routing.alpha1_minus_strong"] == 0.0
        assert m["offline.calibration_max_rel_err"] <= 0.02
    assert np.mean(out) > 0


def test_analysis_metrics_have_intervals_and_probe_beats_length():
    tr, va, te = (synthetic_split(n, seed=100 + k) for k, n in enumerate((800, 200, 600)))
    m = analyze(tr, va, te, FAST).metrics
    assert m["alloc.probe.savings_k8.ci_lo"] <= m["alloc.probe.savings_k8"] <= m["alloc.probe.savings_k8.ci_hi"]
    assert m["alloc.perfect.savings_k8"] > 0
    assert m["compare.probe_vs_length.b3.ci_lo"] > 0  # length is noise here
    assert m["predictor.probe.spearman"] > 0.5


def test_real_rewards_pipeline():
    tr, va, te = (synthetic_split(n, seed=200 + k, real=True) for k, n in enumerate((400, 100, 300)))
    m = analyze(tr, va, te, FAST).metrics
    assert m["data.binary"] == 0
    assert np.isfinite(m["alloc.probe.savings_k8"])
    assert m["check.oracle_margin_min"] >= -1e-9


def test_pilot_curves_brute_force():
    import itertools

    rng = np.random.default_rng(0)
    r = rng.random(6)
    q = pilot_curves(r, 2)
    best = r[:2].max()
    for b in range(2, 7):
        brute = np.mean([max(best, *s) if s else best for s in itertools.combinations(r[2:], b - 2)])
        assert abs(q[b] - brute) < 1e-12
    assert np.isnan(q[:2]).all()


def test_probe_trains_fast_on_5k():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 256)).astype(np.float32)
    y = 1 / (1 + np.exp(-x[:, 0]))
    t0 = time.process_time()
    p = Probe(hidden=64, epochs=200).fit(x[:4000], y[:4000], x[4000:], y[4000:])
    assert time.process_time() - t0 < 60
    assert np.corrcoef(p.predict(x[4000:]), y[4000:])[0, 1] > 0.8
