"""Freeze invariants of the paper's modes, the LSTM baseline, the analyses and imitation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.stats import median
from lmlab.studies.random_transformers.analysis import (
    bits_per_parameter,
    needle_head_scores,
    paired_ratio_interval,
    subspace_concentration,
    subspace_gap_interval,
)
from lmlab.studies.random_transformers.config import TINY
from lmlab.studies.random_transformers.experiments import (
    build_model,
    expected_trainable,
    run_job,
)
from lmlab.studies.random_transformers.imitation import kl_last, random_teacher
from lmlab.studies.random_transformers.jobs import job
from lmlab.studies.random_transformers.lstm import LSTMLM
from lmlab.studies.random_transformers.tasks import needle_sequence
from lmlab.study import apply_overrides

# a toy parentheses grid: jobs derive from a config, as in the study
PARENS = apply_overrides(TINY, ["parens.pairs=3", "grid.n_test=50", "grid.n_val=50",
                                "grid.batch=16", "parens.steps=5", "grid.warmup_steps=0",
                                "grid.lr=1e-2", "grid.full_lr=1e-2", "grid.stop_at=0"])


@pytest.mark.parametrize("mode", ["random", "unembed", "embed", "tok_unembed", "full"])
def test_freeze_modes_keep_frozen_tensors_bit_identical(mode: str) -> None:
    torch.manual_seed(0)
    model = build_model(mode, vocab_size=4, block_size=8, width=16)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    r = run_job(job(PARENS, "parens", mode, 16, 0))
    assert r["steps_done"] == 5
    if mode == "full":
        assert r["frozen_identical"] is None and r["n_trainable"] == r["n_params"]
        return
    assert r["frozen_identical"] is True
    assert r["n_trainable"] == r["expected_trainable"]
    # the same check by hand: train a few steps and compare every tensor
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2,
                            weight_decay=0.1)
    x = torch.randint(4, (8, 8))
    for _ in range(3):
        loss = model(x, x)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) != p.requires_grad, n  # trained ones moved


def test_random_mode_trains_exactly_the_embeddings() -> None:
    model = build_model("random", vocab_size=31, block_size=12, width=32)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names == ["tok_emb.weight", "pos_emb.weight", "lm_head.weight"]
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n == expected_trainable("random", 31, 12, 32) == 31 * 32 + 12 * 32 + 32 * 31
    # LayerNorms (incl. the final one) are frozen
    assert not model.ln_f.weight.requires_grad and not model.blocks[0].ln1.weight.requires_grad


def test_lstm_baseline_shapes_and_loss() -> None:
    model = LSTMLM(vocab_size=7, d_model=8)
    x = torch.randint(7, (3, 5))
    logits, loss = model(x, x, torch.ones(3, 5, dtype=torch.bool))
    assert logits.shape == (3, 5, 7) and loss is not None and loss.dim() == 0
    assert len(model.lstm.all_weights) == 2  # two layers, as in the paper
    assert isinstance(build_model("lstm", 7, 5, 8), LSTMLM)


# ------------------------------------------------------------------ analyses
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12))
def test_pca_fraction_is_never_below_the_neuron_fraction(seed: int, k: int) -> None:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(50, 16, generator=g) @ torch.randn(16, 16, generator=g)
    pc, neuron = subspace_concentration(h, k=k)
    assert 0 <= neuron <= pc + 1e-9 <= 1 + 1e-9


def test_subspace_concentration_sees_a_rotated_direction() -> None:
    g = torch.Generator().manual_seed(0)
    direction = torch.ones(64) / 8.0  # spread over all neurons
    h = torch.randn(500, 1, generator=g) * 10 * direction + 0.01 * torch.randn(500, 64, generator=g)
    pc, neuron = subspace_concentration(h, k=10)
    assert pc > 0.99 and neuron < 0.2
    with pytest.raises(LmlabError, match="expected"):
        subspace_concentration(torch.zeros(5))


def test_needle_head_scores_on_an_ideal_pattern() -> None:
    seq = torch.tensor([needle_sequence([1, 0], [5, 9], 1, n_keys=2, vocab_size=32)])
    T = seq.shape[1] - 1
    pat = torch.zeros(1, 2, T, T)
    # head 0: value -> its marker; head 1: query -> matching value (the 5 after marker 1)
    for i in (1, 3):
        pat[0, 0, i, i - 1] = 1
    pat[0, 1, 4, 1] = 1
    s = needle_head_scores(pat, seq, n_keys=2, vocab=32)
    assert s["value_to_marker"].tolist() == [1.0, 0.0]
    assert s["query_to_value"].tolist() == [0.0, 1.0]


def test_bits_per_parameter_and_median() -> None:
    assert bits_per_parameter(100, 8, 50) == pytest.approx(6.0)
    with pytest.raises(LmlabError):
        bits_per_parameter(1, 1, 10)
    assert median([3, 1, 2, float("nan")]) == 2
    assert math.isnan(median([]))


def test_imitation_teacher_and_kl() -> None:
    t = random_teacher(width=8, vocab_size=16, seq_len=6, seed=0)
    assert not any(p.requires_grad for p in t.parameters())
    x = torch.randint(16, (4, 6))
    logits = t(x)[0]
    assert kl_last(logits, logits).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_last(logits, torch.zeros_like(logits)).item() > 0
    # the scaled teacher is far from uniform: its last-token entropy is well below log V
    p = logits[:, -1].softmax(-1)
    assert float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean()) < 0.9 * math.log(16)


def test_early_stopping_reads_validation_and_never_the_test_set(monkeypatch) -> None:
    from lmlab.nn import train as train_mod
    from lmlab.studies.random_transformers import tasks

    training = {"on": False}
    fit = train_mod.Trainer.fit

    def fit_flagged(self):
        training["on"] = True
        try:
            return fit(self)
        finally:
            training["on"] = False

    test_batch = tasks.ModularAddition.test_batch

    def guarded(self):
        assert not training["on"], "the test set was read during training"
        return test_batch(self)

    monkeypatch.setattr(train_mod.Trainer, "fit", fit_flagged)
    monkeypatch.setattr(tasks.ModularAddition, "test_batch", guarded)
    c = apply_overrides(TINY, ["modadd.p=7", "modadd.test_fraction=0.2", "modadd.val_fraction=0.2",
                               "modadd.batch=16", "modadd.steps=20", "grid.warmup_steps=0",
                               "grid.full_lr=1e-2", "grid.eval_every=5", "grid.stop_at=0.01"])
    r = run_job(job(c, "modadd", "full", 16, 0))
    # a validation accuracy of at least 0.01 is met at the first evaluation (step 5)
    assert r["steps_done"] in (5, 10, 15, 20) and 0.0 <= r["val_acc"] <= 1.0
    assert 0.0 <= r["test_acc"] <= 1.0
    # the validation curve: one point per evaluation, the last one the reported val_acc
    steps = [s for s, _ in r["val_curve"]]
    assert steps == list(range(5, r["steps_done"] + 1, 5))
    assert r["val_curve"][-1][1] == r["val_acc"]


def test_subspace_gap_interval_brackets_the_gap_and_sees_a_rotated_direction() -> None:
    g = torch.Generator().manual_seed(0)
    direction = torch.ones(32) / math.sqrt(32)
    h = torch.randn(600, 1, generator=g) * 5 * direction + 0.3 * torch.randn(600, 32, generator=g)
    pc, neuron = subspace_concentration(h, k=4)
    gap, lo, hi = subspace_gap_interval(h, k=4, n_boot=100)
    assert gap == pytest.approx(pc - neuron)
    assert 0.3 < lo <= gap <= hi < 1
    # isotropic noise: no concentration beyond sampling error, the interval reaches near 0
    _, lo0, _ = subspace_gap_interval(torch.randn(600, 32, generator=g), k=4, n_boot=100)
    assert lo0 < 0.05


def test_paired_ratio_interval_on_known_outcomes() -> None:
    a = [True] * 80 + [False] * 20  # 0.8
    b = [True] * 20 + [False] * 80  # 0.2
    ratio, lo, hi = paired_ratio_interval(a, b, scale=0.5)
    assert ratio == pytest.approx(0.5 * 0.8 / 0.2)
    assert lo < ratio < hi and lo > 1.0
    assert paired_ratio_interval(a, [False] * 100, 1.0)[0] == math.inf
    with pytest.raises(LmlabError):
        paired_ratio_interval(a, b[:10], 1.0)


def test_memorization_correct_agrees_with_its_accuracy_and_lm_windows_with_the_loss() -> None:
    from lmlab.studies.random_transformers.language import GrammarCorpus
    from lmlab.studies.random_transformers.tasks import Memorization

    task = Memorization(n=6, n_labels=5)
    model = build_model("full", task.vocab_size, task.block_size, 8)
    assert task.correct(model).float().mean().item() == pytest.approx(
        task.evaluate(model)["test_acc"])
    corpus = GrammarCorpus(seq_len=8, n_test=12)
    lm = build_model("random", corpus.vocab_size, corpus.block_size, 8)
    windows = corpus.window_losses(lm)
    assert len(windows) == 12
    assert sum(windows) / 12 == pytest.approx(corpus.evaluate(lm)["test_loss"], rel=1e-5)


def test_step_files_give_an_eta_before_any_job_finishes(tmp_path, monkeypatch, capsys) -> None:
    import os
    import time

    from lmlab.studies.random_transformers.steps import (
        STEPS_DIR_ENV,
        counting_steps,
        watch_steps,
    )

    def batches(step, gen):
        return step

    monkeypatch.delenv(STEPS_DIR_ENV, raising=False)
    assert counting_steps(batches, "a") is batches  # no folder named: nothing changes
    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    jobs = [("t/random/d8/s0", 100, 1.0), ("t/full/d8/s0", 100, 3.0)]
    with watch_steps("rt", tmp_path / "steps", jobs, lambda i, r: f"job {i} done",
                     first_line_s=0.2) as on_result:
        counted = counting_steps(batches, "t/random/d8/s0", every_s=0.0)  # as a worker would
        assert counted(50, None) == 50
        time.sleep(1.5)
        early = capsys.readouterr().err
        on_result(0, {})
    assert STEPS_DIR_ENV not in os.environ  # restored
    late = capsys.readouterr().err
    assert "[12.5/100.0 %]" in early and "eta" in early  # 50 steps x 1 of 400 units of work
    assert "[25.0/100.0 %] job 0 done" in late
