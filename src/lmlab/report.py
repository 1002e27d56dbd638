"""The HTML report and the terminal summary of a folder of runs.

A folder of runs is what `lmlab reproduce --out DIR` writes (one run folder per study, each with a
`result.json`), or a single run folder written by `lmlab run`. From it this module makes:

- `summary.json` (`summarize`, `write_summary`): per study its status and claim counts, plus
  totals, the common environment and the creation time. Its exact shape::

      {"studies": {KEY: {"status": "ok" | "failed", "error": str | None, "preset": str | None,
                         "wall_s": float | None, "cpu_s": float | None, "claims_total": n, "claims_holding": n,
                         "claims_failing": n, "claims_untestable": n, "checks_total": n,
                         "checks_passing": n, "checks_failing": n, "checks_untestable": n,
                         "reused_from": str | None, "pretrained_base": str | None}},
       "totals": {"studies": n, "ok": n, "failed": n, "claims_total": n, "claims_holding": n,
                  "claims_failing": n, "claims_untestable": n, "checks_total": n,
                  "checks_passing": n, "checks_failing": n, "checks_untestable": n,
                  "wall_s": float, "cpu_s": float},
       "environment": {...}, "created": ISO time}

  KEY is the study id, or `study/run-folder` when the folder holds several runs of one study.
  `cpu_s` is the study's CPU seconds, its worker processes included. A failed study has
  `wall_s: null` and zero claims (it produced none). `pretrained_base` is where a study's
  pre-trained base came from (its `pretrain.source` metric: "trained", "cache" when a base from
  an earlier run was reused from lmlab's cache folder, "cache 2 of 3" for bases per seed,
  "given"), null for a study without one; the page says it in words. Claims are the papers'
  findings; checks are invariants and preconditions of lmlab's own code: they are counted apart,
  and "N of M claims hold" counts claims only.
- `report.html` (`write_report`): one self-contained page. Styles are inline, figures are base64
  data URIs, and a Content-Security-Policy forbids every external resource and every script, so
  the page opens the same offline, in a mail attachment, or years later.
- a terminal table of the claims, then one of the checks (`claims_table`, `checks_table`,
  `print_claims`).

A claim's verdict is shown as ✓ holds, ✗ does not hold, or — not testable at this preset: a symbol,
a word and a colour, so it reads without colour too.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

import lmlab
from lmlab.errors import LmlabError
from lmlab.runs import RESULT, atomic_write_json, atomic_write_text, read_json
from lmlab.study import catalog

REPORT = "report.html"
SUMMARY = "summary.json"
RUN_DIR_KEY = "_run_dir"  # added by load_results: the folder a result was read from

# A verdict as (symbol, word, short word for the terminal, css class, rich style).
_VERDICTS: dict[bool | None, tuple[str, str, str, str, str]] = {
    True: ("✓", "holds", "yes", "holds", "bold green"),
    False: ("✗", "does not hold", "no", "fails", "bold red"),
    None: ("—", "not testable", "n/a", "untestable", "dim"),
}

_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}

# Everything the page needs is inside it; this policy makes the browser refuse anything else.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


# -- loading -------------------------------------------------------------------------------------
def load_results(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every `runs_dir/*/result.json` (or `runs_dir/result.json` for a single run), in catalog order.

    Each result is the file's content plus `_run_dir`, the folder it was read from (where its
    figures are). A malformed file raises an LmlabError naming it.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise LmlabError(f"{root}: not a directory")
    paths = _result_paths(root)
    if not paths:
        raise LmlabError(f"no {RESULT} under {root}")
    return sorted((_load_result(p) for p in paths), key=_sort_key)


def _result_paths(root: Path) -> list[Path]:
    if (root / RESULT).is_file():
        return [root / RESULT]
    return sorted(p for p in root.glob(f"*/{RESULT}") if p.is_file())


def _load_result(path: Path) -> dict[str, Any]:
    data = read_json(path)
    _validate(data, path)
    data[RUN_DIR_KEY] = str(path.parent)
    return data


def _validate(data: Any, path: Path) -> None:
    """Check the parts of a result the report relies on; a one-line error names the file."""

    def bad(why: str) -> LmlabError:
        return LmlabError(f"{path}: malformed result ({why})")

    if not isinstance(data, dict):
        raise bad("expected a JSON object")
    if not isinstance(data.get("study"), str) or not data["study"]:
        raise bad("'study' must be a non-empty string")
    for key, kind in (("metrics", dict), ("claims", list)):
        if not isinstance(data.get(key), kind):
            raise bad(f"'{key}' must be a JSON {'object' if kind is dict else 'list'}")
    if not isinstance(data.get("checks", []), list):
        raise bad("'checks' must be a JSON list")
    for key in ("config", "timing", "environment"):
        if not isinstance(data.get(key) or {}, dict):
            raise bad(f"'{key}' must be a JSON object")
    for kind, items in (("claim", data["claims"]), ("check", data.get("checks", []))):
        for i, claim in enumerate(items):
            if not isinstance(claim, dict) or not {"id", "statement", "holds"} <= claim.keys():
                raise bad(f"{kind} {i} needs 'id', 'statement' and 'holds'")
            if claim["holds"] is not None and not isinstance(claim["holds"], bool):
                raise bad(f"{kind} {claim['id']!r}: 'holds' must be true, false or null")


def _catalog_rank(study: str) -> int:
    ids = list(catalog())
    return ids.index(study) if study in ids else len(ids)


def _sort_key(result: Mapping[str, Any]) -> tuple[int, str, str]:
    study = result["study"]
    return _catalog_rank(study), study, Path(result.get(RUN_DIR_KEY, "")).name


# -- one row per study: a result or a failure ----------------------------------------------------
class _Entry(NamedTuple):
    key: str  # the study id, or "study/run-folder" when one study has several runs
    study: str
    result: dict[str, Any] | None
    error: str | None


def _entries(
    results: Sequence[Mapping[str, Any]], failures: Mapping[str, str] | None
) -> list[_Entry]:
    """Results and failures in catalog order. A study named in `failures` is reported as failed,
    even if an older result of it is in the folder."""
    failures = dict(failures or {})
    kept = sorted((r for r in results if r["study"] not in failures), key=_sort_key)
    counts: dict[str, int] = {}
    for r in kept:
        counts[r["study"]] = counts.get(r["study"], 0) + 1
    entries = [_Entry(_key(r, counts, i), r["study"], dict(r), None) for i, r in enumerate(kept)]
    entries += [_Entry(sid, sid, None, str(err)) for sid, err in failures.items()]
    return sorted(entries, key=lambda e: (_catalog_rank(e.study), e.study, e.key))


def _key(result: Mapping[str, Any], counts: Mapping[str, int], index: int) -> str:
    study = result["study"]
    if counts[study] == 1:
        return study
    folder = Path(result[RUN_DIR_KEY]).name if RUN_DIR_KEY in result else str(index)
    return f"{study}/{folder}"


# -- summary.json --------------------------------------------------------------------------------
def summarize(
    results: Sequence[Mapping[str, Any]],
    failures: Mapping[str, str] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary.json structure (see the module docstring) of `results` and `failures`.

    `environment` defaults to the environment entries every result shares.
    """
    studies = {e.key: _study_summary(e) for e in _entries(results, failures)}
    return {
        "studies": studies,
        "totals": _totals(studies),
        "environment": dict(environment) if environment is not None else _common_env(results),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_summary(
    runs_dir: str | Path,
    results: Sequence[Mapping[str, Any]],
    failures: Mapping[str, str] | None = None,
) -> Path:
    """Write `runs_dir/summary.json` atomically and return its path."""
    path = Path(runs_dir) / SUMMARY
    atomic_write_json(path, summarize(results, failures))
    return path


def _study_summary(entry: _Entry) -> dict[str, Any]:
    res = entry.result or {}
    verdicts = [c.get("holds") for c in res.get("claims", [])]
    checks = [c.get("holds") for c in res.get("checks", [])]
    return {
        "status": "ok" if entry.error is None else "failed",
        "error": entry.error,
        "preset": res.get("preset"),
        "wall_s": _wall_s(res),
        "cpu_s": _timing(res, "cpu_s"),
        "claims_total": len(verdicts),
        "claims_holding": sum(v is True for v in verdicts),
        "claims_failing": sum(v is False for v in verdicts),
        "claims_untestable": sum(v is None for v in verdicts),
        "checks_total": len(checks),
        "checks_passing": sum(v is True for v in checks),
        "checks_failing": sum(v is False for v in checks),
        "checks_untestable": sum(v is None for v in checks),
        "reused_from": res.get("reused_from"),
        "pretrained_base": _base_source(res),
    }


def _totals(studies: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    rows = list(studies.values())
    counts = ("claims_total", "claims_holding", "claims_failing", "claims_untestable",
              "checks_total", "checks_passing", "checks_failing", "checks_untestable")
    return {
        "studies": len(rows),
        "ok": sum(r["status"] == "ok" for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows),
        **{c: sum(r[c] for r in rows) for c in counts},
        "wall_s": round(sum(r["wall_s"] or 0.0 for r in rows), 3),
        "cpu_s": round(sum(r.get("cpu_s") or 0.0 for r in rows), 3),
    }


def _base_source(result: Mapping[str, Any]) -> str | None:
    """The study's `pretrain.source` metric (None when it has no pre-trained base)."""
    source = (result.get("metrics") or {}).get("pretrain.source")
    return source if isinstance(source, str) else None


def pretrained_base(result: Mapping[str, Any]) -> str | None:
    """Where the study's pre-trained base came from, in words ("reused from cache", "trained in
    this run", "reused from cache for 2 of 3"); None when the study has none."""
    source = _base_source(result)
    if source is None:
        return None
    words = {"cache": "reused from cache", "trained": "trained in this run",
             "given": "given (pretrained=FILE)"}
    if source in words:
        return words[source]
    return re.sub(r"^cache (\d+ of \d+)$", r"reused from cache for \1", source)


def _wall_s(result: Mapping[str, Any]) -> float | None:
    return _timing(result, "wall_s")


def _timing(result: Mapping[str, Any], key: str) -> float | None:
    """A number from the result's `timing` (None when absent, e.g. in an older result)."""
    value = (result.get("timing") or {}).get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _common_env(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The environment entries (key and value) that all results share."""
    envs = [r.get("environment") or {} for r in results]
    if not envs:
        return {"lmlab": lmlab.__version__}
    return {k: v for k, v in envs[0].items() if all(e.get(k) == v for e in envs[1:])}


# -- formatting shared by the page and the terminal ----------------------------------------------
def _fmt(value: Any) -> str:
    """A metric or claim value as short text: 4 significant digits, '—' for missing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if 1e4 <= abs(value) < 1e9:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return _shorten(json.dumps(value), 200)
    return str(value)


def _shorten(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _paper(study: str) -> tuple[str, str]:
    """(title, 'authors (year)') from the catalog; the id and '' for an unknown study."""
    info = catalog().get(study)
    if info is None:
        return study, ""
    cite = f"{info.authors} ({info.year})" if info.authors else ""
    return info.title, cite


def _short_sha(sha: Any) -> str:
    if not sha:
        return "—"
    sha = str(sha)
    base, _, dirty = sha.partition("+")
    return base[:10] + (f"+{dirty}" if dirty else "")


# -- terminal ------------------------------------------------------------------------------------
def claims_table(
    results: Sequence[Mapping[str, Any]], failures: Mapping[str, str] | None = None
) -> Table:
    """A rich table of every claim: study, claim id, statement (shortened), paper, measured, holds.

    The holds column reads ✓ yes, ✗ no or — n/a (not testable at this preset); a study named in
    `failures` gets one row with its error.
    """
    table = Table(
        title="Claims",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("study", no_wrap=True)
    table.add_column("claim", overflow="fold", max_width=20)
    table.add_column("statement", ratio=1, min_width=16)
    table.add_column("paper", overflow="fold", max_width=16)
    table.add_column("measured", overflow="fold", max_width=16)
    table.add_column("holds", no_wrap=True)
    for entry in _entries(results, failures):
        _add_rows(table, entry)
        table.add_section()
    totals = _totals({e.key: _study_summary(e) for e in _entries(results, failures)})
    table.caption = _totals_line(totals)
    return table


def checks_table(results: Sequence[Mapping[str, Any]]) -> Table | None:
    """A rich table of every check (lmlab's own invariants and preconditions), or None if no
    result has any. Checks never count toward the claims line."""
    entries = [e for e in _entries(results, None) if e.result and e.result.get("checks")]
    if not entries:
        return None
    table = Table(title="Checks (invariants of this implementation, not the papers' claims)",
                  title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("study", no_wrap=True)
    table.add_column("check", overflow="fold", max_width=24)
    table.add_column("statement", ratio=1, min_width=16)
    table.add_column("measured", overflow="fold", max_width=24)
    table.add_column("passes", no_wrap=True)
    passing = total = 0
    for entry in entries:
        for i, c in enumerate(entry.result["checks"]):  # type: ignore[index]
            symbol, _, short, _, style = _VERDICTS[c.get("holds")]
            total += 1
            passing += c.get("holds") is True
            table.add_row(
                Text(entry.key, style="bold") if i == 0 else "",
                Text(str(c["id"])),
                Text(_shorten(c["statement"], 80)),
                Text(_shorten(_fmt(c.get("measured")), 40)),
                Text(f"{symbol} {short}", style=style),
            )
        table.add_section()
    table.caption = f"{passing} of {total} checks pass"
    return table


def _add_rows(table: Table, entry: _Entry) -> None:
    study = Text(entry.key, style="bold")
    if entry.error is not None:
        error = Text.assemble(("run failed: ", "bold red"), _shorten(entry.error, 120))
        table.add_row(study, "", error, "", "", Text("✗", style="bold red"))
        return
    claims = entry.result["claims"] if entry.result else []
    if not claims:
        table.add_row(study, "", Text("(no claims)", style="dim"), "", "", "")
    for i, c in enumerate(claims):
        symbol, _, short, _, style = _VERDICTS[c.get("holds")]
        table.add_row(
            study if i == 0 else "",
            Text(str(c["id"])),
            Text(_shorten(c["statement"], 80)),  # Text: a statement's brackets are not markup
            Text(_shorten(_fmt(c.get("paper")), 40)),
            Text(_shorten(_fmt(c.get("measured")), 40)),
            Text(f"{symbol} {short}", style=style),
        )


def _totals_line(totals: Mapping[str, Any]) -> str:
    line = (
        f"{totals['claims_holding']} of {totals['claims_total']} claims hold, "
        f"{totals['claims_failing']} do not, {totals['claims_untestable']} not testable; "
        f"{totals['ok']} of {totals['studies']} studies ran"
    )
    line += f", {totals['failed']} failed" if totals["failed"] else ""
    if totals.get("checks_total"):
        line += f" (checks: {totals['checks_passing']} of {totals['checks_total']} pass)"
    return line


def print_claims(
    results: Sequence[Mapping[str, Any]],
    console: Console | None = None,
    failures: Mapping[str, str] | None = None,
) -> None:
    """Print the claims table, then the checks table, to `console` (default: stdout)."""
    console = console or Console()
    checks = checks_table(results)
    if checks is not None:
        console.print(checks)
    console.print(claims_table(results, failures))
    for entry in _entries(results, failures):
        if entry.result and entry.result.get("reused_from"):
            console.print(f"{entry.key}: reused from {entry.result['reused_from']}")


# -- the HTML page -------------------------------------------------------------------------------
def write_report(
    runs_dir: str | Path,
    results: Sequence[Mapping[str, Any]] | None = None,
    failures: Mapping[str, str] | None = None,
    pending: Sequence[str] = (),
) -> Path:
    """Write the self-contained `runs_dir/report.html` atomically and return its path.

    `results` defaults to `load_results(runs_dir)`; `failures` maps a study id to the error that
    stopped it; `pending` names the studies still to come (`reproduce` rewrites the page after
    each study). A result's figures are read from its `_run_dir` (else `runs_dir/<study>`).
    """
    root = Path(runs_dir)
    if results is None:
        results = [] if failures and not _result_paths(root) else load_results(root)
    path = root / REPORT
    atomic_write_text(path, render_html(root, results, failures, pending))
    return path


def render_html(
    runs_dir: Path,
    results: Sequence[Mapping[str, Any]],
    failures: Mapping[str, str] | None = None,
    pending: Sequence[str] = (),
) -> str:
    """The report page as one string."""
    entries = _entries(results, failures)
    summary = summarize(results, failures)
    body = [
        _header(summary),
        *([f'<p class="pending" role="status">Still running: {_e(", ".join(pending))}. This page '
           "is rewritten as each study finishes.</p>"] if pending else []),
        _summary_table(entries),
        *(_section(e, runs_dir) for e in entries),
    ]
    return _page("\n".join(body))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lmlab {_e(lmlab.__version__)}">
<title>lmlab report</title>
<style>{_CSS}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


def _header(summary: Mapping[str, Any]) -> str:
    env = summary["environment"]
    created = datetime.fromisoformat(summary["created"]).strftime("%Y-%m-%d %H:%M UTC")
    facts = [f"lmlab {lmlab.__version__}", f"created {created}"]
    for key in ("torch", "python", "device", "gpu", "platform"):
        if env.get(key):
            facts.append(f"{key} {env[key]}")
    if env.get("git"):
        facts.append(f"git {_short_sha(env['git'])}")
    legend = " ".join(
        f'<span class="verdict {css}">{sym} {word}</span>'
        for sym, word, _, css, _ in _VERDICTS.values()
    )
    return (
        "<header>\n<h1>lmlab report</h1>\n"
        f'<p class="meta">{" · ".join(_e(f) for f in facts)}</p>\n'
        f'<p class="totals">{_e(_totals_line(summary["totals"]))}; '
        f"total run time {_e(_duration(summary['totals']['wall_s']))}.</p>\n"
        f'<p class="legend">Verdicts: {legend}</p>\n</header>'
    )


def _summary_table(entries: Sequence[_Entry]) -> str:
    rows = "\n".join(_summary_row(e) for e in entries)
    return (
        '<section class="overview">\n<h2>Studies</h2>\n<table class="summary">\n'
        "<thead><tr><th>Study</th><th>Paper</th><th>Preset</th><th>Status</th>"
        '<th class="num">Claims holding</th><th class="num">Not holding</th>'
        '<th class="num">Not testable</th><th class="num">Checks passing</th>'
        '<th class="num">Wall time</th></tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody>\n</table>\n</section>"
    )


def _summary_row(entry: _Entry) -> str:
    s = _study_summary(entry)
    title, cite = _paper(entry.study)
    paper = _e(title) + (f'<br><span class="cite">{_e(cite)}</span>' if cite else "")
    link = f'<a href="#{_anchor(entry.key)}">{_e(entry.key)}</a>'
    if s["status"] == "ok":
        status = '<span class="status ok">ok</span>'
        counts = [
            f"{s['claims_holding']} / {s['claims_total']}",
            s["claims_failing"],
            s["claims_untestable"],
            f"{s['checks_passing']} / {s['checks_total']}" if s["checks_total"] else "—",
        ]
        if s["reused_from"]:
            status += f' <span class="cite">reused from {_e(s["reused_from"])}</span>'
        if s["pretrained_base"]:
            status += (f'<br><span class="cite">pre-trained base: '
                       f'{_e(pretrained_base(entry.result or {}))}</span>')
    else:
        status = '<span class="status failed">✗ failed</span>'
        counts = ["—", "—", "—", "—"]
    cells = [
        f'<td class="nowrap">{link}</td>',
        f"<td>{paper}</td>",
        f"<td>{_e(s['preset'] or '—')}</td>",
        f"<td>{status}</td>",
    ]
    cells += [f'<td class="num">{_e(c)}</td>' for c in [*counts, _duration(s["wall_s"])]]
    return "<tr>" + "".join(cells) + "</tr>"


def _anchor(key: str) -> str:
    return "study-" + re.sub(r"[^A-Za-z0-9_-]+", "-", key)


def _section(entry: _Entry, runs_dir: Path) -> str:
    title, cite = _paper(entry.study)
    head = f'<h2>{_e(title)} <span class="sid">{_e(entry.key)}</span></h2>\n' + (
        f'<p class="cite">{_e(cite)}</p>\n' if cite else ""
    )
    if entry.error is not None:
        body = (
            '<div class="error" role="alert"><strong>✗ This study failed to run.</strong>\n'
            f"<pre>{_e(entry.error)}</pre></div>"
        )
        css = "study failed"
    else:
        body = _result_body(entry.result or {}, _run_dir(entry, runs_dir))
        css = "study"
    return f'<section id="{_anchor(entry.key)}" class="{css}">\n{head}{body}\n</section>'


def _run_dir(entry: _Entry, runs_dir: Path) -> Path:
    res = entry.result or {}
    return Path(res[RUN_DIR_KEY]) if RUN_DIR_KEY in res else runs_dir / entry.study


def _result_body(res: Mapping[str, Any], run_dir: Path) -> str:
    env = res.get("environment") or {}
    facts = {
        "preset": res.get("preset"),
        "seed": res.get("seed"),
        "wall time": _duration(_wall_s(res)),
        "CPU time": _duration(_timing(res, "cpu_s")),
        "git": env.get("git"),
        "lmlab": res.get("lmlab_version") or env.get("lmlab"),
    }
    if res.get("reused_from"):
        facts["reused from"] = res["reused_from"]
    if pretrained_base(res):
        facts["pre-trained base"] = pretrained_base(res)
    facts_html = "".join(
        f"<div><dt>{_e(k)}</dt><dd>{_e(_fmt(v))}</dd></div>" for k, v in facts.items()
    )
    parts = [
        f'<dl class="facts">{facts_html}</dl>',
        "<h3>Claims</h3>",
        _claims_html(res.get("claims", [])),
        *(["<h3>Checks</h3>", '<p class="cite">Invariants and preconditions of this '
           "implementation; they are not the paper's claims and do not count toward them.</p>",
           _claims_html(res["checks"], "Check")] if res.get("checks") else []),
        "<h3>Metrics</h3>",
        _metrics_html(res.get("metrics", {})),
        _figures_html(run_dir, res["study"]),
        _details("Environment", env),
        _details("Configuration", res.get("config") or {}),
    ]
    return "\n".join(p for p in parts if p)


def _claims_html(claims: Sequence[Mapping[str, Any]], head: str = "Claim") -> str:
    if not claims:
        return '<p class="empty">This run states no claims.</p>'
    rows = []
    for c in claims:
        symbol, word, _, css, _ = _VERDICTS[c.get("holds")]
        rows.append(
            f'<tr class="{css}"><td><code>{_e(c["id"])}</code></td><td>{_e(c["statement"])}</td>'
            f"<td>{_e(_fmt(c.get('paper')))}</td><td>{_e(_fmt(c.get('measured')))}</td>"
            f'<td><span class="verdict {css}">{symbol} {word}</span></td></tr>'
        )
    return (
        f'<table class="claims">\n<thead><tr><th>{head}</th><th>Statement</th><th>Paper</th>'
        "<th>Measured</th><th>Verdict</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


_SEED = re.compile(r"seed\d+")


MAX_GROUP_ROWS = 16  # a group with more rows is split by its first two key parts


def metric_groups(metrics: Mapping[str, Any],
                  max_rows: int = MAX_GROUP_ROWS) -> dict[str, dict[str, dict[str, Any]]]:
    """Metrics grouped by the first part of their dotted key: group -> row -> column -> value.

    A key part `seedN` becomes a column (per-seed values side by side, beside the key's value
    without it); every other key has the one column "value". A key without dots falls in the
    group "" (shown as "other"). A group of more than `max_rows` rows is split by the first two
    parts (`teacher` -> `teacher.mhla_4h`, `teacher.alg1`, ...), so every table stays small.
    """
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in metrics.items():
        parts = str(key).split(".")
        group = parts[0] if len(parts) > 1 else ""
        seeds = [p for p in parts[1:] if _SEED.fullmatch(p)]
        column = seeds[0] if seeds else "value"
        rest = [p for p in parts[1 if group else 0:] if p != column]
        row = ".".join(rest) or parts[0]
        groups.setdefault(group, {}).setdefault(row, {})[column] = value
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for group, rows in groups.items():
        heads = {row.split(".", 1)[0] for row in rows if "." in row}
        if not group or len(rows) <= max_rows or len(heads) < 2:
            out[group] = rows
            continue
        for row, cols in rows.items():
            head, _, tail = row.partition(".")
            sub, name = (f"{group}.{head}", tail) if tail else (group, row)
            out.setdefault(sub, {})[name] = cols
    return out


def _metrics_html(metrics: Mapping[str, Any]) -> str:
    """One small table per metric group (collapsed), per-seed values in columns."""
    if not metrics:
        return '<p class="empty">None recorded.</p>'
    blocks = []
    for group, rows in sorted(metric_groups(metrics).items(), key=lambda kv: (kv[0] == "", kv[0])):
        columns = sorted({c for cols in rows.values() for c in cols},
                         key=lambda c: (c != "value", len(c), c))
        head = "".join(f'<th class="num">{_e(c)}</th>' for c in columns)
        body = "\n".join(
            f'<tr><th scope="row">{_e(row)}</th>'
            + "".join(f'<td>{_e(_fmt(cols.get(c)))}</td>' for c in columns) + "</tr>"
            for row, cols in rows.items()
        )
        n = sum(len(cols) for cols in rows.values())
        blocks.append(
            f'<details class="metric-group"><summary><code>{_e(group or "other")}</code> '
            f'<span class="cite">{n} value{"s" if n != 1 else ""}</span></summary>\n'
            f'<table class="kv metrics">\n<thead><tr><th>metric</th>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table>\n</details>"
        )
    return "\n".join(blocks)


def _kv_table(values: Mapping[str, Any], css: str) -> str:
    """A two-column table of names and values (metrics, environment, configuration)."""
    if not values:
        return '<p class="empty">None recorded.</p>'
    rows = "\n".join(
        f'<tr><th scope="row">{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>' for k, v in values.items()
    )
    return f'<table class="kv {css}">\n<tbody>\n{rows}\n</tbody>\n</table>'


def _details(title: str, values: Mapping[str, Any]) -> str:
    if not values:
        return ""
    return f"<details><summary>{_e(title)}</summary>\n{_kv_table(values, 'details')}\n</details>"


def _figures_html(run_dir: Path, study: str) -> str:
    figures_dir = run_dir / "figures"
    if not figures_dir.is_dir():
        return ""
    files = sorted(
        p for p in figures_dir.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_TYPES
    )
    if not files:
        return ""
    figures = "\n".join(_figure(p, study) for p in files)
    return f'<h3>Figures</h3>\n<div class="figures">\n{figures}\n</div>'


def _figure(path: Path, study: str) -> str:
    caption = _caption(path)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mime = _IMAGE_TYPES[path.suffix.lower()]
    return (
        f'<figure><img src="data:{mime};base64,{data}" alt="{_e(f"{study}: {caption}")}">'
        f'<figcaption>{_e(caption)} <span class="file">{_e(path.name)}</span></figcaption>'
        "</figure>"
    )


def _caption(path: Path) -> str:
    """'loss_vs-step.png' -> 'Loss vs step'."""
    words = re.sub(r"[_\-\s]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


_CSS = """
:root { --fg: #1d2127; --muted: #5b6470; --bg: #ffffff; --card: #f5f6f8; --line: #dadfe5;
  --accent: #1a5fb4; --ok: #137333; --ok-bg: #e6f4ea; --bad: #b3261e; --bad-bg: #fce8e6;
  --na: #555b62; --na-bg: #eceef1; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e4e7eb; --muted: #9aa3ad; --bg: #15181c; --card: #1e2227; --line: #343a42;
    --accent: #8cb4ff; --ok: #81c995; --ok-bg: #1c3324; --bad: #f28b82; --bad-bg: #3c1f1d;
    --na: #b0b6bd; --na-bg: #2a2f35; }
  figure img { background: #fff; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.8rem; margin: 0 0 .25rem; }
h2 { font-size: 1.35rem; margin: 0 0 .2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .9em; }
.meta, .cite, .file, .sid { color: var(--muted); }
.sid { font-size: .85rem; font-weight: normal; font-family: ui-monospace, Menlo, Consolas, monospace; }
.totals { font-size: 1.05rem; font-weight: 600; margin: .6rem 0; }
.legend .verdict { margin-right: .4rem; }
header { border-bottom: 1px solid var(--line); padding-bottom: 1rem; margin-bottom: 1.5rem; }
section { margin: 0 0 2rem; }
section.study { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 1.2rem 1.4rem; }
section.study.failed { border-left: 5px solid var(--bad); }
table { border-collapse: collapse; width: 100%; margin: .3rem 0; font-size: .93rem; }
th, td { text-align: left; vertical-align: top; padding: .4rem .6rem; border-bottom: 1px solid var(--line); }
thead th { border-bottom: 2px solid var(--line); white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv { width: auto; min-width: 22rem; }
.nowrap { white-space: nowrap; }
table.metrics td { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { font-weight: normal; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .88rem; }
table.claims td:nth-child(3), table.claims td:nth-child(4) { font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-weight: 600;
  white-space: nowrap; font-size: .88rem; }
.verdict.holds { color: var(--ok); background: var(--ok-bg); }
.verdict.fails { color: var(--bad); background: var(--bad-bg); }
.verdict.untestable { color: var(--na); background: var(--na-bg); }
.status { white-space: nowrap; }
.status.ok { color: var(--ok); font-weight: 600; }
.status.failed { color: var(--bad); font-weight: 600; }
dl.facts { display: flex; flex-wrap: wrap; gap: .2rem 1.6rem; margin: .6rem 0 0; }
dl.facts div { display: flex; gap: .35rem; }
dl.facts dt { color: var(--muted); }
dl.facts dt::after { content: ":"; }
dl.facts dd { margin: 0; font-weight: 600; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 1rem; }
figure { margin: 0; background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: .6rem; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { margin-top: .4rem; font-size: .9rem; text-align: center; }
figcaption .file { font-size: .8rem; margin-left: .3rem; }
details { margin-top: 1rem; }
details.metric-group { margin-top: .3rem; }
summary { cursor: pointer; color: var(--muted); }
.error { background: var(--bad-bg); color: var(--fg); border-radius: 8px; padding: .8rem 1rem; margin-top: .8rem; }
.error pre { white-space: pre-wrap; margin: .4rem 0 0; }
.empty { color: var(--muted); font-style: italic; }
@media print { section.study { break-inside: avoid-page; } details { display: none; } }
"""


__all__ = [
    "REPORT",
    "SUMMARY",
    "checks_table",
    "claims_table",
    "load_results",
    "metric_groups",
    "pretrained_base",
    "print_claims",
    "render_html",
    "summarize",
    "write_report",
    "write_summary",
]
