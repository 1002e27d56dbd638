"""Maximum-(causal-)entropy IRL on tabular MDPs: soft value iteration, occupancies, fitting.

Conventions follow `imitation`'s MCE IRL (finite horizon, a state reward paid at steps
0..H-1, ``transition_matrix[S, A, S]``, ``initial_state_dist[S]``):

    Q_t(s, a) = r(s) + sum_s' P(s' | s, a) V_{t+1}(s'),   V_H = 0
    V_t(s)    = log sum_a exp Q_t(s, a),                    pi_t(a | s) = exp(Q_t(s, a) - V_t(s))
    D_0 = mu_0,   D_{t+1}(s') = sum_{s, a} D_t(s) pi_t(a | s) P(s' | s, a)

With deterministic dynamics this is the trajectory MaxEnt model P(xi) ∝ exp(sum_t r(s_t)) and
log Z = mu_0 · V_0 (the tests check both by enumerating every trajectory of a tiny MDP). A linear
reward r = phi @ theta gives the log-likelihood gradient Phi(demo) - E_theta[Phi], computed
exactly from the occupancies. `imitation` cannot be installed beside our `transformers`, so this
is written here; its defaults (Adam, lr 1e-2) are replaced by L-BFGS, which solves the same
concave problem to a tighter tolerance in far fewer soft-VI passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass(frozen=True)
class TabularMDP:
    """A finite-horizon MDP with a state feature matrix (S, K): what IRL needs of one layout."""

    transition_matrix: np.ndarray  # (S, A, S)
    initial_state_dist: np.ndarray  # (S,)
    horizon: int
    features: np.ndarray  # (S, K)

    @property
    def n_states(self) -> int:
        return self.transition_matrix.shape[0]

    def with_features(self, features: np.ndarray) -> TabularMDP:
        return TabularMDP(self.transition_matrix, self.initial_state_dist, self.horizon, features)


@dataclass(frozen=True)
class Demo:
    """One demonstration: states s_0..s_H and actions a_0..a_{H-1} in the MDP `mdp_index`."""

    states: tuple[int, ...]
    actions: tuple[int, ...]
    mdp_index: int = 0


def soft_value_iteration(P: np.ndarray, r: np.ndarray, horizon: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft Bellman backups. Returns V (H+1, S), Q (H, S, A) and the policy pi (H, S, A)."""
    S, A, _ = P.shape
    V = np.zeros((horizon + 1, S))
    Q = np.zeros((horizon, S, A))
    for t in range(horizon - 1, -1, -1):
        Q[t] = r[:, None] + P @ V[t + 1]  # (S, A)
        m = Q[t].max(axis=1)  # a stable log-sum-exp (scipy's has more overhead than work here)
        V[t] = m + np.log(np.exp(Q[t] - m[:, None]).sum(axis=1))
    pi = np.exp(Q - V[:-1, :, None])
    return V, Q, pi


def occupancy(P: np.ndarray, pi: np.ndarray, mu0: np.ndarray) -> np.ndarray:
    """State visitation D (H, S) of the time-varying policy pi (H, S, A) from mu0."""
    H = pi.shape[0]
    D = np.zeros((H, P.shape[0]))
    D[0] = mu0
    flat = P.reshape(-1, P.shape[2])  # (S*A, S)
    for t in range(H - 1):
        D[t + 1] = (D[t][:, None] * pi[t]).reshape(-1) @ flat
    return D


def optimal_policy(P: np.ndarray, r: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Hard (max) value iteration: V (H+1, S) and a deterministic policy as one-hot (H, S, A);
    ties go to the lowest action index."""
    S, A, _ = P.shape
    V = np.zeros((horizon + 1, S))
    pi = np.zeros((horizon, S, A))
    for t in range(horizon - 1, -1, -1):
        Q = r[:, None] + P @ V[t + 1]
        best = Q.argmax(axis=1)
        V[t] = Q[np.arange(S), best]
        pi[t, np.arange(S), best] = 1.0
    return V, pi


def policy_return(P: np.ndarray, pi: np.ndarray, mu0: np.ndarray, r: np.ndarray) -> float:
    """Expected sum of r(s_t), t < H, of the policy pi (H, S, A) from mu0."""
    return float(occupancy(P, pi, mu0).sum(0) @ r)


def rollout(P: np.ndarray, pi: np.ndarray, mu0: np.ndarray, rng: np.random.Generator,
            mdp_index: int = 0) -> Demo:
    """Sample one trajectory of the policy pi (H, S, A)."""
    H, S, A = pi.shape
    s = int(rng.choice(S, p=mu0))
    states, actions = [s], []
    for t in range(H):
        a = int(rng.choice(A, p=pi[t, s] / pi[t, s].sum()))
        s = int(rng.choice(S, p=P[s, a]))
        actions.append(a)
        states.append(s)
    return Demo(tuple(states), tuple(actions), mdp_index)


def greedy_path(P: np.ndarray, pi: np.ndarray, mu0: np.ndarray) -> list[int]:
    """The most likely state sequence s_0..s_H of a policy under deterministic dynamics."""
    s = int(mu0.argmax())
    out = [s]
    for t in range(pi.shape[0]):
        s = int(P[s, int(pi[t, s].argmax())].argmax())
        out.append(s)
    return out


def demo_feature_counts(demo: Demo, features: np.ndarray) -> np.ndarray:
    """Phi(xi) = sum over t < H of phi(s_t)."""
    return features[list(demo.states[:-1])].sum(0)


@dataclass
class IRLFit:
    """The result of `fit_maxent`: weights, the mean per-demo log-likelihood, and diagnostics."""

    theta: np.ndarray
    loglik: float  # mean over demos of sum_t log pi_t(a_t | s_t)
    residual: np.ndarray  # mean over demos of Phi(demo) - E_theta[Phi] (0 at the MLE, unregularised)
    iterations: int
    converged: bool


def loglik_and_grad(theta: np.ndarray, mdps: Sequence[TabularMDP], demos: Sequence[Demo]
                    ) -> tuple[float, np.ndarray]:
    """Mean over demos of log P(actions | states, theta) and its gradient in theta."""
    total = 0.0
    grad = np.zeros_like(theta, dtype=float)
    by_mdp: dict[int, list[Demo]] = {}
    for d in demos:
        by_mdp.setdefault(d.mdp_index, []).append(d)
    for i, ds in by_mdp.items():
        m = mdps[i]
        r = m.features @ theta
        V, Q, pi = soft_value_iteration(m.transition_matrix, r, m.horizon)
        expected = occupancy(m.transition_matrix, pi, m.initial_state_dist).sum(0) @ m.features
        for d in ds:
            t = np.arange(m.horizon)
            s = np.array(d.states[: m.horizon])
            a = np.array(d.actions[: m.horizon])
            total += float((Q[t, s, a] - V[t, s]).sum())
            grad += demo_feature_counts(d, m.features) - expected
    n = max(len(demos), 1)
    return total / n, grad / n


def fit_maxent(mdps: Sequence[TabularMDP], demos: Sequence[Demo], *, l2: float = 1e-2,
               theta0: np.ndarray | None = None, max_iter: int = 200, tol: float = 1e-6) -> IRLFit:
    """Maximise the mean demo log-likelihood minus (l2 / 2) |theta|^2 by L-BFGS."""
    K = mdps[0].features.shape[1]
    if K == 0:
        ll, _ = loglik_and_grad(np.zeros(0), mdps, demos)
        return IRLFit(np.zeros(0), ll, np.zeros(0), 0, True)

    def objective(th: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g = loglik_and_grad(th, mdps, demos)
        return -(ll - 0.5 * l2 * th @ th), -(g - l2 * th)

    x0 = np.zeros(K) if theta0 is None else np.asarray(theta0, float)
    res = minimize(objective, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": tol})
    ll, g = loglik_and_grad(res.x, mdps, demos)
    return IRLFit(res.x, ll, g, int(res.nit), bool(res.success))
