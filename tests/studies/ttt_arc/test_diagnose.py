"""The in-context headroom diagnosis: its validation sets and what it measures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmlab.seeding import derive
from lmlab.studies.ttt_arc.backends import TinyBackend
from lmlab.studies.ttt_arc.config import PRESETS, ModelSpec
from lmlab.studies.ttt_arc.diagnose import diagnosis_sets, icl_headroom
from lmlab.studies.ttt_arc.generator import heldout_tasks
from lmlab.studies.ttt_arc.model import build_model
from lmlab.studies.ttt_arc.serialize import GridTokenizer
from lmlab.studies.ttt_arc.study import heldout_for


def _grids(t) -> bytes:
    return b"".join(x.tobytes() + y.tobytes() for x, y in (*t.demos, t.test))


def test_validation_sets_share_no_task_with_the_test_and_split_the_walls() -> None:
    c = replace(PRESETS["tiny"], seeds=1, n_eval=16)
    sets = diagnosis_sets(c, 12)
    assert set(sets) == {"heldout", "heldout_traincolours", "train_single", "train_comp",
                         "heldout_global"}
    test = heldout_tasks(16, derive(c.seed, "heldout", 0), n_demos=c.n_demos,
                         max_side=c.max_side, colours=c.colours, split=c.heldout_colours)
    ran = [t for _, _, t in heldout_for(c)]  # what the run tests
    assert [t.uid for t in test] == [t.id for t in ran]
    assert all(np.array_equal(t.demos[0][0], a.train[0].input) for t, a in
               zip(test, ran, strict=True))
    test_grids = {_grids(t) for t in test}
    assert all(_grids(t) not in test_grids for ts in sets.values() for t in ts)
    assert all("+" not in t.family for t in sets["train_single"])
    assert {t.family for t in sets["heldout"]} == {t.family for t in sets["heldout_traincolours"]}
    fills = {p["c"] for t in sets["heldout_traincolours"] for f, p in
             zip(t.family.split("+"), t.params, strict=True) if f == "fill"}
    assert fills and not fills & {3, 6, 9}  # training colours under the "family" scheme


def test_icl_headroom_reports_every_set_at_pass_1_and_2() -> None:
    c = replace(PRESETS["tiny"], model=ModelSpec(n_layer=1, d_model=32, n_head=4))
    model = build_model(c.model, GridTokenizer.vocab_size, 0).eval()
    backend = TinyBackend(model, max_new=c.max_side * (c.max_side + 1) + 1,
                          max_tokens=c.model.block_size + 1)
    m = icl_headroom(backend, c, 3)
    for name in ("heldout", "heldout_traincolours", "train_single", "train_comp"):
        assert m[f"{name}.n"] == 3 and 0 <= m[f"{name}.pass1"] <= m[f"{name}.pass2"] <= 1
    assert any(k.startswith("train_single.family.") for k in m)
