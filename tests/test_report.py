"""The HTML report and the terminal claims table, checked in a real headless browser.

These are plumbing tests: the run folders are hand-written result dicts with real matplotlib
figures, and the report is opened in headless Chromium to check what a reader would see.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure
from rich.console import Console

from lmlab.errors import LmlabError
from lmlab.report import (
    claims_table,
    load_results,
    print_claims,
    summarize,
    write_report,
)

EVIL = '<script>alert("owned")</script> & more'
FAILURES = {"ttt-arc": "RuntimeError: out of memory <b>while</b> voting"}


# -- fake runs -----------------------------------------------------------------------------------
def _result(study: str, claims: list[dict[str, Any]], metrics: dict[str, Any], wall: float,
            checks: list[dict[str, Any]] | None = None) -> dict:
    return {
        "checks": checks or [],
        "study": study,
        "preset": "tiny",
        "seed": 7,
        "config": {"seed": 7, "device": "cpu", "steps": 200},
        "metrics": metrics,
        "claims": claims,
        "timing": {"wall_s": wall},
        "environment": {
            "lmlab": "0.1.0",
            "torch": "2.5.0",
            "python": "3.11.2",
            "git": "abc1234def5678+dirty",
            "seed": 7,
        },
    }


def _claim(id: str, statement: str, paper: Any, measured: Any, holds: bool | None) -> dict:
    return {"id": id, "statement": statement, "paper": paper, "measured": measured, "holds": holds}


def _figure(path: Path, title: str, size: tuple[float, float]) -> None:
    fig = Figure(figsize=size)
    ax = fig.subplots()
    ax.plot([1, 2, 3, 4], [1.0, 0.6, 0.4, 0.3], marker="o")
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=60)


RUNS = {
    # folder name: result. Folder names are deliberately not in catalog order.
    "a-scaling": _result(
        "scaling-laws",
        [
            _claim("fit-error", EVIL, "≤ 4% ARE", 0.031, True),
            _claim(
                "intermediate", "Use [bold]intermediate[/bold] checkpoints", "helps", None, None
            ),
        ],
        {"are": 0.031, "n_models": 40, "family": "pythia"},
        12.5,
    ),
    "b-state": _result(
        "state-tracking",
        [
            _claim("s3-learned", "S3 composition is learned to high accuracy", 0.99, 0.97, True),
            _claim("paa-s5", "S5 models use the PAA mechanism", "PAA", "AA", False),
        ],
        {"accuracy_s3": 0.97, "accuracy_s5": 0.42, "mechanism": "AA", "steps": 200},
        95.0,
        checks=[_claim("group-closed", "the generated S3 table is closed under composition",
                       "-", "closed", True),
                _claim("format-ok", "every story has its BOS token", "-", "missing", False)],
    ),
    "c-plugin": _result("zz-custom", [], {"loss": 1.5}, 0.4),
}
FIGURES = {
    "a-scaling": ["fit_vs_size.png"],
    "b-state": ["probe_accuracy.png", "loss-curve.png"],
}


def _write_runs(root: Path) -> Path:
    for folder, result in RUNS.items():
        run = root / folder
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps(result), encoding="utf-8")
        for i, name in enumerate(FIGURES.get(folder, [])):
            _figure(run / "figures" / name, name, (4 + i, 3))
    return root


def _png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return _write_runs(tmp_path / "runs")


# -- loading -------------------------------------------------------------------------------------
def test_load_results_in_catalog_order(runs: Path) -> None:
    results = load_results(runs)
    assert [r["study"] for r in results] == ["state-tracking", "scaling-laws", "zz-custom"]
    assert Path(results[0]["_run_dir"]) == runs / "b-state"
    single = load_results(runs / "a-scaling")
    assert [r["study"] for r in single] == ["scaling-laws"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"study": "x", "metrics": {}}), "'claims' must be a JSON list"),
        (json.dumps({"study": "x", "metrics": {}, "claims": [{"id": "c"}]}), "claim 0 needs"),
        (
            json.dumps({"study": "x", "metrics": {}, "claims": [_claim("c", "s", 1, 1, 1)]}),
            "'holds' must be true, false or null",
        ),
    ],
)
def test_load_results_names_malformed_file(runs: Path, content: str, message: str) -> None:
    bad = runs / "d-broken" / "result.json"
    bad.parent.mkdir()
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(LmlabError, match=message) as info:
        load_results(runs)
    assert str(bad) in str(info.value)


def test_load_results_empty_or_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(LmlabError, match=f"no result.json under {re.escape(str(tmp_path))}"):
        load_results(tmp_path)
    with pytest.raises(LmlabError, match="not a directory"):
        load_results(tmp_path / "nowhere")


# -- summary -------------------------------------------------------------------------------------
def test_summarize_counts(runs: Path) -> None:
    summary = summarize(load_results(runs), FAILURES)
    studies = summary["studies"]
    assert list(studies) == ["state-tracking", "ttt-arc", "scaling-laws", "zz-custom"]
    assert studies["state-tracking"] == {
        "status": "ok",
        "error": None,
        "preset": "tiny",
        "wall_s": 95.0,
        "cpu_s": None,  # an older result, timed before CPU seconds were recorded
        "claims_total": 2,
        "claims_holding": 1,
        "claims_failing": 1,
        "claims_untestable": 0,
        "checks_total": 2,
        "checks_passing": 1,
        "checks_failing": 1,
        "checks_untestable": 0,
        "reused_from": None,
        "pretrained_base": None,
    }
    assert studies["scaling-laws"]["claims_holding"] == 1
    assert studies["scaling-laws"]["claims_untestable"] == 1
    assert studies["ttt-arc"] == {
        "status": "failed",
        "error": FAILURES["ttt-arc"],
        "preset": None,
        "wall_s": None,
        "cpu_s": None,
        "claims_total": 0,
        "claims_holding": 0,
        "claims_failing": 0,
        "claims_untestable": 0,
        "checks_total": 0,
        "checks_passing": 0,
        "checks_failing": 0,
        "checks_untestable": 0,
        "reused_from": None,
        "pretrained_base": None,
    }
    assert summary["totals"] == {
        "studies": 4,
        "ok": 3,
        "failed": 1,
        "claims_total": 4,
        "claims_holding": 2,
        "claims_failing": 1,
        "claims_untestable": 1,
        "checks_total": 2,
        "checks_passing": 1,
        "checks_failing": 1,
        "checks_untestable": 0,
        "wall_s": 107.9,
        "cpu_s": 0.0,
    }
    # The environment is what all runs share: the seed is, the per-run keys would not be.
    assert summary["environment"]["torch"] == "2.5.0"
    assert summary["created"].endswith("+00:00")
    json.dumps(summary)  # plain JSON


def test_several_runs_of_one_study(runs: Path) -> None:
    again = runs / "a-scaling-again"
    shutil.copytree(runs / "a-scaling", again)
    summary = summarize(load_results(runs))
    assert list(summary["studies"]) == [
        "state-tracking",
        "scaling-laws/a-scaling",
        "scaling-laws/a-scaling-again",
        "zz-custom",
    ]
    text = write_report(runs).read_text(encoding="utf-8")
    assert 'id="study-scaling-laws-a-scaling"' in text
    assert 'id="study-scaling-laws-a-scaling-again"' in text


def test_the_report_says_where_each_pretrained_base_came_from(tmp_path: Path) -> None:
    """`pretrain.source` in a study's metrics: in summary.json as is, on the page in words."""
    for folder, study, source in (("t", "ttt-arc", "cache"), ("i", "intruders", "cache 2 of 3"),
                                  ("s", "scaling-laws", None)):
        metrics = {"loss": 1.0} if source is None else {"pretrain.source": source}
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "result.json").write_text(
            json.dumps(_result(study, [], metrics, 1.0)), encoding="utf-8")
    studies = summarize(load_results(tmp_path))["studies"]
    assert studies["ttt-arc"]["pretrained_base"] == "cache"
    assert studies["intruders"]["pretrained_base"] == "cache 2 of 3"
    assert studies["scaling-laws"]["pretrained_base"] is None
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert text.count("pre-trained base: reused from cache") == 2  # the overview, ttt and intruders
    assert "reused from cache for 2 of 3" in text
    assert "<dt>pre-trained base</dt><dd>reused from cache</dd>" in text


# -- the page in a browser -----------------------------------------------------------------------
# The probe goes before the report's Content-Security-Policy <meta>, so it may run; the canary goes
# after it and must be blocked, which shows the policy (no scripts, no external resources) is live.
PROBE = """<script>
addEventListener("load", () => {
  for (const img of document.images) {
    img.setAttribute("data-natural-width", img.naturalWidth);
    img.setAttribute("data-natural-height", img.naturalHeight);
  }
  document.documentElement.setAttribute("data-probe", "done");
});
</script>"""
CANARY = '<script>document.documentElement.setAttribute("data-canary", "ran");</script>'


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    pytest.fail(
        "Chromium not found: install it with `apt-get install chromium` (.ci/apt-packages.txt)"
    )


def _rendered_dom(page: Path, profile: Path) -> str:
    """The DOM of `page` after it loaded in headless Chromium."""
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=2000",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


class _Dom(HTMLParser):
    """The sections, images, scripts and root attributes of a dumped DOM."""

    def __init__(self, text: str):
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.sections: list[dict[str, str | None]] = []
        self.images: list[dict[str, str | None]] = []
        self.scripts = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.root = a
        elif tag == "section" and "study" in (a.get("class") or "").split():
            self.sections.append(a)
        elif tag == "img":
            self.images.append(a)
        elif tag == "script":
            self.scripts += 1


def test_report_renders_in_chromium(runs: Path, tmp_path: Path) -> None:
    path = write_report(runs, failures=FAILURES)
    assert path == runs / "report.html"
    text = path.read_text(encoding="utf-8")

    # Self-contained and safe: no URL to fetch, no script, the claim's markup escaped.
    assert re.search(r"https?://", text) is None
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; &amp; more" in text
    assert "RuntimeError: out of memory &lt;b&gt;while&lt;/b&gt; voting" in text

    head = '<meta http-equiv="Content-Security-Policy"'
    assert text.count(head) == 1
    probed = tmp_path / "probed.html"
    probed.write_text(
        text.replace("<head>", "<head>" + PROBE, 1).replace("</body>", CANARY + "</body>", 1)
    )
    dom = _Dom(_rendered_dom(probed, tmp_path / "profile"))

    assert dom.root.get("data-probe") == "done", "the page's load event never fired"
    assert "data-canary" not in dom.root, (
        "the Content-Security-Policy did not block an inline script"
    )

    ids = [s["id"] for s in dom.sections]
    assert ids == ["study-state-tracking", "study-ttt-arc", "study-scaling-laws", "study-zz-custom"]
    assert "failed" in (dom.sections[1]["class"] or "")

    expected = [runs / "b-state/figures" / n for n in sorted(FIGURES["b-state"])]
    expected += [runs / "a-scaling/figures" / n for n in FIGURES["a-scaling"]]
    assert len(dom.images) == len(expected)
    for img, png in zip(dom.images, expected, strict=True):
        assert (img["src"] or "").startswith("data:image/png;base64,")
        assert img.get("alt"), "every figure needs alt text"
        width, height = _png_size(png)
        assert (img["data-natural-width"], img["data-natural-height"]) == (str(width), str(height))
    assert dom.images[0]["alt"] == "state-tracking: Loss curve"

    # The rendered text: verdicts in words, catalog citations, escaped statement shown as text.
    assert "✓ holds" in text and "✗ does not hold" in text and "— not testable" in text
    assert "Li, Guo, Andreas (2025)" in text
    assert "abc1234def5678+dirty" in text
    # Checks are shown apart from the claims and never counted among them.
    assert "<h3>Checks</h3>" in text and "group-closed" in text
    assert "2 of 4 claims hold" in text and "checks: 1 of 2 pass" in text


def test_report_of_failures_only(tmp_path: Path) -> None:
    path = write_report(tmp_path, failures={"algae": "boom"})
    text = path.read_text(encoding="utf-8")
    assert 'id="study-algae" class="study failed"' in text and "boom" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LmlabError, match=r"no result\.json under"):
        write_report(empty)  # nothing to report and no failure to show


# -- terminal ------------------------------------------------------------------------------------
def test_claims_table_renders(runs: Path) -> None:
    results = load_results(runs)
    console = Console(record=True, width=200, color_system=None)
    print_claims(results, console=console, failures=FAILURES)
    out = console.export_text()
    for token in ("state-tracking", "scaling-laws", "zz-custom", "ttt-arc", "s3-learned", "paa-s5"):
        assert token in out
    assert "✓ yes" in out and "✗ no" in out and "— n/a" in out
    assert re.search(
        r"ttt-arc .*run failed: RuntimeError: out of memory <b>while</b> voting .*✗", out
    )
    assert "Use [bold]intermediate[/bold] checkpoints" in out  # brackets are text, not markup
    assert "2 of 4 claims hold, 1 do not, 1 not testable; 3 of 4 studies ran, 1 failed" in out
    assert claims_table(results).row_count == 5  # 2 + 2 claims and one "(no claims)" row
    # the checks in their own table, before the claims, and not among the claims' rows
    assert out.index("Checks (invariants") < out.index("Claims")
    assert "group-closed" in out and "1 of 2 checks pass" in out
    claims_part = out[out.index("Claims"):]
    assert "group-closed" not in claims_part.split("claims hold")[0]


def test_metrics_are_grouped_by_dotted_key_with_seeds_in_columns(tmp_path: Path) -> None:
    from lmlab.report import metric_groups

    metrics = {"none.seed0.acc": 0.9, "none.seed1.acc": 0.8, "none.n_AA": 1,
               "modadd.random.d128.acc": 0.95, "wall_s": 3.0}
    groups = metric_groups(metrics)
    assert groups["none"] == {"acc": {"seed0": 0.9, "seed1": 0.8}, "n_AA": {"value": 1}}
    assert groups["modadd"] == {"random.d128.acc": {"value": 0.95}}
    assert groups[""] == {"wall_s": {"value": 3.0}}
    run = tmp_path / "one"
    run.mkdir()
    (run / "result.json").write_text(json.dumps(_result("zz-custom", [], metrics, 1.0)))
    text = write_report(run).read_text(encoding="utf-8")
    assert text.count('<details class="metric-group">') == 3  # collapsed by default
    assert "<th class=\"num\">seed0</th><th class=\"num\">seed1</th>" in text
    assert text.index("<code>modadd</code>") < text.index("<code>other</code>")


def test_a_large_metric_group_is_split_by_its_first_two_key_parts(tmp_path: Path) -> None:
    from lmlab.report import metric_groups

    metrics = {f"teacher.mhla_{h}h.d{d}.val_nmse": 0.1 for h in (1, 2, 4) for d in (2, 4, 8)}
    metrics.update({f"teacher.mhla_4h.d2.val_nmse.seed{s}": 0.01 * s for s in range(3)})
    metrics.update({f"teacher.alg1.d{d}.val_nmse": 1e-30 for d in (2, 4, 8)})
    metrics.update({f"teacher.stacked_{n}L.d{d}.val_nmse": 1.0 for n in (2, 4) for d in (2, 4)})
    metrics.update({"teacher.sgd_wall_s": 3.0, "memory.n": 4})
    groups = metric_groups(metrics)  # 19 rows under "teacher": split
    assert "teacher" in groups and groups["teacher"] == {"sgd_wall_s": {"value": 3.0}}
    assert groups["teacher.mhla_4h"]["d2.val_nmse"] == {"value": 0.1, "seed0": 0.0,
                                                         "seed1": 0.01, "seed2": 0.02}
    assert set(groups["teacher.alg1"]) == {"d2.val_nmse", "d4.val_nmse", "d8.val_nmse"}
    assert groups["memory"] == {"n": {"value": 4}}  # small groups stay whole
    assert len(metric_groups(metrics, max_rows=100)) == 2
    assert all(len(rows) <= 16 for rows in groups.values())
