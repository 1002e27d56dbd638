"""The `lmlab` command: list, run, reproduce, report, bench, and each study's own verbs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import lmlab
from lmlab.errors import LmlabError
from lmlab.llm.cli import llm_app
from lmlab.models.cli import models_app

app = typer.Typer(
    name="lmlab",
    help="A laboratory for the science of language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
# Piped output (a log, CI) gets wide lines rather than rich's 80-column default, so the claims
# table's measured values are not cut off.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True)
app.add_typer(llm_app, name="llm")  # `lmlab llm chat ...`: check a language-model backend by hand
app.add_typer(models_app, name="models")  # `lmlab models list|fetch ID`: the embedded models


def _version(value: bool) -> None:
    if value:
        console.print(f"lmlab {lmlab.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """A laboratory for the science of language models."""


@app.command("list")
def list_studies() -> None:
    """The ten studies: paper, status and presets."""
    from lmlab.study import catalog

    table = Table(title="lmlab studies", show_lines=False)
    for col in ("study", "paper", "status", "presets"):
        table.add_column(col)
    for sid, info in catalog().items():
        study = info.load()
        status = "[green]implemented[/]" if study else "[dim]planned[/]"
        presets = ", ".join(study.presets) if study else ""
        paper = f"{info.title} ({info.authors}, {info.year})" if info.year else info.title
        table.add_row(sid, paper, status, presets)
    console.print(table)


@app.command()
def run(
    study: Annotated[str, typer.Argument(help="Study id (see `lmlab list`).")],
    preset: Annotated[str, typer.Option("--preset", "-p", help="Preset name.")] = "tiny",
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a config field: key=value.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the preset's).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/STUDY/PRESET-seedN).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint (or grow a finished one by a study's growable fields, e.g. --set n_seeds=12).")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a finished run.")] = False,
) -> None:
    """Run one study and write OUT/result.json."""
    from lmlab.report import print_claims
    from lmlab.runner import default_out, execute, resolve_config
    from lmlab.study import get_study

    config = resolve_config(study, preset, set_ or [], seed)
    get_study(study).validate(config)  # a bad value is one line, before anything is printed
    if out is None:
        out = default_out(study, preset, config.seed)
    result = execute(study, preset, set_ or [], seed, out, resume=resume, force=force)
    print_claims([result], console)
    timing = result["timing"]
    cpu = f", {timing['cpu_s']:.1f} CPU-s" if "cpu_s" in timing else ""
    console.print(f"result: {out / 'result.json'}  ({timing['wall_s']:.1f} s{cpu})")


@app.command()
def reproduce(
    only: Annotated[str | None, typer.Option(help="Comma-separated study ids (default: all implemented).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the runs, summary and report.")] = Path("runs/reproduce"),
    executor: Annotated[str, typer.Option(help="serial, process or ray.")] = "serial",
    force: Annotated[bool, typer.Option(help="Re-run studies that already have a result.")] = False,
    reuse: Annotated[bool, typer.Option(
        help="Keep a finished result even if its configuration or lmlab version differs.")] = False,
) -> None:
    """Run every implemented study's tiny preset; write summary.json and report.html.

    A finished result in OUT is reused (and said so: "reused from DATE") when it was made with
    the same configuration and lmlab version; otherwise the study runs again, unless --reuse.
    """
    from lmlab.executor import BACKENDS
    from lmlab.report import print_claims, write_report, write_summary
    from lmlab.runner import expected_seconds, run_order
    from lmlab.runner import reproduce as reproduce_studies
    from lmlab.study import catalog, get_study, implemented

    if executor not in BACKENDS:
        raise LmlabError(f"unknown executor {executor!r}; choose one of {', '.join(BACKENDS)}")
    if only:
        ids = [s.strip() for s in only.split(",") if s.strip()]
        for sid in ids:
            get_study(sid)  # unknown or planned: one clear line before anything runs
    else:
        ids = implemented()
    if not ids:
        planned = ", ".join(catalog())
        console.print(
            "No study is implemented yet, so there is nothing to reproduce. "
            f"Planned: {planned}. See `lmlab list`."
        )
        return
    ids = run_order(ids, out)
    console.print(f"reproducing {len(ids)} studies with the {executor} executor, fastest expected "
                  f"first: {', '.join(ids)}; {out / 'report.html'} is rewritten after each")
    expected = {sid: expected_seconds(sid, out) for sid in ids}
    results, failures = reproduce_studies(ids, out, executor, force=force, reuse=reuse,
                                          **_reproduce_progress(ids, expected))
    write_summary(out, results, failures)
    report = write_report(out, results, failures)
    print_claims(results, console, failures)
    for sid, err in failures.items():
        err_console.print(f"[red]{sid} failed:[/] {err}")
    console.print(f"report: {report}")
    if failures:
        raise typer.Exit(1)


def _reproduce_progress(ids: list[str], expected: dict[str, float] | None = None) -> dict[str, Any]:
    """Callbacks that print which study of how many runs, its expected time and that of the
    studies left (from their last result or declared `Study.expected_s`, before the study's own
    bar measures its pace), and a running count of the claims."""
    import math
    import time

    from lmlab.progress import clock
    from lmlab.report import pretrained_base

    t0, started = time.perf_counter(), {}
    total = {"hold": 0, "claims": 0, "checks_ok": 0, "checks": 0, "done": 0}
    expected = expected or {}

    def on_start(i: int, sid: str) -> None:
        started[sid] = time.perf_counter()
        mine, rest = expected.get(sid, math.inf), sum(expected.get(s, math.inf) for s in ids[i:])
        eta = f"expected about {clock(mine)}" if math.isfinite(mine) else "no expected time"
        if math.isfinite(rest) and i + 1 < len(ids):
            eta += f"; eta for all {len(ids) - i} left {clock(rest)}"
        err_console.print(f"[bold][{i + 1}/{len(ids)}][/] {sid}: running the tiny preset "
                          f"({eta})...", highlight=False)

    def on_result(i: int, outcome: tuple[str, dict[str, Any] | None, str | None]) -> None:
        sid, result, error = outcome
        total["done"] += 1
        took = time.perf_counter() - started.get(sid, t0)
        if result is None:
            line = f"[red]failed[/] ({error})"
        else:
            claims, checks = result.get("claims", []), result.get("checks", [])
            hold = sum(c.get("holds") is True for c in claims)
            total["hold"] += hold
            total["claims"] += len(claims)
            total["checks_ok"] += sum(c.get("holds") is True for c in checks)
            total["checks"] += len(checks)
            line = f"{hold} of {len(claims)} claims hold"
            cpu = (result.get("timing") or {}).get("cpu_s")
            if isinstance(cpu, int | float) and not result.get("reused_from"):
                line = f"{cpu:.0f} CPU-s; " + line
            if result.get("reused_from"):
                line += f" (reused from {result['reused_from']})"
            base = pretrained_base(result)
            if base:
                line += f"; pre-trained base {base}"
        err_console.print(
            f"[bold][{total['done']}/{len(ids)}][/] {sid} done in {took:.0f} s: {line}; so far "
            f"{total['hold']} of {total['claims']} claims hold, {total['checks_ok']} of "
            f"{total['checks']} checks pass ({time.perf_counter() - t0:.0f} s)", highlight=False)

    return {"on_start": on_start, "on_result": on_result}


@app.command()
def report(runs_dir: Annotated[Path, typer.Argument(help="A folder of runs (or one run).")]) -> None:
    """Rebuild report.html from the results on disk."""
    from lmlab.report import load_results, print_claims, write_report

    if not runs_dir.is_dir():
        raise LmlabError(f"{runs_dir} is not a folder")
    results = load_results(runs_dir)
    path = write_report(runs_dir, results)
    print_claims(results, console)
    console.print(f"report: {path}")


@app.command("compare-threads")
def compare_threads(
    study: Annotated[str, typer.Argument(help="Study id (see `lmlab list`).")],
    preset: Annotated[str, typer.Option("--preset", "-p", help="Preset name.")] = "tiny",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override key=value (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the runs (one sub-folder per thread count).")] = Path("runs/compare-threads"),
    threads: Annotated[str, typer.Option(help="Comma-separated torch thread counts.")] = "1,2",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a study's preset under each torch thread count; list the verdicts that differ."""
    from lmlab.threadcheck import compare_threads as compare

    try:
        counts = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        raise LmlabError(f"--threads must be comma-separated integers, got {threads!r}") from None
    res = compare(study, out / study, preset, set_ or [], counts)
    if as_json:
        print(json.dumps(res, indent=2, default=str))
        return
    for n, r in res["runs"].items():
        console.print(f"{n} thread(s): {r['claims_hold']} of {r['claims']} claims hold "
                      f"({r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} CPU-s)")
    m = res["metrics"]
    console.print(f"{m['differ']} of {m['compared']} metrics differ (largest relative "
                  f"difference {m['max_rel']:.2g}); all in {out / study / 'comparison.json'}")
    if not res["differ"]:
        console.print(f"no verdict differs between {threads} threads")
        return
    table = Table(title=f"{study}: verdicts that differ (not established at this scale)")
    table.add_column("id")
    for n in counts:
        table.add_column(f"{n} thread(s)")
    for row in res["differ"]:
        table.add_row(f"{row['id']} ({row['kind']})",
                      *(f"{row['holds'].get(n)}: {row['measured'].get(n)}" for n in counts))
    console.print(table)


@app.command()
def bench(
    name: Annotated[str | None, typer.Argument(help="Benchmark name (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    model: Annotated[str | None, typer.Option("--model", help="The model (backend spec) of a benchmark that takes one, e.g. `bench llm --model hf:qwen2.5-coder-0.5b-instruct`.")] = None,
    only: Annotated[str | None, typer.Option(help="bench reproduce: comma-separated study ids (default: all implemented).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="bench reproduce: key=value override for every study that has the key (repeatable).")] = None,
    preset: Annotated[str, typer.Option(help="bench reproduce: the preset each study runs.")] = "tiny",
    compile_: Annotated[bool, typer.Option("--compile", help="bench train: also time torch.compile of lmlab's GPT against eager (compile seconds, CPU-s per step, break-even steps; a minute or more of compiling).")] = False,
    versus: Annotated[str | None, typer.Option(help="bench llm: a second backend spec run on the same workloads and threads, e.g. `--model hf:ID --versus llamacpp:ID`; adds its speedups and greedy agreement.")] = None,
    threads: Annotated[int, typer.Option(help="bench llm: the thread count of both backends (0: leave as is).")] = 0,
) -> None:
    """Speed benchmarks, measured against a reference in the same run; `bench reproduce` profiles
    the studies themselves (wall and CPU seconds by phase)."""
    import inspect

    from lmlab.bench import EXPLICIT_ONLY, benchmarks, run_benchmark

    found = benchmarks()
    if name is not None and name not in found:
        raise LmlabError(f"unknown benchmark {name!r}; benchmarks: {', '.join(found)}")
    names = [name] if name else [n for n in found if n not in EXPLICIT_ONLY]
    kwargs: dict[str, Any] = {}
    if only is not None or set_ or preset != "tiny":
        if name != "reproduce":
            raise LmlabError("--only, --set and --preset belong to `lmlab bench reproduce`")
        kwargs.update(only=only, sets=list(set_ or []), preset=preset)
    if compile_:
        if name != "train":
            raise LmlabError("--compile belongs to `lmlab bench train`")
        kwargs["compile"] = True
    if model is not None:
        takes = [n for n in names if "model" in inspect.signature(found[n]).parameters
                 or n == "llm"]
        if name is None or not takes:
            raise LmlabError("--model needs a benchmark that takes a model, e.g. `lmlab bench llm --model SPEC`")
        kwargs["model"] = model
    if versus is not None or threads:
        if name != "llm":
            raise LmlabError("--versus and --threads belong to `lmlab bench llm`")
        if versus is not None:
            kwargs["versus"] = versus
        if threads:
            kwargs["threads"] = threads
    results = {}
    for n in names:
        if not as_json:
            err_console.print(f"running benchmark {n}...")
        results[n] = run_benchmark(n, **kwargs)
    if as_json:
        print(json.dumps(results[names[0]] if name else results, indent=2))
        return
    for n, res in results.items():
        if n == "reproduce":
            console.print(_phases_table(res))
            continue
        table = Table(title=f"bench {n}")
        table.add_column("metric")
        table.add_column("value")
        for k, v in _flat(res).items():
            table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
        console.print(table)


def _flat(res: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A benchmark's nested result as dotted rows (`compiled_vs_eager.compile_cpu_s`); lists are
    left out of the table (they are in `--json`)."""
    rows: dict[str, Any] = {}
    for k, v in res.items():
        if isinstance(v, dict) and k != "config":
            rows.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            rows[prefix + k] = v
    return rows


def _phases_table(res: dict[str, Any]) -> Table:
    """`bench reproduce` as a table: per study, wall and CPU seconds, and CPU-s by phase."""
    from lmlab.bench.phases import PHASES

    table = Table(title="bench reproduce (CPU seconds by phase)")
    for col in ("study", "wall s", "CPU s", *PHASES, "unattributed"):
        table.add_column(col, justify="left" if col == "study" else "right")
    for sid, s in res["studies"].items():
        table.add_row(sid, f"{s['wall_s']:.1f}", f"{s['cpu_s']:.1f}",
                      *(f"{s['phases'][p]['cpu_s']:.1f}" for p in PHASES),
                      f"{s['unattributed_cpu_s']:.1f}")
    return table


def _add_study_verbs() -> None:
    """Mount each implemented study's own verbs: `lmlab STUDY VERB ...` (e.g. `lmlab scaling-laws fit`).

    A study offers them in the attribute `cli` of its STUDY object: a `typer.Typer` of verbs, or a
    single typer-annotated function, mounted as the command `lmlab STUDY ARGS...` itself.
    """
    from lmlab.study import catalog

    mounted = {g.name for g in app.registered_groups}
    for sid, info in catalog().items():
        if sid in mounted:
            continue
        try:
            study = info.load()
        except Exception as e:  # a broken study must not take the whole command down
            err_console.print(f"[yellow]warning:[/] study {sid} failed to load: {e}")
            continue
        sub = getattr(study, "cli", None)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=sid, help=f"{info.title}: the study's own tools.")
        elif callable(sub):  # one command: `lmlab STUDY ARGS...`
            app.command(name=sid, help=(sub.__doc__ or info.title).strip().splitlines()[0])(sub)


def main() -> None:
    """Entry point: user errors are one line on stderr and exit code 2 (tracebacks with --debug).

    Usage errors (unknown option, missing argument) are reported by typer itself, also with code 2.
    """
    debug = "--debug" in sys.argv[1:]
    try:
        _add_study_verbs()
        app()
    except LmlabError as e:
        if debug:
            raise
        # escaped: a message such as "pip install 'lmlab[hf]'" is not markup
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))} "
            "(rerun with --debug for the traceback)",
            highlight=False, soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
