"""Checkpoint-level losses: the schema, its validation, and where the ColPret table comes from.

One row per (model, seed, checkpoint), in CSV or Parquet, with these columns:

| column     | type          | required | meaning                                                      |
|------------|---------------|----------|--------------------------------------------------------------|
| family     | str (or "")   | yes      | the models fitted together (ColPret's `scaled_set`); "" = none |
| model      | str           | yes      | the model's name; one size per name                          |
| num_params | number > 0    | yes      | N, parameters                                                |
| tokens     | number > 0    | yes      | D, tokens seen at this checkpoint                            |
| loss       | number > 0    | yes      | the value the laws are fitted to (ColPret's `perf`)          |
| flops      | number > 0    | no       | training FLOPs; empty or absent means 6 * N * D              |
| seed       | int           | no       | training seed (default 0)                                    |
| arch       | str           | no       | one of `ARCHS` (default "dec")                               |
| source     | str           | no       | where the row came from (default: the file's name)           |

Every problem in a file ends in one `LmlabError` line naming the file, the row (1-based data
row, and the line for CSV) and the column: a missing required column, a value that is not a
number, not finite or not positive, an unknown arch, a model whose size changes between rows, or
a duplicated checkpoint (same family, model, seed and tokens).

The ColPret compact table (`compact.csv`, rebuilt from the paper's public release; see
lmlab/datasets/colpret/PROVENANCE.md) ships inside lmlab. `colpret_source` finds it through
`lmlab.data.resolve("colpret", path)`: an explicit path (a table file, or a folder holding
`compact.csv`), else the environment variable `LMLAB_DATA_COLPRET`, else the packaged copy.
`lmlab scaling-laws import-colpret` rebuilds it from the public release
(`lmlab.studies.scaling_laws.colpret`).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.data import DataSource, env_var, resolve
from lmlab.errors import LmlabError, require

__all__ = [
    "ARCHS",
    "COLUMNS",
    "ENV_VAR",
    "OPTIONAL",
    "REQUIRED",
    "CheckpointTable",
    "ModelInfo",
    "colpret_path",
    "colpret_source",
    "load_colpret",
    "read_table",
    "write_table",
]

COLUMNS = ("family", "model", "num_params", "tokens", "flops", "loss", "seed", "arch", "source")
REQUIRED = ("family", "model", "num_params", "tokens", "loss")
OPTIONAL = {"flops": None, "seed": 0, "arch": "dec", "source": None}
ARCHS = ("dec", "enc", "enc-dec", "moe", "ssm")
ENV_VAR = env_var("colpret")  # LMLAB_DATA_COLPRET
_POSITIVE = ("num_params", "tokens", "loss", "flops")



@dataclass(frozen=True)
class ModelInfo:
    """One model of a table: its name, size, family and how many checkpoints it has."""

    name: str
    num_params: float
    family: str
    n_rows: int
    max_tokens: float


@dataclass(frozen=True)
class CheckpointTable:
    """Columns of checkpoint losses as numpy arrays (one entry per row), validated on creation.

    String columns are object arrays; numeric ones float64 (seed: int64). Tables are immutable:
    `where`/`take` return new tables.
    """

    family: np.ndarray
    model: np.ndarray
    num_params: np.ndarray
    tokens: np.ndarray
    flops: np.ndarray
    loss: np.ndarray
    seed: np.ndarray
    arch: np.ndarray
    source: np.ndarray

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_columns(cls, name: str = "<table>", **cols: Sequence[Any]) -> CheckpointTable:
        """Build and validate a table from column sequences (optional columns may be omitted)."""
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise LmlabError(f"{name}: missing column {missing[0]!r} (row 0, the header)")
        n = len(cols["model"])
        rows = (
            {c: (cols[c][i] if c in cols else None) for c in COLUMNS} for i in range(n)
        )
        return _build(rows, name, header=list(cols), line_of=None)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], name: str = "<records>") -> CheckpointTable:
        """Build and validate a table from dicts keyed by column name."""
        records = list(records)
        header = list(records[0]) if records else list(REQUIRED)
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise LmlabError(f"{name}: missing column {missing[0]!r} (row 0, the header)")
        return _build(({c: r.get(c) for c in COLUMNS} for r in records), name, header, None)

    # -- selection ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.model)

    def take(self, index: np.ndarray) -> CheckpointTable:
        """The rows at `index` (an integer or boolean array)."""
        return CheckpointTable(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def where(self, mask: np.ndarray) -> CheckpointTable:
        """The rows where `mask` is true."""
        return self.take(np.asarray(mask, dtype=bool))

    def only_models(self, names: Iterable[str]) -> CheckpointTable:
        """The rows of the models called `names`."""
        return self.where(np.isin(self.model, list(names)))

    def only_family(self, family: str) -> CheckpointTable:
        """The rows of one family."""
        return self.where(self.family == family)

    def families(self, min_models: int = 1) -> list[str]:
        """Non-empty family names with at least `min_models` models, sorted."""
        out = []
        for fam in sorted(set(self.family.tolist()) - {""}):
            if len(set(self.model[self.family == fam].tolist())) >= min_models:
                out.append(fam)
        return out

    def models(self) -> list[ModelInfo]:
        """The table's models, smallest first (ties broken by name)."""
        infos = []
        for name in set(self.model.tolist()):
            m = self.model == name
            infos.append(ModelInfo(
                name=name, num_params=float(self.num_params[m][0]), family=str(self.family[m][0]),
                n_rows=int(m.sum()), max_tokens=float(self.tokens[m].max()),
            ))
        return sorted(infos, key=lambda i: (i.num_params, i.name))

    def records(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts, in table order."""
        for i in range(len(self)):
            yield {c: getattr(self, c)[i].item() if hasattr(getattr(self, c)[i], "item")
                   else getattr(self, c)[i] for c in COLUMNS}

    def concat(self, other: CheckpointTable) -> CheckpointTable:
        """This table's rows followed by `other`'s (not re-validated; both already are)."""
        return CheckpointTable(**{
            f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
            for f in fields(self)
        })


# -- validation ----------------------------------------------------------------------------------
def _where(name: str, row: int, line: int | None, col: str) -> str:
    at = f"row {row} (line {line})" if line is not None else f"row {row}"
    return f"{name}: {at}, column {col!r}"


def _number(raw: Any, name: str, row: int, line: int | None, col: str) -> float:
    if isinstance(raw, bool):
        raise LmlabError(f"{_where(name, row, line, col)}: {raw!r} is not a number")
    if isinstance(raw, int | float | np.integer | np.floating):
        value = float(raw)
    else:
        text = str(raw).strip()
        try:
            value = float(text)
        except ValueError:
            raise LmlabError(
                f"{_where(name, row, line, col)}: {text!r} is not a number"
            ) from None
    if not math.isfinite(value):
        raise LmlabError(f"{_where(name, row, line, col)}: {raw!r} is not finite")
    if value <= 0:
        raise LmlabError(f"{_where(name, row, line, col)}: {raw!r} is not positive")
    return value


def _empty(raw: Any) -> bool:
    if raw is None:
        return True
    if isinstance(raw, float) and math.isnan(raw):
        return True  # pandas and pyarrow give NaN / None for an empty string cell
    return isinstance(raw, str) and raw.strip() == ""


def _build(
    rows: Iterable[dict[str, Any]], name: str, header: Sequence[str], line_of: Any
) -> CheckpointTable:
    """Validate parsed rows and assemble the table. `line_of(i)` gives row i's file line."""
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    seen: dict[tuple[str, str, int, float], int] = {}
    size_of: dict[str, tuple[float, int]] = {}
    default_source = Path(name).name
    for i, raw in enumerate(rows, start=1):
        line = line_of(i) if line_of else None
        fam = "" if _empty(raw["family"]) else str(raw["family"]).strip()
        model = "" if _empty(raw["model"]) else str(raw["model"]).strip()
        if not model:
            raise LmlabError(f"{_where(name, i, line, 'model')}: empty model name")
        num = {}
        for col in _POSITIVE:
            if col == "flops" and _empty(raw.get("flops")):
                continue
            if _empty(raw.get(col)):
                raise LmlabError(f"{_where(name, i, line, col)}: empty value")
            num[col] = _number(raw[col], name, i, line, col)
        flops = num.get("flops", 6.0 * num["num_params"] * num["tokens"])
        seed_raw = raw.get("seed")
        if _empty(seed_raw):
            seed = 0
        else:
            try:
                seed_f = float(seed_raw)
                if not seed_f.is_integer():
                    raise ValueError
                seed = int(seed_f)
            except (TypeError, ValueError):
                raise LmlabError(
                    f"{_where(name, i, line, 'seed')}: {seed_raw!r} is not an integer"
                ) from None
        arch = "dec" if _empty(raw.get("arch")) else str(raw["arch"]).strip()
        if arch not in ARCHS:
            raise LmlabError(
                f"{_where(name, i, line, 'arch')}: unknown arch {arch!r} (one of {', '.join(ARCHS)})"
            )
        source = default_source if _empty(raw.get("source")) else str(raw["source"]).strip()
        if model in size_of and size_of[model][0] != num["num_params"]:
            first_n, first_row = size_of[model]
            raise LmlabError(
                f"{_where(name, i, line, 'num_params')}: model {model!r} has {num['num_params']:g} "
                f"parameters here but {first_n:g} at row {first_row}"
            )
        size_of.setdefault(model, (num["num_params"], i))
        key = (fam, model, seed, num["tokens"])
        if key in seen:
            raise LmlabError(
                f"{_where(name, i, line, 'tokens')}: duplicate checkpoint of model {model!r} "
                f"(seed {seed}) at {num['tokens']:g} tokens, already at row {seen[key]}"
            )
        seen[key] = i
        for col, value in (("family", fam), ("model", model), ("num_params", num["num_params"]),
                           ("tokens", num["tokens"]), ("flops", flops), ("loss", num["loss"]),
                           ("seed", seed), ("arch", arch), ("source", source)):
            cols[col].append(value)
    strings = ("family", "model", "arch", "source")
    arrays = {
        c: (np.array(v, dtype=object) if c in strings
            else np.array(v, dtype=np.int64) if c == "seed" else np.array(v, dtype=np.float64))
        for c, v in cols.items()
    }
    return CheckpointTable(**arrays)


# -- files -----------------------------------------------------------------------------------
def read_table(path: str | os.PathLike) -> CheckpointTable:
    """Read and validate a checkpoint table from CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`)."""
    path = Path(path)
    if not path.is_file():
        raise LmlabError(f"{path}: file not found")
    if path.suffix == ".parquet":
        return _read_parquet(path)
    return _read_csv(path)


def _read_csv(path: Path) -> CheckpointTable:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise LmlabError(f"{path}: empty file (expected a header row)") from None
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise LmlabError(
                    f"{path}: row 0 (line 1, the header), column {missing[0]!r}: missing "
                    f"(required: {', '.join(REQUIRED)})"
                )
            dup = sorted({h for h in header if header.count(h) > 1})
            if dup:
                raise LmlabError(f"{path}: row 0 (line 1, the header), column {dup[0]!r}: twice")
            index = {c: header.index(c) for c in COLUMNS if c in header}
            lines: dict[int, int] = {}

            def rows() -> Iterator[dict[str, Any]]:
                for i, rec in enumerate(reader, start=1):
                    lines[i] = reader.line_num
                    if len(rec) != len(header):
                        raise LmlabError(
                            f"{path}: row {i} (line {reader.line_num}): {len(rec)} fields, the "
                            f"header has {len(header)}"
                        )
                    yield {c: (rec[index[c]] if c in index else None) for c in COLUMNS}

            return _build(rows(), str(path), header, lines.__getitem__)
    except UnicodeDecodeError as e:
        raise LmlabError(f"{path}: not UTF-8 text ({e.reason})") from None
    except csv.Error as e:
        raise LmlabError(f"{path}: malformed CSV ({e})") from None


def _read_parquet(path: Path) -> CheckpointTable:
    pq = require("pyarrow.parquet", hint="pip install pyarrow")
    try:
        data = pq.read_table(path).to_pydict()
    except Exception as e:  # pyarrow raises several types for damaged files
        raise LmlabError(f"{path}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    missing = [c for c in REQUIRED if c not in data]
    if missing:
        raise LmlabError(
            f"{path}: row 0 (the schema), column {missing[0]!r}: missing "
            f"(required: {', '.join(REQUIRED)})"
        )
    n = len(data["model"])
    rows = ({c: (data[c][i] if c in data else None) for c in COLUMNS} for i in range(n))
    return _build(rows, str(path), list(data), None)


def write_table(table: CheckpointTable, path: str | os.PathLike) -> Path:
    """Write `table` as CSV (or Parquet for a `.parquet` path), atomically."""
    from lmlab.runs import atomic_write_bytes, atomic_write_text

    path = Path(path)
    if path.suffix == ".parquet":
        pa = require("pyarrow", hint="pip install pyarrow")
        pq = require("pyarrow.parquet", hint="pip install pyarrow")
        import io

        tbl = pa.table({c: getattr(table, c).tolist() for c in COLUMNS})
        buf = io.BytesIO()
        pq.write_table(tbl, buf)
        atomic_write_bytes(path, buf.getvalue())
        return path
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for rec in table.records():
        w.writerow([_fmt(rec[c]) for c in COLUMNS])
    atomic_write_text(path, buf.getvalue())
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    return str(v)


# -- the ColPret table ------------------------------------------------------------------------------
def colpret_source(path: str | os.PathLike | None = None) -> DataSource:
    """Where the ColPret table comes from: `lmlab.data.resolve("colpret", path)` (an explicit
    path, else $LMLAB_DATA_COLPRET, else the copy packaged with lmlab)."""
    return resolve("colpret", path)


def table_file(source: DataSource) -> Path:
    """The table file of a resolved source: the file itself, or a folder's `compact.csv`."""
    return source.path / "compact.csv" if source.path.is_dir() else source.path


def colpret_path(path: str | os.PathLike | None = None) -> Path:
    """The ColPret table's file (see `colpret_source` for where it is looked for)."""
    return table_file(colpret_source(path))


def colpret_available(path: str | os.PathLike | None = None) -> bool:
    """Whether `colpret_path(path)` would find a table."""
    try:
        colpret_path(path)
    except LmlabError:
        return False
    return True


def load_colpret(path: str | os.PathLike | None = None) -> CheckpointTable:
    """The ColPret compact table (see `colpret_source` for where it is looked for)."""
    return read_table(colpret_path(path))
