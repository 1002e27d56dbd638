"""Deep MaxEnt IRL on the raw state: the end-to-end baseline ALGAE argues against.

A ReLU MLP maps each state's raw observation (`environment.raw_observation`: the cell's and its
neighbours' object kinds, the cell's colour, the offset to the goal) to a reward, trained by the
exact MaxEnt gradient: d loglik / d r(s) = (demo visits of s) - (expected visits of s), pushed
through the network. FERL's deep baseline (2 x 128 ReLU, Adam lr 1e-3, weight decay 0.01) is the
model; the step count is a config knob.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .environment import Layout, raw_observation
from .irl import occupancy, soft_value_iteration
from .problem import Observations, mdp


@dataclass
class DeepReward:
    """A trained reward network; `rewards(layouts)` gives its state rewards per room."""

    net: torch.nn.Module

    def rewards(self, layouts: Sequence[Layout]) -> list[np.ndarray]:
        with torch.no_grad():
            return [self.net(torch.tensor(raw_observation(lay), dtype=torch.float32))[:, 0]
                    .double().numpy() for lay in layouts]


def deep_maxent(obs: Observations, *, hidden: int = 128, steps: int = 150, lr: float = 1e-3,
                weight_decay: float = 0.01, seed: int = 0) -> DeepReward:
    """Train an MLP reward on the observed demonstrations by MaxEnt gradient ascent."""
    torch.manual_seed(seed)
    xs = [torch.tensor(raw_observation(lay), dtype=torch.float32) for lay in obs.layouts]
    net = torch.nn.Sequential(torch.nn.Linear(xs[0].shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    m = [mdp(lay, np.zeros((lay.n_states, 0)), obs.horizon_per_size) for lay in obs.layouts]
    visits = []
    for d in obs.demos:
        v = np.zeros(obs.layouts[d.mdp_index].n_states)
        np.add.at(v, list(d.states[: m[d.mdp_index].horizon]), 1.0)
        visits.append((d.mdp_index, v))
    for _ in range(steps):
        opt.zero_grad()
        for i, v in visits:
            r = net(xs[i])[:, 0]
            P, H = m[i].transition_matrix, m[i].horizon
            _, _, pi = soft_value_iteration(P, r.detach().double().numpy(), H)
            expected = occupancy(P, pi, m[i].initial_state_dist).sum(0)
            grad = torch.tensor(expected - v, dtype=torch.float32) / len(visits)
            r.backward(grad)  # descent on -loglik: d(-ll)/dr = expected - demo visits
        opt.step()
    return DeepReward(net)
