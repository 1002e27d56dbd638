"""The `lmlab` command: list, run, reproduce, report, bench, and each study's own verbs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a finished run.")] = False,
) -> None:
    """Run one study and write OUT/result.json."""
    from lmlab.report import print_claims
    from lmlab.runner import default_out, execute, resolve_config

    if out is None:
        out = default_out(study, preset, resolve_config(study, preset, set_ or [], seed).seed)
    result = execute(study, preset, set_ or [], seed, out, resume=resume, force=force)
    print_claims([result], console)
    console.print(f"result: {out / 'result.json'}  ({result['timing']['wall_s']:.1f} s)")


@app.command()
def reproduce(
    only: Annotated[str | None, typer.Option(help="Comma-separated study ids (default: all implemented).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the runs, summary and report.")] = Path("runs/reproduce"),
    executor: Annotated[str, typer.Option(help="serial, process or ray.")] = "serial",
    force: Annotated[bool, typer.Option(help="Re-run studies that already have a result.")] = False,
) -> None:
    """Run every implemented study's tiny preset; write summary.json and report.html."""
    from lmlab.executor import BACKENDS
    from lmlab.report import print_claims, write_report, write_summary
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
    console.print(f"reproducing {len(ids)} studies with the {executor} executor: {', '.join(ids)}")
    with console.status("running tiny presets..."):
        results, failures = reproduce_studies(ids, out, executor, force=force)
    write_summary(out, results, failures)
    report = write_report(out, results, failures)
    print_claims(results, console, failures)
    for sid, err in failures.items():
        err_console.print(f"[red]{sid} failed:[/] {err}")
    console.print(f"report: {report}")
    if failures:
        raise typer.Exit(1)


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


@app.command()
def bench(
    name: Annotated[str | None, typer.Argument(help="Benchmark name (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Speed benchmarks, measured against a reference in the same run."""
    from lmlab.bench import benchmarks, run_benchmark

    found = benchmarks()
    if name is not None and name not in found:
        raise LmlabError(f"unknown benchmark {name!r}; benchmarks: {', '.join(found)}")
    names = [name] if name else list(found)
    results = {}
    for n in names:
        if not as_json:
            err_console.print(f"running benchmark {n}...")
        results[n] = run_benchmark(n)
    if as_json:
        print(json.dumps(results[names[0]] if name else results, indent=2))
        return
    for n, res in results.items():
        table = Table(title=f"bench {n}")
        table.add_column("metric")
        table.add_column("value")
        for k, v in res.items():
            table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
        console.print(table)


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
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(e).__name__}: {e} "
            "(rerun with --debug for the traceback)",
            highlight=False, soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
