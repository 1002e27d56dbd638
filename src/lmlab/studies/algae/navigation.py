"""A continuous 2-D navigation task and MaxEnt IRL with a sampled partition estimate.

The robot moves in the unit square from a start on the left to a goal on the right, `STEPS`
steps of length `STEP`; the room holds water puddles and fragile vases at random positions.
State features are smooth (Gaussian bumps), summed along a trajectory:

    distance_to_goal(p) = |p - goal|,  in_water(p) = sum_w exp(-|p - w|^2 / 2 sigma^2),
    near_fragile(p)     = sum_v exp(-|p - v|^2 / 2 sigma^2)

Trajectories come from a proposal q (headings towards the goal with a random walk on the
angle). The MaxEnt model relative to q is P(xi) ∝ q(xi) exp(theta . Phi(xi)); demonstrations are
drawn from it exactly by resampling a large proposal set with weights exp(beta r*(xi)). IRL
estimates the partition function with an independent proposal sample:
log Z(theta) ≈ logsumexp_i(theta . Phi_i) - log M, whose gradient is the importance-weighted
feature mean, so the log-likelihood gradient is Phi(demos) - sum_i w_i Phi_i.

`NavEnv` wraps a room in the Gymnasium API (Box observations and actions).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from scipy.optimize import minimize

STEPS = 12
STEP = 0.1
SIGMA = 0.07
NAV_FEATURES = ("distance_to_goal", "in_water", "near_fragile")


@dataclass(frozen=True)
class NavRoom:
    """Start, goal, puddle and vase positions in the unit square."""

    start: np.ndarray
    goal: np.ndarray
    water: np.ndarray  # (W, 2)
    vases: np.ndarray  # (V, 2)


def random_room(rng: np.random.Generator, n_water: int = 3, n_vases: int = 3) -> NavRoom:
    start = np.array([0.1, rng.uniform(0.2, 0.8)])
    goal = np.array([0.9, rng.uniform(0.2, 0.8)])
    mid = lambda n: np.column_stack([rng.uniform(0.25, 0.75, n), rng.uniform(0.1, 0.9, n)])  # noqa: E731
    return NavRoom(start, goal, mid(n_water), mid(n_vases))


def state_features(room: NavRoom, pts: np.ndarray) -> np.ndarray:
    """Features of points (..., 2) -> (..., 3) in the order of `NAV_FEATURES`."""
    def bumps(centres: np.ndarray) -> np.ndarray:
        d2 = ((pts[..., None, :] - centres) ** 2).sum(-1)
        return np.exp(-d2 / (2 * SIGMA**2)).sum(-1)

    dist = np.linalg.norm(pts - room.goal, axis=-1)
    return np.stack([dist, bumps(room.water), bumps(room.vases)], axis=-1)


def sample_trajectories(room: NavRoom, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` proposal trajectories (n, STEPS + 1, 2): goal-seeking headings plus angle noise."""
    pos = np.repeat(room.start[None], n, axis=0)
    out = [pos]
    drift = rng.normal(0, 0.6, size=n)
    for _ in range(STEPS):
        to_goal = np.arctan2(room.goal[1] - pos[:, 1], room.goal[0] - pos[:, 0])
        drift = 0.8 * drift + rng.normal(0, 0.5, size=n)
        ang = to_goal + drift
        step = np.where(np.linalg.norm(room.goal - pos, axis=1, keepdims=True) < STEP / 2, 0.0,
                        STEP)
        pos = np.clip(pos + step * np.column_stack([np.cos(ang), np.sin(ang)]), 0, 1)
        out.append(pos)
    return np.stack(out, axis=1)


def trajectory_features(room: NavRoom, trajs: np.ndarray) -> np.ndarray:
    """Phi(xi) (n, 3): state features summed over the steps after the start."""
    return state_features(room, trajs[:, 1:]).sum(axis=1)


def demonstrations(room: NavRoom, theta: np.ndarray, beta: float, n: int,
                   rng: np.random.Generator, pool: int = 20000) -> np.ndarray:
    """`n` Boltzmann-rational demonstrations: a proposal pool resampled with exp(beta r*)."""
    trajs = sample_trajectories(room, pool, rng)
    logw = beta * trajectory_features(room, trajs) @ theta
    w = np.exp(logw - logw.max())
    idx = rng.choice(pool, size=n, p=w / w.sum())
    return trajs[idx]


def fit_sampled_maxent(demo_phi: list[np.ndarray], sample_phi: list[np.ndarray],
                       l2: float = 1e-3) -> np.ndarray:
    """MaxEnt IRL over rooms: demo features (n_i, K) and proposal-sample features (M_i, K) per
    room; the partition function of each room is estimated from its proposal sample."""
    K = demo_phi[0].shape[1]
    n_total = sum(len(d) for d in demo_phi)

    def objective(th: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g = 0.0, np.zeros(K)
        for D, S in zip(demo_phi, sample_phi, strict=True):
            z = S @ th
            m = z.max()
            w = np.exp(z - m)
            logz = m + np.log(w.mean())
            w /= w.sum()
            ll += float((D @ th).sum() - len(D) * logz)
            g += D.sum(0) - len(D) * (w @ S)
        ll, g = ll / n_total, g / n_total
        return -(ll - 0.5 * l2 * th @ th), -(g - l2 * th)

    return minimize(objective, np.zeros(K), jac=True, method="L-BFGS-B").x


def true_theta(rng: np.random.Generator) -> np.ndarray:
    return np.array([-1.0, -rng.uniform(0.5, 1.0), -rng.uniform(0.5, 1.0)])


def nav_experiment(seed: int, n_demos: int, n_samples: int, beta: float = 5.0,
                   n_rooms: int = 5) -> dict[str, float]:
    """Fit the true features and the features without `near_fragile` on one seed's demos;
    the weight cosine and the held-out regret among proposal trajectories."""
    rng = np.random.default_rng(seed)
    theta = true_theta(rng)
    rooms = [random_room(rng) for _ in range(n_rooms)]
    demo_phi, sample_phi = [], []
    for i, room in enumerate(rooms):
        k = n_demos // n_rooms + (i < n_demos % n_rooms)
        demo_phi.append(trajectory_features(room, demonstrations(room, theta, beta, k, rng)))
        sample_phi.append(trajectory_features(room, sample_trajectories(room, n_samples, rng)))
    out: dict[str, float] = {}
    for name, cols in (("oracle", [0, 1, 2]), ("initial", [0, 1])):
        th = fit_sampled_maxent([d[:, cols] for d in demo_phi], [s[:, cols] for s in sample_phi])
        full = np.zeros(3)
        full[cols] = th
        out[f"{name}.cos"] = float(full @ theta / np.linalg.norm(full) / np.linalg.norm(theta))
        regrets = []
        for _ in range(4):  # held-out rooms: pick the best of a candidate set under theta-hat
            room = random_room(rng)
            phi = trajectory_features(room, sample_trajectories(room, 500, rng))
            r_true = phi @ theta
            chosen = r_true[int(np.argmax(phi @ full))]
            regrets.append((r_true.max() - chosen) / max(r_true.max() - r_true.mean(), 1e-9))
        out[f"{name}.regret"] = float(np.mean(regrets))
    return out


class NavEnv(gym.Env):
    """A `NavRoom` in the Gymnasium API: observation (x, y); action a heading vector in
    [-1, 1]^2 scaled to one step; reward theta . phi(next state); `STEPS` steps per episode."""

    def __init__(self, room: NavRoom, theta: np.ndarray):
        self.room, self.theta = room, np.asarray(theta, float)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float64)
        self._p = room.start.copy()
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._p, self._t = self.room.start.copy(), 0
        return self._p.copy(), {}

    def step(self, action):
        a = np.clip(np.asarray(action, float), -1, 1)
        norm = np.linalg.norm(a)
        move = STEP * a / norm if norm > 1 else STEP * a
        self._p = np.clip(self._p + move, 0, 1)
        self._t += 1
        r = float(state_features(self.room, self._p) @ self.theta)
        return self._p.copy(), r, False, self._t >= STEPS, {}
