"""Features as code: `FeatureSpec`, the candidate library, and evaluation over a room's states.

A feature is the source of one Python function ``feature(s) -> float`` over the state dicts of
`environment.STATE_API`. Library features are ours and run in this process with the same
restricted builtins as the sandbox; every proposed (LM-written) feature runs in
`lmlab.sandbox`, one child process per (feature, batch of rooms), and is accepted only if it
returns finite floats on `n_check` random states, is not constant on the training rooms, and is
not a copy (|correlation| > 0.99) of a feature already in the set.
"""

from __future__ import annotations

import hashlib
import math
import types
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmlab.sandbox import SAFE_BUILTINS, SandboxError, check_source, numeric_values

from .environment import Layout

ENTRY = "feature"


@dataclass(frozen=True)
class FeatureSpec:
    """A named feature: a description and the code of ``def feature(s): ...``.

    `trusted` marks lmlab's own library code (evaluated in this process); everything else runs
    in the sandbox.
    """

    name: str
    description: str
    code: str
    trusted: bool = False

    @property
    def code_hash(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()[:12]


def _lib(name: str, description: str, body: str) -> FeatureSpec:
    return FeatureSpec(name, description, f"def feature(s):\n    {body}\n", trusted=True)


# The candidate library: observable, human-meaningful features of a state, some of them useful
# for some person's preferences and some (colour, position) spurious for every person here.
LIBRARY: tuple[FeatureSpec, ...] = (
    _lib("distance_to_goal", "Manhattan distance from the robot to the goal / room size",
         "return (abs(s['x'] - s['goal'][0]) + abs(s['y'] - s['goal'][1])) "
         "/ max(s['width'], s['height'])"),
    _lib("at_goal", "1 if the robot is on the goal cell",
         "return float([s['x'], s['y']] == s['goal'])"),
    _lib("on_water", "1 if the robot stands in water",
         "return float(s['cell']['wet'])"),
    _lib("near_water", "1 if water is in an adjacent cell",
         "return float(any(c['wet'] for c in s['neighbors']))"),
    _lib("near_vase", "1 if the robot's cell or an adjacent cell holds a fragile object",
         "return float(s['cell']['fragile'] or any(c['fragile'] for c in s['neighbors']))"),
    _lib("on_rug", "1 if the robot stands on a rug",
         "return float(s['cell']['kind'] == 'rug')"),
    _lib("near_plant", "1 if a plant is in the robot's cell or an adjacent cell",
         "return float(any(c['kind'] == 'plant' for c in [s['cell']] + s['neighbors']))"),
    _lib("near_thirsty_plant", "1 if an adjacent plant needs water",
         "return float(any(c['needs_water'] for c in s['neighbors']))"),
    _lib("near_table", "1 if a table is in the robot's cell or an adjacent cell",
         "return float(any(c['kind'] == 'table' for c in [s['cell']] + s['neighbors']))"),
    _lib("at_wall", "1 if the robot is on the room's border",
         "return float(s['x'] in (0, s['width'] - 1) or s['y'] in (0, s['height'] - 1))"),
    _lib("on_red", "1 if the robot's cell is red",
         "return float(s['cell']['color'] == 'red')"),
    _lib("on_blue", "1 if the robot's cell is blue",
         "return float(s['cell']['color'] == 'blue')"),
    _lib("x_position", "the robot's column / room width",
         "return s['x'] / s['width']"),
    _lib("y_position", "the robot's row / room height",
         "return s['y'] / s['height']"),
)
LIBRARY_BY_NAME = {f.name: f for f in LIBRARY}


def library(names: Sequence[str]) -> list[FeatureSpec]:
    """Library features by name (a clear KeyError naming the unknown one)."""
    missing = [n for n in names if n not in LIBRARY_BY_NAME]
    if missing:
        raise KeyError(f"unknown library feature(s) {missing}; known: {sorted(LIBRARY_BY_NAME)}")
    return [LIBRARY_BY_NAME[n] for n in names]


_TRUSTED: dict[str, types.FunctionType] = {}
_CACHE: dict[tuple[str, Layout], np.ndarray] = {}
_STATES: dict[Layout, list[dict]] = {}


def _trusted_fn(spec: FeatureSpec) -> types.FunctionType:
    """Compile library code with the sandbox's builtins (same semantics, no child process)."""
    if spec.code not in _TRUSTED:
        import builtins

        check_source(spec.code)
        g = {"__builtins__": {k: getattr(builtins, k) for k in SAFE_BUILTINS
                              if hasattr(builtins, k)}, "math": math}
        exec(compile(spec.code, f"<library:{spec.name}>", "exec"), g)  # our own library code
        _TRUSTED[spec.code] = g[ENTRY]
    return _TRUSTED[spec.code]


def _layout_states(lay: Layout) -> list[dict]:
    if lay not in _STATES:
        _STATES[lay] = lay.state_dicts()
    return _STATES[lay]


def evaluate(spec: FeatureSpec, layouts: Sequence[Layout], timeout_s: float = 20.0
             ) -> list[np.ndarray]:
    """The feature's value on every state of every layout (one (S,) array per layout).

    Results are cached by (code, layout). Untrusted code runs once in the sandbox for all
    uncached layouts together. Raises SandboxError when the code fails or returns a non-number.
    """
    todo = [lay for lay in layouts if (spec.code, lay) not in _CACHE]
    if todo:
        states = [st for lay in todo for st in _layout_states(lay)]
        if spec.trusted:
            fn = _trusted_fn(spec)
            vals = np.array([float(fn(st)) for st in states])
        else:
            vals = np.array(numeric_values(spec.code, ENTRY, states, timeout_s=timeout_s))
        i = 0
        for lay in todo:
            _CACHE[(spec.code, lay)] = vals[i: i + lay.n_states]
            i += lay.n_states
    return [_CACHE[(spec.code, lay)] for lay in layouts]


def feature_matrices(specs: Sequence[FeatureSpec], layouts: Sequence[Layout]) -> list[np.ndarray]:
    """One (S, K) matrix per layout for the features `specs` (K may be 0)."""
    cols = [evaluate(f, layouts) for f in specs]
    return [np.stack([c[i] for c in cols], axis=1) if cols else np.zeros((lay.n_states, 0))
            for i, lay in enumerate(layouts)]


@dataclass(frozen=True)
class Validation:
    """Why a proposed feature was accepted or rejected."""

    ok: bool
    reason: str


def validate(spec: FeatureSpec, check_states: list[dict], train_layouts: Sequence[Layout],
             existing: Sequence[FeatureSpec], timeout_s: float = 10.0) -> Validation:
    """Accept `spec` only if it returns finite floats on `check_states` (random states, in the
    sandbox), varies over the training rooms and is not a copy of an `existing` feature."""
    try:
        numeric_values(spec.code, ENTRY, check_states, timeout_s=timeout_s)
        vals = np.concatenate(evaluate(spec, train_layouts))
    except SandboxError as e:
        return Validation(False, f"rejected: {e}")
    if np.ptp(vals) == 0:
        return Validation(False, "rejected: constant on every training state")
    for f in existing:
        other = np.concatenate(evaluate(f, train_layouts))
        if np.ptp(other) > 0 and abs(np.corrcoef(vals, other)[0, 1]) > 0.99:
            return Validation(False, f"rejected: duplicates {f.name}")
    return Validation(True, "accepted")


def random_states(layouts: Sequence[Layout], n: int, rng: np.random.Generator) -> list[dict]:
    """`n` states drawn uniformly from the rooms `layouts` (for validating proposed code)."""
    out = []
    for _ in range(n):
        lay = layouts[int(rng.integers(len(layouts)))]
        out.append(lay.state_dict(int(rng.integers(lay.n_states))))
    return out
