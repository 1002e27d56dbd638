"""Each seed's pre-trained base in lmlab's cache folder (`lmlab.nn.basecache`): a second run
reuses it with identical metrics, a changed recipe misses it, a damaged file is one line and a
fresh pre-training, `cache_base=false` neither reads nor writes it."""

from __future__ import annotations

import json
from dataclasses import replace

import torch
from tests.study_runs import results_only

from lmlab.runs import load_tensors
from lmlab.studies.intruders.config import Detect, Finetune, GPTShape, Pretrain
from lmlab.studies.intruders.experiments import (
    BASES,
    PretrainJob,
    Setup,
    pretrain_key,
    run_pretrain,
)

SETUP = Setup(model=GPTShape(d_model=16, n_layer=1, n_head=2, seq_len=12),
              pretrain=Pretrain(steps=12, batch=8, heldout=8), finetune=Finetune(),
              detect=Detect(), threads=0, device="cpu")


def test_a_second_job_reuses_the_base_and_a_damaged_one_is_trained_again(
        tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "cache"))
    off = run_pretrain(PretrainJob(SETUP, 5, str(tmp_path / "off.safetensors")))
    assert off["source"] == "trained" and not (tmp_path / "cache").exists()

    job = PretrainJob(SETUP, 5, str(tmp_path / "a.safetensors"), cache=True)
    first = run_pretrain(job)
    assert first["source"] == "trained" and BASES.path(pretrain_key(job)).is_file()
    capsys.readouterr()
    again = run_pretrain(replace(job, path=str(tmp_path / "b.safetensors")))
    assert again["source"] == "cache" and not again["cached"]
    assert f"intruders: reusing a pre-trained base from {BASES.path(pretrain_key(job))}" \
        in capsys.readouterr().err
    assert again["heldout_loss"] == first["heldout_loss"] == off["heldout_loss"]
    a, _ = load_tensors(tmp_path / "a.safetensors")
    b, _ = load_tensors(tmp_path / "b.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a resumed run reads its own folder's file and keeps the source it was made from
    resumed = run_pretrain(replace(job, path=str(tmp_path / "b.safetensors")))
    assert resumed["cached"] and resumed["source"] == "cache"

    BASES.path(pretrain_key(job)).write_bytes(b"garbage" * 10)
    capsys.readouterr()
    third = run_pretrain(replace(job, path=str(tmp_path / "c.safetensors")))
    err = capsys.readouterr().err.strip().splitlines()
    assert third["source"] == "trained" and third["heldout_loss"] == first["heldout_loss"]
    assert len(err) == 1 and err[0].startswith("intruders: ignoring the cached base")
    assert BASES.load(pretrain_key(job), {k: tuple(v.shape) for k, v in a.items()}) is not None


def test_the_key_follows_the_recipe_not_the_measurement() -> None:
    job = PretrainJob(SETUP, 5, "unused")
    key = pretrain_key(job)
    same = replace(SETUP, pretrain=replace(SETUP.pretrain, heldout=99),
                   finetune=replace(SETUP.finetune, max_steps=7), detect=Detect(k=4))
    assert pretrain_key(replace(job, setup=same, path="elsewhere", cache=True)) == key
    for changed in (replace(SETUP, pretrain=replace(SETUP.pretrain, steps=13)),
                    replace(SETUP, pretrain=replace(SETUP.pretrain, lr=1e-3)),
                    replace(SETUP, pretrain=replace(SETUP.pretrain, batch=4)),
                    replace(SETUP, model=replace(SETUP.model, d_model=32)),
                    replace(SETUP, device="cuda")):
        assert pretrain_key(replace(job, setup=changed)) != key, changed
    assert pretrain_key(replace(job, seed=6)) != key


MICRO = ["seeds=2", "ranks=1", "schemes=alpha2r", "pretrain.steps=30", "finetune.max_steps=3",
         "finetune.eval_every=3", "finetune.n_train=32", "finetune.n_val=16",
         "finetune.n_test=16", "pretrain.heldout=16", "model.d_model=32", "model.n_layer=1",
         "model.n_head=2", "finetune.text_len=10", "model.seq_len=16", "finetune.batch=8",
         "continual.methods=full", "continual.tasks=topic_first,negation",
         "mitigation.lambdas=1,0", "executor=serial", "detect.null_draws=1"]


def test_a_second_run_reuses_both_bases_with_identical_metrics(cli, tmp_path, monkeypatch
                                                               ) -> None:
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "cache"))
    metrics = []
    for name in ("first", "second"):
        out = tmp_path / name
        r = cli("run", "intruders", "--preset", "tiny", "--out", str(out),
                *[a for o in MICRO for a in ("--set", o)])
        assert r.code == 0, r.err
        metrics.append(json.loads((out / "result.json").read_text())["metrics"])
    assert [m["pretrain.source"] for m in metrics] == ["trained", "cache"]
    assert len(list(BASES.folder().iterdir())) == 2  # one base per seed
    first, second = ({k: v for k, v in results_only(m).items() if k != "pretrain.source"}
                     for m in metrics)
    assert first == second
