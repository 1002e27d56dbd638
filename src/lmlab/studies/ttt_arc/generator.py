"""A procedural generator of small ARC-like tasks (re-arc style) for the `tiny` preset.

A *family* is a grid-to-grid rule with sampled parameters (which flip, which colour map, which
fill colour, ...). A task draws one parameter set and 3-4 demos plus one test pair from it, so
every demo follows the same rule. Families compose: `"gravity+colormap"` applies gravity, then
the colour map (two steps, each with its own parameters).

The held-out evaluation set differs from the training distribution in two ways:

- **unseen compositions**: the pairs in `HELDOUT_COMPOSITIONS` never occur in training (the
  single families they are made of do, and so do other compositions using them);
- **unseen parameters**: the colour-valued parameters (colour maps, fill and recolour colours)
  are split by a fixed rule, `_colour_split`, into training and held-out values. Two schemes:
  `"global"` holds colours 3, 6 and 9 out of every family (no training task ever introduces
  them as a rule's new colour), `"family"` holds a different third out of each family (fill
  3/6/9, colour-map targets 1/4/7, recolour 2/5/8), so each (family, colour) pair of a held-out
  task is unseen while every colour is some training rule's new colour.
  Families with a handful of parameters (the 7 dihedral transforms, 4 gravity directions,
  tiling and scaling factors) use all of them in both splits: holding one of them out would
  test a rule the model was never shown, not generalization.

Grids are 3-6 cells per side (crop outputs may be smaller: the object's bounding box);
colours are 0-9 with 0 the background.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "COLOUR_SCHEMES",
    "FAMILIES",
    "HELDOUT_COMPOSITIONS",
    "TRAIN_COMPOSITIONS",
    "GenTask",
    "apply_rule",
    "generate_task",
    "generate_tasks",
    "heldout_tasks",
    "train_tasks",
    "training_families",
]

Params = dict[str, Any]
MIN_SIDE, MAX_SIDE = 3, 6

DIHEDRAL = ("rot90", "rot180", "rot270", "flipud", "fliplr", "transpose", "antitranspose")
GRAVITY = ("down", "up", "left", "right")


def _dihedral(g: np.ndarray, k: str) -> np.ndarray:
    return {
        "rot90": lambda: np.rot90(g, 1), "rot180": lambda: np.rot90(g, 2),
        "rot270": lambda: np.rot90(g, 3), "flipud": lambda: g[::-1], "fliplr": lambda: g[:, ::-1],
        "transpose": lambda: g.T, "antitranspose": lambda: np.rot90(g, 2).T,
    }[k]()


def _gravity(g: np.ndarray, direction: str) -> np.ndarray:
    """Non-background cells fall, in order, to one side of each column (or row)."""
    # Rotate so that the fall is always "down", fall, rotate back.
    turns = {"down": 0, "left": 1, "up": 2, "right": 3}[direction]
    r = np.rot90(g, turns)
    out = np.zeros_like(r)
    for j in range(r.shape[1]):
        col = r[:, j][r[:, j] != 0]
        if len(col):
            out[-len(col):, j] = col
    return np.rot90(out, -turns)


def _components(g: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy.ndimage import label

    lab, n = label(g != 0)  # 4-connected non-background components
    return lab, int(n)


def _crop(g: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(g)
    return g[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]


def _recolor(g: np.ndarray, colour: int) -> np.ndarray:
    """Recolour by size: every single-cell object becomes `colour`."""
    lab, n = _components(g)
    out = g.copy()
    for i in range(1, n + 1):
        if (lab == i).sum() == 1:
            out[lab == i] = colour
    return out


def apply_rule(family: str, params: Params, g: np.ndarray) -> np.ndarray:
    """Apply one single-step family with `params` to grid `g`."""
    if family == "dihedral":
        return np.ascontiguousarray(_dihedral(g, params["k"]))
    if family == "colormap":
        lut = np.arange(10)
        for a, b in params["map"]:
            lut[a] = b
        return lut[g]
    if family == "gravity":
        return _gravity(g, params["dir"])
    if family == "fill":  # the background becomes one colour
        return np.where(g == 0, params["c"], g)
    if family == "crop":
        return _crop(g)
    if family == "tile":
        return np.tile(g, params["reps"])
    if family == "scale":
        return np.kron(g, np.ones((params["f"], params["f"]), dtype=g.dtype))
    if family == "recolor":
        return _recolor(g, params["c"])
    raise ValueError(f"unknown family {family!r}")


# -- parameters -------------------------------------------------------------------------------
COLOUR_SCHEMES = ("global", "family")
# scheme "family": the held-out target colours of a family are those c with c % 3 == offset
_FAMILY_OFFSET = {"fill": 0, "colormap": 1, "recolor": 2}


def _colour_split(c: int, split: str, family: str = "fill", scheme: str = "global") -> bool:
    """Whether colour `c` (1-9) may be a target colour of `family` in `split`: "global" holds
    3, 6 and 9 out of every family, "family" a different third per family (module docstring)."""
    offset = _FAMILY_OFFSET.get(family, 0) if scheme == "family" else 0
    return (c % 3 == offset) == (split == "heldout")


def _colours(split: str, family: str = "fill", scheme: str = "global") -> list[int]:
    return [c for c in range(1, 10) if _colour_split(c, split, family, scheme)]


def _sample_params(family: str, rng: np.random.Generator, split: str, scheme: str = "global"
                   ) -> Params:
    if family == "dihedral":
        return {"k": str(rng.choice(DIHEDRAL))}
    if family == "colormap":
        # Map one or two source colours to targets of this split's target colours.
        n = int(rng.integers(1, 3))
        targets = rng.choice(_colours(split, family, scheme), size=n, replace=False)
        sources = rng.choice([c for c in range(1, 10) if c not in targets], size=n, replace=False)
        return {"map": [(int(a), int(b)) for a, b in zip(sources, targets, strict=True)]}
    if family == "gravity":
        return {"dir": str(rng.choice(GRAVITY))}
    if family in ("fill", "recolor"):
        return {"c": int(rng.choice(_colours(split, family, scheme)))}
    if family == "crop":
        return {}
    if family == "tile":
        return {"reps": [(1, 2), (2, 1), (2, 2)][int(rng.integers(3))]}
    if family == "scale":
        return {"f": 2}
    raise ValueError(f"unknown family {family!r}")


# -- inputs -----------------------------------------------------------------------------------
def _palette(rng: np.random.Generator, params: Sequence[Params]) -> list[int]:
    """2-3 input colours; a colour map's sources are always among them, so the map shows."""
    need = [a for p in params for a, _ in p.get("map", [])]
    # A fill/recolour colour or a map target already in the input would blur the rule.
    avoid = {p["c"] for p in params if "c" in p} | {b for p in params for _, b in p.get("map", [])}
    rest = [c for c in range(1, 10) if c not in need and c not in avoid]
    k = max(0, int(rng.integers(2, 4)) - len(need))
    return list(dict.fromkeys(need + [int(c) for c in rng.choice(rest, size=k, replace=False)]))


def _input(first: str, rng: np.random.Generator, params: Sequence[Params], max_side: int
           ) -> np.ndarray:
    """A random input suited to the first step: sparse cells, or one object for crop."""
    # Inputs of a growing rule (tile, scale) may be 2 cells per side when max_side < 6.
    lo = min(MIN_SIDE, max_side)
    h, w = (int(x) for x in rng.integers(lo, max_side + 1, size=2))
    pal = _palette(rng, params)
    if first == "crop":  # one solid-ish object on a larger background
        h, w = max(h, 4), max(w, 4)
        g = np.zeros((h, w), dtype=np.int64)
        oh, ow = int(rng.integers(2, h)), int(rng.integers(2, w))
        r0, c0 = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
        block = rng.choice(pal, size=(oh, ow))
        keep = rng.random((oh, ow)) < 0.8
        keep[0, :] |= True  # the object's bounding box is oh x ow: keep its border rows/cols
        keep[:, 0] |= True
        keep[-1, -1] = True
        g[r0:r0 + oh, c0:c0 + ow] = np.where(keep, block, 0)
        return g
    density = {"gravity": 0.3, "recolor": 0.35}.get(first, 0.5)
    cells = rng.choice(pal, size=(h, w))
    return np.where(rng.random((h, w)) < density, cells, 0).astype(np.int64)


# -- tasks ------------------------------------------------------------------------------------
FAMILIES: tuple[str, ...] = (
    "dihedral", "colormap", "gravity", "fill", "crop", "tile", "scale", "recolor",
)
# Families that enlarge the grid: their input must be small enough for the output to fit.
_GROWS: dict[str, Callable[[Params], tuple[int, int]]] = {
    "tile": lambda p: tuple(p["reps"]),  # type: ignore[dict-item]
    "scale": lambda p: (p["f"], p["f"]),
}
# No held-out pair occurs in training in either order (several pairs commute: a colour map
# and a flip give the same task in both orders).
TRAIN_COMPOSITIONS: tuple[str, ...] = (
    "dihedral+colormap", "gravity+fill", "crop+colormap", "crop+scale", "dihedral+tile",
    "fill+tile", "gravity+dihedral", "recolor+fill", "colormap+scale", "crop+tile",
    "recolor+dihedral", "dihedral+scale", "crop+fill",
)
HELDOUT_COMPOSITIONS: tuple[str, ...] = (
    "colormap+fill", "colormap+tile", "fill+scale", "dihedral+fill", "gravity+colormap",
)


@dataclass(frozen=True)
class GenTask:
    """One generated task: its rule, parameters and grids (numpy int arrays)."""

    family: str  # "gravity" or "gravity+colormap"
    params: tuple[Params, ...]
    demos: tuple[tuple[np.ndarray, np.ndarray], ...]
    test: tuple[np.ndarray, np.ndarray]
    uid: str

    def to_arc(self) -> Any:
        """This task as the data layer's `ArcTask` (the test output behind its guard)."""
        from lmlab.studies.ttt_arc.arc import ArcTask, Example, as_grid

        return ArcTask(self.uid, [Example(as_grid(x), as_grid(y)) for x, y in self.demos],
                       [as_grid(self.test[0])], [as_grid(self.test[1])])


def _apply(steps: Sequence[str], params: Sequence[Params], g: np.ndarray) -> np.ndarray:
    for fam, p in zip(steps, params, strict=True):
        g = apply_rule(fam, p, g)
    return g


def _max_input_side(steps: Sequence[str], params: Sequence[Params], max_side: int = MAX_SIDE
                    ) -> int:
    side = max_side
    for fam, p in zip(steps, params, strict=True):
        if fam in _GROWS:
            side = min(side, max_side // max(_GROWS[fam](p)))
    return max(side, 2)


def _valid_pair(steps: Sequence[str], params: Sequence[Params], x: np.ndarray,
                max_side: int = MAX_SIDE) -> np.ndarray | None:
    """The output for input x if every step changes the grid and it fits; else None."""
    g = x
    for fam, p in zip(steps, params, strict=True):
        out = apply_rule(fam, p, g)
        if out.shape == g.shape and np.array_equal(out, g):
            return None  # a step that does nothing would make the task a different rule
        g = out
    if max(g.shape) > max_side or (not (g != 0).any() and "fill" not in steps):
        return None
    return g


def generate_task(family: str, rng: np.random.Generator, *, split: str = "train",
                  n_demos: int | None = None, uid: str = "", max_side: int = MAX_SIDE,
                  colours: str = "global") -> GenTask:
    """Sample one task of `family` (a single family or "a+b"), 3-4 demos and one test pair.

    Every grid is at most `max_side` per side (3..6); `colours` is the colour split's scheme."""
    if not MIN_SIDE <= max_side <= MAX_SIDE:
        raise ValueError(f"max_side must be in {MIN_SIDE}..{MAX_SIDE}, got {max_side}")
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    if colours not in COLOUR_SCHEMES:
        raise ValueError(f"colours must be one of {COLOUR_SCHEMES}, got {colours!r}")
    steps = family.split("+")
    for s in steps:
        if s not in FAMILIES:
            raise ValueError(f"unknown family {s!r} in {family!r}; families: {FAMILIES}")
    n = n_demos if n_demos is not None else int(rng.integers(3, 5))
    for _ in range(200):  # parameters: retry when no input works with them
        params = tuple(_sample_params(s, rng, split, colours) for s in steps)
        side = _max_input_side(steps, params, max_side)
        pairs: list[tuple[np.ndarray, np.ndarray]] = []
        seen: set[bytes] = set()
        for _ in range(30 * (n + 1)):
            x = _input(steps[0], rng, params, side)
            key = x.tobytes() + bytes(x.shape)
            if key in seen:
                continue
            y = _valid_pair(steps, params, x, max_side)
            if y is not None:
                seen.add(key)
                pairs.append((x, y))
                if len(pairs) == n + 1:
                    return GenTask(family, params, tuple(pairs[:n]), pairs[n], uid)
    raise RuntimeError(f"could not generate a task of family {family!r}")


def generate_tasks(families: Sequence[str], n: int, seed: int, *, split: str,
                   prefix: str = "t", n_demos: int | None = None,
                   max_side: int = MAX_SIDE, colours: str = "global") -> list[GenTask]:
    """`n` tasks cycling through `families`, deterministic in `seed`."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7 if split == "train" else 11]))
    return [generate_task(families[i % len(families)], rng, split=split, n_demos=n_demos,
                          max_side=max_side, colours=colours,
                          uid=f"{prefix}{seed}-{i:05d}-{families[i % len(families)]}")
            for i in range(n)]


def training_families(compositions: Sequence[str] = TRAIN_COMPOSITIONS, single_weight: int = 1
                      ) -> list[str]:
    """The pre-training mix: every single family `single_weight` times, then `compositions`
    (`("none",)`: singles only, the no-similar-tasks ablation's mix)."""
    comps = [] if tuple(compositions) == ("none",) else list(compositions)
    return list(FAMILIES) * single_weight + comps


def train_tasks(n: int, seed: int, compositions: Sequence[str] = TRAIN_COMPOSITIONS,
                single_weight: int = 1, colours: str = "global") -> list[GenTask]:
    """Pre-training tasks: every single family and the training compositions."""
    return generate_tasks(training_families(compositions, single_weight), n, seed,
                          split="train", prefix="train", colours=colours)


def heldout_tasks(n: int, seed: int, compositions: Sequence[str] = HELDOUT_COMPOSITIONS, *,
                  n_demos: int | None = None, max_side: int = MAX_SIDE, colours: str = "global",
                  split: str = "heldout") -> list[GenTask]:
    """Evaluation tasks: held-out compositions with held-out colour parameters (`split`
    "train": with training colours, a diagnosis of the composition wall alone)."""
    return generate_tasks(list(compositions), n, seed, split=split, prefix="heldout",
                          n_demos=n_demos, max_side=max_side, colours=colours)
