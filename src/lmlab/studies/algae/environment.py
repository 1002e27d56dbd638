"""Semantic gridworlds: a room with rugs, water, plants and fragile vases, and a goal to reach.

A `Layout` is one room: a grid (7x7 to 12x12) whose cells hold objects with attributes (a kind,
a colour, whether it is fragile or wet or needs watering), a start cell and a goal cell. The
`SemanticGridEnv` wraps a layout in the Gymnasium API (``reset(seed=...) -> (obs, info)``,
``step(a) -> (obs, reward, terminated, truncated, info)``) and exposes the tabular model the
IRL code needs, shaped as in `imitation`'s tabular environments: ``transition_matrix[S, A, S]``,
``horizon`` and ``initial_state_dist``.

The person's true reward is linear in `TRUE_FEATURES` (`RewardSpec`). Those feature functions
live here, beside the environment, and never reach a proposer: a proposer sees only
`TASK_DESCRIPTION`, `STATE_API`, the state dicts of `Layout.state_dict` and trajectory text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

KINDS = ("floor", "rug", "water", "plant", "vase", "table")
COLORS = ("red", "green", "blue", "yellow")
# Probability of each kind when a cell is furnished; the rest stays floor.
DENSITY = {"rug": 0.12, "water": 0.10, "plant": 0.08, "vase": 0.09, "table": 0.05}
ACTIONS = ((0, -1), (0, 1), (-1, 0), (1, 0), (0, 0))  # up, down, left, right, stay (dx, dy)
ACTION_NAMES = ("up", "down", "left", "right", "stay")

TASK_DESCRIPTION = (
    "A person walks a household robot through a room, from its start cell to a goal cell. "
    "The robot moves one cell up, down, left or right per step, or stays; once at the goal it "
    "should stay there. The person has preferences about how the robot moves through the room, "
    "and shows them with a few demonstrations. We want a reward function made of "
    "human-meaningful features of a state that explains why the person moved as they did."
)
STATE_API = """A state is a Python dict:
  s["x"], s["y"]         the robot's cell (0-based column and row; y grows downwards)
  s["width"], s["height"] the room's size
  s["goal"]              [gx, gy], the goal cell
  s["cell"]              the object in the robot's cell, a dict:
                           {"kind": one of "floor", "rug", "water", "plant", "vase", "table",
                            "color": one of "red", "green", "blue", "yellow",
                            "fragile": bool, "wet": bool, "needs_water": bool}
  s["neighbors"]         a list of the cell dicts of the 4 adjacent cells inside the room
A feature is a function  def feature(s): ...  returning a float (for example 1.0 or 0.0)."""


@dataclass(frozen=True)
class Layout:
    """One room: object kinds and colours per cell (row-major, [y][x]), a start and a goal."""

    kinds: tuple[tuple[str, ...], ...]
    colors: tuple[tuple[str, ...], ...]
    start: tuple[int, int]
    goal: tuple[int, int]
    needs_water: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    @property
    def height(self) -> int:
        return len(self.kinds)

    @property
    def width(self) -> int:
        return len(self.kinds[0])

    @property
    def n_states(self) -> int:
        return self.width * self.height

    def index(self, x: int, y: int) -> int:
        """The state index of cell (x, y)."""
        return y * self.width + x

    def cell_xy(self, s: int) -> tuple[int, int]:
        """The cell (x, y) of state index `s`."""
        return s % self.width, s // self.width

    def cell(self, x: int, y: int) -> dict[str, Any]:
        """The attributes of the object in cell (x, y), as a proposer's feature sees them."""
        kind = self.kinds[y][x]
        return {"kind": kind, "color": self.colors[y][x], "fragile": kind == "vase",
                "wet": kind == "water", "needs_water": (x, y) in self.needs_water}

    def neighbors(self, x: int, y: int) -> list[tuple[int, int]]:
        """The in-room 4-neighbours of (x, y), in the order up, down, left, right."""
        out = []
        for dx, dy in ACTIONS[:4]:
            nx, ny = x + dx, y + dy
            if 0 <= nx < self.width and 0 <= ny < self.height:
                out.append((nx, ny))
        return out

    def state_dict(self, s: int) -> dict[str, Any]:
        """The state `s` as the plain dict of `STATE_API` (what feature code receives)."""
        x, y = self.cell_xy(s)
        return {"x": x, "y": y, "width": self.width, "height": self.height,
                "goal": [self.goal[0], self.goal[1]], "cell": self.cell(x, y),
                "neighbors": [self.cell(nx, ny) for nx, ny in self.neighbors(x, y)]}

    def state_dicts(self) -> list[dict[str, Any]]:
        return [self.state_dict(s) for s in range(self.n_states)]

    def render(self, path: Sequence[int] = ()) -> str:
        """An ASCII map: one letter per kind (. floor, r rug, w water, p plant, v vase, t table),
        S start, G goal, * cells on `path`."""
        letters = {"floor": ".", "rug": "r", "water": "w", "plant": "p", "vase": "v", "table": "t"}
        on_path = {self.cell_xy(s) for s in path}
        rows = []
        for y in range(self.height):
            row = []
            for x in range(self.width):
                ch = letters[self.kinds[y][x]]
                if (x, y) in on_path:
                    ch = "*"
                if (x, y) == self.start:
                    ch = "S"
                if (x, y) == self.goal:
                    ch = "G"
                row.append(ch)
            rows.append(" ".join(row))
        return "\n".join(rows)

    def describe_state(self, s: int) -> str:
        """One line of text about state `s` for a language model."""
        x, y = self.cell_xy(s)
        c = self.cell(x, y)
        nb = sorted({self.kinds[ny][nx] for nx, ny in self.neighbors(x, y)} - {"floor"})
        near = f", next to {', '.join(nb)}" if nb else ""
        goal = " (the goal)" if (x, y) == self.goal else ""
        return f"({x},{y}) {c['color']} {c['kind']}{goal}{near}"

    def describe_trajectory(self, states: Sequence[int], max_steps: int = 40) -> str:
        """A trajectory as text: one numbered line per step, up to its first arrival at the goal."""
        lines = []
        for t, s in enumerate(states[:max_steps]):
            lines.append(f"  {t}: {self.describe_state(s)}")
            if self.cell_xy(s) == self.goal:
                break  # what happens after reaching the goal says little about preferences
        return "\n".join(lines)


def random_layout(rng: np.random.Generator, size: int) -> Layout:
    """A random `size` x `size` room; start on the left edge, goal on the right edge (both floor)."""
    if not 5 <= size <= 16:
        raise ValueError(f"grid size must be in [5, 16], got {size}")
    kinds_p = ["floor", *DENSITY]
    probs = np.array([1 - sum(DENSITY.values()), *DENSITY.values()])
    grid = rng.choice(len(kinds_p), size=(size, size), p=probs)
    colors = rng.integers(0, len(COLORS), size=(size, size))
    start = (int(rng.integers(0, 2)), int(rng.integers(0, size)))
    goal = (int(rng.integers(size - 2, size)), int(rng.integers(0, size)))
    for x, y in (start, goal):
        grid[y, x] = 0
    kinds = tuple(tuple(kinds_p[k] for k in row) for row in grid)
    thirsty = frozenset((x, y) for y in range(size) for x in range(size)
                        if kinds[y][x] == "plant" and rng.random() < 0.5)
    return Layout(kinds=kinds, colors=tuple(tuple(COLORS[c] for c in row) for row in colors),
                  start=start, goal=goal, needs_water=thirsty)


# -- the person's true reward (hidden from every proposer) ------------------------------------
def _distance_to_goal(lay: Layout, x: int, y: int) -> float:
    return (abs(x - lay.goal[0]) + abs(y - lay.goal[1])) / max(lay.width, lay.height)


def _stepped_in_water(lay: Layout, x: int, y: int) -> float:
    return float(lay.kinds[y][x] == "water")


def _next_to_fragile(lay: Layout, x: int, y: int) -> float:
    cells = [(x, y), *lay.neighbors(x, y)]
    return float(any(lay.kinds[cy][cx] == "vase" for cx, cy in cells))


def _walks_on_rug(lay: Layout, x: int, y: int) -> float:
    return float(lay.kinds[y][x] == "rug")


TRUE_FEATURES: dict[str, Callable[[Layout, int, int], float]] = {
    "goal_distance": _distance_to_goal,
    "water_contact": _stepped_in_water,
    "fragile_proximity": _next_to_fragile,
    "rug_contact": _walks_on_rug,
}


@dataclass(frozen=True)
class RewardSpec:
    """The true reward: weights over named `TRUE_FEATURES` (a feature absent here weighs 0)."""

    weights: tuple[tuple[str, float], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.weights)

    @property
    def theta(self) -> np.ndarray:
        return np.array([w for _, w in self.weights], dtype=float)

    def features(self, lay: Layout) -> np.ndarray:
        """The true feature matrix of a layout, shape (S, K)."""
        out = np.zeros((lay.n_states, len(self.weights)))
        for s in range(lay.n_states):
            x, y = lay.cell_xy(s)
            out[s] = [TRUE_FEATURES[n](lay, x, y) for n in self.names]
        return out

    def state_rewards(self, lay: Layout) -> np.ndarray:
        """r*(s) for every state of a layout, shape (S,)."""
        return self.features(lay) @ self.theta


def sample_reward(rng: np.random.Generator, with_rug: bool = False) -> RewardSpec:
    """A true reward: reach the goal, avoid water, keep away from fragile things (weights jittered)."""
    w = [("goal_distance", -1.0), ("water_contact", -float(rng.uniform(0.5, 1.0))),
         ("fragile_proximity", -float(rng.uniform(0.5, 1.0)))]
    if with_rug:
        w.append(("rug_contact", float(rng.uniform(0.2, 0.4))))
    return RewardSpec(tuple(w))


# -- the tabular model -----------------------------------------------------------------------
def transition_matrix(lay: Layout, slip: float = 0.0) -> np.ndarray:
    """P[s, a, s']: the intended move with probability 1 - slip, a uniformly random one otherwise;
    moves into the wall stay put."""
    S, A = lay.n_states, len(ACTIONS)
    det = np.zeros((S, A, S))
    for s in range(S):
        x, y = lay.cell_xy(s)
        for a, (dx, dy) in enumerate(ACTIONS):
            nx, ny = x + dx, y + dy
            if not (0 <= nx < lay.width and 0 <= ny < lay.height):
                nx, ny = x, y
            det[s, a, lay.index(nx, ny)] = 1.0
    if slip == 0:
        return det
    return (1 - slip) * det + slip * det.mean(axis=1, keepdims=True)


class SemanticGridEnv(gym.Env):
    """A `Layout` in the Gymnasium API; observations are state indices, rewards the true reward.

    Attributes mirror `imitation`'s tabular environments: `transition_matrix` (S, A, S),
    `horizon`, `initial_state_dist` (S,), plus `state_rewards` (S,) under the true reward.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, layout: Layout, reward: RewardSpec, horizon: int | None = None,
                 slip: float = 0.0):
        self.layout = layout
        self.reward = reward
        self.horizon = horizon or (layout.width + layout.height)
        self.slip = slip
        self.transition_matrix = transition_matrix(layout, slip)
        self.initial_state_dist = np.zeros(layout.n_states)
        self.initial_state_dist[layout.index(*layout.start)] = 1.0
        self.state_rewards = reward.state_rewards(layout)
        self.observation_space = gym.spaces.Discrete(layout.n_states)
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self._s = 0
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._s = int(self.np_random.choice(self.layout.n_states, p=self.initial_state_dist))
        self._t = 0
        return self._s, {"state": self.layout.state_dict(self._s)}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}")
        r = float(self.state_rewards[self._s])
        self._s = int(self.np_random.choice(self.layout.n_states,
                                            p=self.transition_matrix[self._s, action]))
        self._t += 1
        truncated = self._t >= self.horizon
        return self._s, r, False, truncated, {"state": self.layout.state_dict(self._s)}

    def render(self) -> str:
        return self.layout.render([self._s])


def raw_observation(lay: Layout) -> np.ndarray:
    """The raw state vector of every state (S, 40) for deep IRL: one-hot kind of the cell and of
    each of its 4 neighbour slots (a wall is its own kind), one-hot colour, offset to the goal."""
    S = lay.n_states
    k = len(KINDS) + 1  # + wall
    out = np.zeros((S, len(KINDS) + 4 * k + len(COLORS) + 2))
    for s in range(S):
        x, y = lay.cell_xy(s)
        out[s, KINDS.index(lay.kinds[y][x])] = 1
        for j, (dx, dy) in enumerate(ACTIONS[:4]):
            nx, ny = x + dx, y + dy
            inside = 0 <= nx < lay.width and 0 <= ny < lay.height
            slot = KINDS.index(lay.kinds[ny][nx]) if inside else len(KINDS)
            out[s, len(KINDS) + j * k + slot] = 1
        out[s, len(KINDS) + 4 * k + COLORS.index(lay.colors[y][x])] = 1
        out[s, -2] = (lay.goal[0] - x) / lay.width
        out[s, -1] = (lay.goal[1] - y) / lay.height
    return out
