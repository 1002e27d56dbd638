"""The pre-trained base in lmlab's cache folder: reused by a second run, missed by a changed
recipe, refused (one line, then pre-trained again) when damaged, untouched with cache_base=false."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from tests.study_runs import results_only

from lmlab.studies.ttt_arc.base import base_key, cache_path, cached_base, store_base
from lmlab.studies.ttt_arc.model import build_model
from lmlab.studies.ttt_arc.serialize import GridTokenizer
from lmlab.study import apply_overrides, get_study

MICRO = ["pretrain.steps=3", "model.n_layer=1", "model.d_model=32", "n_eval=1", "seeds=1",
         "ttt.max_tasks=2", "lora.r=2", "executor=serial", "n_boot=50",
         "ablate.shared=false", "ablate.no_transforms=false"]


def _config(*extra: str):
    return apply_overrides(get_study("ttt-arc").preset("tiny"), [*MICRO, *extra])


def _run(cli, out, *extra: str) -> tuple[dict, str]:
    args = [a for kv in [*MICRO, *extra] for a in ("--set", kv)]
    r = cli("run", "ttt-arc", "--preset", "tiny", "--out", out, *args)
    assert r.code == 0, r.err
    return json.loads((out / "result.json").read_text())["metrics"], r.err


def test_a_second_run_reuses_the_base_and_a_damaged_one_is_trained_again(
        cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "cache"))
    key = base_key(_config())
    m0, _ = _run(cli, tmp_path / "off", "cache_base=false")
    assert m0["pretrain.source"] == "trained" and not cache_path(key).exists()

    m1, _ = _run(cli, tmp_path / "first", "executor=process")  # pre-trained in a child
    assert m1["pretrain.source"] == "trained" and cache_path(key).is_file()
    m2, err = _run(cli, tmp_path / "second")
    assert m2["pretrain.source"] == "cache" and "reusing the pre-trained base" in err
    same = {k: v for k, v in results_only(m1).items() if k != "pretrain.source"}
    assert {k: v for k, v in results_only(m2).items() if k != "pretrain.source"} == same
    # in this process or in the child, cached or not: the same base
    assert results_only(m0) == results_only(m1)

    cache_path(key).write_bytes(b"\x00not a safetensors file")
    m3, err = _run(cli, tmp_path / "third")
    assert m3["pretrain.source"] == "trained"
    assert [line for line in err.splitlines() if "ignoring the cached base" in line]
    assert cached_base(_config(), key) is not None  # replaced by the fresh base


def test_the_key_follows_the_recipe_not_the_logging() -> None:
    k = base_key(_config())
    assert base_key(_config("pretrain.log_every=7", "pretrain.ckpt_every=3", "n_eval=5",
                            "lora.r=8")) == k
    for change in ("pretrain.lr=0.002", "pretrain.steps=4", "seed=1", "model.d_model=64",
                   "max_side=5", "pretrain.threads=1", "pretrain.buckets=1", "colours=global",
                   "pretrain.compositions=none"):
        assert base_key(_config(change)) != k, change


def test_a_cached_file_is_used_only_with_its_key_and_shapes(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path))
    c = _config()
    key = base_key(c)
    tensors = {k: v for k, v in build_model(c.model, GridTokenizer.vocab_size, 0)
               .state_dict().items() if k != "lm_head.weight"}
    assert cached_base(c, key) is None  # nothing there: silent
    assert capsys.readouterr().err == ""
    store_base(key, tensors, {"pretrain.loss": 1.5})
    got, metrics = cached_base(c, key)
    assert metrics == {"pretrain.loss": 1.5}
    assert all(torch.equal(got[k], v) for k, v in tensors.items())

    other = base_key(replace(c, seed=5))
    cache_path(other).write_bytes(cache_path(key).read_bytes())  # a file under the wrong name
    assert cached_base(c, other) is None
    assert "recorded key does not match" in capsys.readouterr().err

    small = {k: v for k, v in tensors.items() if k != "ln_f.weight"}
    store_base(key, small, {})
    assert cached_base(c, key) is None
    err = capsys.readouterr().err
    assert "do not fit the model" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("junk", [b"", b"\x08\x00\x00\x00\x00\x00\x00\x00{}", b"garbage" * 10])
def test_a_corrupt_cached_file_is_one_line(tmp_path, monkeypatch, capsys, junk) -> None:
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path))
    c = _config()
    key = base_key(c)
    cache_path(key).parent.mkdir(parents=True)
    cache_path(key).write_bytes(junk)
    assert cached_base(c, key) is None
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pre-training again" in err
