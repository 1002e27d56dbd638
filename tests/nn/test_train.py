"""The trainer: the LR schedule, learning copy/reverse, bit-identical resume, checkpoint errors."""

from __future__ import annotations

import itertools
import math
import re
import shutil
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lmlab.errors import LmlabError
from lmlab.nn.gpt import GPT, GPTConfig
from lmlab.nn.tasks import copy_task, reverse_task
from lmlab.nn.train import TrainConfig, Trainer, accuracy, bucketed_loss, lr_at
from lmlab.runs import Run
from lmlab.seeding import generator


class TinyLM(nn.Module):
    """A non-lmlab causal LM with the GPT calling convention: the trainer takes any nn.Module."""

    def __init__(self, vocab: int, block: int, d: int = 32, dropout: float = 0.0):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(block, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, 2, 2 * d, dropout, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx, targets=None, loss_mask=None):
        t = idx.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        logits = self.head(self.body(self.tok(idx) + self.pos[:t], mask=mask, is_causal=True))
        loss = None
        if targets is not None:
            per = nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            m = torch.ones_like(per) if loss_mask is None else loss_mask.float()
            loss = (per * m).sum() / m.sum()
        return logits, loss


def gpt(task, d_model: int = 64, n_layer: int = 2, n_head: int = 4, **kw) -> GPT:
    """A small lmlab GPT sized for `task`."""
    return GPT(GPTConfig(vocab_size=task.vocab_size, block_size=task.block_size, n_layer=n_layer,
                         n_head=n_head, d_model=d_model, **kw))


# -- the learning-rate schedule ----------------------------------------------------------------

schedules = st.builds(
    TrainConfig,
    steps=st.integers(1, 5000),
    lr=st.floats(1e-6, 1.0),
    warmup_steps=st.integers(0, 500),
    schedule=st.sampled_from(["cosine", "linear", "constant"]),
    min_lr_ratio=st.floats(0.0, 1.0),
)


@settings(max_examples=200, deadline=None)
@given(schedules)
def test_warmup_rises_linearly_to_peak(cfg):
    w = cfg.warmup_steps
    for s in range(1, w + 1):
        assert lr_at(s, cfg) == pytest.approx(cfg.lr * s / w, rel=1e-12)
    if w:
        assert lr_at(w, cfg) == pytest.approx(cfg.lr, rel=1e-12)
        assert lr_at(1, cfg) > 0


@settings(max_examples=200, deadline=None)
@given(schedules)
def test_decay_is_monotone_bounded_and_ends_at_min_ratio(cfg):
    w = cfg.warmup_steps
    lrs = [lr_at(s, cfg) for s in range(max(w, 1), cfg.steps + 3)]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(lrs))
    assert all(0 <= x <= cfg.lr * (1 + 1e-12) for x in lrs)
    if cfg.steps > w:
        end = cfg.lr if cfg.schedule == "constant" else cfg.lr * cfg.min_lr_ratio
        assert lr_at(cfg.steps, cfg) == pytest.approx(end, rel=1e-9, abs=1e-15)
        assert lr_at(cfg.steps + 10, cfg) == pytest.approx(end, rel=1e-9, abs=1e-15)


def test_cosine_halfway_is_the_midpoint():
    cfg = TrainConfig(steps=110, lr=1.0, warmup_steps=10, min_lr_ratio=0.2)
    assert lr_at(60, cfg) == pytest.approx(0.6)
    assert lr_at(60, TrainConfig(steps=110, lr=1.0, warmup_steps=10, schedule="linear",
                                 min_lr_ratio=0.2)) == pytest.approx(0.6)


def test_decay_steps_ends_the_schedule_early_and_keeps_the_final_rate():
    short = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    longer = TrainConfig(steps=250, lr=1.0, warmup_steps=10, min_lr_ratio=0.1, decay_steps=100)
    assert [lr_at(s, longer) for s in range(1, 101)] == [lr_at(s, short) for s in range(1, 101)]
    assert all(lr_at(s, longer) == pytest.approx(0.1) for s in range(100, 251))
    with pytest.raises(LmlabError, match="decay_steps"):
        TrainConfig(decay_steps=-1)


def test_a_run_past_its_schedule_repeats_the_shorter_run_then_goes_on():
    """`decay_steps`: the first `decay_steps` steps are the shorter run's, bit for bit."""
    task = reverse_task(n_digits=4, batch_size=16, n_eval=64)

    def trained(cfg, batches):
        torch.manual_seed(0)
        model = gpt(task, d_model=32)
        try:
            out = Trainer(model, cfg, batches).fit()
        except Killed:
            out = None
        return model.state_dict(), out

    short, _ = trained(TrainConfig(steps=12, lr=3e-3, warmup_steps=3, seed=2), task)
    longer = TrainConfig(steps=20, lr=3e-3, warmup_steps=3, seed=2, decay_steps=12)
    at_12, _ = trained(longer, killing(task, 13))
    assert all(torch.equal(short[k], at_12[k]) for k in short)
    done, out = trained(longer, task)
    assert out["steps_done"] == 20
    assert not all(torch.equal(short[k], done[k]) for k in short)


@pytest.mark.parametrize(
    "bad", [{"schedule": "step"}, {"stop_mode": "best"}, {"stop_metric": "acc"}, {"lr": 0.0},
            {"min_lr_ratio": 1.5}, {"grad_clip": 0.0}, {"log_every": 0}],
)
def test_bad_config_is_one_line_error(bad):
    with pytest.raises(LmlabError, match="TrainConfig") as e:
        TrainConfig(**bad)
    assert "\n" not in str(e.value)


# -- accuracy and the tasks --------------------------------------------------------------------


def test_accuracy_token_and_exact_match():
    targets = torch.tensor([[1, 2, 3], [1, 2, 3]])
    logits = nn.functional.one_hot(torch.tensor([[0, 2, 3], [1, 0, 3]]), 4).float()
    mask = torch.tensor([[False, True, True], [False, True, True]])
    assert accuracy(logits, targets, mask) == {"token_acc": 0.75, "seq_acc": 0.5}
    assert accuracy(logits, targets) == {"token_acc": 4 / 6, "seq_acc": 0.0}
    with pytest.raises(LmlabError, match="mask shape"):
        accuracy(logits, targets, mask[:, :2])


def test_task_format_golden():
    task = reverse_task(n_digits=3)
    b = task.encode(torch.tensor([[3, 1, 4]]))
    assert b["input_ids"].tolist() == [[3, 1, 4, 10, 4, 1]]
    assert b["targets"].tolist() == [[1, 4, 10, 4, 1, 3]]
    assert b["loss_mask"].tolist() == [[False, False, False, True, True, True]]
    assert (task.vocab_size, task.block_size) == (11, 6)
    c = copy_task(n_digits=3).encode(torch.tensor([[3, 1, 4]]))
    assert c["targets"].tolist() == [[1, 4, 10, 3, 1, 4]]


def test_task_splits_are_disjoint_and_batches_depend_on_seed_and_step():
    task = copy_task(n_digits=4, n_symbols=5, test_fraction=0.2, n_eval=64)
    everything = torch.cartesian_prod(*[torch.arange(5)] * 4)
    held = task.in_test(everything)
    assert 0.1 < held.float().mean() < 0.3
    test_set = {tuple(r) for r in everything[held].tolist()}
    train_seen = {tuple(r) for s in range(50)
                  for r in task(s, generator(0, s))["input_ids"][:, :4].tolist()}
    assert train_seen and not train_seen & test_set
    assert {tuple(r) for r in task.eval_batch()["input_ids"][:, :4].tolist()} <= test_set
    a, b = task(7, generator(3, 7)), task(7, generator(3, 7))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["input_ids"], task(8, generator(3, 8))["input_ids"])


# -- learning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [copy_task, reverse_task], ids=["copy", "reverse"])
def test_gpt_learns_task_to_full_heldout_accuracy(make):
    torch.manual_seed(0)
    task = make(n_digits=8, batch_size=64)
    model = gpt(task)
    cfg = TrainConfig(steps=1500, lr=3e-3, warmup_steps=50, weight_decay=0.01, eval_every=25,
                      log_every=25, stop_metric="test_seq_acc", stop_at=1.0, seed=0)
    t0 = time.perf_counter()
    out = Trainer(model, cfg, task, evaluate=task.evaluate).fit()
    wall = time.perf_counter() - t0
    print(f"{task.kind}: {out['steps_done']} steps, {wall:.1f}s, {out}")
    assert out["test_seq_acc"] == 1.0 and out["test_token_acc"] == 1.0
    assert out["stopped_early"] and out["steps_done"] < cfg.steps
    assert wall < 60
    assert model.training  # the trainer restores train mode after evaluating


# -- checkpoints and resume --------------------------------------------------------------------


class Killed(Exception):
    pass


def killing(batches, at_step: int):
    """A batch function that dies when asked for step `at_step`: a simulated crash."""

    def fn(step, gen):
        if step == at_step:
            raise Killed
        return batches(step, gen)

    return fn


def resume_setup(tmp_path, name: str):
    task = reverse_task(n_digits=4, batch_size=16, n_eval=64)
    torch.manual_seed(1)
    model = gpt(task, d_model=32, dropout=0.1)  # dropout: the RNG is part of the state
    cfg = TrainConfig(steps=40, lr=3e-3, warmup_steps=5, log_every=7, eval_every=10,
                      ckpt_every=15, seed=5, weight_decay=0.1, grad_clip=0.5)
    return task, model, cfg, Run(tmp_path / name)


def without_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("wall_s", "tokens_per_s")}


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    task, model_a, cfg, run_a = resume_setup(tmp_path, "a")
    out_a = Trainer(model_a, cfg, task, evaluate=task.evaluate, run=run_a).fit()

    task, model_b, cfg, run_b = resume_setup(tmp_path, "b")
    with pytest.raises(Killed):
        Trainer(model_b, cfg, killing(task, 37), evaluate=task.evaluate, run=run_b).fit()
    # Keep only what a crash at step 37 would leave: the checkpoint of step 30 and the log.
    crashed = tmp_path / "crashed"
    shutil.copytree(run_b.path, crashed)
    _, state = Run(crashed).load_checkpoint()
    assert state["step"] == 30
    task, model_c, cfg, _ = resume_setup(tmp_path, "unused")
    run_c = Run(crashed, resume=True)
    out_c = Trainer(model_c, cfg, task, evaluate=task.evaluate, run=run_c).fit()

    assert without_timing(out_c) == without_timing(out_a)
    assert out_c["steps_done"] == 40 and math.isfinite(out_c["train_loss"])
    sd_a, sd_c = model_a.state_dict(), model_c.state_dict()
    assert sd_a.keys() == sd_c.keys()
    assert all(torch.equal(sd_a[k], sd_c[k]) for k in sd_a)
    log_a = [without_timing(r) for r in run_a.read_metrics()]
    log_c = [without_timing(r) for r in run_c.read_metrics()]
    assert log_c == log_a  # the log was rewound to step 30 and continued, no duplicates

    # Resuming a finished run trains nothing and returns the same metrics.
    task, model_d, cfg, _ = resume_setup(tmp_path, "unused2")
    out_d = Trainer(model_d, cfg, task, evaluate=task.evaluate, run=Run(crashed, resume=True)).fit()
    assert without_timing(out_d) == without_timing(out_a)
    assert all(torch.equal(sd_a[k], model_d.state_dict()[k]) for k in sd_a)


def test_corrupt_checkpoint_is_lmlab_error(tmp_path):
    task, model, cfg, run = resume_setup(tmp_path, "a")
    cfg.steps = 15
    Trainer(model, cfg, task, run=run).fit()
    path = run.checkpoint_path()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LmlabError, match="corrupt checkpoint"):
        Trainer(model, cfg, task, run=Run(run.path, resume=True)).fit()


def test_mismatched_checkpoint_names_the_first_mismatch(tmp_path):
    task, model, cfg, run = resume_setup(tmp_path, "a")
    cfg.steps = 15
    Trainer(model, cfg, task, run=run).fit()

    def resume(m):
        with pytest.raises(LmlabError) as e:
            Trainer(m, cfg, task, run=Run(run.path, resume=True)).fit()
        assert "\n" not in str(e.value)
        return str(e.value)

    assert re.search(r"tensor '[\w.]+' has shape \(\d+, 32\) in the checkpoint but \(\d+, 48\) "
                     r"in the model", resume(gpt(task, d_model=48)))
    assert "missing tensor 'blocks.2." in resume(gpt(task, d_model=32, n_layer=3))
    assert "unexpected tensor 'blocks.1." in resume(gpt(task, d_model=32, n_layer=1))
    frozen = gpt(task, d_model=32)
    frozen.set_trainable("random")
    assert "different set of parameters" in resume(frozen)


# -- what the trainer touches ------------------------------------------------------------------


def test_frozen_params_are_untouched_and_not_optimized():
    task = copy_task(n_digits=3, batch_size=16, n_eval=32)
    torch.manual_seed(0)
    model = gpt(task, d_model=32)
    trained = model.set_trainable("random")  # embeddings only (Zhong & Andreas 2024)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, TrainConfig(steps=10, lr=1e-2, weight_decay=0.5), task)
    trainer.fit()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("tok_emb.", "pos_emb.", "lm_head.")) for k in changed)
    assert any(k.startswith("blocks.") for k in before)
    optimized = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in model.parameters() if p.requires_grad}
    assert sorted(trainer.param_names) == sorted(trained)

    with pytest.raises(LmlabError, match="no trainable parameters"):
        Trainer(model, TrainConfig(steps=1), task, params=model.blocks.parameters()).fit()


def test_loss_fn_evaluate_mode_and_run_log(tmp_path):
    task = copy_task(n_digits=3, batch_size=8, n_eval=16)
    model = TinyLM(task.vocab_size, task.block_size, 16)
    seen = []

    def loss_fn(m, batch):
        seen.append(m.training)
        return m(batch["input_ids"], batch["targets"])[1]  # no loss mask: every position

    def evaluate(m):
        seen.append((m.training, torch.is_grad_enabled()))
        return {"score": -1.0}

    run = Run(tmp_path)
    cfg = TrainConfig(steps=6, log_every=4, eval_every=3, stop_metric="score", stop_at=-2.0,
                      stop_mode="min", progress=True)  # the bar must not get in the way
    out = Trainer(model, cfg, task, evaluate=evaluate, loss_fn=loss_fn, run=run).fit()
    assert seen == [True] * 3 + [(False, False)] + [True] * 3 + [(False, False)]
    assert out["steps_done"] == 6 and not out["stopped_early"] and out["score"] == -1.0
    recs = run.read_metrics()
    assert [r["step"] for r in recs] == [3, 4, 6, 6]
    assert recs[1].keys() >= {"train_loss", "lr", "tokens_per_s"}
    assert recs[1]["lr"] == lr_at(4, cfg)


def test_zero_steps_evaluates_and_stop_metric_must_exist():
    task = copy_task(n_digits=3, batch_size=8, n_eval=16)
    model = TinyLM(task.vocab_size, task.block_size, 16)
    out = Trainer(model, TrainConfig(steps=0), task, evaluate=task.evaluate).fit()
    assert out["steps_done"] == 0 and out["train_loss"] is None and 0 <= out["test_seq_acc"] <= 1
    with pytest.raises(LmlabError, match="needs an evaluate function"):
        Trainer(model, TrainConfig(stop_metric="acc", stop_at=1.0), task)
    cfg = TrainConfig(steps=2, stop_metric="acc", stop_at=1.0)
    with pytest.raises(LmlabError, match=r"'acc' is not among .* \(test_token_acc, test_seq_acc\)"):
        Trainer(model, cfg, task, evaluate=task.evaluate).fit()
    with pytest.raises(LmlabError, match="must return a dict with 'input_ids'"):
        Trainer(model, TrainConfig(steps=2), lambda step, gen: {"x": 1}).fit()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), buckets=st.integers(1, 9), batch=st.integers(1, 12),
       mask=st.sampled_from(["none", "bool", "float"]))
def test_bucketed_loss_equals_the_padded_loss_and_its_gradients(seed, buckets, batch, mask):
    g = torch.Generator().manual_seed(seed)
    T, V = 10, 13
    x = torch.randint(1, V, (batch, T), generator=g)
    y = torch.randint(0, V, (batch, T), generator=g)
    lengths = torch.randint(0, T + 1, (batch,), generator=g)  # 0: nothing scored in that row
    scored = torch.arange(T)[None, :] < lengths[:, None]
    scored &= torch.rand(batch, T, generator=g) < 0.7  # gaps inside a row too
    b = {"input_ids": x}
    if mask == "bool":
        b |= {"targets": y, "loss_mask": scored}
    elif mask == "float":  # weighted positions
        b |= {"targets": y, "loss_mask": scored * torch.rand(batch, T, generator=g)}
    else:
        b |= {"targets": y.masked_fill(~scored, -100)}
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=2, n_head=2, d_model=16))
    grads = []
    for fn in (lambda m, bb: m(bb["input_ids"], **{k: v for k, v in bb.items()
                                                   if k != "input_ids"})[1],
               bucketed_loss(buckets)):
        model.zero_grad()
        loss = fn(model, b)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (l0, g0), (l1, g1) = grads
    assert torch.allclose(l0, l1, atol=1e-6)
    assert all(torch.allclose(a, c, atol=1e-6) for a, c in zip(g0, g1, strict=True))


def test_bucketed_loss_runs_less_than_the_padded_batch():
    calls = []

    class Spy(GPT):
        def forward(self, idx, *a, **k):
            calls.append(tuple(idx.shape))
            return super().forward(idx, *a, **k)

    model = Spy(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=1, d_model=8))
    x = torch.ones(4, 8, dtype=torch.long)
    m = torch.zeros(4, 8, dtype=torch.bool)
    for row, last in enumerate((1, 7, 3, 5)):
        m[row, last] = True
    bucketed_loss(2)(model, {"input_ids": x, "targets": x, "loss_mask": m})
    assert calls == [(2, 4), (2, 8)]  # sorted by length, each group trimmed to its longest
    calls.clear()
    bucketed_loss(3)(model, {"input_ids": x[:2], "targets": x[:2], "loss_mask": m[[0, 0]]})
    assert calls == [(2, 2)]  # equal lengths: one pass
    with pytest.raises(LmlabError, match="buckets must be >= 1"):
        bucketed_loss(0)
    with pytest.raises(LmlabError, match=r"cannot trim the batch's \['coords'\]"):
        bucketed_loss()(model, {"input_ids": x, "targets": x, "coords": x})


def test_bucketed_loss_trims_named_per_position_inputs_with_the_ids():
    g = torch.Generator().manual_seed(3)
    B, T, V = 6, 12, 11
    x = torch.randint(1, V, (B, T), generator=g)
    coords = torch.randint(0, 4, (B, T, 2), generator=g)
    m = torch.arange(T)[None, :] < torch.tensor([3, 12, 7, 5, 9, 1])[:, None]
    b = {"input_ids": x, "targets": x, "loss_mask": m, "coords": coords}
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, d_model=16,
                          coord_sizes=(4, 4)))
    padded = model(x, targets=x, loss_mask=m, coords=coords)[1]
    assert torch.allclose(bucketed_loss(3, trim=("coords",))(model, b), padded, atol=1e-6)
