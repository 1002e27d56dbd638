"""``lmlab llm``: check a backend by hand.

    lmlab llm chat --model openai:MODEL@http://127.0.0.1:8000/v1 --n 4 --json "Name a prime."
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lmlab.errors import LmlabError

llm_app = typer.Typer(
    name="llm",
    help="Language-model backends: hf:MODEL, openai:MODEL@URL, replay:FILE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@llm_app.command("chat")
def chat(
    prompt: Annotated[str, typer.Argument(help="The user message (or raw text with --raw).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Backend spec: hf:MODEL, openai:MODEL@URL or replay:FILE.")] = "hf:smollm2-135m-instruct",
    n: Annotated[int, typer.Option("--n", "-n", help="Number of samples.")] = 1,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="Sampling temperature (0: greedy).")] = 1.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Tokens per sample at most.")] = 128,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the samples.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system message.")] = None,
    stop: Annotated[list[str] | None, typer.Option("--stop", help="A stop string (repeatable).")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Send PROMPT as a raw completion prompt, not chat.")] = False,
    logprobs: Annotated[bool, typer.Option("--logprobs", help="Ask for token log-probabilities.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    record: Annotated[Path | None, typer.Option("--record", help="Record the call to (and replay it from) this JSONL file.")] = None,
    run: Annotated[Path | None, typer.Option("--run", help="Account the call in this run folder (llm_usage.json).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="openai: seconds per HTTP call.")] = None,
    retries: Annotated[int | None, typer.Option("--retries", help="openai: retries after a failed call.")] = None,
) -> None:
    """Run one request and print its completions."""
    from lmlab.llm.request import Request
    from lmlab.llm.spec import get_backend, parse_spec

    kind = parse_spec(model).kind  # a malformed spec fails before any other work
    if raw and system is not None:
        raise LmlabError("--system needs a chat request; drop --raw")
    settings = {
        "n": n, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
        "seed": seed, "stop": tuple(stop or ()), "logprobs": logprobs,
    }
    request = Request(prompt=prompt, **settings) if raw else Request.chat(prompt, system=system, **settings)
    options: dict = {}
    if timeout is not None or retries is not None:
        if kind != "openai":
            raise LmlabError("--timeout and --retries apply to openai: backends only")
        if timeout is not None:
            options["timeout"] = timeout
        if retries is not None:
            options["max_retries"] = retries
    with get_backend(model, run=run, record=record, **options) as backend:
        completions = backend.generate([request])[0]
        usage = backend.usage.as_dict()
    if as_json:
        usage.pop("by_model", None)
        out = {
            "model": model,
            "source": backend.source,
            "request": request.to_dict(),
            "completions": [c.to_dict() for c in completions],
            "usage": usage,
        }
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    for c in completions:
        if n > 1:
            typer.echo(f"--- sample {c.index} ({c.finish_reason}, {c.completion_tokens} tokens)")
        typer.echo(c.text)
    typer.echo(
        f"[{backend.source}: {usage['completions']} completion(s), {usage['prompt_tokens']} prompt + "
        f"{usage['completion_tokens']} completion tokens, {usage['wall_s']:.2f} s]",
        err=True,
    )
