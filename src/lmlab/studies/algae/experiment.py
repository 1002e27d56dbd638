"""The study's jobs: detector calibration and test, and the methods compared per (seed, demos).

Methods on one world and demonstration count (all evaluated on the same held-out rooms):

* ``initial``: MaxEnt IRL on the initial features F0 (a true feature is missing);
* ``all``: MaxEnt IRL on every library feature (over-parameterised: spurious features too);
* ``oracle``: MaxEnt IRL on the true features (an upper reference);
* ``deep``: deep MaxEnt IRL on the raw state;
* ``algae_library``: the ALGAE loop with the library proposer (the non-LM feature-selection
  ablation);
* ``algae_lm``: the ALGAE loop with the language model writing the features (when configured).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmlab.seeding import derive

from .baselines import deep_maxent
from .detector import STATISTICS, Detector, statistics
from .evaluation import evaluate, recovered
from .features import LIBRARY, library
from .features import evaluate as feature_values
from .irl import fit_maxent
from .loop import fit_features, run_algae
from .problem import Problem, make_problem, mdp
from .proposers import LibraryProposer, Proposer


@dataclass(frozen=True)
class WorldSpec:
    """How worlds are drawn (the config fields that shape a `Problem`)."""

    n_train: int
    n_test: int
    train_sizes: tuple[int, ...]
    test_sizes: tuple[int, ...]
    beta_demo: float
    horizon_per_size: int = 2

    def problem(self, seed: int) -> Problem:
        return make_problem(seed, self.n_train, self.n_test, self.train_sizes, self.test_sizes,
                            self.beta_demo, horizon_per_size=self.horizon_per_size)


def detector_stats(world: WorldSpec, seed: int, n_demos: int, initial: tuple[str, ...],
                   missing_feature: str, l2: float) -> dict[str, dict[str, float]]:
    """The detector statistics of one world with the feature set complete and with one removed."""
    obs = world.problem(seed).observations(n_demos)
    out = {}
    for label, names in (("complete", (*initial, missing_feature)), ("missing", initial)):
        f = fit_features(library(names), obs, l2)
        out[label] = statistics(f.fit, f.mdps, obs.demos)
    return out


def oracle_rewards(problem: Problem, n_demos: int, l2: float) -> list[np.ndarray]:
    """MaxEnt IRL on the true features (standardised like the others); held-out rewards."""
    obs = problem.observations(n_demos)
    mats = [problem.reward.features(lay) for lay in obs.layouts]
    sd = np.concatenate(mats).std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    mdps = [mdp(lay, m / sd, obs.horizon_per_size) for lay, m in zip(obs.layouts, mats,
                                                                      strict=True)]
    theta = fit_maxent(mdps, obs.demos, l2=l2).theta
    return [problem.reward.features(lay) / sd @ theta for lay in problem.test]


def true_missing_values(problem: Problem, name: str) -> np.ndarray:
    """The values of the true feature `name` over every held-out state (for recovery)."""
    k = problem.reward.names.index(name)
    return np.concatenate([problem.reward.features(lay)[:, k] for lay in problem.test])


def method_job(world: WorldSpec, seed: int, n_demos: int, initial: tuple[str, ...],
               true_missing: str, detector: Detector, *, l2: float, max_iters: int,
               deep_steps: int, methods: tuple[str, ...], proposer: Proposer | None = None,
               ) -> dict[str, Any]:
    """Every method of `methods` on one world and demonstration count: metrics per method."""
    problem = world.problem(seed)
    obs = problem.observations(n_demos)
    out: dict[str, Any] = {"seed": seed, "demos": n_demos}
    truth = true_missing_values(problem, true_missing)

    def record(name: str, rewards: list[np.ndarray]) -> None:
        for k, v in evaluate(problem.reward, problem.test, rewards,
                             problem.horizon_per_size).items():
            out[f"{name}.{k}"] = v

    if "initial" in methods:
        record("initial", fit_features(library(initial), obs, l2).rewards(problem.test))
    if "all" in methods:
        record("all", fit_features(LIBRARY, obs, l2).rewards(problem.test))
    if "oracle" in methods:
        record("oracle", oracle_rewards(problem, n_demos, l2))
    if "deep" in methods:
        net = deep_maxent(obs, steps=deep_steps, seed=derive(seed, "deep", n_demos))
        record("deep", net.rewards(problem.test))
    runs = []
    if "algae_library" in methods:
        runs.append(("algae_library", LibraryProposer()))
    if "algae_lm" in methods and proposer is not None:
        runs.append(("algae_lm", proposer))
    for name, prop in runs:
        res = run_algae(obs, library(initial), prop, detector, max_iters=max_iters, l2=l2,
                        seed=derive(seed, "loop", n_demos))
        record(name, res.fitted.rewards(problem.test))
        cols = [np.concatenate(feature_values(f, problem.test)) for f in res.added]
        out[f"{name}.recovered"] = float(recovered(cols, truth))
        out[f"{name}.added"] = float(len(res.added))
        out[f"{name}.iterations"] = float(len(res.iterations) - 1)
        out[f"{name}.proposed"] = float(res.proposed)
        out[f"{name}.valid"] = float(res.valid)
        out[f"{name}.stop"] = res.stop_reason
        out[f"{name}.log"] = [{k: v for k, v in it.items() if k != "added_specs"}
                              for it in res.iterations]
        out[f"{name}.added_features"] = [{"name": f.name, "hash": f.code_hash, "code": f.code}
                                         for f in res.added]
    return out


__all__ = ["STATISTICS", "WorldSpec", "detector_stats", "method_job"]
