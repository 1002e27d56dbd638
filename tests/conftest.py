"""Shared test set-up: offline, seeded, and a way to run the `lmlab` command in-process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import pytest
import torch

# Nothing in the tests reaches a network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# One torch thread per process. The suite runs several processes at once (pytest, the command
# under test, pool and Ray workers) on a 2-core machine, and OpenMP's spinning threads slow each
# other down 10-20x when the cores are oversubscribed; the tiny models here gain nothing from a
# second thread anyway. Child processes inherit the setting through the environment.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
torch.set_num_threads(1)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `lmlab ARGS...` through its real entry point; return exit code, stdout and stderr."""
    from lmlab.cli import main

    def invoke(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["lmlab", *map(str, args)])
        monkeypatch.setenv("COLUMNS", "200")
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return invoke


PLUGINS = "tests.plugins.toy_studies"


@pytest.fixture(scope="session")
def toy_plugins():
    """Register the test plugin studies (tests/plugins), here and in child processes."""
    from lmlab import study

    os.environ["LMLAB_PLUGINS"] = PLUGINS
    study._plugins_loaded = False
    study.catalog()
    assert "toy-mean" in study.CATALOG


@pytest.fixture(scope="session", autouse=True)
def lmlab_cache(tmp_path_factory: pytest.TempPathFactory):
    """A session-wide lmlab cache, so the tests never read or write the user's ~/.cache/lmlab."""
    root = tmp_path_factory.mktemp("lmlab-cache")
    before = os.environ.get("LMLAB_CACHE")
    os.environ["LMLAB_CACHE"] = str(root)
    yield root
    if before is None:
        os.environ.pop("LMLAB_CACHE", None)
    else:
        os.environ["LMLAB_CACHE"] = before


@pytest.fixture(scope="session")
def converted(lmlab_cache) -> dict:
    """The embedded SmolLM2, converted once per session into the session's lmlab cache.

    Returns the cache root, the converted HF folder, the conversion time and what it printed.
    """
    import contextlib
    import io
    import time

    from lmlab.models import DEFAULT_MODEL, EMBEDDED

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        start = time.perf_counter()
        folder = EMBEDDED[DEFAULT_MODEL].ensure_converted()
        seconds = time.perf_counter() - start
    return {"root": lmlab_cache, "folder": folder, "seconds": seconds, "stderr": err.getvalue()}
