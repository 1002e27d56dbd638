"""Shared test set-up: offline, seeded, and a way to run the `lmlab` command in-process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import pytest

# Nothing in the tests reaches a network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


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
