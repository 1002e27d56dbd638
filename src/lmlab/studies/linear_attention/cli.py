"""`lmlab linear-attention ...`: the paper's tools on your own data.

    lmlab linear-attention certify DATA [--key Z] [--prefixes] [--json]
    lmlab linear-attention fit DATA --out heads.safetensors [--prefixes] [--json]

DATA is .npy, .npz or .safetensors holding sequences Z of shape (N, n, d) (one row per token;
`fit` also needs targets Y: (N, d_out), or (N, n, d_out) with --prefixes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lmlab.errors import LmlabError

app = typer.Typer(
    name="linear-attention",
    help="Certify a dataset's identifiability; learn an MHLA exactly by least squares.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

Data = Annotated[Path, typer.Argument(help="Sequences (N, n, d) in .npy, .npz or .safetensors.")]
Prefixes = Annotated[bool, typer.Option("--prefixes", help="Every prefix of a sequence is an example.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@app.command()
def certify(
    data: Data,
    key: Annotated[str | None, typer.Option(help="Array name in a .npz/.safetensors file (default Z).")] = None,
    prefixes: Prefixes = False,
    rtol: Annotated[float, typer.Option(help="Identifiable when lambda_min > rtol * lambda_max.")] = 1e-10,
    as_json: AsJson = False,
) -> None:
    """Smallest eigenvalue of the data's second-moment matrix: > 0 means every ERM is the same MHLA."""
    from lmlab.studies.linear_attention.certificate import certify as certify_data
    from lmlab.studies.linear_attention.certificate import load_sequences

    if not rtol >= 0:
        raise LmlabError(f"--rtol must be >= 0, got {rtol}")
    cert = certify_data(load_sequences(data, key), prefixes=prefixes, rtol=rtol)
    if as_json:
        print(json.dumps(cert.to_dict(), indent=2))
        return
    verdict = "[green]identifiable[/]" if cert.identifiable else "[red]not identifiable[/]"
    console.print(
        f"{data}: {cert.n_examples} examples, d = {cert.d}, psi = {cert.psi}\n"
        f"lambda_min = {cert.lambda_min:.6g}, lambda_max = {cert.lambda_max:.6g}, "
        f"rank {cert.rank}/{cert.psi}: {verdict}"
    )


@app.command()
def fit(
    data: Data,
    out: Annotated[Path, typer.Option(help="Where to write the heads (V, Q) as safetensors.")],
    prefixes: Prefixes = False,
    as_json: AsJson = False,
) -> None:
    """Algorithm 1: minimum-norm least squares on the cubic features, folded back into heads."""
    from lmlab.runs import save_tensors
    from lmlab.studies.linear_attention.certificate import certify as certify_data
    from lmlab.studies.linear_attention.certificate import load_sequences
    from lmlab.studies.linear_attention.regression import fit_mhla

    Z = load_sequences(data, "Z")
    Y = _load_targets(data, Z, prefixes)
    result = fit_mhla(Z, Y, prefixes=prefixes)
    heads = result.heads()
    cert = certify_data(Z, prefixes=prefixes)
    save_tensors(out, {"V": heads.V, "Q": heads.Q},
                 {"d": result.d, "train_mse": result.train_mse, "certificate": cert.to_dict()})
    summary = {"examples": result.n_examples, "d": result.d, "d_out": heads.d_out,
               "heads": heads.n_heads, "train_mse": result.train_mse,
               "lambda_min": cert.lambda_min, "identifiable": cert.identifiable, "out": str(out)}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    console.print(
        f"fit {result.n_examples} examples (d = {result.d}, d_out = {heads.d_out}): "
        f"train MSE {result.train_mse:.3g}, {heads.n_heads} heads -> {out}\n"
        f"certificate: lambda_min = {cert.lambda_min:.3g} "
        f"({'unique function' if cert.identifiable else 'not identifiable: other minimizers exist'})"
    )


def _load_targets(data: Path, Z, prefixes: bool):
    """Y from the same file, checked against Z."""
    import numpy as np
    import torch

    suffix = data.suffix.lower()
    if suffix == ".npz":
        with np.load(data, allow_pickle=False) as f:
            if "Y" not in f.files:
                raise LmlabError(f"{data}: no targets 'Y' (arrays: {', '.join(f.files)})")
            Y = f["Y"]
    elif suffix == ".safetensors":
        from safetensors.numpy import load_file

        arrays = load_file(str(data))
        if "Y" not in arrays:
            raise LmlabError(f"{data}: no targets 'Y' (arrays: {', '.join(arrays)})")
        Y = arrays["Y"]
    else:
        raise LmlabError(f"{data}: fit needs Z and Y in one .npz or .safetensors file")
    want = tuple(Z.shape[:2]) if prefixes else tuple(Z.shape[:1])
    if Y.ndim == len(want):
        Y = Y[..., None]
    if tuple(Y.shape[:-1]) != want:
        shape = "(N, n, d_out)" if prefixes else "(N, d_out)"
        raise LmlabError(f"{data}: Y has shape {Y.shape}; with Z {tuple(Z.shape)} it must be {shape}")
    if not np.isfinite(Y).all():
        raise LmlabError(f"{data}: the targets contain NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float64))
