"""The base pre-trained in a child process: the child draws nothing, the study's process shows
its steps (read from the run's log), so one terminal never holds two displays."""

from __future__ import annotations

from lmlab.runs import Run
from lmlab.studies.ttt_arc.base import _pretrain_in_child
from lmlab.study import apply_overrides, get_study

MICRO = ["pretrain.steps=20", "model.n_layer=1", "model.d_model=32", "cache_base=false"]


def test_the_parent_shows_the_childs_steps_and_the_child_nothing(tmp_path, capfd,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    config = apply_overrides(get_study("ttt-arc").preset("tiny"), MICRO)
    run = Run(tmp_path / "run")
    pre = _pretrain_in_child(config, run, tmp_path / "base.safetensors")
    assert pre["pretrain.steps"] == 20 and (tmp_path / "base.safetensors").is_file()
    err = capfd.readouterr().err  # both processes' stderr: the same file descriptor
    lines = [ln for ln in err.splitlines() if "pre-training" in ln]
    assert lines and lines[-1].startswith("ttt-arc: pre-training [20/20 steps] the base is pre-trained")
    assert "loss" not in err  # the child's own step lines ("step 10, loss ...") are gone
