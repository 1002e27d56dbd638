"""Task-level augmentations: the 23 TTT transforms, the inference transforms, colours, shuffling.

A `Transform` maps a grid to a grid and is applied to every grid of a task (the same map
everywhere, so the task's rule is transformed consistently). Each has an `inverse`: exact for
the dihedral maps; for the size-changing ones a left inverse (`inverse(apply(g)) == g`) that
returns None for a grid no input could have produced (a shape `apply` never makes).

`TTT_TRANSFORMS` holds the paper's 23 in the official order. The random cyclic shift is a
`RandomShift` *family*: `bind(rng)` draws one shift (0-3 cells per axis), shared by all grids
of a task; the other transforms' `bind` returns themselves. `INFERENCE_TRANSFORMS` is identity
plus the 5 used to augment queries at inference.

The colour rule (`color_permutation`): 0 stays fixed; each used non-zero colour goes to an
unused colour in 1-9 while any remain, then the rest are permuted among the used colours. The
result is a bijection of 0-9 applied to the whole task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lmlab.errors import LmlabError
from lmlab.studies.ttt_arc.arc import MAX_SIDE, Example, Grid

__all__ = [
    "IDENTITY",
    "INFERENCE_TRANSFORMS",
    "TRANSFORMS_BY_NAME",
    "TTT_TRANSFORMS",
    "RandomShift",
    "Shift",
    "Transform",
    "apply_colors",
    "color_permutation",
    "fits",
    "shuffle_demos",
    "transform_example",
]

GridFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Transform:
    """A named grid map with its (left) inverse."""

    name: str
    forward: GridFn = field(repr=False)
    backward: Callable[[np.ndarray], np.ndarray | None] = field(repr=False)

    def apply(self, grid: Grid) -> Grid:
        """The transformed grid (a new contiguous array)."""
        return np.ascontiguousarray(self.forward(np.asarray(grid)))

    def inverse(self, grid: Grid) -> Grid | None:
        """The grid `g` with `apply(g) == grid`, or None when there is none of the right shape."""
        out = self.backward(np.asarray(grid))
        return None if out is None else np.ascontiguousarray(out)

    def bind(self, rng: np.random.Generator) -> Transform:
        """This transform with its random parameters drawn once for a task (none here)."""
        return self

    def __str__(self) -> str:
        return self.name


def _shape_ok(g: np.ndarray, fy: int, fx: int) -> bool:
    return g.shape[0] % fy == 0 and g.shape[1] % fx == 0


def _compose(first: Transform, then: Transform) -> Transform:
    """`then` after `first` (inverse: undo `then`, then undo `first`)."""

    def back(g: np.ndarray) -> np.ndarray | None:
        mid = then.backward(g)
        return None if mid is None else first.backward(mid)

    return Transform(f"{first.name}+{then.name}", lambda g: then.forward(first.forward(g)), back)


def _upscale(fy: int, fx: int, name: str) -> Transform:
    """Each cell becomes an fy x fx block; inverse keeps one cell per block."""
    return Transform(
        name,
        lambda g: np.repeat(np.repeat(g, fy, axis=0), fx, axis=1),
        lambda g: g[::fy, ::fx] if _shape_ok(g, fy, fx) else None,
    )


def _tile(ny: int, nx: int) -> Transform:
    """The grid repeated ny x nx times; inverse keeps the top-left copy."""
    return Transform(
        f"tile{ny}x{nx}",
        lambda g: np.tile(g, (ny, nx)),
        lambda g: g[: g.shape[0] // ny, : g.shape[1] // nx] if _shape_ok(g, ny, nx) else None,
    )


def _reflect(axis: int, mirror_first: bool, name: str) -> Transform:
    """The grid with its mirror image appended along `axis` (before it when mirror_first)."""

    def fwd(g: np.ndarray) -> np.ndarray:
        m = np.flip(g, axis=axis)
        return np.concatenate((m, g) if mirror_first else (g, m), axis=axis)

    def back(g: np.ndarray) -> np.ndarray | None:
        if g.shape[axis] % 2:
            return None
        half = g.shape[axis] // 2
        return np.take(g, range(half, 2 * half) if mirror_first else range(half), axis=axis)

    return Transform(name, fwd, back)


@dataclass(frozen=True)
class Shift(Transform):
    """A cyclic shift by (dy, dx) cells (numpy `roll`)."""

    dy: int = 0
    dx: int = 0

    @classmethod
    def by(cls, dy: int, dx: int) -> Shift:
        """The shift by (dy, dx)."""
        return cls(
            f"shift({dy},{dx})",
            lambda g: np.roll(g, (dy, dx), axis=(0, 1)),
            lambda g: np.roll(g, (-dy, -dx), axis=(0, 1)),
            dy,
            dx,
        )


@dataclass(frozen=True)
class RandomShift(Transform):
    """The random cyclic shift family: `bind(rng)` draws (dy, dx) in 0-3, shared by a task."""

    max_shift: int = 3

    @classmethod
    def make(cls, max_shift: int = 3) -> RandomShift:
        """The family with shifts 0..max_shift per axis."""
        return cls("shift", _unbound, _unbound, max_shift)

    def bind(self, rng: np.random.Generator) -> Transform:
        dy, dx = (int(v) for v in rng.integers(0, self.max_shift + 1, size=2))
        return Shift.by(dy, dx)


def _unbound(g: np.ndarray) -> np.ndarray:
    raise LmlabError("the random shift must be bound to a task first: use transform.bind(rng)")


IDENTITY = Transform("identity", lambda g: g.copy(), lambda g: g.copy())
ROT90 = Transform("rot90", lambda g: np.rot90(g, 1), lambda g: np.rot90(g, -1))
ROT180 = Transform("rot180", lambda g: np.rot90(g, 2), lambda g: np.rot90(g, 2))
ROT270 = Transform("rot270", lambda g: np.rot90(g, 3), lambda g: np.rot90(g, -3))
FLIPUD = Transform("flipud", np.flipud, np.flipud)
FLIPLR = Transform("fliplr", np.fliplr, np.fliplr)
TRANSPOSE = Transform("transpose", np.transpose, np.transpose)
UPSCALE2 = _upscale(2, 2, "upscale2")

TTT_TRANSFORMS: tuple[Transform, ...] = (
    ROT90,
    ROT270,
    ROT180,
    FLIPUD,
    FLIPLR,
    _reflect(0, True, "reflect_ud_mirror_first"),
    _reflect(1, True, "reflect_lr_mirror_first"),
    _reflect(0, False, "reflect_ud"),
    _reflect(1, False, "reflect_lr"),
    RandomShift.make(3),
    TRANSPOSE,
    UPSCALE2,
    _upscale(2, 1, "upscale_h2"),
    _upscale(1, 2, "upscale_w2"),
    *(_compose(t, UPSCALE2) for t in (ROT90, ROT270, ROT180, FLIPUD, FLIPLR, TRANSPOSE)),
    _tile(2, 1),
    _tile(1, 2),
    _tile(2, 2),
)
"""The paper's 23 task-level TTT transforms (official order)."""

INFERENCE_TRANSFORMS: tuple[Transform, ...] = (IDENTITY, TRANSPOSE, FLIPUD, FLIPLR, ROT90, ROT180)
"""Identity and the 5 transforms that augment inference queries."""

TRANSFORMS_BY_NAME: dict[str, Transform] = {t.name: t for t in (IDENTITY, *TTT_TRANSFORMS)}


def fits(grids: Iterable[Grid]) -> bool:
    """Whether every grid is at most 30x30 (the official code drops larger augmented tasks)."""
    return all(g.shape[0] <= MAX_SIDE and g.shape[1] <= MAX_SIDE for g in grids)


def transform_example(ex: Example, t: Transform) -> Example:
    """The example with `t` applied to both grids."""
    return Example(t.apply(ex.input), t.apply(ex.output))


# --------------------------------------------------------------------------- colours and order


def color_permutation(grids: Iterable[Grid], rng: np.random.Generator) -> np.ndarray:
    """A colour map for a whole task: a (10,) int array `perm` with `perm[c]` the new colour.

    `grids` are all the grids the map must treat consistently (a task's demos and query). 0 is
    fixed. The used non-zero colours, in random order, take distinct unused colours of 1-9 while
    any remain; the rest go to distinct random used colours (swaps among the used). Colours not
    in the grids fill the remaining values, so `perm` is a bijection of 0-9.
    """
    seen = np.zeros(10, bool)
    for g in grids:
        seen[np.asarray(g).reshape(-1)] = True
    seen[0] = False
    used = rng.permutation(np.flatnonzero(seen))
    free = rng.permutation(np.flatnonzero(~seen[1:]) + 1)
    k = min(len(used), len(free))
    rest = rng.choice(used, size=len(used) - k, replace=False) if len(used) > k else used[:0]
    targets = np.concatenate([free[:k], rest]).astype(np.int64)
    perm = np.arange(10)
    perm[used] = targets
    others = np.setdiff1d(np.arange(1, 10), used)  # colours not in the task, ascending
    perm[others] = np.setdiff1d(np.arange(1, 10), targets)
    return perm


def apply_colors(grid: Grid, perm: np.ndarray) -> Grid:
    """The grid with each colour c replaced by perm[c] (dtype kept)."""
    g = np.asarray(grid)
    return perm[g].astype(g.dtype)


def shuffle_demos(demos: Sequence[Example], rng: np.random.Generator) -> list[Example]:
    """The demonstrations in a random order."""
    return [demos[i] for i in rng.permutation(len(demos))]
