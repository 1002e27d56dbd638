"""The checkpoint schema: every kind of bad row ends in one line naming file, row and column."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmlab.errors import LmlabError
from lmlab.studies.scaling_laws.data import (
    ENV_VAR,
    CheckpointTable,
    colpret_path,
    colpret_source,
    load_colpret,
    read_table,
    write_table,
)

HEADER = ["family", "model", "num_params", "tokens", "flops", "loss", "seed", "arch", "source"]
GOOD = [
    ["f", "small", 1e8, 1e10, "", 3.1, 0, "dec", "s"],
    ["f", "small", 1e8, 2e10, "", 3.0, 0, "dec", "s"],
    ["f", "big", 1e9, 1e10, 6e19, 2.9, 0, "dec", "s"],
]


def _error(path) -> str:
    with pytest.raises(LmlabError) as e:
        read_table(path)
    msg = str(e.value)
    assert "\n" not in msg  # one line
    return msg


def test_a_good_file_reads_with_defaults(tmp_path, csv_file):
    t = read_table(csv_file(tmp_path / "ok.csv", HEADER, GOOD))
    assert len(t) == 3
    assert t.flops[0] == 6 * 1e8 * 1e10  # empty flops -> 6ND
    assert t.flops[2] == 6e19  # given flops are kept
    assert [m.name for m in t.models()] == ["small", "big"]
    assert t.families() == ["f"] and t.families(min_models=3) == []


def test_optional_columns_may_be_absent(tmp_path, csv_file):
    t = read_table(csv_file(tmp_path / "min.csv", ["family", "model", "num_params", "tokens",
                                                   "loss"], [["", "m", 10, 20, 1.5]]))
    assert t.seed.tolist() == [0] and t.arch.tolist() == ["dec"]
    assert t.source.tolist() == ["min.csv"] and t.family.tolist() == [""]


@pytest.mark.parametrize("missing", ["family", "model", "num_params", "tokens", "loss"])
def test_missing_column(tmp_path, csv_file, missing):
    header = [h for h in HEADER if h != missing]
    rows = [[v for h, v in zip(HEADER, r, strict=True) if h != missing] for r in GOOD]
    msg = _error(csv_file(tmp_path / "bad.csv", header, rows))
    assert "bad.csv" in msg and "row 0" in msg and f"column {missing!r}" in msg
    assert "missing" in msg


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("loss", -1.0, "not positive"),
    ("loss", 0, "not positive"),
    ("tokens", 0, "not positive"),
    ("num_params", -5, "not positive"),
    ("loss", "nan", "not finite"),
    ("tokens", "inf", "not finite"),
    ("flops", "-inf", "not finite"),
    ("loss", "abc", "not a number"),
    ("num_params", "", "empty value"),
    ("seed", "1.5", "not an integer"),
    ("arch", "rnn", "unknown arch"),
])
def test_bad_value_names_file_row_and_column(tmp_path, csv_file, column, value, problem):
    rows = [list(r) for r in GOOD]
    rows[1][HEADER.index(column)] = value
    msg = _error(csv_file(tmp_path / "bad.csv", HEADER, rows))
    assert "bad.csv" in msg and "row 2 (line 3)" in msg and f"column {column!r}" in msg
    assert problem in msg


def test_duplicated_checkpoint(tmp_path, csv_file):
    rows = [*GOOD, ["f", "small", 1e8, 2e10, "", 2.95, 0, "dec", "s"]]
    msg = _error(csv_file(tmp_path / "dup.csv", HEADER, rows))
    assert "dup.csv" in msg and "row 4 (line 5)" in msg and "column 'tokens'" in msg
    assert "duplicate checkpoint" in msg and "row 2" in msg


def test_same_tokens_with_another_seed_is_not_a_duplicate(tmp_path, csv_file):
    rows = [*GOOD, ["f", "small", 1e8, 2e10, "", 2.95, 1, "dec", "s"]]
    assert len(read_table(csv_file(tmp_path / "seeds.csv", HEADER, rows))) == 4


def test_a_model_cannot_change_size(tmp_path, csv_file):
    rows = [*GOOD, ["f", "small", 2e8, 3e10, "", 2.95, 0, "dec", "s"]]
    msg = _error(csv_file(tmp_path / "size.csv", HEADER, rows))
    assert "row 4" in msg and "column 'num_params'" in msg and "row 1" in msg


def test_ragged_row_and_empty_file(tmp_path):
    p = tmp_path / "ragged.csv"
    p.write_text(",".join(HEADER) + "\nf,m,1,2\n")
    assert "row 1 (line 2)" in _error(p)
    e = tmp_path / "empty.csv"
    e.write_text("")
    assert "empty file" in _error(e)
    assert "file not found" in _error(tmp_path / "nope.csv")


def test_round_trip_csv_and_parquet(tmp_path, make_family):
    t = CheckpointTable.from_records(make_family(noise=0.01))
    for name in ("t.csv", "t.parquet"):
        back = read_table(write_table(t, tmp_path / name))
        assert len(back) == len(t)
        np.testing.assert_array_equal(back.loss, t.loss)  # shortest round-trip floats
        np.testing.assert_array_equal(back.tokens, t.tokens)
        assert back.model.tolist() == t.model.tolist()


def test_parquet_errors_name_the_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"family": ["f"], "model": ["m"], "num_params": [1.0],
                             "tokens": [1.0], "loss": [float("nan")]}), p)
    msg = _error(p)
    assert "bad.parquet" in msg and "row 1" in msg and "column 'loss'" in msg
    pq.write_table(pa.table({"family": ["f"], "model": ["m"], "tokens": [1.0], "loss": [1.0]}), p)
    assert "column 'num_params'" in _error(p)


def test_the_shared_table_loads(colpret):
    # Numbers from the table's README.
    assert len(colpret) == 14015
    assert len(colpret.models()) == 311
    assert len(colpret.families()) == 34
    assert colpret.families(min_models=3) == sorted(
        [f"GPT2-{d}-{e}.0" for d in ("c4", "oscar") for e in (1, 2, 3, 4, 5, 7, 14, 44)]
        + ["OPT", "lambda", "t5-pile"])
    opt = colpret.only_family("OPT")
    assert [m.name for m in opt.models()][-1] == "OPT-0.17T"
    assert np.allclose(colpret.flops, 6 * colpret.num_params * colpret.tokens, rtol=1e-15)
    assert math.isclose(colpret.loss.min(), 0.04749, rel_tol=1e-3)  # T5-Pile's log2 perplexity


def test_where_the_table_is_found(monkeypatch, tmp_path, colpret_csv):
    from lmlab.data import DATASETS, sha256_file

    monkeypatch.delenv(ENV_VAR, raising=False)
    assert ENV_VAR == "LMLAB_DATA_COLPRET"
    packaged = colpret_source()
    assert packaged.source == "package" and packaged.sha256 == DATASETS["colpret"].sha256
    assert colpret_path() == colpret_csv  # the packaged copy, unpacked in the cache
    assert sha256_file(colpret_csv) == next(
        f.sha256 for f in DATASETS["colpret"].files if f.name == "compact.csv")
    given = colpret_source(colpret_csv.parent)  # a folder means its compact.csv
    assert given.source == "explicit" and colpret_path(colpret_csv.parent) == colpret_csv
    assert given.sha256 == packaged.sha256  # the same files, the same manifest
    assert colpret_source(colpret_csv).source == "explicit"  # or the table file itself
    monkeypatch.setenv(ENV_VAR, str(colpret_csv))
    assert colpret_source().source == "env" and len(load_colpret()) == 14015
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(LmlabError) as e:
        colpret_path()
    assert "LMLAB_DATA_COLPRET" in str(e.value) and "not found" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmlabError, match=r"has no compact\.csv"):
        colpret_path(tmp_path / "empty")
