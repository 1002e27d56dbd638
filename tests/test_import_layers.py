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
