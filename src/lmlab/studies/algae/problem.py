"""One seed's world: a hidden true reward, training rooms with demonstrations, held-out rooms.

`Problem` keeps the true reward (for evaluation only) apart from `Observations`, the only thing
the ALGAE loop, the baselines and the proposers receive: the training rooms, the demonstrations
and the horizon. Demonstrations are Boltzmann-rational rollouts of soft value iteration under
``beta_demo * r*``; demonstration i is in training room i, so n demonstrations see n rooms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lmlab.seeding import derive

from .environment import Layout, RewardSpec, random_layout, sample_reward, transition_matrix
from .features import FeatureSpec, feature_matrices
from .irl import Demo, TabularMDP, rollout, soft_value_iteration


@dataclass(frozen=True)
class Observations:
    """What a learner may see: training rooms, demonstrations in them, the horizon."""

    layouts: tuple[Layout, ...]
    demos: tuple[Demo, ...]
    horizon_per_size: int = 2  # horizon = horizon_per_size * room size


@dataclass(frozen=True)
class Problem:
    """A true reward, `n_train` demonstrations (one per room) and `n_test` held-out rooms."""

    reward: RewardSpec
    train: tuple[Layout, ...]
    demos: tuple[Demo, ...]
    test: tuple[Layout, ...]
    horizon_per_size: int = 2

    def observations(self, n_demos: int) -> Observations:
        """The first `n_demos` demonstrations and their rooms (nested across demo counts)."""
        return Observations(self.train[:n_demos], self.demos[:n_demos], self.horizon_per_size)


def horizon(lay: Layout, per_size: int = 2) -> int:
    return per_size * max(lay.width, lay.height)


@lru_cache(maxsize=4096)
def _transitions(lay: Layout) -> np.ndarray:
    return transition_matrix(lay)


def start_dist(lay: Layout) -> np.ndarray:
    mu = np.zeros(lay.n_states)
    mu[lay.index(*lay.start)] = 1.0
    return mu


def mdp(lay: Layout, features: np.ndarray, per_size: int = 2) -> TabularMDP:
    """The tabular MDP of a room with the state features `features` (S, K)."""
    return TabularMDP(_transitions(lay), start_dist(lay), horizon(lay, per_size), features)


def make_problem(seed: int, n_train: int, n_test: int, train_sizes: Sequence[int],
                 test_sizes: Sequence[int], beta_demo: float, with_rug: bool = False,
                 horizon_per_size: int = 2) -> Problem:
    """Draw a world for `seed` (every stream derived from it by name)."""
    rng = np.random.default_rng(derive(seed, "reward"))
    reward = sample_reward(rng, with_rug=with_rug)
    lrng = np.random.default_rng(derive(seed, "train-rooms"))
    train = tuple(random_layout(lrng, int(lrng.choice(train_sizes))) for _ in range(n_train))
    trng = np.random.default_rng(derive(seed, "test-rooms"))
    test = tuple(random_layout(trng, int(trng.choice(test_sizes))) for _ in range(n_test))
    drng = np.random.default_rng(derive(seed, "demos"))
    demos = []
    for i, lay in enumerate(train):
        P, H = _transitions(lay), horizon(lay, horizon_per_size)
        _, _, pi = soft_value_iteration(P, beta_demo * reward.state_rewards(lay), H)
        demos.append(rollout(P, pi, start_dist(lay), drng, mdp_index=i))
    return Problem(reward, train, tuple(demos), test, horizon_per_size)


@dataclass(frozen=True)
class Design:
    """Features plus the per-feature scale (std over the training states) used by IRL."""

    specs: tuple[FeatureSpec, ...]
    scale: np.ndarray

    @classmethod
    def fit(cls, specs: Sequence[FeatureSpec], train: Sequence[Layout]) -> Design:
        mats = feature_matrices(specs, train)
        allv = np.concatenate(mats, axis=0) if mats else np.zeros((0, len(specs)))
        sd = allv.std(axis=0) if len(allv) else np.ones(len(specs))
        return cls(tuple(specs), np.where(sd > 1e-12, sd, 1.0))

    def matrices(self, layouts: Sequence[Layout]) -> list[np.ndarray]:
        return [m / self.scale for m in feature_matrices(self.specs, layouts)]

    def mdps(self, layouts: Sequence[Layout], per_size: int = 2) -> list[TabularMDP]:
        return [mdp(lay, m, per_size) for lay, m in zip(layouts, self.matrices(layouts),
                                                        strict=True)]
