"""Is a feature missing? Statistics of how well a fitted reward explains the demonstrations.

Three statistics of a MaxEnt fit, each LOW when the demonstrations are poorly explained:

* ``loglik``: the mean per-step log-likelihood of the demonstrations' actions.
* ``typicality``: that log-likelihood minus the one the fitted model expects of its OWN samples
  (minus its per-step entropy). A correct model finds its demonstrations typical (about 0); a
  misspecified one finds them surprising (negative), because it cannot express why they moved.
* ``beta``: the rationality estimate, |theta| over standardised features (as in
  `jaco_learning`, where a low beta-hat signals a misspecified feature space).

`calibrate` sets a threshold on a calibration split (worlds of their own seeds, with the
feature set known complete or not), choosing the cut that maximises hits minus false alarms;
the detector fires when the statistic falls below it. Test rooms never touch the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .irl import Demo, IRLFit, TabularMDP, occupancy, soft_value_iteration

Statistic = Literal["loglik", "typicality", "beta"]
STATISTICS: tuple[str, ...] = ("loglik", "typicality", "beta")


def statistics(fit: IRLFit, mdps: Sequence[TabularMDP], demos: Sequence[Demo]) -> dict[str, float]:
    """Every detector statistic of `fit` on the demos it was fitted to."""
    steps = sum(mdps[d.mdp_index].horizon for d in demos)
    expected = 0.0
    for d in demos:
        m = mdps[d.mdp_index]
        _, _, pi = soft_value_iteration(m.transition_matrix, m.features @ fit.theta, m.horizon)
        D = occupancy(m.transition_matrix, pi, m.initial_state_dist)
        expected += float(np.einsum("ts,tsa->", D, pi * np.log(np.clip(pi, 1e-300, None))))
    ll_total = fit.loglik * len(demos)
    return {"loglik": ll_total / steps, "typicality": (ll_total - expected) / steps,
            "beta": float(np.linalg.norm(fit.theta))}


@dataclass(frozen=True)
class Detector:
    """Fires (a feature is missing) when `statistic` < `threshold`."""

    statistic: str
    threshold: float

    def fires(self, stats: dict[str, float]) -> bool:
        return bool(stats[self.statistic] < self.threshold)


def calibrate(complete: Sequence[float], missing: Sequence[float]) -> tuple[float, float]:
    """The threshold maximising hit rate minus false-alarm rate (fire when value < threshold),
    and that margin. Candidate cuts are midpoints between sorted pooled values."""
    c, m = np.asarray(complete, float), np.asarray(missing, float)
    pooled = np.unique(np.concatenate([c, m]))
    cuts = np.concatenate([[pooled[0] - 1.0], (pooled[1:] + pooled[:-1]) / 2, [pooled[-1] + 1.0]])
    best, best_j = cuts[0], -np.inf
    for t in cuts:
        j = float((m < t).mean() - (c < t).mean())
        if j > best_j:
            best, best_j = t, j
    return float(best), best_j
