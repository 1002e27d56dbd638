"""The study's analysis on sample tables: train the predictors, allocate, route, measure.

Everything here reads arrays (`SplitData`), never a model, so the same code judges a real
collection and a synthetic table. The reported numbers come from the test split alone; predictors
are fit on train and chosen on validation; per-query thresholds are calibrated on train + val.

Methods compared on the test queries (all judged by the exact curves of the collected samples):

* `oracle`: greedy on the true marginals of the test curves (an upper bound of every allocation
  of the same total, by concavity).
* `probe`: greedy on the gains of the MLP probe on hidden states (the paper's method).
* `length`: greedy on a linear model of the prompt length (reviewers' heuristic baseline).
* `pilot`: draws `pilot_m` samples first, then greedy on a linear model of how often they agree
  (probe-free self-consistency); judged by its exact conditional curves, pilots paid for.
* `random`: the same totals spread at random.
* `uniform`: best-of-k for every query.
* `perfect` (synthetic only): greedy on the generating pass rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lmlab.seeding import derive
from lmlab.stats import bootstrap_diff, spearman
from lmlab.studies.adaptive_compute.allocation import (
    calibrate_threshold,
    greedy_allocate,
    threshold_allocate,
)
from lmlab.studies.adaptive_compute.config import AdaptiveComputeConfig
from lmlab.studies.adaptive_compute.evaluation import (
    Curve,
    bootstrap_savings,
    greedy_curve,
    savings,
    threshold_points,
    uniform_curve,
)
from lmlab.studies.adaptive_compute.labels import (
    expected_max_curve,
    marginals_from_curve,
    pilot_curves,
)
from lmlab.studies.adaptive_compute.predictors import Probe, gains_from_prediction, select_probe
from lmlab.studies.adaptive_compute.routing import route_fraction, routed_quality, routing_curve

__all__ = ["Analysis", "AnalysisSettings", "SplitData", "analyze", "subsample"]


@dataclass
class SplitData:
    """One split's arrays: rewards (n, N), probe features (n, d), heuristic features, greedy
    rewards (routing's weak decoder), difficulty levels, and (synthetic only) true pass rates."""

    rewards: np.ndarray
    features: np.ndarray
    prompt_len: np.ndarray
    pilot: np.ndarray
    greedy: np.ndarray | None = None
    level: np.ndarray | None = None
    true_p: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def binary(self) -> bool:
        return bool(np.all((self.rewards == 0) | (self.rewards == 1)))


@dataclass(frozen=True)
class AnalysisSettings:
    """Budgets, baselines and statistics of the analysis: the study config's own fields (see it
    for their meanings; `from_config` copies them) and the analysis' fixed grids."""

    b_min: int
    b_max: int
    uniform_k: tuple[int, ...]
    fixed_budget: int
    compare_budget: int
    pilot_m: int
    routing_k: int
    probe_epochs: int
    n_boot: int
    seed: int
    alphas: tuple[float, ...] = tuple(np.round(np.linspace(0, 1, 11), 2))
    offline_targets: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0, 5.0, 6.0)
    extreme_band: float = 0.125  # |p - 0| or |p - 1| within this: an extreme query
    probe_hiddens: tuple[int, ...] = (64,)
    probe_weight_decays: tuple[float, ...] = (1e-3, 1e-1)

    @classmethod
    def from_config(cls, c: AdaptiveComputeConfig) -> AnalysisSettings:
        """The settings of the study config `c`."""
        return cls(b_min=c.b_min, b_max=c.b_max, uniform_k=tuple(c.uniform_k),
                   fixed_budget=c.fixed_budget, compare_budget=c.compare_budget, pilot_m=c.pilot_m,
                   routing_k=c.routing_k, probe_epochs=c.probe_epochs, n_boot=c.n_boot,
                   seed=c.seed)


@dataclass
class Analysis:
    metrics: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict)
    routing: dict[str, np.ndarray] = field(default_factory=dict)
    offline: dict[str, Curve] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


def _labels(d: SplitData, b_max: int) -> np.ndarray:
    """Training targets: pass rates (binary) or marginal gains of the exact curves (real)."""
    if d.binary:
        return d.rewards.mean(axis=1)
    return marginals_from_curve(expected_max_curve(d.rewards, b_max))


def _per_query_at(gains: np.ndarray, true: np.ndarray, budget: int, b_min: int, b_max: int) -> np.ndarray:
    b = greedy_allocate(gains, budget * true.shape[0], b_min, b_max)
    return true[np.arange(true.shape[0]), b]


def analyze(train: SplitData, val: SplitData, test: SplitData, s: AnalysisSettings,
            external: dict[str, np.ndarray] | None = None) -> Analysis:
    """Fit, allocate and measure; see the module docstring. `external` replaces the MLP probe's
    predictions with another predictor's (e.g. the LoRA head): ``{"train", "val", "test"}``."""
    out = Analysis()
    m = out.metrics
    if test.rewards.shape[1] < s.b_max:
        raise ValueError(f"b_max={s.b_max} needs at least that many samples per query")
    binary = train.binary and test.binary
    loss = "bce" if binary else "mse"
    true = expected_max_curve(test.rewards, s.b_max)  # (n, b_max + 1)
    p_test = test.rewards.mean(axis=1)
    m["data.train.n"], m["data.val.n"], m["data.test.n"] = train.n, val.n, test.n
    m["data.samples_per_query"] = int(test.rewards.shape[1])
    m["data.binary"] = int(binary)
    m["data.test.pass_rate"] = float(p_test.mean())
    m["data.test.frac_p0"] = float(np.mean(p_test == 0))
    m["data.test.frac_p1"] = float(np.mean(p_test == 1))

    # -- predictors: fit on train, choose on val ---------------------------------------------------
    seed = derive(s.seed, "probe")
    sel = select_probe(train.features, _labels(train, s.b_max), val.features, _labels(val, s.b_max),
                       loss=loss, hiddens=s.probe_hiddens, weight_decays=s.probe_weight_decays,
                       epochs=s.probe_epochs, seed=seed)
    m["predictor.probe.hidden"], m["predictor.probe.weight_decay"] = sel.probe.hidden, sel.probe.weight_decay
    m["predictor.probe.best_epoch"] = sel.probe.best_epoch_
    m["predictor.probe.val_loss"] = sel.probe.val_loss_

    def heuristic(name: str) -> Probe:
        x = lambda d: getattr(d, name)[:, None]  # noqa: E731
        return Probe(hidden=0, loss=loss, weight_decay=0.0, lr=3e-2, epochs=300, seed=seed).fit(
            x(train), _labels(train, s.b_max), x(val), _labels(val, s.b_max))

    preds = {"probe": sel.probe.predict(test.features) if external is None else np.asarray(external["test"]),
             "length": heuristic("prompt_len").predict(test.prompt_len[:, None]),
             "pilot": heuristic("pilot").predict(test.pilot[:, None])}
    out.predictions = dict(preds)
    gains = {k: gains_from_prediction(v, s.b_max) for k, v in preds.items()}
    gains["oracle"] = marginals_from_curve(true)
    rng = np.random.default_rng(derive(s.seed, "random-allocation"))
    gains["random"] = -np.sort(-rng.random((test.n, s.b_max)), axis=1)
    if test.true_p is not None:
        gains["perfect"] = gains_from_prediction(test.true_p, s.b_max)

    # prediction quality on test, and where it errs
    if binary:
        for k in ("probe", "length", "pilot"):
            m[f"predictor.{k}.mse"] = float(np.mean((preds[k] - p_test) ** 2))
            m[f"predictor.{k}.spearman"] = spearman(preds[k], p_test)[0]
        err = np.abs(preds["probe"] - p_test)
        extreme = (p_test <= s.extreme_band) | (p_test >= 1 - s.extreme_band)
        m["predictor.probe.abs_err.extreme"] = float(err[extreme].mean()) if extreme.any() else math.nan
        m["predictor.probe.abs_err.middle"] = float(err[~extreme].mean()) if (~extreme).any() else math.nan
        m["predictor.probe.n_extreme"], m["predictor.probe.n_middle"] = int(extreme.sum()), int((~extreme).sum())
        if extreme.sum() >= 2 and (~extreme).sum() >= 2:
            iv = bootstrap_diff(err[~extreme], err[extreme], paired=False, n_boot=s.n_boot,
                                seed=derive(s.seed, "extremes"))
            m["predictor.probe.middle_minus_extreme"] = iv.value
            m["predictor.probe.middle_minus_extreme.ci_lo"] = iv.lo
            m["predictor.probe.middle_minus_extreme.ci_hi"] = iv.hi

    # -- allocation curves ------------------------------------------------------------------------
    uni = uniform_curve(true, s.b_min, s.b_max)
    out.curves["uniform"] = uni
    pilot_true = pilot_curves(test.rewards, s.pilot_m, s.b_max)
    for name, g in gains.items():
        if name == "pilot":
            c = greedy_curve(name, g, pilot_true, max(s.b_min, s.pilot_m), s.b_max)
        else:
            c = greedy_curve(name, g, true, s.b_min, s.b_max)
        out.curves[name] = c
        for k in s.uniform_k:
            m[f"alloc.{name}.savings_k{k}"] = savings(c, uni, k)
        for budget in sorted({s.fixed_budget, s.compare_budget}):
            m[f"alloc.{name}.quality_b{budget}"] = c.at(budget)
            m[f"alloc.{name}.gain_b{budget}"] = c.at(budget) - uni.at(budget)
    for k in s.uniform_k:
        m[f"alloc.uniform.quality_k{k}"] = uni.at(k)
    # intervals over queries for the probe's and the oracle's savings
    for name in ("probe", "oracle", *(("perfect",) if "perfect" in gains else ())):
        for k in s.uniform_k:
            iv = bootstrap_savings(gains[name], true, k, s.b_min, s.b_max, n_boot=s.n_boot,
                                   seed=derive(s.seed, "boot-savings", name, k))
            m[f"alloc.{name}.savings_k{k}.ci_lo"], m[f"alloc.{name}.savings_k{k}.ci_hi"] = iv.lo, iv.hi
    # quality gain at a fixed budget: paired over queries (allocation held fixed)
    qb = {name: _per_query_at(gains[name], true, s.fixed_budget, s.b_min, s.b_max) for name in ("probe", "oracle")}
    for name, q in qb.items():
        iv = bootstrap_diff(q, true[:, s.fixed_budget], n_boot=s.n_boot, seed=derive(s.seed, "boot-gain", name))
        m[f"alloc.{name}.gain_b{s.fixed_budget}.ci_lo"] = iv.lo
        m[f"alloc.{name}.gain_b{s.fixed_budget}.ci_hi"] = iv.hi
        base = true[:, s.fixed_budget].mean()
        m[f"alloc.{name}.rel_gain_b{s.fixed_budget}"] = iv.value / base if base > 0 else math.nan
    # the probe against each heuristic at the comparison budget
    cb = s.compare_budget
    q_probe = _per_query_at(gains["probe"], true, cb, s.b_min, s.b_max)
    for name in ("length", "pilot", "random"):
        if name == "pilot":
            if cb < s.pilot_m:
                continue
            q_other = _per_query_at(gains[name], np.nan_to_num(pilot_true, nan=-1.0), cb, s.pilot_m, s.b_max)
        else:
            q_other = _per_query_at(gains[name], true, cb, s.b_min, s.b_max)
        iv = bootstrap_diff(q_probe, q_other, n_boot=s.n_boot, seed=derive(s.seed, "boot-compare", name))
        m[f"compare.probe_vs_{name}.b{cb}"] = iv.value
        m[f"compare.probe_vs_{name}.b{cb}.ci_lo"] = iv.lo
        m[f"compare.probe_vs_{name}.b{cb}.ci_hi"] = iv.hi
    # the oracle bounds every allocation of the same total judged on the same curves
    ks = np.arange(s.b_min, s.b_max + 1)
    margins = [out.curves["oracle"].at(k) - out.curves[n].at(k)
               for n in out.curves if n not in ("oracle", "pilot") for k in ks]
    m["check.oracle_margin_min"] = float(min(margins))

    # -- per-query thresholds calibrated on train + val (the paper's "offline") -------------------
    fit = SplitData(np.vstack([train.rewards, val.rewards]), np.vstack([train.features, val.features]),
                    np.r_[train.prompt_len, val.prompt_len], np.r_[train.pilot, val.pilot])
    fit_pred = (sel.probe.predict(fit.features) if external is None
                else np.concatenate([np.asarray(external["train"]), np.asarray(external["val"])]))
    fit_gains = gains_from_prediction(fit_pred, s.b_max)
    off = threshold_points("probe (per-query)", fit_gains, gains["probe"], true,
                           np.array(s.offline_targets), s.b_min, s.b_max)
    out.offline["probe"] = off
    worst = 0.0
    for t in s.offline_targets:
        lam = calibrate_threshold(fit_gains, t, s.b_min, s.b_max)
        worst = max(worst, abs(threshold_allocate(fit_gains, lam, s.b_min, s.b_max).mean() - t) / t)
        b = threshold_allocate(gains["probe"], lam, s.b_min, s.b_max)
        m[f"offline.probe.target{t:g}.test_budget"] = float(b.mean())  # realised, not rescaled
        m[f"offline.probe.target{t:g}.quality"] = float(true[np.arange(test.n), b].mean())
    m["offline.calibration_max_rel_err"] = float(worst)
    for k in s.uniform_k:
        m[f"offline.probe.savings_k{k}"] = savings(off, uni, k)

    # -- routing: greedy decode (weak) vs best-of-k sampling (strong) -----------------------------
    if test.greedy is not None and train.greedy is not None and val.greedy is not None:
        _route(train, val, test, s, loss, out)
    return out


def _route(train: SplitData, val: SplitData, test: SplitData, s: AnalysisSettings, loss: str, out: Analysis) -> None:
    m = out.metrics
    k = s.routing_k

    def gain_labels(d: SplitData) -> np.ndarray:
        return expected_max_curve(d.rewards, k)[:, k] - d.greedy  # type: ignore[operator]

    sel = select_probe(train.features, gain_labels(train), val.features, gain_labels(val), loss="mse",
                       hiddens=s.probe_hiddens, weight_decays=s.probe_weight_decays,
                       epochs=s.probe_epochs, seed=derive(s.seed, "router"))
    weak = np.asarray(test.greedy, dtype=float)
    strong = expected_max_curve(test.rewards, k)[:, k]
    alphas = np.array(s.alphas)
    scores = {"probe": sel.probe.predict(test.features), "oracle": strong - weak}
    out.routing["alpha"] = alphas
    out.routing["random"] = routing_curve(weak, strong, None, alphas)
    for name, sc in scores.items():
        out.routing[name] = routing_curve(weak, strong, sc, alphas)
    m["routing.k"] = k
    m["routing.weak"], m["routing.strong"] = float(weak.mean()), float(strong.mean())
    m["routing.alpha0_minus_weak"] = float(out.routing["probe"][0] - weak.mean())
    m["routing.alpha1_minus_strong"] = float(out.routing["probe"][-1] - strong.mean())
    for a in (0.25, 0.5):
        mask = route_fraction(scores["probe"], a)
        q = routed_quality(weak, strong, mask)
        frac = mask.mean()
        rand = (1 - frac) * weak + frac * strong  # random routing's expected per-query quality
        iv = bootstrap_diff(q, rand, n_boot=s.n_boot, seed=derive(s.seed, "boot-route", a))
        key = f"routing.probe.a{a:g}"
        m[key] = float(q.mean())
        m[f"{key}.vs_random"], m[f"{key}.vs_random.ci_lo"], m[f"{key}.vs_random.ci_hi"] = iv.value, iv.lo, iv.hi
        m[f"routing.oracle.a{a:g}"] = float(routed_quality(weak, strong, route_fraction(scores["oracle"], a)).mean())
        m[f"routing.random.a{a:g}"] = float(rand.mean())
    # the strong procedure's quality at the smallest alpha that reaches it
    need = [a for a, q in zip(alphas, out.routing["probe"], strict=True) if q >= strong.mean() - 1e-12]
    m["routing.probe.alpha_to_strong"] = float(min(need)) if need else math.nan


def subsample(d: SplitData, idx: np.ndarray) -> SplitData:
    """The rows `idx` of a split."""
    def t(a: Any) -> Any:
        return None if a is None else np.asarray(a)[idx]
    return replace(d, rewards=d.rewards[idx], features=d.features[idx], prompt_len=d.prompt_len[idx],
                   pilot=d.pilot[idx], greedy=t(d.greedy), level=t(d.level), true_p=t(d.true_p))

