"""Golden token examples and property tests for the task generators."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.studies.random_transformers.catalog import make_task
from lmlab.studies.random_transformers.language import (
    GRAMMAR_WORDS,
    GrammarCorpus,
    TinyStories,
    sample_sentence,
)
from lmlab.studies.random_transformers.tasks import (
    DecimalAddition,
    Memorization,
    ModularAddition,
    Needle,
    Parentheses,
    addition_sequence,
    is_balanced,
    majority_accuracy,
    needle_sequence,
    parens_sequence,
    sample_parens_string,
)


# ------------------------------------------------------------------ golden examples
def test_modadd_golden() -> None:
    b = ModularAddition(p=7).encode(torch.tensor([[3, 5]]))
    assert b["input_ids"].tolist() == [[3, 5]]
    assert b["targets"].tolist() == [[5, 1]]
    assert b["loss_mask"].tolist() == [[False, True]]


def test_needle_golden() -> None:
    # keys 2, 0 with values 5, 9; query key 0. V=256: marker key+128, query key+n_keys+128.
    seq = needle_sequence([2, 0], [5, 9], 0, n_keys=3, vocab_size=256)
    assert seq == [130, 5, 128, 9, 131, 9, 0, 0, 0]
    b = Needle(n_keys=3).encode([seq])
    assert b["loss_mask"][0].nonzero().flatten().tolist() == [4]
    assert b["targets"][0, 4] == 9


def test_decimal_golden_and_masks() -> None:
    seq = addition_sequence(123, 989, 3)  # 123 + 989 = 1112, all reversed
    assert seq == [3, 2, 1, 10, 9, 8, 9, 11, 22, 21, 21, 21, 30]
    assert addition_sequence(100, 100, 3) == [0, 0, 1, 10, 0, 0, 1, 11, 20, 20, 22, 30, 12]
    paper = DecimalAddition(n_digits=3, mask="paper").encode([seq])
    fixed = DecimalAddition(n_digits=3, mask="corrected").encode([seq])
    t = paper["targets"][0]
    # paper: the first sum digit (22, predicted from '=') is never scored
    assert t[paper["loss_mask"][0]].tolist() == [21, 21, 21, 30]
    assert t[fixed["loss_mask"][0]].tolist() == [22, 21, 21, 21, 30]


def test_parens_golden() -> None:
    assert parens_sequence("(())", 3) == [1, 1, 2, 2, 3, 2, 0, 0, 0]
    assert parens_sequence("())(", 3) == [1, 2, 2, 1, 3, 1, 0, 0, 0]
    b = Parentheses(n_pairs=3).encode([parens_sequence("()", 3)])
    assert b["loss_mask"][0].nonzero().flatten().tolist() == [2]
    assert b["targets"][0, 2] == 2


def test_memorization_golden() -> None:
    task = Memorization(n=3, n_labels=5, label_seed=0)
    table = task.table()
    assert table.shape == (9, 3)
    assert table[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert table[:, 1].tolist() == [3, 4, 5, 3, 4, 5, 3, 4, 5]
    assert table[:, 2].max() < 5 and task.vocab_size == 6
    assert torch.equal(Memorization(n=3, n_labels=5, label_seed=0).table(), table)


# ------------------------------------------------------------------ properties
def _stack_balanced(s: str) -> bool:
    stack: list[str] = []
    for c in s:
        if c == "(":
            stack.append(c)
        elif not stack:
            return False
        else:
            stack.pop()
    return not stack


@given(st.text(alphabet="()", max_size=30))
def test_is_balanced_matches_a_stack(s: str) -> None:
    assert is_balanced(s) == _stack_balanced(s)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**32))
def test_parens_sampler_properties(n_pairs: int, seed: int) -> None:
    task = Parentheses(n_pairs=n_pairs)
    rng = random.Random(seed)
    s = sample_parens_string(n_pairs, rng)
    assert 1 <= len(s) <= 2 * n_pairs and set(s) <= {"(", ")"}
    seq = task.sample(random.Random(seed))
    assert len(seq) == task.seq_len and seq.count(3) == 1
    q = seq.index(3)
    string = "".join("(" if t == 1 else ")" for t in seq[:q])
    assert seq[q + 1] == (2 if is_balanced(string) else 1)
    assert all(t == 0 for t in seq[q + 2 :])


def test_parens_balanced_fraction_matches_the_paper() -> None:
    rng = random.Random(0)
    n = 4000
    frac = sum(is_balanced(sample_parens_string(30, rng)) for _ in range(n)) / n
    assert 0.50 <= frac <= 0.55, frac  # the note's simulation: about 52%


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**32))
def test_needle_properties(n_keys: int, seed: int) -> None:
    task = Needle(n_keys=n_keys, vocab=256)
    seq = task.sample(random.Random(seed))
    assert len(seq) == 2 * n_keys + 3 and max(seq) < 256
    q = next(i for i, t in enumerate(seq) if t >= 128 + n_keys)
    markers = seq[0:q:2]
    assert len(set(markers)) == len(markers)  # distinct keys
    assert all(128 <= m < 128 + n_keys for m in markers)
    assert all(1 <= v <= 127 for v in seq[1:q:2])
    key = seq[q] - 128 - n_keys
    assert seq[q + 1] == seq[markers.index(key + 128) * 2 + 1]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.data())
def test_decimal_sequence_decodes_to_the_sum(n: int, data: st.DataObject) -> None:
    lo, hi = 10 ** (n - 1), 10**n - 1
    a, b = data.draw(st.integers(lo, hi)), data.draw(st.integers(lo, hi))
    seq = addition_sequence(a, b, n)
    assert len(seq) == 3 * n + 4
    digits = [t - 20 for t in seq if 20 <= t <= 29]
    assert int("".join(map(str, digits))[::-1]) == a + b
    assert seq[seq.index(30) + 1 :] == [12] * (len(seq) - seq.index(30) - 1)


@given(st.integers(3, 40), st.floats(0.05, 0.4), st.floats(0.05, 0.4))
def test_modadd_split_partitions_all_pairs(p: int, frac: float, val: float) -> None:
    train, valid, test = ModularAddition(p=p, test_fraction=frac, val_fraction=val).pairs()
    sets = [{tuple(x) for x in part.tolist()} for part in (train, valid, test)]
    assert all(sets)
    assert not sets[0] & sets[1] and not sets[0] & sets[2] and not sets[1] & sets[2]
    assert len(sets[0] | sets[1] | sets[2]) == p * p == len(train) + len(valid) + len(test)


def _rows(batch: dict) -> set:
    return {tuple(s) for s in batch["input_ids"].tolist()}


def test_stream_validation_is_apart_from_test_and_training() -> None:
    task = Parentheses(n_pairs=3, n_test=40, n_val=40, batch_size=200)
    test, val = _rows(task.test_batch()), _rows(task.val_batch())
    assert val and not test & val
    for step in range(3):
        b = _rows(task(step, torch.Generator().manual_seed(step)))
        assert not test & b and not val & b
    # both held-out sets are fixed by their seeds
    again = Parentheses(n_pairs=3, n_test=40, n_val=40)
    assert torch.equal(task.test_batch()["input_ids"], again.test_batch()["input_ids"])
    assert torch.equal(task.val_batch()["input_ids"], again.val_batch()["input_ids"])


@pytest.mark.parametrize("task", [Parentheses(n_pairs=10, n_test=1000, n_val=1000),
                                  Needle(n_keys=8, vocab=64, n_test=1000, n_val=1000)])
def test_validation_and_test_come_from_one_distribution(task) -> None:
    """Early stopping on validation must predict test: the two sets are disjoint yet identically
    distributed. (Validation drawn apart and rejecting the test set's sequences lost the frequent
    short ones: mean answer position 14.4 against 10.7 in the test set at 10 pairs, majority
    answer 0.59 against 0.51.)"""
    test, val = task.test_batch(), task.val_batch()
    assert not _rows(test) & _rows(val)

    def answer_position(b: dict) -> torch.Tensor:  # where the scored token sits: the length
        return b["loss_mask"].float().argmax(1).float()

    a, v = answer_position(test), answer_position(val)
    se = float((a.var() / len(a) + v.var() / len(v)).sqrt())
    assert abs(float(a.mean() - v.mean())) < 4 * se  # the old split: 17 standard errors apart
    assert abs(majority_accuracy(test) - majority_accuracy(val)) < 0.05


def test_modadd_training_never_sees_test_or_validation_pairs() -> None:
    task = ModularAddition(p=11, test_fraction=0.2, val_fraction=0.2, batch_size=500)
    test, val = _rows(task.test_batch()), _rows(task.val_batch())
    assert not test & val
    b = _rows(task(1, torch.Generator().manual_seed(0)))
    assert not test & b and not val & b


def test_make_task_and_bad_settings() -> None:
    assert make_task("parens", n_pairs=4).vocab_size == 4
    with pytest.raises(LmlabError, match="unknown task"):
        make_task("sorting")
    with pytest.raises(LmlabError, match="needle"):
        Needle(n_keys=40, vocab=64)


# ------------------------------------------------------------------ language
@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32))
def test_grammar_sentences_agree_in_number(seed: int) -> None:
    words = sample_sentence(random.Random(seed))
    assert words[-1] == "." and all(w in GRAMMAR_WORDS for w in words)
    # the subject's head noun is the first noun; the main verb is the first verb
    nouns = ("cat", "dog", "bird", "child", "teacher", "farmer", "king", "robot")
    verbs = ("see", "like", "chase", "help", "find", "call", "sleep", "run", "sing", "wait")
    noun = next(w for w in words if w.rstrip("s") in nouns or w in nouns)
    verb = next(w for w in words if w in verbs or (w.endswith("s") and w[:-1] in verbs))
    assert noun.endswith("s") != verb.endswith("s")  # plural noun <-> bare verb


def test_grammar_corpus_batches() -> None:
    corpus = GrammarCorpus(seq_len=16, batch_size=4, n_test=3)
    b = corpus(1, torch.Generator().manual_seed(0))
    assert b["input_ids"].shape == (4, 15) and int(b["input_ids"].max()) < corpus.vocab_size
    assert torch.equal(b["input_ids"][:, 1:], b["targets"][:, :-1])


def test_tinystories_packs_local_text_and_explains_offline() -> None:
    ts = TinyStories(seq_len=4)
    assert ts.pack(["abc", "de"]).tolist() == [[97, 98, 99, 10]]
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(LmlabError, match="datasets"):
            ts.test_batch()
