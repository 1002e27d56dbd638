"""MaxEnt IRL: soft value iteration against brute force, gradient against finite differences,
weight recovery from true features."""

import itertools

import numpy as np
import pytest

from lmlab.studies.algae.environment import (
    SemanticGridEnv,
    random_layout,
    sample_reward,
)
from lmlab.studies.algae.irl import (
    Demo,
    TabularMDP,
    fit_maxent,
    loglik_and_grad,
    occupancy,
    optimal_policy,
    policy_return,
    rollout,
    soft_value_iteration,
)


def _tiny_mdp(rng, S=3, A=2, stochastic=False):
    if stochastic:
        P = rng.dirichlet(np.ones(S), size=(S, A))
    else:
        P = np.zeros((S, A, S))
        for s in range(S):
            for a in range(A):
                P[s, a, rng.integers(S)] = 1.0
    mu0 = rng.dirichlet(np.ones(S))
    return P, mu0


@pytest.mark.parametrize("stochastic", [False, True])
def test_soft_vi_matches_brute_force_enumeration(stochastic):
    rng = np.random.default_rng(1)
    P, mu0 = _tiny_mdp(rng, stochastic=stochastic)
    S, A, _ = P.shape
    H = 4
    phi = rng.normal(size=(S, 2))
    r = phi @ np.array([0.7, -1.3])
    V, _Q, pi = soft_value_iteration(P, r, H)
    # enumerate every (s_0, a_0, ..., a_{H-1}, s_H)
    total_p, feat, unnorm = 0.0, np.zeros(2), 0.0
    for s0 in range(S):
        for acts in itertools.product(range(A), repeat=H):
            for nxt in itertools.product(range(S), repeat=H):
                states = (s0, *nxt)
                p_dyn = mu0[s0] * np.prod([P[states[t], acts[t], states[t + 1]] for t in range(H)])
                if p_dyn == 0:
                    continue
                p_pol = np.prod([pi[t, states[t], acts[t]] for t in range(H)])
                total_p += p_dyn * p_pol
                feat += p_dyn * p_pol * phi[list(states[:-1])].sum(0)
                unnorm += p_dyn * np.exp(r[list(states[:-1])].sum())
    assert total_p == pytest.approx(1.0, abs=1e-10)
    D = occupancy(P, pi, mu0)
    np.testing.assert_allclose(D.sum(0) @ phi, feat, atol=1e-10)
    if not stochastic:
        # deterministic dynamics: MCE = trajectory MaxEnt, log Z = mu0 . V_0 ... per start state
        for s0 in range(S):
            z = sum(np.exp(r[[s0, *_path(P, s0, acts)][:-1]].sum())
                    for acts in itertools.product(range(A), repeat=H))
            assert np.log(z) == pytest.approx(V[0, s0], abs=1e-10)
        # and each trajectory's probability is exp(R(xi)) / Z
        s0 = 0
        for acts in itertools.product(range(A), repeat=H):
            states = [s0, *_path(P, s0, acts)]
            p = np.prod([pi[t, states[t], acts[t]] for t in range(H)])
            assert p == pytest.approx(np.exp(r[states[:-1]].sum() - V[0, s0]), rel=1e-10)


def _path(P, s, acts):
    out = []
    for a in acts:
        s = int(P[s, a].argmax())
        out.append(s)
    return out


def test_hard_vi_is_the_best_deterministic_policy():
    rng = np.random.default_rng(2)
    P, mu0 = _tiny_mdp(rng, stochastic=True)
    r = rng.normal(size=3)
    V, pi = optimal_policy(P, r, 3)
    best = policy_return(P, pi, mu0, r)
    for choice in itertools.product(range(2), repeat=3 * 3):
        pol = np.zeros((3, 3, 2))
        for i, a in enumerate(choice):
            pol[i // 3, i % 3, a] = 1
        assert policy_return(P, pol, mu0, r) <= best + 1e-12
    assert best == pytest.approx(mu0 @ V[0])


def _grid_problems(seed, n_demos, size=7, beta=1.0, n_layouts=1):
    """`n_demos` Boltzmann-rational demos spread round-robin over `n_layouts` random rooms."""
    rng = np.random.default_rng(seed)
    reward = sample_reward(rng)
    mdps, pis = [], []
    for _ in range(n_layouts):
        lay = random_layout(rng, size)
        env = SemanticGridEnv(lay, reward)
        mdps.append(TabularMDP(env.transition_matrix, env.initial_state_dist, env.horizon,
                               reward.features(lay)))
        pis.append(soft_value_iteration(env.transition_matrix, beta * env.state_rewards,
                                        env.horizon)[2])
    demos = [rollout(mdps[i % n_layouts].transition_matrix, pis[i % n_layouts],
                     mdps[i % n_layouts].initial_state_dist, rng, mdp_index=i % n_layouts)
             for i in range(n_demos)]
    return mdps, demos, reward


def _grid_problem(seed, n_demos, size=7, beta=1.0):
    mdps, demos, reward = _grid_problems(seed, n_demos, size, beta)
    return mdps[0], demos, reward


def test_gradient_matches_finite_differences():
    mdp, demos, _ = _grid_problem(3, 4)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=mdp.features.shape[1])
    _, g = loglik_and_grad(theta, [mdp], demos)
    eps = 1e-6
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = eps
        num = (loglik_and_grad(theta + e, [mdp], demos)[0]
               - loglik_and_grad(theta - e, [mdp], demos)[0]) / (2 * eps)
        assert g[k] == pytest.approx(num, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weight_recovery_from_true_features_and_20_demos(seed):
    # 20 demos over four 7x7 rooms: one room alone may never put water near the path, and a
    # weight its demos never exercise is not identifiable.
    mdps, demos, reward = _grid_problems(10 + seed, 20, size=7, beta=5.0, n_layouts=4)
    fit = fit_maxent(mdps, demos, l2=1e-3)
    cos = fit.theta @ reward.theta / np.linalg.norm(fit.theta) / np.linalg.norm(reward.theta)
    assert fit.converged
    assert cos >= 0.95, (cos, fit.theta, reward.theta)
    assert np.abs(fit.residual).max() < 1e-2


def test_rollouts_are_demos_of_the_horizon():
    mdp, demos, _ = _grid_problem(4, 2)
    for d in demos:
        assert isinstance(d, Demo)
        assert len(d.states) == mdp.horizon + 1 and len(d.actions) == mdp.horizon


def test_sampled_partition_irl_recovers_continuous_weights():
    from lmlab.studies.algae.navigation import nav_experiment

    out = nav_experiment(3, 10, 1000)
    assert out["oracle.cos"] >= 0.9
    assert out["initial.cos"] < out["oracle.cos"]  # dropping a true feature hurts
