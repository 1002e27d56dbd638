"""Where the base model solves tasks in context: a diagnosis on validation tasks.

`icl_headroom` scores a pre-trained tiny base with identity inference (condition (a): two greedy
attempts, the demos in their given order and reversed) on sets of generated tasks that tell the
walls apart:

- `heldout`: the held-out compositions with held-out colour parameters;
- `heldout_global`: the same compositions under the "global" colour split (3/6/9 out of every
  family), when the run uses another scheme;
- `heldout_traincolours`: the held-out compositions with training colours (the composition
  wall alone; what the test draws with `heldout_colours="train"`);
- `train_single`, `train_comp`: the pre-training distribution (single families, training
  compositions).

Every set is drawn from streams derived with the name "validation", which no test task reads,
so a recipe chosen on these numbers is chosen on validation data. Accuracy per family is kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmlab.seeding import derive
from lmlab.studies.ttt_arc.config import TTTArcConfig
from lmlab.studies.ttt_arc.generator import (
    FAMILIES,
    HELDOUT_COMPOSITIONS,
    TRAIN_COMPOSITIONS,
    GenTask,
    generate_tasks,
)

__all__ = ["diagnosis_sets", "icl_headroom", "score_identity"]


def diagnosis_sets(c: TTTArcConfig, n: int) -> dict[str, list[GenTask]]:
    """The validation sets of `n` tasks each (module docstring), from derived streams."""
    held = list(c.heldout or HELDOUT_COMPOSITIONS)
    comps = [x for x in (c.pretrain.compositions or TRAIN_COMPOSITIONS) if x != "none"]
    kw = {"n_demos": c.n_demos or None, "max_side": c.max_side}
    sets = {
        "heldout": generate_tasks(held, n, derive(c.seed, "validation", 0), split="heldout",
                                  colours=c.colours, prefix="val", **kw),
        "heldout_traincolours": generate_tasks(held, n, derive(c.seed, "validation", 1),
                                               split="train", colours=c.colours, prefix="val",
                                               **kw),
        "train_single": generate_tasks(list(FAMILIES), n, derive(c.seed, "validation", 2),
                                       split="train", colours=c.colours, prefix="val", **kw),
    }
    if comps:
        sets["train_comp"] = generate_tasks(comps, n, derive(c.seed, "validation", 3),
                                            split="train", colours=c.colours, prefix="val", **kw)
    if c.colours != "global":
        sets["heldout_global"] = generate_tasks(held, n, derive(c.seed, "validation", 4),
                                                split="heldout", colours="global", prefix="val",
                                                **kw)
    return sets


def score_identity(backend: Any, tasks: Sequence[GenTask]) -> list[tuple[str, float, float]]:
    """(family, pass@1, pass@2) of identity inference for each task."""
    from lmlab.studies.ttt_arc.evaluate import score_conditions
    from lmlab.studies.ttt_arc.experiments import _identity_attempts

    out = []
    for t in tasks:
        arc = t.to_arc()
        s = score_conditions(arc, {"icl": _identity_attempts(backend, backend.model, arc)})
        out.append((t.family, s["icl.pass1"], s["icl.pass2"]))
    return out


def icl_headroom(backend: Any, c: TTTArcConfig, n: int) -> dict[str, float]:
    """`{set.pass1, set.pass2, set.family.F.pass2}`: in-context accuracy on every set."""
    m: dict[str, float] = {}
    for name, tasks in diagnosis_sets(c, n).items():
        rows = score_identity(backend, tasks)
        m[f"{name}.n"] = len(rows)
        m[f"{name}.pass1"] = float(np.mean([r[1] for r in rows]))
        m[f"{name}.pass2"] = float(np.mean([r[2] for r in rows]))
        fam: dict[str, list[float]] = defaultdict(list)
        for f, _, p2 in rows:
            fam[f].append(p2)
        for f, v in sorted(fam.items()):
            m[f"{name}.family.{f}.pass2"] = float(np.mean(v))
    return m
