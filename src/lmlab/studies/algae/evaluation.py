"""How good is a learned reward on held-out rooms? Regret, success, reward correlation, recovery.

For each held-out room the learned reward's optimal (hard value-iteration) policy is run under
the TRUE reward:

* ``regret``: V*(start) - V^learned(start), normalised by V*(start) - V^uniform(start) (the
  uniformly random policy), so 0 is optimal and 1 is no better than random;
* ``success``: the learned policy's path reaches the goal and its normalised regret is <= 0.1;
* ``corr``: Pearson correlation of learned and true state rewards over the room's states.

`recovered` asks whether a feature set contains a feature that matches a given true feature
(|Pearson correlation| >= 0.9 over the held-out states): name-blind, so it works for
LM-written features as well as library ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .environment import Layout, RewardSpec
from .irl import greedy_path, optimal_policy, policy_return
from .problem import horizon, mdp


def evaluate(reward: RewardSpec, layouts: Sequence[Layout], learned: Sequence[np.ndarray],
             per_size: int = 2, success_regret: float = 0.1) -> dict[str, float]:
    """Mean regret, success rate and reward correlation of `learned` rewards over `layouts`."""
    regrets, successes, corrs = [], [], []
    for lay, r_hat in zip(layouts, learned, strict=True):
        m = mdp(lay, np.zeros((lay.n_states, 0)), per_size)
        P, mu, H = m.transition_matrix, m.initial_state_dist, horizon(lay, per_size)
        r = reward.state_rewards(lay)
        v_star = policy_return(P, optimal_policy(P, r, H)[1], mu, r)
        uniform = np.full((H, lay.n_states, P.shape[1]), 1.0 / P.shape[1])
        v_rand = policy_return(P, uniform, mu, r)
        _, pi_hat = optimal_policy(P, np.asarray(r_hat, float), H)
        v_hat = policy_return(P, pi_hat, mu, r)
        reg = (v_star - v_hat) / max(v_star - v_rand, 1e-9)
        path = greedy_path(P, pi_hat, mu)
        reached = lay.goal in {lay.cell_xy(s) for s in path}
        regrets.append(reg)
        successes.append(float(reached and reg <= success_regret))
        ok = np.ptp(r_hat) > 0 and np.ptp(r) > 0
        corrs.append(float(np.corrcoef(r_hat, r)[0, 1]) if ok else 0.0)
    return {"regret": float(np.mean(regrets)), "success": float(np.mean(successes)),
            "corr": float(np.mean(corrs))}


def recovered(feature_values: Sequence[np.ndarray], truth: np.ndarray, min_corr: float = 0.9
              ) -> bool:
    """Whether any feature column (values over the same states as `truth`) matches it."""
    for v in feature_values:
        if np.ptp(v) > 0 and np.ptp(truth) > 0 and abs(np.corrcoef(v, truth)[0, 1]) >= min_corr:
            return True
    return False
