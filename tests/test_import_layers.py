"""The layers of the code, enforced by import-linter's contracts in pyproject.toml.

Foundations never import a study; studies never import each other or the command line; no
import cycles inside a study (function-local imports count too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import lmlab

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    """The `lint-imports` of this interpreter's environment (import-linter, the dev extra)."""
    here = Path(sys.executable).parent / "lint-imports"
    found = str(here) if here.is_file() else shutil.which("lint-imports")
    assert found, "lint-imports not found: install the dev extra (pip install -e '.[dev]')"
    return found


def test_import_contracts_hold() -> None:
    src = Path(lmlab.__file__).resolve().parents[1]  # the lmlab under test, first on the path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [_lint_imports(), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "4 kept, 0 broken" in out, out[-2000:]


def test_every_foundation_module_is_under_the_contract() -> None:
    """A new top-level module of lmlab must be listed among the foundations in pyproject.toml."""
    import pkgutil
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    foundations = set(next(c for c in contracts if c["name"].startswith("Foundations"))
                      ["source_modules"])
    modules = {f"lmlab.{m.name}" for m in pkgutil.iter_modules(lmlab.__path__)} - {"lmlab.studies"}
    assert modules <= foundations, f"add to the foundations contract: {sorted(modules - foundations)}"
