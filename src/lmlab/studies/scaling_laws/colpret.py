"""Rebuild the compact ColPret table from the paper's public release (IBM/ColPret).

The files are read from a local clone or downloaded from GitHub at a pinned commit, and every
file's SHA-256 is checked before it is parsed. Each source is normalized by the rules the shared
table's README documents (ColPret's loaders and its `perf`: perplexities become log2, loss
columns are averaged, FLOPs = 6ND, step-0 rows dropped, exact duplicates averaged, very long
single-model logs thinned to at most 1000 checkpoints spread evenly in log tokens).

Sources rebuilt here: olmo, datablations, datablations_contour, opt_trajectories, t5_pile,
revisiting_lang, llm360_mamba, llm360_k2, redpajama. Not rebuilt: `bimix` (its inputs are Python
pickles, which lmlab never loads from the network: unpickling runs arbitrary code), and the
sources whose files the release stores in Git LFS-sized form (Pythia, Amber, overtrain, MAD).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import LmlabError
from lmlab.studies.scaling_laws.data import CheckpointTable

__all__ = ["COMMIT", "FILES", "build_compact_table", "fetch_release", "thin_log_spaced", "to_int",
           "to_str"]

REPO = "IBM/ColPret"
COMMIT = "16f23bbe054277ddc4afd07a972dd7cfbe3f48c3"
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
FILES: dict[str, str] = {  # path in the repository -> SHA-256 at COMMIT
    "aggregated_eval/K2.csv": "2d059ca62595ff3d42a1c23a277344c685576b3da4d8e752ec944bf5b870dc39",
    "aggregated_eval/datablations_contour_losses.csv":
        "1241bdf3732b4f65d455c796951dce7b18b898d64709f86013914573035f8a5b",
    "aggregated_eval/datablations_losses.csv":
        "b3c448c2cd1a17128e06ee3120a9c377c4e2bf649e09b2446db59f98ef957b48",
    "aggregated_eval/llm360Mamba3B.csv":
        "58e7cc9a916f5a96bec2d6c18c2f3fd5e364184418d8fe1af519a1b0f7a9e6bb",
    "aggregated_eval/olmo.csv": "008a3a0ff6a6f0832ecbe6498e1720f17864f23ffda4a9ce3239bf2ceec0ad8a",
    "aggregated_eval/opt_trajectories.csv":
        "c3a53ccc7a412f0caff4179ce484acf1c2aab36b25677473658f094362449ff5",
    "aggregated_eval/revisiting_lang.csv":
        "63c346db00a66b692e1ea9a0f71a2f2b267e55f74be5b863a92e199dffbf0983",
    "aggregated_eval/t5_pile.csv":
        "2d290d98eac37d8abd6b967c20f330b553b459139f02620a96893c00facc2da1",
    "raw_data/redPajama/2.4B.csv":
        "04b3c24889a84751905cfee87d32f84a2829b554a2a0444cf1b1738bc4f7109f",
    "raw_data/redPajama/6.7B.csv":
        "018e2524de1f4c3d1d30797708c96e918890adc42f8009df133af1ef8dacc292",
}
MAX_CHECKPOINTS = 1000
Row = dict[str, Any]


# -- ColPret's number formats --------------------------------------------------------------------
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def to_int(text: str | float) -> int:
    """'2.8B' -> 2800000000, '125m' -> 125000000, '7B' -> 7000000000, 1e9 -> 1000000000."""
    try:
        return int(float(text))
    except (TypeError, ValueError):
        pass
    m = re.match(r"([\d.]+)([a-zA-Z])(\d*)", str(text).strip())
    if not m or m.group(2).lower() not in _SCALE:
        raise LmlabError(f"cannot read {text!r} as a number of parameters")
    number = m.group(1) + ("." + m.group(3) if m.group(3) else "")
    return int(float(number) * _SCALE[m.group(2).lower()])


def to_str(num: float) -> str:
    """ColPret's short form of a number: 2.8e9 -> '2.80B', 1.75e11 -> '0.17T', 4.0 -> '4.0'."""
    num = float(num)
    for limit, div, unit in ((1e17, 1e18, "E"), (1e14, 1e15, "P"), (1e11, 1e12, "T"),
                             (1e8, 1e9, "B"), (1e5, 1e6, "M"), (1e2, 1e3, "K")):
        if num > limit:
            return f"{num / div:.2f}{unit}"
    return str(num)


def thin_log_spaced(tokens: np.ndarray, keep: int = MAX_CHECKPOINTS) -> np.ndarray:
    """Indices (sorted) of at most `keep` rows nearest to targets evenly spaced in log tokens;
    the first and last checkpoints are always kept."""
    order = np.argsort(tokens, kind="stable")
    if len(tokens) <= keep:
        return order
    logs = np.log(tokens[order])
    targets = np.linspace(logs[0], logs[-1], keep)
    pos = np.clip(np.searchsorted(logs, targets), 1, len(logs) - 1)
    nearer_left = (targets - logs[pos - 1]) <= (logs[pos] - targets)
    chosen = np.unique(np.concatenate([pos - nearer_left, [0, len(logs) - 1]]))
    return order[chosen]


# -- fetching --------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_release(clone: str | os.PathLike | None = None,
                  cache: str | os.PathLike | None = None) -> Path:
    """A folder holding every file of `FILES`, checked against its SHA-256.

    With `clone`, the files are read from that checkout (it must be at `COMMIT` for the
    checksums to match); otherwise they are downloaded from GitHub at `COMMIT` into
    `cache` (default $LMLAB_CACHE/colpret/<commit>, $LMLAB_CACHE defaulting to ~/.cache/lmlab).
    """
    if clone is not None:
        root = Path(clone)
        if not root.is_dir():
            raise LmlabError(f"--clone {root}: not a folder")
    else:
        base = Path(cache or os.environ.get("LMLAB_CACHE", Path.home() / ".cache" / "lmlab"))
        root = base / "colpret" / COMMIT
        for rel, digest in FILES.items():
            path = root / rel
            if path.is_file() and _sha256(path) == digest:
                continue
            url = RAW_URL.format(repo=REPO, commit=COMMIT, path=rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            try:
                with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
                    f.write(r.read())
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise LmlabError(f"cannot download {url} ({e}); with no internet, clone "
                                 f"https://github.com/{REPO} elsewhere, check out {COMMIT[:7]} and "
                                 "pass --clone") from None
            os.replace(tmp, path)
    for rel, digest in FILES.items():
        path = root / rel
        if not path.is_file():
            raise LmlabError(f"{path}: missing from the ColPret release folder")
        got = _sha256(path)
        if got != digest:
            raise LmlabError(f"{path}: SHA-256 {got[:12]}... does not match the pinned "
                             f"{digest[:12]}... (is the clone at commit {COMMIT[:7]}?)")
    return root


# -- sources ---------------------------------------------------------------------------------------
def _rows(path: Path, header: bool = True) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        if header:
            yield from csv.DictReader(f)
        else:
            for rec in csv.reader(f):
                yield {str(i): v for i, v in enumerate(rec)}


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _row(source: str, family: str, model: str, n: float, tokens: float, loss: float,
         arch: str = "dec") -> Row:
    return {"source": source, "family": family, "model": model.strip(), "num_params": n,
            "tokens": tokens, "loss": loss, "arch": arch}


def _olmo(root: Path) -> list[Row]:
    out = []
    for r in _rows(root / "aggregated_eval/olmo.csv"):
        values = [_float(v) for k, v in r.items() if "CrossEntropyLoss" in k]
        values = [v for v in values if not math.isnan(v)]
        if not values:
            continue
        name = r["model_name"].strip()
        out.append(_row("olmo", "" if name == "OLMo-7B-Twin-2T" else "olmo", name,
                        to_int(r["num_params"]), float(r["Step"]) * 4e6, float(np.mean(values))))
    return out


def _datablations(root: Path) -> list[Row]:
    out = []
    for r in _rows(root / "aggregated_eval/datablations_losses.csv"):
        n = to_int(r["num_params"])
        epochs = to_str(float(r["epochs"]))
        out.append(_row("datablations", f"GPT2-{r['data']}-{epochs}",
                        f"GPT2-{to_str(n)}-{r['data']}-{epochs}", n, float(r["token_num"]),
                        _float(r["loss"])))
    return out


def _datablations_contour(root: Path) -> list[Row]:
    out = []
    for r in _rows(root / "aggregated_eval/datablations_contour_losses.csv"):
        name = r["model_args"].replace("{'name': '", "").replace("'}", "")
        out.append(_row("datablations_contour", "", f"GPT2-{name}", to_int(r["num_params"]),
                        float(r["token_num"]), _float(r["openLM_loss"])))
    return out


def _opt_batch(n: float) -> float:
    if n < 1e9:
        return 5e5
    if n < 6e9:
        return 1e6
    if n < 10e9:
        return 2e6
    if n < 60e9:
        return 4e6
    return 2e6


def _opt(root: Path) -> list[Row]:
    out = []
    for r in _rows(root / "aggregated_eval/opt_trajectories.csv"):
        n = to_int(r["model_size"])
        # ColPret renames `ppl` to `loss`, so it is used as is: a perplexity.
        out.append(_row("opt_trajectories", "OPT", f"OPT-{to_str(n)}", n,
                        float(r["steps"]) * _opt_batch(n), _float(r["ppl"])))
    return out


_T5_SIZES = {"base": 247586304, "large": 783173632, "xl": 2849804288, "xxl": 11135426560}


def _t5(root: Path) -> list[Row]:
    out = []
    for r in _rows(root / "aggregated_eval/t5_pile.csv"):
        ppl = _float(r.get("val_perplexity"))
        out.append(_row("t5_pile", "t5-pile", f"pile-t5-{r['model_name']}",
                        _T5_SIZES[r["model_name"]], float(r["steps"]) * 1e6,
                        math.log2(ppl) if ppl > 0 else math.nan, arch="enc-dec"))
    return out


def _revisiting(root: Path) -> list[Row]:
    out = []
    for r in _rows(root / "aggregated_eval/revisiting_lang.csv"):
        n = _float(r["Model"])
        if math.isnan(n) or n <= 0 or r["Task"] not in ("val_loss", "log_perplexity"):
            continue  # NMT and BIG-bench rows: their model label is not a size
        n = to_int(n)
        out.append(_row("revisiting_lang", "lambda", f"lambda-{to_str(n)}", n,
                        float(r["Seen Examples"]), _float(r["Loss"]), arch="enc-dec"))
    return out


def _mamba(root: Path) -> list[Row]:
    out = []
    for r in _rows(root / "aggregated_eval/llm360Mamba3B.csv"):
        out.append(_row("llm360_mamba", "llm360Mamba", "LLM360Mamba3B", 3e9,
                        float(r["step"]) * (500e9 / 176703), _float(r["loss"]), arch="ssm"))
    return out


def _k2(root: Path) -> list[Row]:
    out = []
    for r in _rows(root / "aggregated_eval/K2.csv"):
        # The five eval columns are percent-accuracy-like and skipped; the LM loss remains.
        out.append(_row("llm360_k2", "", "K2", to_int(r["num_params"]), _float(r["tokens_seen"]),
                        _float(r["k2 training - lm loss"])))
    return out


def _redpajama(root: Path) -> list[Row]:
    out = []
    for size in ("2.4B", "6.7B"):
        for r in _rows(root / f"raw_data/redPajama/{size}.csv", header=False):
            out.append(_row("redpajama", "redPajama", f"redPajama{size[:-1]}", to_int(size),
                            float(int(float(r["0"]) * 1e9)), _float(r["1"])))
    return out


SOURCES: dict[str, Callable[[Path], list[Row]]] = {
    "olmo": _olmo, "datablations": _datablations, "datablations_contour": _datablations_contour,
    "opt_trajectories": _opt, "t5_pile": _t5, "revisiting_lang": _revisiting,
    "llm360_mamba": _mamba, "llm360_k2": _k2, "redpajama": _redpajama,
}


def normalize(rows: list[Row]) -> list[Row]:
    """Drop invalid rows, average duplicates, thin very long logs, sort as the shared table."""
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in rows:
        ok = all(isinstance(r[k], int | float) and math.isfinite(r[k]) and r[k] > 0
                 for k in ("num_params", "tokens", "loss"))
        if ok:
            groups[(r["source"], r["family"], r["model"], float(r["num_params"]),
                    float(r["tokens"]), r["arch"])].append(float(r["loss"]))
    merged = [
        {"source": s, "family": f, "model": m, "num_params": n, "tokens": t, "arch": a,
         "loss": float(np.mean(v)), "flops": 6.0 * n * t, "seed": 0}
        for (s, f, m, n, t, a), v in groups.items()
    ]
    by_model: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in merged:
        by_model[(r["source"], r["model"])].append(r)
    out = []
    for recs in by_model.values():
        if len(recs) > MAX_CHECKPOINTS:
            keep = thin_log_spaced(np.array([r["tokens"] for r in recs]))
            recs = [recs[i] for i in keep]
        out.extend(recs)
    out.sort(key=lambda r: (r["family"] == "", r["family"], r["num_params"], r["tokens"],
                            r["model"]))
    return out


def build_compact_table(clone: str | os.PathLike | None = None,
                        cache: str | os.PathLike | None = None
                        ) -> tuple[CheckpointTable, list[str]]:
    """The compact table from the release, and one line per source saying what it gave."""
    root = fetch_release(clone, cache)
    rows: list[Row] = []
    report = [f"IBM/ColPret at {COMMIT[:7]}: {len(FILES)} files, checksums ok"]
    for name, loader in SOURCES.items():
        got = loader(root)
        kept = normalize(got)
        report.append(f"{name}: {len(got)} rows read, {len(kept)} kept")
        rows.extend(kept)
    report.append("bimix: skipped (its inputs are pickles, which lmlab does not load)")
    rows = normalize(rows)
    return CheckpointTable.from_records(rows, name=f"ColPret@{COMMIT[:7]}"), report
