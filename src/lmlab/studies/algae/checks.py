"""Implementation checks measured during a run (reported as `Check`s, not paper claims):
soft value iteration against brute-force enumeration, the IRL gradient against finite
differences, weight recovery from the true features, and sandbox refusals."""

from __future__ import annotations

import itertools

import numpy as np

from lmlab.sandbox import run_function
from lmlab.seeding import derive

from .environment import SemanticGridEnv, random_layout, sample_reward
from .irl import TabularMDP, fit_maxent, loglik_and_grad, occupancy, rollout, soft_value_iteration

ESCAPES = {
    "open_file": "def feature(s):\n    return float(len(open('/etc/passwd').read()))\n",
    "import_module": "import os\ndef feature(s):\n    return float(os.getpid())\n",
    "socket": ("def feature(s):\n    m = __import__('socket')\n"
               "    m.create_connection(('127.0.0.1', 80))\n    return 1.0\n"),
    "dunder_escape": ("def feature(s):\n    return float(len(().__class__.__base__"
                      ".__subclasses__()))\n"),
    "infinite_loop": "def feature(s):\n    while True:\n        pass\n",
    "memory_bomb": "def feature(s):\n    x = [1] * (10 ** 10)\n    return 1.0\n",
}


def brute_force_error(seed: int, S: int = 3, A: int = 2, H: int = 4) -> float:
    """Max |soft-VI quantity - enumeration| on a random deterministic MDP: log Z per start state,
    trajectory probabilities and expected feature counts."""
    rng = np.random.default_rng(seed)
    P = np.zeros((S, A, S))
    P[np.arange(S)[:, None], np.arange(A)[None], rng.integers(S, size=(S, A))] = 1.0
    phi = rng.normal(size=(S, 2))
    r = phi @ rng.normal(size=2)
    V, _, pi = soft_value_iteration(P, r, H)
    err = 0.0
    for s0 in range(S):
        logits, feats = [], []
        for acts in itertools.product(range(A), repeat=H):
            s, states = s0, [s0]
            for a in acts:
                s = int(P[s, a].argmax())
                states.append(s)
            logits.append(r[states[:-1]].sum())
            feats.append(phi[states[:-1]].sum(0))
        logits_a = np.array(logits)
        logz = np.log(np.exp(logits_a).sum())
        p = np.exp(logits_a - logz)
        mu = np.eye(S)[s0]
        err = max(err, abs(logz - V[0, s0]),
                  float(np.abs(occupancy(P, pi, mu).sum(0) @ phi - p @ np.array(feats)).max()))
    return err


def _grid(seed: int, n_demos: int, n_rooms: int, size: int = 7, beta: float = 5.0):
    rng = np.random.default_rng(seed)
    reward = sample_reward(rng)
    mdps, demos = [], []
    for i in range(n_rooms):
        env = SemanticGridEnv(random_layout(rng, size), reward)
        mdps.append(TabularMDP(env.transition_matrix, env.initial_state_dist, env.horizon,
                               reward.features(env.layout)))
        pi = soft_value_iteration(env.transition_matrix, beta * env.state_rewards, env.horizon)[2]
        demos += [rollout(env.transition_matrix, pi, env.initial_state_dist, rng, mdp_index=i)
                  for _ in range(n_demos // n_rooms)]
    return mdps, demos, reward


def gradient_error(seed: int, eps: float = 1e-6) -> float:
    """Max |analytic - central finite-difference| gradient of the demo log-likelihood."""
    mdps, demos, reward = _grid(seed, 4, 2)
    theta = np.random.default_rng(seed).normal(size=reward.theta.size)
    _, g = loglik_and_grad(theta, mdps, demos)
    num = np.array([(loglik_and_grad(theta + eps * e, mdps, demos)[0]
                     - loglik_and_grad(theta - eps * e, mdps, demos)[0]) / (2 * eps)
                    for e in np.eye(theta.size)])
    return float(np.abs(g - num).max())


def recovery_cosine(seed: int) -> float:
    """cos(theta-hat, theta*) from the true features and 20 demonstrations in four 7x7 rooms."""
    mdps, demos, reward = _grid(seed, 20, 4)
    th = fit_maxent(mdps, demos, l2=1e-3).theta
    return float(th @ reward.theta / np.linalg.norm(th) / np.linalg.norm(reward.theta))


def implementation_checks(seed: int) -> dict[str, float]:
    out = {
        "check.soft_vi_brute_force_err": max(brute_force_error(derive(seed, "bf", i))
                                             for i in range(3)),
        "check.gradient_fd_err": max(gradient_error(derive(seed, "fd", i)) for i in range(2)),
        "check.recovery_cos_min": min(recovery_cosine(derive(seed, "cos", i)) for i in range(3)),
    }
    refused = 0
    for code in ESCAPES.values():
        res = run_function(code, "feature", [{"x": 0}], timeout_s=2.0, memory_mb=256)
        refused += int(not res.ok)
    out["check.sandbox_refused"] = float(refused)
    out["check.sandbox_attempts"] = float(len(ESCAPES))
    return out
