"""``lmlab models``: the embedded-model catalog on this machine.

    lmlab models list                              # id, size, what is here, verified or not
    lmlab models fetch qwen2.5-coder-0.5b-instruct # assemble, verify (SHA-256), convert once
    lmlab models license                           # the Apache-2.0 notice the models ship under
"""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import Annotated

import typer

models_app = typer.Typer(
    name="models",
    help="Embedded language models: list, fetch (verify + convert), licence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


@models_app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
) -> None:
    """Each catalog model: id, size, sources found here, and whether its checksum was verified."""
    from rich.console import Console
    from rich.table import Table

    from lmlab.models import get_card, model_ids, model_status

    rows = [model_status(m) for m in model_ids()]
    if as_json:
        for r in rows:
            card = get_card(r["id"])
            r.update(file=card.file, sha256=card.sha256, hub_repo=card.hub_repo,
                     revision=card.revision)
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="lmlab models")
    for col in ("id", "size", "params", "licence", "found here", "verified", "to get it"):
        table.add_column(col)
    for r in rows:
        get = "" if r["verified"] else (
            f"lmlab models fetch {r['id']}" if r["found"] else r["install"]
        )
        table.add_row(r["id"], _gb(r["size"]), r["params"], r["license"],
                      ", ".join(r["found"]) or "-", "yes" if r["verified"] else "no", get)
    Console().print(table)


@models_app.command("fetch")
def fetch(
    model_id: Annotated[str, typer.Argument(help="A catalog id (see `lmlab models list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object at the end.")] = False,
) -> None:
    """Assemble the model's official GGUF, verify its size and SHA-256, convert it once."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from lmlab.models import EMBEDDED, get_card, model_status

    card = get_card(model_id)
    module = EMBEDDED[card.id]
    start = time.perf_counter()
    err = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  DownloadColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err, transient=False) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = {"assemble": "assemble + SHA-256", "convert": "convert to safetensors"}
                tasks[stage] = bar.add_task(label.get(stage, stage), total=total or None)
                for other, t in tasks.items():  # a new stage ends the one before
                    if other != stage and bar.tasks[t].total is None:
                        bar.update(t, total=1, completed=1)
            bar.update(tasks[stage], completed=done)

        if hasattr(module, "card"):
            folder = module.ensure_converted(progress)
        else:  # SmolLM2: one file in its own wheel, its own conversion
            folder = module.ensure_converted()
        if "convert" in tasks:
            bar.update(tasks["convert"], total=1, completed=1)
    status = model_status(card.id)
    out = {"id": card.id, "folder": str(folder), "verified": status["verified"],
           "sha256": card.sha256, "size": card.size, "wall_s": round(time.perf_counter() - start, 1)}
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    else:
        typer.echo(f"{card.id}: verified (SHA-256 {card.sha256[:16]}...), converted in {folder} "
                   f"({out['wall_s']} s)")


@models_app.command("license")
def license_text(
    model_id: Annotated[str | None, typer.Argument(help="A catalog id (default: all).")] = None,
) -> None:
    """Print the models' provenance notice and the licence text they are distributed under."""
    from lmlab.models import get_card

    if model_id is not None:
        get_card(model_id)  # an unknown id fails here
    folder = resources.files("lmlab.models") / "licenses"
    typer.echo((folder / "NOTICE").read_text(encoding="utf-8"))
    typer.echo((folder / "Apache-2.0.txt").read_text(encoding="utf-8"))
