"""Serialization: the official text format (golden and round trip) and the grid-token format."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.studies.ttt_arc.strategies import grids

from lmlab.studies.ttt_arc.arc import Example
from lmlab.studies.ttt_arc.serialize import (
    SYSTEM_PROMPT,
    GridTokenizer,
    decode_grid,
    encode_grid,
    format_task,
)


def examples(max_side: int = 6) -> st.SearchStrategy[Example]:
    return st.builds(Example, grids(max_side), grids(max_side))


G = np.array([[0, 1], [2, 3]], dtype=np.int8)
H = np.array([[5, 6, 7]], dtype=np.int8)
K = np.array([[9], [8]], dtype=np.int8)


def test_grid_text_is_numpys_str():
    assert encode_grid(G) == "[[0 1]\n [2 3]]"
    assert encode_grid(np.array([[7]])) == "[[7]]"


@settings(max_examples=150, deadline=None)
@given(grids())
def test_text_round_trip_and_numpy_agreement(g):
    text = encode_grid(g)
    assert text == str(g.astype(np.int64))
    back = decode_grid(text)
    assert back is not None and back.dtype == np.int8
    np.testing.assert_array_equal(back, g)
    np.testing.assert_array_equal(decode_grid(text + "#"), g)  # an output's footer


def test_decode_ignores_what_follows_the_footer():
    np.testing.assert_array_equal(decode_grid("[[0 1]\n [2 3]]#\n[[9 9]]"), G)
    np.testing.assert_array_equal(decode_grid("  [[0 1]\n [2 3]]  "), G)


def test_unparseable_text_decodes_to_none():
    for text in [
        "",
        "#",
        "[[0 1]\n [2]]",  # ragged
        "[[0 1]\n [2 3]",  # unclosed
        "[[0 a]]",
        "[[0 10]]",  # two-digit colour
        "[[0 -1]]",
        "0 1\n2 3",  # no brackets
        "[[" + " ".join(["1"] * 31) + "]]",  # too wide
        "[[1]\n" + " [1]\n" * 30 + " [1]]",  # too tall
        "[[]]",
    ]:
        assert decode_grid(text) is None, text


def test_official_chat_format_golden():
    f = format_task([Example(G, H), Example(K, G)], H, K)
    assert SYSTEM_PROMPT == (
        "Figure out the underlying transformation in the following examples and apply it to "
        "the test case. Here are some examples from this transformation, your answer must "
        "follow the format.\nThe input-output grids are provided as python arrays:\n"
    )
    assert f.system == SYSTEM_PROMPT + (
        "[[0 1]\n [2 3]] -> [[5 6 7]]#\n"
        "[[9]\n [8]] -> [[0 1]\n [2 3]]#\n"
    )
    assert f.user == "[[5 6 7]] -> "
    assert f.assistant == "[[9]\n [8]]#"
    assert [m["role"] for m in f.messages()] == ["system", "user", "assistant"]
    text = {"system": f.system, "assistant": f.assistant}
    assert [text[m][a:b] for m, a, b in f.loss_spans] == ["[[0 1]\n [2 3]]#", "[[9]\n [8]]#"]
    prompt_only = format_task([Example(G, H)], H)
    assert prompt_only.assistant is None and prompt_only.loss_spans == ()
    assert [m["role"] for m in prompt_only.messages()] == ["system", "user"]


@settings(max_examples=60, deadline=None)
@given(st.lists(examples(), min_size=1, max_size=4), grids(6), grids(6))
def test_text_loss_spans_cover_demo_outputs_after_the_first_and_the_answer(demos, x, y):
    f = format_task(demos, x, y)
    text = {"system": f.system, "assistant": f.assistant}
    covered = [text[m][a:b] for m, a, b in f.loss_spans]
    expected = [encode_grid(e.output) + "#" for e in demos[1:]] + [encode_grid(y) + "#"]
    assert covered == expected
    spans = [(a, b) for m, a, b in f.loss_spans if m == "system"]
    assert all(f.system[b] == "\n" and f.system[a - 4 : a] == " -> " for a, b in spans)


def test_grid_tokens_golden():
    tok = GridTokenizer()
    ids, mask = tok.encode_task([Example(G, H), Example(K, G)], H, K)
    assert tok.decode(ids) == (
        "BOS IN 0 1 ROW 2 3 ROW OUT 5 6 7 ROW END "
        "IN 9 ROW 8 ROW OUT 0 1 ROW 2 3 ROW END "
        "IN 5 6 7 ROW OUT 9 ROW 8 ROW EOS"
    )
    assert tok.decode(ids[mask]) == "0 1 ROW 2 3 ROW END 9 ROW 8 ROW EOS"
    assert tok.vocab_size == 17 == len(tok.names)
    assert ids.dtype == np.int64 and mask.dtype == bool
    prompt, pmask = tok.encode_task([Example(G, H)], K)
    assert tok.decode(prompt).endswith("IN 9 ROW 8 ROW OUT") and not pmask.any()


@settings(max_examples=150, deadline=None)
@given(grids())
def test_grid_token_round_trip(g):
    tok = GridTokenizer()
    ids, _ = tok.encode_task([], g, g)
    np.testing.assert_array_equal(tok.decode_output(ids), g)  # a whole sequence
    gen = np.concatenate([tok.grid_ids(g), [tok.EOS, 3, 3]])
    np.testing.assert_array_equal(tok.decode_output(gen), g)  # generated tokens, then junk


@settings(max_examples=80, deadline=None)
@given(st.lists(examples(), min_size=1, max_size=4), grids(6), grids(6))
def test_token_loss_mask_covers_demo_outputs_after_the_first_and_the_answer(demos, x, y):
    tok = GridTokenizer()
    ids, mask = tok.encode_task(demos, x, y)
    assert len(ids) == len(mask) == tok.count(demos, x, y)
    expected = [np.append(tok.grid_ids(e.output), tok.END) for e in demos[1:]]
    expected.append(np.append(tok.grid_ids(y), tok.EOS))
    np.testing.assert_array_equal(ids[mask], np.concatenate(expected))
    # the masked positions are contiguous runs, each right after an OUT marker
    starts = np.flatnonzero(np.diff(mask.astype(int)) == 1) + 1
    assert len(starts) == len(demos)
    assert (ids[starts - 1] == tok.OUT).all()


def test_malformed_tokens_decode_to_none():
    tok = GridTokenizer()
    R, E = tok.ROW, tok.EOS
    for ids in [
        [],
        [E],
        [1, 2],  # no row end
        [1, 2, R, 3, R],  # ragged
        [R, E],  # empty row
        [1, tok.IN, R],  # a marker inside the grid
        [1, R] * 31,  # 31 rows
        [1] * 31 + [R],  # 31 columns
    ]:
        assert tok.decode_output(ids) is None, ids


def test_grid_coordinates_follow_the_cells() -> None:
    tok = GridTokenizer()
    demo = Example(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[7, 8, 9], [1, 2, 3]]))
    ids, _ = tok.encode_task([demo], np.array([[1, 1], [2, 2]]), np.array([[5, 5], [6, 6]]))
    c = tok.coords(ids).tolist()
    names = [tok.names[i] for i in ids]
    assert list(zip(names[:20], map(tuple, c[:20]), strict=True)) == [
        ("BOS", (0, 0, 0)), ("IN", (0, 0, 1)),
        ("1", (1, 1, 1)), ("2", (1, 2, 1)), ("3", (1, 3, 1)), ("ROW", (1, 4, 1)),
        ("4", (2, 1, 1)), ("5", (2, 2, 1)), ("6", (2, 3, 1)), ("ROW", (2, 4, 1)),
        # an output token is labelled with the next cell: the input cell it should copy
        ("OUT", (1, 1, 2)), ("7", (1, 2, 2)), ("8", (1, 3, 2)), ("9", (1, 4, 2)),
        ("ROW", (2, 1, 2)), ("1", (2, 2, 2)), ("2", (2, 3, 2)), ("3", (2, 4, 2)),
        ("ROW", (3, 1, 2)), ("END", (0, 0, 0)),
    ]
    assert tuple(c[-1]) == (0, 0, 0)  # EOS


@settings(max_examples=30, deadline=None)
@given(st.lists(examples(), min_size=1, max_size=3), examples(), st.integers(1, 60))
def test_grid_coordinates_are_causal_and_batched(demos, query, cut) -> None:
    tok = GridTokenizer()
    ids, _ = tok.encode_task(demos, query.input, query.output)
    full = tok.coords(ids)
    assert full.shape == (len(ids), 3) and int(full.min()) >= 0
    assert int(full[:, 0].max()) < 32 and int(full[:, 1].max()) < 32
    k = min(cut, len(ids))
    assert tok.coords(ids[:k]).tolist() == full[:k].tolist()  # a prefix's own coordinates
    batch = tok.coords(np.stack([ids, ids[::-1]]))
    assert batch[0].tolist() == full.tolist()
    assert batch[1].tolist() == tok.coords(ids[::-1]).tolist()
