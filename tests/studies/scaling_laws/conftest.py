"""Set-up of the scaling-laws tests: the ColPret table packaged with lmlab, small synthetic tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# Hoffmann et al.'s fitted Chinchilla law, the usual ground truth for fitter tests.
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.fixture(scope="session")
def scratch_cache(tmp_path_factory) -> Path:
    """A fresh lmlab cache for these tests: the packaged table is unpacked there."""
    return tmp_path_factory.mktemp("lmlab-cache")


def _isolate(mp: pytest.MonkeyPatch, cache: Path) -> None:
    mp.setenv("LMLAB_CACHE", str(cache))
    mp.delenv("LMLAB_DATA_COLPRET", raising=False)  # none from the caller's shell


@pytest.fixture(autouse=True)
def _scratch_cache(monkeypatch, scratch_cache) -> None:
    """Each test here sees the scratch cache (restored afterwards: other tests keep theirs)."""
    _isolate(monkeypatch, scratch_cache)


@pytest.fixture(scope="session")
def colpret_csv(scratch_cache) -> Path:
    """The ColPret table packaged with lmlab, as `lmlab.data` unpacks it."""
    from lmlab.data import resolve

    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, scratch_cache)
        source = resolve("colpret")
    assert source.source == "package", source
    return source.path / "compact.csv"


@pytest.fixture(scope="session")
def colpret(colpret_csv):
    from lmlab.studies.scaling_laws.data import read_table

    return read_table(colpret_csv)


def chinchilla_family(params: dict[str, float] = HOFFMANN, sizes=(1e8, 3e8, 1e9, 3e9, 1e10),
                      tokens=None, noise: float = 0.0, seed: int = 0, family: str = "syn"):
    """Checkpoint rows of a noise-free (or noisy) Chinchilla family, as schema records."""
    from lmlab.studies.scaling_laws.forms import chinchilla_loss

    rng = np.random.default_rng(seed)
    tokens = np.geomspace(2e9, 3e11, 25) if tokens is None else np.asarray(tokens)
    recs = []
    for n in sizes:
        loss = chinchilla_loss(n, tokens, **params)
        if noise:
            loss = loss * np.exp(rng.normal(0, noise, len(tokens)))
        for d, value in zip(tokens, loss, strict=True):
            recs.append({"family": family, "model": f"m{n:.0e}", "num_params": n, "tokens": d,
                         "loss": float(value)})
    return recs


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(
        ",".join(str(v) for v in r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def make_family():
    """`chinchilla_family` (test modules cannot import conftest under importlib mode)."""
    return chinchilla_family


@pytest.fixture
def csv_file():
    """`write_csv`."""
    return write_csv
