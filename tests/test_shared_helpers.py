"""No study keeps its own copy of a helper the foundation provides.

The statistics (`lmlab.stats`: median, spearman, get_metric), the device resolver
(`lmlab.device`), the plotting backend (`lmlab.plotting`) and thread control (`lmlab.executor`)
each live in one place; a second copy under src/lmlab/studies fails this test.
"""

from __future__ import annotations

import re
from pathlib import Path

import lmlab.studies

STUDIES = Path(lmlab.studies.__file__).parent

FORBIDDEN = {
    r"^\s*def _?spearman\b": "use lmlab.stats.spearman",
    r"^\s*def _?median\b": "use lmlab.stats.median",
    r"^\s*def _get\(\s*m\b": "use lmlab.stats.get_metric (NaN-safe metric access)",
    r"matplotlib\.use\(": "use lmlab.plotting.pyplot() (the one place that sets the backend)",
    r"torch\.set_num_threads\(": "use lmlab.executor.job_threads / torch_threads",
    r"^\s*def _?(auto_)?device(_name)?\(.*\)\s*->\s*str": "use lmlab.device.device_name",
}


def _offences(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for pattern, fix in FORBIDDEN.items():
                # a string that builds code for a subprocess (a benchmark's child) is not a copy
                if re.search(pattern, line) and not re.search(r"""(f?["']).*""" + pattern, line):
                    found.append(f"{path.relative_to(root)}:{n}: {line.strip()}  ({fix})")
    return found


def test_no_study_keeps_its_own_copy_of_a_shared_helper() -> None:
    offences = _offences(STUDIES)
    assert not offences, "\n".join(offences)


def test_the_check_catches_a_copy(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "import matplotlib\nmatplotlib.use('Agg')\n\n\ndef spearman(x, y):\n    return 0\n\n\n"
        "def _median(xs):\n    return 0\n")
    assert len(_offences(tmp_path)) == 3
