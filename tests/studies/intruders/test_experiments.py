"""The study's parts: the synthetic language and tasks, LoRA alpha schemes, the fine-tuning job."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields, replace

import peft
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.seeding import numpy_rng
from lmlab.studies.intruders.config import Detect, Finetune, GPTShape, IntruderConfig, Pretrain
from lmlab.studies.intruders.data import (
    TASK_LABELS,
    TASKS,
    TOPICS,
    VERBS,
    Language,
    heldout_batch,
    make_splits,
    make_task,
    pretrain_batch,
    task_accuracy,
)
from lmlab.studies.intruders.detect import analyze
from lmlab.studies.intruders.experiments import (
    TARGET_MODULES,
    FinetuneJob,
    PretrainJob,
    Setup,
    _mitigated,
    build_gpt,
    lora_alpha,
    lora_lr,
    lora_scaling,
    parse_method,
    run_finetune,
    run_pretrain,
    target_names,
)

LANG = Language()


# -- the language ---------------------------------------------------------------------------------
@given(st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_sentences_obey_the_verbs_selection(seed: int) -> None:
    """Subject and object nouns have the topics their verb selects; a sentence ends in '.'."""
    ids = LANG.sentence(numpy_rng(seed))
    words = LANG.decode(ids).split()
    assert words[-1] == "." and words[0] in ("the", "a", "my", "that")
    verb_at = next(i for i, w in enumerate(words) if w in VERBS)
    subj_topics, obj_topics = VERBS[words[verb_at]]
    topic = {n: t for t, nouns in TOPICS.items() for n in nouns}
    nouns = [w for w in words if w in topic]
    assert topic[nouns[0]] in subj_topics
    assert topic[nouns[1]] in obj_topics
    assert all(topic[n] == "place" for n in nouns[2:])  # the prepositional phrase


def test_vocabulary_and_windows() -> None:
    assert len(set(LANG.words)) == LANG.vocab_size
    b = pretrain_batch(LANG, numpy_rng(0), 4, 20)
    assert b["input_ids"].shape == b["targets"].shape == (4, 20)
    assert bool((b["input_ids"][:, 0] == LANG.id["<bos>"]).all())
    assert torch.equal(b["input_ids"][:, 1:], b["targets"][:, :-1])  # shifted by one
    # the held-out batch is fixed by its seed and differs from training draws
    assert torch.equal(heldout_batch(LANG, 3, 8, 20)["input_ids"],
                       heldout_batch(LANG, 3, 8, 20)["input_ids"])
    assert not torch.equal(heldout_batch(LANG, 3, 8, 20)["input_ids"],
                           pretrain_batch(LANG, numpy_rng(3, 1, 1), 8, 20)["input_ids"])


def test_task_examples_golden_and_labels() -> None:
    """`<bos>` text `<task>` -> label; the label follows its rule; only the label is a target."""
    for task in TASKS:
        d = make_task(LANG, task, 64, 12, seed=5)
        assert d.input_ids.shape == d.targets.shape == (64, 14)  # <bos>, 12 words, marker
        assert bool((d.targets[:, :-1] == -100).all())
        assert bool((d.input_ids[:, -1] == LANG.id[f"<{task}>"]).all())
        labels = torch.tensor([d.label_ids[y] for y in d.labels])
        assert torch.equal(d.targets[:, -1], labels)
        for row, y in zip(d.input_ids[:8], d.labels[:8], strict=True):
            words = LANG.decode(row[1:-1].tolist()).split()
            topic = {n: i for i, nouns in enumerate(TOPICS.values()) for n in nouns}
            nouns = [topic[w] for w in words if w in topic]
            expect = {"topic_first": nouns[0], "topic_last": nouns[-1],
                      "negation": int("never" in words),
                      "majority": int(2 * sum(t == 0 for t in nouns) > len(nouns))}[task]
            assert int(y) == expect, (task, words)
    # golden: the exact text of one example, so a silent format change fails loudly
    d = make_task(LANG, "topic_first", 2, 12, seed=5)
    assert LANG.decode([*d.input_ids[0].tolist(), int(d.targets[0, -1])]) == (
        "<bos> a red cat chases my mouse . the small cat never chases <topic_first> cat")
    # same seed, same data; another seed, other data
    assert torch.equal(make_task(LANG, "negation", 16, 12, 1).input_ids,
                       make_task(LANG, "negation", 16, 12, 1).input_ids)
    assert not torch.equal(make_task(LANG, "negation", 16, 12, 1).input_ids,
                           make_task(LANG, "negation", 16, 12, 2).input_ids)
    # the tasks used by the presets are not degenerate
    for task in ("topic_first", "topic_last", "negation"):
        assert make_task(LANG, task, 2000, 24, 0).class_balance() < 0.7, task
    assert set(TASK_LABELS) == set(TASKS)
    with pytest.raises(LmlabError, match="unknown task"):
        make_task(LANG, "sentiment", 4, 12, 0)


def test_accuracy_over_the_vocabulary_and_among_the_task_labels() -> None:
    """A model that prefers a non-label token, then class 1's label: 0 over the vocabulary, the
    share of class 1 among the task's labels (a per-task head)."""
    d = make_task(LANG, "topic_first", 200, 12, seed=0)

    class Stub(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
            logits = torch.zeros(*x.shape, LANG.vocab_size)
            logits[..., LANG.id["."]] = 2.0
            logits[..., d.label_ids[1]] = 1.0
            return logits, None

    assert task_accuracy(Stub(), d) == 0.0
    assert task_accuracy(Stub(), d, labels_only=True) == pytest.approx(
        float((d.labels == 1).float().mean()))


# -- LoRA schemes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme,r,alpha,scaling", [
    ("alpha2r", 1, 2.0, 2.0), ("alpha2r", 16, 32.0, 2.0),
    ("fixed", 1, 8.0, 8.0), ("fixed", 64, 8.0, 0.125),
    ("rslora", 4, 8.0, 4.0), ("rslora", 64, 8.0, 1.0),
])
def test_alpha_schemes_match_peft(scheme: str, r: int, alpha: float, scaling: float) -> None:
    """Our alpha and scaling for each scheme, and PEFT's own scaling on the layers it wraps."""
    assert lora_alpha(scheme, r) == alpha
    assert lora_scaling(scheme, r, alpha) == pytest.approx(scaling)
    m = parse_method(f"{scheme}:{r}")
    assert (m.rank, m.alpha, m.scaling, m.use_rslora) == (r, alpha, pytest.approx(scaling),
                                                          scheme == "rslora")
    model = build_gpt(GPTShape(d_model=64, n_layer=1, seq_len=8), LANG.vocab_size)
    lora = peft.get_peft_model(model, peft.LoraConfig(
        r=r, lora_alpha=m.alpha, target_modules=list(TARGET_MODULES), use_rslora=m.use_rslora))
    scalings = [float(mod.scaling["default"]) for mod in lora.modules()
                if isinstance(getattr(mod, "scaling", None), dict) and "default" in mod.scaling]
    assert len(scalings) == len(TARGET_MODULES)  # one layer of q, k, v, o, up, down
    assert scalings == pytest.approx([scaling] * len(scalings))


def test_lr_rules_and_method_parsing() -> None:
    assert lora_lr(1e-3, "constant", 64, 2.0) == 1e-3
    # normalized: r = 1, alpha = 2 keeps the base rate; lr * scaling * sqrt(r) is constant
    for scheme, r in [("alpha2r", 1), ("alpha2r", 16), ("fixed", 64), ("rslora", 4)]:
        m = parse_method(f"{scheme}:{r}")
        lr = lora_lr(1e-3, "normalized", r, m.scaling)
        assert lr * m.scaling * math.sqrt(r) == pytest.approx(2e-3)
    assert parse_method("full").name == "full" and parse_method("alpha2r:8").name == "alpha2r.r8"
    for bad in ("lora:8", "alpha2r", "alpha2r:x"):
        with pytest.raises(LmlabError, match="bad method"):
            parse_method(bad)
    with pytest.raises(LmlabError, match="unknown lr rule"):
        lora_lr(1e-3, "linear", 1, 2.0)


# -- the jobs -------------------------------------------------------------------------------------
MICRO = Setup(model=GPTShape(d_model=32, n_layer=1, n_head=2, seq_len=16),
              pretrain=Pretrain(steps=40, batch=16, heldout=16),
              finetune=Finetune(text_len=10, n_train=64, n_val=32, n_test=32, batch=16,
                                max_steps=0, eval_every=5, target_acc=0.0),
              detect=Detect(), threads=0, device="cpu")


def _steps(setup: Setup, n: int) -> Setup:
    return replace(setup, finetune=replace(setup.finetune, max_steps=n))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("intruders") / "base.safetensors"
    first = run_pretrain(PretrainJob(MICRO, 0, str(path)))
    again = run_pretrain(PretrainJob(MICRO, 0, str(path)))
    assert not first["cached"] and again["cached"]  # cached in the run folder, read back
    assert again["heldout_loss"] == pytest.approx(first["heldout_loss"])
    assert first["heldout_loss"] < math.log(LANG.vocab_size)  # it learnt something
    return str(path)


def test_lora_at_step_zero_has_no_intruders(pretrained: str) -> None:
    """B starts at 0, so an untrained adapter merges to the base weights: 0 intruders, no
    forgetting; the mitigation flags nothing and changes nothing."""
    job = FinetuneJob(MICRO, 0, parse_method("alpha2r:4"), 1e-3, ("topic_first",), pretrained,
                      lambdas=(1.0, 0.0))
    res = run_finetune(job)
    st0 = res["stages"][0]
    assert st0["steps"] == 0 and st0["intruders"] == 0
    assert st0["forgetting"] == pytest.approx(0.0, abs=1e-6)
    assert [row["flagged"] for row in res["mitigation"]] == [0, 0]
    assert all(row["forgetting"] == pytest.approx(0.0, abs=1e-6) for row in res["mitigation"])


def test_trained_lora_moves_weights_and_lambda_one_is_the_merge(pretrained: str) -> None:
    """After training, lambda = 1 reproduces the merged adapter exactly; lambda = 0 removes
    every flagged intruder (none remain at the same threshold)."""
    from lmlab.runs import load_tensors
    from lmlab.studies.intruders.experiments import _load_base, _wrap

    setup = _steps(MICRO, 30)
    job = FinetuneJob(setup, 0, parse_method("alpha2r:1"), 2e-2, ("topic_first",), pretrained)
    model = _load_base(job, LANG)
    base_sd = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    lora = _wrap(model, job.method)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a large random rank-1 update stands in for training
        for mod in lora.modules():
            if hasattr(mod, "lora_B") and "default" in mod.lora_B:
                mod.lora_B["default"].weight.copy_(torch.randn(mod.lora_B["default"].weight.shape,
                                                               generator=gen) * 3)
    keep, _ = _mitigated(lora, base_sd, 1.0, setup, LANG.vocab_size)
    gone, flagged = _mitigated(lora, base_sd, 0.0, setup, LANG.vocab_size)
    merged = lora.merge_and_unload()
    names = target_names(merged)
    for n in names:
        torch.testing.assert_close(keep.state_dict()[n], merged.state_dict()[n],
                                   rtol=1e-4, atol=1e-5)
    base_w = {n: base_sd[n] for n in names}
    before = analyze(base_w, {n: merged.state_dict()[n] for n in names}, names=names,
                     device="cpu")
    after = analyze(base_w, {n: gone.state_dict()[n] for n in names}, names=names, device="cpu")
    assert flagged == before.total >= 1
    assert after.total < before.total
    tensors, _ = load_tensors(pretrained)
    assert set(names) <= set(tensors)


def test_continual_job_measures_every_task_so_far(pretrained: str) -> None:
    setup = _steps(MICRO, 3)
    job = FinetuneJob(setup, 1, parse_method("full"), 1e-3, ("topic_first", "negation"),
                      pretrained, kind="continual")
    res = run_finetune(job)
    assert [s["task"] for s in res["stages"]] == ["topic_first", "negation"]
    assert set(res["stages"][1]["accs"]) == {"topic_first", "negation"}
    assert set(res["stages"][1]["label_accs"]) == {"topic_first", "negation"}
    assert all(0.0 <= a <= 1.0 for a in res["stages"][1]["label_accs"].values())
    assert res["stages"][1]["steps"] == 3 and res["cpu_s"] > 0
    assert res["stages"][1]["forgetting"] != 0.0  # full FT moved the weights


# -- honest measurement and seeds -----------------------------------------------------------------
def test_splits_are_disjoint_by_construction() -> None:
    """Early stopping reads validation, the reported accuracy is test's: no text is in two
    splits (the draw skips any text already drawn), even when collisions are likely."""
    for text_len in (4, 24):  # 4 tokens: few distinct texts, so the draw must skip repeats
        train, val, test = make_splits(LANG, "topic_first", (300, 60, 60), text_len, seed=3)
        texts = [{tuple(r[1:-1].tolist()) for r in d.input_ids} for d in (train, val, test)]
        assert [len(t) for t in texts] == [300, 60, 60]  # no repeat inside a split either
        assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    # the fine-tuning job's three sets are these splits
    from lmlab.studies.intruders.experiments import _task_sets

    sets = _task_sets(LANG, Finetune(text_len=4, n_train=300, n_val=60, n_test=60),
                      "topic_first", 5)
    texts = [{tuple(r[1:-1].tolist()) for r in d.input_ids} for d in sets]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_jobs_carry_the_config_and_seeds_never_overlap(tmp_path) -> None:
    """The job spec is the config's own sub-configs (nothing re-declared); the seeds of
    `--seed 0` and `--seed 1` are distinct streams."""
    from lmlab.studies.intruders.tiny import finetune_jobs, seed_of, setup_of

    assert {f.name for f in fields(Setup)} == {"model", "pretrain", "finetune", "detect",
                                                 "threads", "device"}
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(Setup))
    c = replace(IntruderConfig(), seeds=2, ranks=(1, 8), schemes=("alpha2r",), executor="serial",
                device="cpu", finetune=Finetune(max_steps=7))
    setup = setup_of(c)
    assert setup.finetune is c.finetune and setup.model is c.model and setup.detect is c.detect
    seeds = [seed_of(c, s) for s in range(2)]
    jobs = finetune_jobs(c, {s: f"base-{s}" for s in seeds}, str(tmp_path))
    assert {j.seed for j in jobs} == set(seeds)
    assert all(j.setup.finetune.max_steps == 7 for j in jobs)
    other = {seed_of(replace(c, seed=1), s) for s in range(1000)}
    assert not other & {seed_of(c, s) for s in range(1000)}
