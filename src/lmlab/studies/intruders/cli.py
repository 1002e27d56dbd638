"""`lmlab intruders BASE [TUNED] [--adapter PATH] ...`: intruder dimensions of a fine-tuned model.

    lmlab intruders smollm2-135m-instruct ./my-finetune
    lmlab intruders smollm2-135m-instruct --adapter ./lora-adapter --json
    lmlab intruders base.safetensors tuned.safetensors --targets qv --k 10 --eps 0.5 --out figs/

BASE and TUNED are weight specs (see `lmlab.studies.intruders.loading`): embedded model names,
Hugging Face folders or hub ids, lmlab run folders or checkpoints, safetensors or torch state
dicts. With --adapter the PEFT LoRA adapter is merged over TUNED (or over BASE when TUNED is
omitted). --out DIR writes `intruders.json` and the figures, only after the analysis succeeded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lmlab.errors import LmlabError
from lmlab.studies.intruders.detect import TARGET_SETS, IntruderReport, analyze, match_targets

__all__ = ["intruders", "parse_targets", "render_table"]


def parse_targets(targets: str) -> str | list[str]:
    """A target set name, or a comma-separated list of module names (``q_proj,v_proj``)."""
    t = targets.strip()
    if t in (*TARGET_SETS, "all"):
        return t
    names = [x.strip() for x in t.split(",") if x.strip()]
    if not names:
        raise LmlabError("--targets is empty; use all-linear, attn, mlp, qv, all or module names")
    return names


def render_table(report: IntruderReport) -> Table:
    """The per-matrix table: layer, kind, shape, count, min max-|cos|, ||dW||/sigma_k, eff. rank."""
    table = Table(title=f"intruder dimensions (k={report.k}, eps={report.eps})",
                  show_lines=False)
    for col, just in (("layer", "right"), ("matrix", "left"), ("shape", "left"),
                      ("intruders", "right"), ("min max|cos|", "right"),
                      ("||dW||/sigma_k", "right"), ("eff. rank dW", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for m in report.matrices:
        table.add_row(
            "-" if m.layer is None else str(m.layer),
            m.kind if m.layer is not None else m.name.removesuffix(".weight"),
            "x".join(map(str, m.shape)),
            f"[bold red]{m.count}[/]" if m.count else "0",
            f"{min(m.max_cos):.3f}",
            f"{m.dw_over_sigma_k:.3g}",
            f"{m.effective_rank_delta:.2f}",
        )
    return table


def intruders(
    base: Annotated[str, typer.Argument(
        help="Base weights: embedded model name, HF folder or hub id, run folder, checkpoint, "
             "safetensors file.")],
    tuned: Annotated[str | None, typer.Argument(
        help="Tuned weights (same kinds); omit with --adapter to compare BASE + adapter.")] = None,
    adapter: Annotated[str | None, typer.Option(
        "--adapter", help="A PEFT LoRA adapter folder, merged over TUNED (or BASE).")] = None,
    k: Annotated[int, typer.Option("--k", help="Top-k tuned singular vectors examined.")] = 10,
    eps: Annotated[float, typer.Option(
        "--eps", help="Intruder when max |cos| with every base vector is below this.")] = 0.5,
    targets: Annotated[str, typer.Option(
        "--targets", help="all-linear, attn, mlp, qv, all, or module names (q_proj,v_proj).")
    ] = "all-linear",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for intruders.json and the figures (PNG).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
) -> None:
    """Intruder dimensions: new top singular vectors of a fine-tuned model (Shuttleworth et al.)."""
    from lmlab.studies.intruders.loading import load_pair

    if k < 1:
        raise LmlabError(f"--k must be at least 1, got {k}")
    if not eps > 0:
        raise LmlabError(f"--eps must be positive, got {eps}")
    if out is not None and out.exists() and not out.is_dir():
        raise LmlabError(f"--out {out} exists and is not a folder")
    sel = parse_targets(targets)
    w0, wt = load_pair(base, tuned, adapter, only=lambda key: match_targets(key, sel))
    report = analyze(w0, wt, k=k, eps=eps, targets=sel, device=device)
    data = report.to_dict()
    data.update({"base": base, "tuned": tuned, "adapter": adapter, "sweep": report.sweep()})
    if out is not None:
        from lmlab.runs import atomic_write_json
        from lmlab.studies.intruders.figures import write_figures

        data["figures"] = [p.name for p in write_figures(report, out)]
        atomic_write_json(out / "intruders.json", data)
    if json_out:
        typer.echo(json.dumps(data))
        return
    console = Console()
    console.print(render_table(report))
    sets = ", ".join(f"{t} {n}" for t, n in report.by_target.items())
    console.print(f"total: [bold]{report.total}[/] intruder dimensions in "
                  f"{len(report.matrices)} matrices ({sets}); {report.seconds:.2f} s on "
                  f"{report.device}", highlight=False)
    if out is not None:
        console.print(f"wrote {out}/intruders.json and {len(data['figures'])} figures",
                      highlight=False)
