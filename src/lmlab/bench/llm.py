"""Speed of a language-model backend on CPU: what an agent loop and a sampler pay.

``lmlab bench llm --model SPEC --json`` measures, on one backend (``hf:ID`` by default; any spec
`lmlab.llm.get_backend` takes), in one process after a warm-up call:

* **agent turn** (`agent_tokens`-token chat prompt, greedy): time to first token (TTFT, the
  latency of a ``max_tokens=1`` call) on a prompt nothing was computed for (*cold*), and on the
  next turn (the same prompt plus an assistant action and an observation) right after the first
  turn (*warm*: prefix reuse, when the backend has it) and cold again; prefill tokens/s is the
  cold prompt's tokens over its TTFT. Cold prompts start with a fresh nonce, so no engine can
  reuse anything from another call.
* **agent loop, end to end**: `agent_turns` turns from an `agent_tokens`-token prompt, each a
  greedy answer of at most `turn_tokens` tokens followed by an observation (wall and CPU s).
* **decode**: tokens/s of greedy generation after the first token, from a short prompt
  (``(tokens - 1) / (t(decode_tokens) - t(1))``).
* **batched vs one at a time** (the sampler's workload): `samples` samples of `max_tokens`
  tokens for each of `prompts` chat prompts, temperature 1, fixed seeds; *batched* is one
  `generate` call holding every request, *per sample* is one call per sample on the first
  `sequential_prompts` prompts (a rate, so fewer prompts suffice). Goal: >= 4x.

Wall times on a shared machine vary with its load: ``cpu_s`` (this process's CPU seconds)
stands beside each wall time, and the ratios compare measurements taken in the same run.
"""

from __future__ import annotations

import statistics
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
_NAMES = ("Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jia", "Kofi", "Lena")
_TOPICS = ("budget", "hiring", "roadmap", "security audit", "vendor contract", "launch date",
           "office move", "customer churn", "pricing", "onboarding")


def _agent_prompt(tokenizer_len: Any, target_tokens: int, nonce: str) -> list[dict[str, str]]:
    """A ReAct-style agent conversation of about `target_tokens` tokens, starting with `nonce`."""
    system = (
        f"[session {nonce}] You are an assistant in a company. You answer a user's question by "
        "asking colleagues. Tools: search(query) returns documents; message(person, text) sends "
        "a colleague a question and returns the reply; finish(answer) ends the task. Answer with "
        "exactly one tool call per turn, on one line.\nColleagues:\n"
    )
    lines = []
    k = 0
    while True:
        name, topic = _NAMES[k % len(_NAMES)], _TOPICS[(k * 7) % len(_TOPICS)]
        lines.append(f"- {name} {k}: owns the {topic} files (room {100 + k}), knows about {topic} "
                     f"decisions made in quarter {1 + k % 4}.")
        msgs = [{"role": "system", "content": system + "\n".join(lines)},
                {"role": "user", "content": "Who approved the last pricing change, and when?"}]
        if tokenizer_len(msgs) >= target_tokens or k > 10_000:
            return msgs
        k += 1


def _next_turn(msgs: list[dict[str, str]]) -> list[dict[str, str]]:
    return [*msgs, {"role": "assistant", "content": "message(Dana 3, Who approved the last pricing change?)"},
            {"role": "user", "content": "Observation: Dana 3 replied: Ben approved it in March, after the audit."}]


def _timed(backend: Any, req: Any) -> tuple[float, float, Any]:
    """(wall s, CPU s, completions) of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = backend.generate([req])[0]
    return time.perf_counter() - w, time.process_time() - c, out


def bench_llm(
    prompts: int = 16,
    samples: int = 8,
    max_tokens: int = 32,
    sequential_prompts: int = 2,
    batch_size: int = 128,
    model: str = "hf:smollm2-135m-instruct",
    seed: int = 0,
    agent_tokens: int = 1200,
    decode_tokens: int = 64,
    agent_turns: int = 4,
    turn_tokens: int = 32,
    threads: int = 0,
    versus: str | None = None,
    agree_prompts: int = 16,
    agree_tokens: int = 48,
) -> dict[str, Any]:
    """Prefill/decode tokens/s, TTFT with and without prefix reuse, batched vs one at a time.

    `model` is a backend spec (``hf:ID``, ``llamacpp:ID``, ``openai:MODEL@URL``) or a bare hf model
    name. Returns a flat JSON-able dict (see the module docstring for the workloads). `threads`
    (0: leave as is) sets the torch thread count, which the llamacpp backend also takes.

    With `versus` (a second spec), the same workloads run on that backend next, in the same
    process with the same threads (one model loaded at a time), and the result adds ``versus``
    (its measurements), ``versus_speedup`` (how many times faster `versus` is than `model`, per
    workload: a rate's ratio, or a time's inverse ratio) and ``agreement`` (greedy answers to
    `agree_prompts` prompts of `agree_tokens` tokens compared token by token; see `agreement`).
    """
    from lmlab.executor import torch_threads

    if versus is not None and not 1 <= agree_prompts <= len(PROMPTS):
        raise ValueError(f"agree_prompts must be in 1..{len(PROMPTS)}, got {agree_prompts}")
    sizes = dict(prompts=prompts, samples=samples, max_tokens=max_tokens,
                 sequential_prompts=sequential_prompts, batch_size=batch_size, seed=seed,
                 agent_tokens=agent_tokens, decode_tokens=decode_tokens, agent_turns=agent_turns,
                 turn_tokens=turn_tokens)
    agree = (agree_prompts, agree_tokens) if versus is not None else None
    with torch_threads(threads):
        res, greedy = _bench_one(model, agree=agree, **sizes)
        if versus is None:
            return res
        other, other_greedy = _bench_one(versus, agree=agree, **sizes)
    res["versus"] = other
    res["versus_speedup"] = {
        **{k: other[k] / res[k] for k in _RATES},
        **{k: res[k] / other[k] for k in _TIMES},
    }
    res["agreement"] = agreement(greedy, other_greedy)
    return res


# How a versus backend's speed compares: rates (higher is faster) and times (lower is faster).
_RATES = ("prefill_tokens_per_s", "decode_tokens_per_s", "batched_samples_per_s",
          "batched_tokens_per_s", "per_sample_samples_per_s", "per_sample_tokens_per_s")
_TIMES = ("ttft_cold_s", "ttft_cold_cpu_s", "ttft_warm_s", "ttft_warm_cpu_s", "agent_loop_s",
          "agent_loop_cpu_s", "decode_s", "decode_cpu_s", "batched_wall_s", "batched_cpu_s")


def agreement(a: list[Any], b: list[Any]) -> dict[str, Any]:
    """How closely two backends' greedy answers to the same prompts agree.

    `a` and `b` hold one greedy `Completion` (with logprobs) per prompt. Per prompt: whether the
    prompts had the same token count (same template and tokenizer), whether the texts are equal,
    and the index of the first generated token that differs (the answer's length when none
    does); over the tokens both generated identically, the mean and largest absolute difference
    of the two models' log-probabilities.
    """
    first, diffs, rows = [], [], []
    for x, y in zip(a, b, strict=True):
        tx, ty = x.tokens or (), y.tokens or ()
        k = next((i for i, (p, q) in enumerate(zip(tx, ty, strict=False)) if p != q), min(len(tx), len(ty)))
        first.append(k)
        d = [abs(p - q) for p, q in zip((x.logprobs or ())[:k], (y.logprobs or ())[:k], strict=True)]
        diffs += d
        rows.append({"equal": x.text == y.text, "first_divergence": k, "tokens": [len(tx), len(ty)],
                     "same_prompt_tokens": x.prompt_tokens == y.prompt_tokens})
    n = len(rows)
    return {
        "prompts": n,
        "same_prompt_tokens": sum(r["same_prompt_tokens"] for r in rows),
        "exactly_equal": sum(r["equal"] for r in rows),
        "exactly_equal_fraction": sum(r["equal"] for r in rows) / n,
        "first_divergence_median": float(statistics.median(first)),
        "first_divergence_min": min(first),
        "logprob_abs_diff_mean": sum(diffs) / len(diffs) if diffs else float("nan"),
        "logprob_abs_diff_max": max(diffs) if diffs else float("nan"),
        "per_prompt": rows,
    }


def _bench_one(
    model: str,
    *,
    prompts: int,
    samples: int,
    max_tokens: int,
    sequential_prompts: int,
    batch_size: int,
    seed: int,
    agent_tokens: int,
    decode_tokens: int,
    agent_turns: int,
    turn_tokens: int,
    agree: tuple[int, int] | None,
) -> tuple[dict[str, Any], list[Any]]:
    """One backend's measurements, and its greedy answers for `agreement` when `agree` is
    ``(prompts, max_tokens)``."""
    import torch

    from lmlab.llm.request import Request
    from lmlab.llm.spec import KINDS, get_backend

    if not 1 <= prompts <= len(PROMPTS):
        raise ValueError(f"prompts must be in 1..{len(PROMPTS)}, got {prompts}")
    if samples < 1 or max_tokens < 1 or not 1 <= sequential_prompts <= prompts:
        raise ValueError("need samples >= 1, max_tokens >= 1 and 1 <= sequential_prompts <= prompts")
    if agent_tokens < 16 or decode_tokens < 2:
        raise ValueError("need agent_tokens >= 16 and decode_tokens >= 2")
    spec = model if model.split(":", 1)[0].lower() in KINDS else f"hf:{model}"
    options = {"batch_size": batch_size} if spec.startswith("hf:") else {}
    load_w, load_c = time.perf_counter(), time.process_time()
    backend = get_backend(spec, **options)
    load_s, load_cpu = time.perf_counter() - load_w, time.process_time() - load_c
    backend.generate([Request.chat("Hi.", n=2, max_tokens=4, seed=seed)])  # warm-up
    cpu0 = time.process_time()
    res: dict[str, Any] = {"model": spec, "load_s": load_s, "load_cpu_s": load_cpu}

    # -- agent turn: TTFT cold, warm (prefix reuse) and cold again ---------------------------------
    encode = getattr(backend, "encode", None)

    def n_tokens(msgs: list[dict[str, str]]) -> int:
        if encode is not None:
            return len(encode(Request(messages=msgs, max_tokens=1)))
        return sum(len(m["content"]) for m in msgs) // 4  # a server: ~4 characters a token

    one = {"temperature": 0.0, "max_tokens": 1}
    first = _agent_prompt(n_tokens, agent_tokens, "a1")
    w, c, out = _timed(backend, Request(messages=first, **one))
    res.update(ttft_cold_s=w, ttft_cold_cpu_s=c, agent_prompt_tokens=out[0].prompt_tokens,
               prefill_tokens_per_s=out[0].prompt_tokens / w)
    w, c, out = _timed(backend, Request(messages=_next_turn(first), **one))
    res.update(ttft_warm_s=w, ttft_warm_cpu_s=c, agent_next_prompt_tokens=out[0].prompt_tokens)
    other = _next_turn(_agent_prompt(n_tokens, agent_tokens, "b2"))
    w, c, _ = _timed(backend, Request(messages=other, **one))
    res.update(ttft_next_cold_s=w, ttft_next_cold_cpu_s=c,
               ttft_reuse_speedup=w / res["ttft_warm_s"])

    # -- an agent loop, end to end: each turn answers (greedy, <= turn_tokens) and gets an observation
    msgs = _agent_prompt(n_tokens, agent_tokens, "c3")
    w0, c0 = time.perf_counter(), time.process_time()
    loop_tokens = 0
    for t in range(agent_turns):
        out = backend.generate([Request(messages=msgs, temperature=0.0, max_tokens=turn_tokens)])[0][0]
        loop_tokens += out.completion_tokens
        msgs = [*msgs, {"role": "assistant", "content": out.text},
                {"role": "user", "content": f"Observation {t}: {_NAMES[t % len(_NAMES)]} replied: "
                                            "I do not know; ask someone who owns the pricing files."}]
    res.update(agent_loop_s=time.perf_counter() - w0, agent_loop_cpu_s=time.process_time() - c0,
               agent_loop_turns=agent_turns, agent_loop_tokens=loop_tokens)

    # -- decode ---------------------------------------------------------------------------------
    # the nonce opens the system message, so the two prompts share no prefix worth reusing
    story = "Tell a long story about a lighthouse keeper and a storm."
    w1, _, _ = _timed(backend, Request.chat(story, system="[d1] You tell stories.",
                                            temperature=0.0, max_tokens=1))
    wn, cn, out = _timed(backend, Request.chat(story, system="[d2] You tell stories.",
                                               temperature=0.0, max_tokens=decode_tokens))
    gen = out[0].completion_tokens
    res.update(decode_tokens=gen, decode_s=wn, decode_cpu_s=cn,
               decode_tokens_per_s=(gen - 1) / max(wn - w1, 1e-9) if gen > 1 else float("nan"))

    # -- batched vs one call per sample ---------------------------------------------------------
    reqs = [
        Request.chat(p, n=samples, max_tokens=max_tokens, temperature=1.0, seed=seed + k)
        for k, p in enumerate(PROMPTS[:prompts])
    ]
    start, c0 = time.perf_counter(), time.process_time()
    batched = backend.generate(reqs)
    batched_s, batched_cpu = time.perf_counter() - start, time.process_time() - c0
    batched_tokens = sum(c.completion_tokens for cs in batched for c in cs)

    start, c0 = time.perf_counter(), time.process_time()
    seq_samples = seq_tokens = 0
    for r in reqs[:sequential_prompts]:
        for j in range(samples):
            single = Request.chat(r.messages[-1]["content"], n=1, max_tokens=max_tokens,
                                  temperature=1.0, seed=r.seed * 1000 + j)
            c = backend.generate([single])[0][0]
            seq_samples += 1
            seq_tokens += c.completion_tokens
    seq_s, seq_cpu = time.perf_counter() - start, time.process_time() - c0
    greedy = []
    if agree is not None:
        n_agree, agree_tokens = agree
        answers = backend.generate([Request.chat(p, temperature=0.0, max_tokens=agree_tokens, logprobs=True)
                                    for p in PROMPTS[:n_agree]])
        greedy = [cs[0] for cs in answers]
    backend.close()

    n_batched = prompts * samples
    b_rate, s_rate = n_batched / batched_s, seq_samples / seq_s
    res.update({
        "batched_samples_per_s": b_rate,
        "per_sample_samples_per_s": s_rate,
        "speedup": b_rate / s_rate,
        "batched_tokens_per_s": batched_tokens / batched_s,
        "per_sample_tokens_per_s": seq_tokens / seq_s,
        "token_speedup": (batched_tokens / batched_s) / (seq_tokens / seq_s),
        "batched_wall_s": batched_s,
        "batched_cpu_s": batched_cpu,
        "per_sample_wall_s": seq_s,
        "per_sample_cpu_s": seq_cpu,
        "batched_samples": n_batched,
        "per_sample_samples": seq_samples,
        "mean_tokens_per_sample": batched_tokens / n_batched,
        "goal_speedup": 4.0,
        "cpu_s": time.process_time() - cpu0,
        "config": {
            "prompts": prompts, "samples": samples, "max_tokens": max_tokens,
            "sequential_prompts": sequential_prompts, "batch_size": batch_size, "model": spec,
            "seed": seed, "agent_tokens": agent_tokens, "decode_tokens": decode_tokens,
            "agent_turns": agent_turns, "turn_tokens": turn_tokens,
            "device": "cpu",
        },
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    })
    return res, greedy
