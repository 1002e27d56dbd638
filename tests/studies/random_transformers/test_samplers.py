"""The vectorized torch samplers (`sampler="torch"`, the `gpu` preset) against the Python ones."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.studies.random_transformers.tasks import (
    DecimalAddition,
    Needle,
    Parentheses,
    _row_hash,
    addition_sequence,
    needle_sequence,
)


def _whole(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([batch["input_ids"], batch["targets"][:, -1:]], 1)


def _needle_parts(row: list[int], K: int, half: int) -> tuple[list[int], list[int], int]:
    k = next(i for i in range(K + 1) if row[2 * i] >= K + half)  # the query's position / 2
    return row[0 : 2 * k : 2], row[1 : 2 * k : 2], row[2 * k]


def test_torch_needle_rows_are_valid_sequences_outside_the_held_out_sets() -> None:
    t = Needle(n_keys=8, vocab=64, n_test=300, n_val=300, batch_size=2000, sampler="torch")
    rows = _whole(t(0, torch.Generator().manual_seed(0))).tolist()
    assert len(rows) == 2000
    held = t._test()[1] | t._val()[1]
    half = 32
    for row in rows:
        keys, values, q = _needle_parts(row, 8, half)
        keys = [x - half for x in keys]
        assert len(set(keys)) == len(keys) and all(0 <= x < 8 for x in keys)
        assert all(1 <= v <= half - 1 for v in values)
        assert row == needle_sequence(keys, values, q - 8 - half, 8, 64)
        assert tuple(row) not in held


def test_torch_needle_draws_the_python_samplers_distribution() -> None:
    kw = dict(n_keys=8, vocab=64, n_test=200, n_val=200, batch_size=4000)
    stats = []
    for sampler in ("python", "torch"):
        t = Needle(**kw, sampler=sampler)  # type: ignore[arg-type]
        rows = _whole(t(0, torch.Generator().manual_seed(1))).tolist()
        parts = [_needle_parts(r, 8, 32) for r in rows]
        ks = Counter(len(p[0]) for p in parts)
        qpos = Counter(p[0].index(p[2] - 8) for p in parts if len(p[0]) == 8)
        stats.append(([ks[k] / len(rows) for k in range(1, 9)],
                      [qpos[i] / sum(qpos.values()) for i in range(8)],
                      sum(v for p in parts for v in p[1]) / sum(len(p[1]) for p in parts)))
    (kp, qp, vp), (kt, qt, vt) = stats
    # number of keys and query position uniform, values uniform on 1..31 (mean 16), in both
    assert max(abs(a - b) for a, b in zip(kp, kt, strict=True)) < 0.03
    assert max(abs(a - b) for a, b in zip(qp, qt, strict=True)) < 0.08
    assert abs(vp - vt) < 0.5 and abs(vt - 16) < 0.5


def test_torch_decimal_rows_are_the_paper_format_of_uniform_operands() -> None:
    t = DecimalAddition(n_digits=3, n_test=300, n_val=300, batch_size=3000, sampler="torch")
    rows = _whole(t(0, torch.Generator().manual_seed(2))).tolist()
    held = t._test()[1] | t._val()[1]
    ops = []
    for row in rows:
        a = int("".join(map(str, row[0:3][::-1])))
        b = int("".join(map(str, row[4:7][::-1])))
        assert row == addition_sequence(a, b, 3) and tuple(row) not in held
        ops += [a, b]
    assert 100 <= min(ops) and max(ops) <= 999 and abs(sum(ops) / len(ops) - 549.5) < 10
    carried = sum(r[-1] == 30 for r in rows) / len(rows)  # a 4-digit sum: no padding
    python = DecimalAddition(n_digits=3, n_test=300, n_val=300, batch_size=3000)
    prow = _whole(python(0, torch.Generator().manual_seed(2))).tolist()
    assert abs(carried - sum(r[-1] == 30 for r in prow) / len(prow)) < 0.04


def test_held_out_sequences_are_rejected_by_their_hash() -> None:
    t = Needle(n_keys=1, vocab=8, n_test=20, n_val=20, batch_size=10, sampler="torch")
    held = torch.as_tensor(t._test()[0] + t._val()[0])
    assert torch.isin(_row_hash(held), t._held_out_hashes(torch.device("cpu"))).all()
    # one key, three values: the held-out sets take every sequence, nothing is left to train on
    with pytest.raises(LmlabError, match="cover"):
        t(0, torch.Generator().manual_seed(0))
    with pytest.raises(LmlabError, match="torch sampler"):
        Parentheses(n_pairs=3, n_test=10, n_val=10, sampler="torch")(0, torch.Generator())
