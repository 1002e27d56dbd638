"""Sampling throughput of the hf backend: batched generation against one call per sample.

The workload is the issue's: `samples` samples of `max_tokens` tokens for each of `prompts` chat
prompts, with the embedded SmolLM2-135M-Instruct on CPU, temperature 1, fixed seeds. *Batched*
is one `generate` call holding every request (all samples of all prompts are rows of one batch,
up to `batch_size` rows per forward pass). *Per sample* is one `generate` call per sample, each a
one-row batch: what a client does when it loops over samples. Both run in the same process,
after a warm-up call, on the same model.

The per-sample baseline is slow (that is the point), so by default it runs on the first
`sequential_prompts` prompts only: samples per second is a rate, and every prompt has the same
shape (a short question, 32 sampled tokens). Pass ``sequential_prompts=prompts`` for the full set.
Reported: samples/s and generated tokens/s of both, and their ratio (goal: >= 4x).
"""

from __future__ import annotations

import time
from typing import Any

PROMPTS = (
    "Write a short story about a lighthouse keeper.",
    "Describe the water cycle to a ten-year-old.",
    "Give three tips for learning a new language.",
    "Explain why the sky is blue.",
    "Write a poem about autumn leaves.",
    "What makes a good breakfast?",
    "Describe a walk through a busy market.",
    "Explain how a bicycle works.",
    "Write a letter to a friend about your holiday.",
    "What are the benefits of reading books?",
    "Describe the life of a honeybee.",
    "Explain what a computer program is.",
    "Write a recipe for a simple soup.",
    "Describe a thunderstorm at night.",
    "Why do people keep pets?",
    "Explain how plants grow from seeds.",
)


def bench_llm(
    prompts: int = 16,
    samples: int = 8,
    max_tokens: int = 32,
    sequential_prompts: int = 2,
    batch_size: int = 128,
    model: str = "smollm2-135m-instruct",
    seed: int = 0,
) -> dict[str, Any]:
    """Samples/s of batched generation vs one call per sample (hf backend, same run).

    Returns batched and per-sample samples/s and tokens/s, the ratios, the wall times and the
    configuration. See the module docstring for the workload.
    """
    import torch

    from lmlab.llm.hf import HFBackend
    from lmlab.llm.request import Request

    if not 1 <= prompts <= len(PROMPTS):
        raise ValueError(f"prompts must be in 1..{len(PROMPTS)}, got {prompts}")
    if samples < 1 or max_tokens < 1 or not 1 <= sequential_prompts <= prompts:
        raise ValueError("need samples >= 1, max_tokens >= 1 and 1 <= sequential_prompts <= prompts")
    backend = HFBackend(model, batch_size=batch_size)
    reqs = [
        Request.chat(p, n=samples, max_tokens=max_tokens, temperature=1.0, seed=seed + k)
        for k, p in enumerate(PROMPTS[:prompts])
    ]
    backend.generate([Request.chat("Hi.", n=2, max_tokens=4, seed=seed)])  # warm-up

    start = time.perf_counter()
    batched = backend.generate(reqs)
    batched_s = time.perf_counter() - start
    batched_tokens = sum(c.completion_tokens for cs in batched for c in cs)

    start = time.perf_counter()
    seq_samples = seq_tokens = 0
    for r in reqs[:sequential_prompts]:
        for j in range(samples):
            one = Request.chat(r.messages[-1]["content"], n=1, max_tokens=max_tokens,
                               temperature=1.0, seed=r.seed * 1000 + j)
            c = backend.generate([one])[0][0]
            seq_samples += 1
            seq_tokens += c.completion_tokens
    seq_s = time.perf_counter() - start

    n_batched = prompts * samples
    b_rate, s_rate = n_batched / batched_s, seq_samples / seq_s
    return {
        "batched_samples_per_s": b_rate,
        "per_sample_samples_per_s": s_rate,
        "speedup": b_rate / s_rate,
        "batched_tokens_per_s": batched_tokens / batched_s,
        "per_sample_tokens_per_s": seq_tokens / seq_s,
        "token_speedup": (batched_tokens / batched_s) / (seq_tokens / seq_s),
        "batched_wall_s": batched_s,
        "per_sample_wall_s": seq_s,
        "batched_samples": n_batched,
        "per_sample_samples": seq_samples,
        "mean_tokens_per_sample": batched_tokens / n_batched,
        "goal_speedup": 4.0,
        "config": {
            "prompts": prompts, "samples": samples, "max_tokens": max_tokens,
            "sequential_prompts": sequential_prompts, "batch_size": batch_size, "model": model,
            "seed": seed, "dtype": "float32", "device": "cpu",
        },
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
