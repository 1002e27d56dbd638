"""Training throughput of lmlab's GPT against Hugging Face's GPT-2 of the same shape, same run.

Both models get the same shape (d_model 128, 4 layers, 4 heads, vocab 8192, context 64, tied
embeddings, no dropout), the same batches (64 x 64 random tokens, a fresh batch each step), fp32,
and the same AdamW settings. Hugging Face runs with its defaults except
`attn_implementation="sdpa"`, its fastest attention on CPU. The two models take their steps in
turns, so drift in the machine (clock, load from other processes) hits both alike; warmup steps
are not timed; the reported numbers are medians over repetitions.

MFU (model FLOPs utilization) = achieved model FLOP/s / measured peak FLOP/s, where
    model FLOPs per token = 6 * N + 6 * n_layer * T * d_model
with N the parameters that take part in a matmul (every block weight plus the unembedding; the
embedding lookups are gathers, not matmuls) and the second term the attention score and
weighted-sum matmuls (2 * 2 * T * d forward per layer, times 3 for forward plus backward, halved
for the causal mask; PaLM appendix B without the causal halving has 12 instead of 6). The peak is
the median FLOP/s of fp32 1024 x 1024 matmuls measured in the same process, so MFU compares the
training step with the best this machine does on one large matmul.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from lmlab.errors import require
from lmlab.nn.gpt import GPT, GPTConfig

__all__ = ["BENCH_SHAPE", "bench_train", "compiled_vs_eager", "matmul_peak_flops",
           "model_flops_per_token"]

BENCH_SHAPE: dict[str, Any] = {
    "d_model": 128,
    "n_layer": 4,
    "n_head": 4,
    "vocab_size": 8192,
    "seq_len": 64,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 0.1,
    "dtype": "float32",
}


def model_flops_per_token(d_model: int, n_layer: int, vocab_size: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 * N_matmul + 6 * n_layer * T * d (see the module docstring)."""
    n_matmul = n_layer * 12 * d_model * d_model + vocab_size * d_model
    return 6.0 * n_matmul + 6.0 * n_layer * seq_len * d_model


def matmul_peak_flops(n: int = 1024, reps: int = 10, device: str = "cpu") -> float:
    """Median FLOP/s of an fp32 (n x n) @ (n x n) matmul (2 n^3 FLOPs each)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    times = []
    for i in range(reps + 2):
        _sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        if i >= 2:  # the first calls pay for allocation and thread start-up
            times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times)


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _lmlab_model(shape: dict[str, Any]) -> nn.Module:
    cfg = GPTConfig(
        vocab_size=shape["vocab_size"],
        block_size=shape["seq_len"],
        n_layer=shape["n_layer"],
        n_head=shape["n_head"],
        d_model=shape["d_model"],
        dropout=0.0,
        pos="learned",
        tie_embeddings=True,
    )
    return GPT(cfg)


def _hf_model(shape: dict[str, Any]) -> nn.Module:
    transformers = require("transformers", extra="hf")
    cfg = transformers.GPT2Config(
        vocab_size=shape["vocab_size"],
        n_positions=shape["seq_len"],
        n_embd=shape["d_model"],
        n_layer=shape["n_layer"],
        n_head=shape["n_head"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
        bos_token_id=None,  # GPT-2's 50256 lies outside this vocabulary
        eos_token_id=None,
        attn_implementation="sdpa",
    )
    model = transformers.GPT2LMHeadModel(cfg)
    model.loss_type = "ForCausalLM"  # the default it would pick anyway, named to skip a warning
    return model


def _step_fn(model: nn.Module, kind: str, shape: dict[str, Any]) -> Callable[[Tensor], float]:
    """One training step on a (B, T + 1) batch of token ids; returns the loss."""
    # fused=True: one kernel for all parameters, the fastest AdamW on CPU and CUDA (the default
    # on CPU is a per-tensor Python loop). Both models get exactly the same optimizer settings.
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=shape["lr"],
        weight_decay=shape["weight_decay"],
        fused=True,
    )

    def step(batch: Tensor) -> float:
        if kind == "lmlab":
            _, loss = model(batch[:, :-1], batch[:, 1:])
        else:
            # GPT-2 shifts the labels inside the model: it takes the same ids as labels.
            ids = batch[:, :-1]
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def _cpu_with_children() -> float:
    """CPU seconds of this process and of its reaped children (inductor's C++ compiler)."""
    import resource

    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def compiled_vs_eager(reps: int = 3, steps: int = 4, mode: str = "default",
                      device: str = "cpu", shape: dict[str, Any] | None = None) -> dict:
    """lmlab's GPT at the bench shape, eager against `torch.compile(model, mode=mode)`.

    Two copies of the same initial model take the same fresh batches in turns, as in
    `bench_train`. The compiled copy's first step compiles (dynamo's trace, inductor's code
    generation and its C++ compiler, in this process: `compile_threads=1`, so the compiler's
    CPU is counted); `compile_cpu_s` is that step less an eager step. Steady state: the median
    over `reps` repetitions of the CPU seconds per step of `steps` steps. `break_even_steps` =
    compile CPU / (eager - compiled CPU per step): how long a job must train before compiling
    pays (None when a compiled step is not cheaper). Inductor keeps what it compiled on disk
    (`TORCHINDUCTOR_CACHE_DIR`), so a second process compiles the same graph for less; an empty
    folder there measures the cold compile a first run pays. `shape` overrides entries of
    `BENCH_SHAPE`.
    """
    import torch._dynamo
    import torch._inductor.config as inductor_config

    shape = {**BENCH_SHAPE, **(shape or {})}
    B, T, V = shape["batch_size"], shape["seq_len"], shape["vocab_size"]
    torch.manual_seed(1)
    batches = torch.randint(0, V, (2 + reps * steps, B, T + 1)).to(device)
    models = {}
    for kind in ("eager", "compiled"):
        torch.manual_seed(0)
        models[kind] = _lmlab_model(shape).to(device).train()
    before = inductor_config.compile_threads
    inductor_config.compile_threads = 1
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    try:
        fn = {"eager": models["eager"],
              "compiled": torch.compile(models["compiled"],
                                        **({} if mode == "default" else {"mode": mode}))}
        step = {k: _step_fn(m, "lmlab", shape) for k, m in fn.items()}
        first: dict[str, tuple[float, float]] = {}
        for kind in ("eager", "compiled"):
            _sync(device)
            t0, c0 = time.perf_counter(), _cpu_with_children()
            step[kind](batches[0])
            _sync(device)
            first[kind] = (time.perf_counter() - t0, _cpu_with_children() - c0)
        step["eager"](batches[1])  # the eager model's second step, as warm as the compiled one's
        step["compiled"](batches[1])
        cpu = {"eager": [0.0] * reps, "compiled": [0.0] * reps}
        wall = {"eager": [0.0] * reps, "compiled": [0.0] * reps}
        loss: dict[str, float] = {}
        for r in range(reps):
            for s in range(steps):
                i = 2 + r * steps + s
                for kind in (("eager", "compiled") if i % 2 == 0 else ("compiled", "eager")):
                    _sync(device)
                    t0, c0 = time.perf_counter(), time.process_time()
                    loss[kind] = step[kind](batches[i])
                    _sync(device)
                    wall[kind][r] += time.perf_counter() - t0
                    cpu[kind][r] += time.process_time() - c0
        graphs = int(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    finally:
        inductor_config.compile_threads = before
    per = {k: statistics.median(c / steps for c in v) for k, v in cpu.items()}
    compile_cpu = first["compiled"][1] - per["eager"]
    gain = per["eager"] - per["compiled"]
    return {
        "mode": mode,
        "compile_wall_s": first["compiled"][0] - statistics.median(w / steps
                                                                    for w in wall["eager"]),
        "compile_cpu_s": compile_cpu,
        "eager_cpu_s_per_step": per["eager"],
        "compiled_cpu_s_per_step": per["compiled"],
        "eager_wall_s_per_step": statistics.median(w / steps for w in wall["eager"]),
        "compiled_wall_s_per_step": statistics.median(w / steps for w in wall["compiled"]),
        "speedup_cpu": per["eager"] / per["compiled"],
        "break_even_steps": compile_cpu / gain if gain > 0 else None,
        "graphs": graphs,
        "eager_final_loss": loss["eager"],
        "compiled_final_loss": loss["compiled"],
        "config": {**shape, "reps": reps, "steps": steps, "device": device,
                   "inductor_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR")},
    }


def bench_train(reps: int = 5, steps: int = 10, device: str = "cpu", warmup: int = 3,
                compile: bool = False) -> dict:
    """Tokens/s of training steps for lmlab's GPT and HF GPT-2 (same shape), and their MFU.

    In each repetition the two models take `steps` steps in turns (one step each, alternating
    which goes first), so a burst of load from elsewhere slows both alike; both see the same
    fresh batch at each step. Tokens/s and the matmul peak are medians over repetitions.
    Returns lmlab_tokens_per_s, hf_tokens_per_s, ratio (lmlab / hf), the CPU seconds per step
    of each and their ratio (`ratio_cpu`, hf / lmlab: above 1 when lmlab's is cheaper), mfu_lmlab, mfu_hf,
    peak_flops, flops_per_token, the final losses and parameter counts of both, config, torch,
    threads; with `compile`, also `compiled_vs_eager` (see that function).
    """
    if reps < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"need reps >= 1, steps >= 1, warmup >= 0; got {reps}, {steps}, {warmup}")
    shape = dict(BENCH_SHAPE)
    torch.manual_seed(0)
    B, T, V = shape["batch_size"], shape["seq_len"], shape["vocab_size"]
    # Random tokens, a fresh batch every step: nothing to memorize, so the loss stays near
    # ln(V) and the arithmetic stays in the regime of real training (no underflowing softmax).
    batches = torch.randint(0, V, (warmup + reps * steps, B, T + 1)).to(device)
    models = {"lmlab": _lmlab_model(shape).to(device), "hf": _hf_model(shape).to(device)}
    step = {k: _step_fn(m.train(), k, shape) for k, m in models.items()}
    for i in range(warmup):
        for fn in step.values():
            fn(batches[i])

    elapsed = {"lmlab": [0.0] * reps, "hf": [0.0] * reps}
    cpu = {"lmlab": [0.0] * reps, "hf": [0.0] * reps}
    peaks: list[float] = []
    last_loss: dict[str, float] = {}
    for r in range(reps):
        for s in range(steps):
            batch = batches[warmup + r * steps + s]
            order = ("lmlab", "hf") if (r * steps + s) % 2 == 0 else ("hf", "lmlab")
            for kind in order:
                _sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
                last_loss[kind] = step[kind](batch)
                _sync(device)
                elapsed[kind][r] += time.perf_counter() - t0
                cpu[kind][r] += time.process_time() - c0
        peaks.append(matmul_peak_flops(reps=5, device=device))

    tokens = B * T * steps
    lm = statistics.median(tokens / t for t in elapsed["lmlab"])
    hf = statistics.median(tokens / t for t in elapsed["hf"])
    lm_cpu = statistics.median(c / steps for c in cpu["lmlab"])
    hf_cpu = statistics.median(c / steps for c in cpu["hf"])
    peak = statistics.median(peaks)
    fpt = model_flops_per_token(shape["d_model"], shape["n_layer"], V, T)
    return {
        "lmlab_tokens_per_s": lm,
        "hf_tokens_per_s": hf,
        "ratio": lm / hf,
        # CPU seconds per step (this process, all its threads): on a loaded machine, where wall
        # time also counts the waits for a core, the steadier measure of the same ratio
        "lmlab_cpu_s_per_step": lm_cpu,
        "hf_cpu_s_per_step": hf_cpu,
        "ratio_cpu": hf_cpu / lm_cpu,
        "mfu_lmlab": lm * fpt / peak,
        "mfu_hf": hf * fpt / peak,
        "peak_flops": peak,
        "flops_per_token": fpt,
        # Both models see the same batches; their losses should stay alike (near ln V).
        "lmlab_final_loss": last_loss["lmlab"],
        "hf_final_loss": last_loss["hf"],
        "lmlab_params": sum(p.numel() for p in models["lmlab"].parameters()),
        "hf_params": sum(p.numel() for p in models["hf"].parameters()),
        "config": {**shape, "reps": reps, "steps": steps, "warmup": warmup, "device": device},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        **({"compiled_vs_eager": compiled_vs_eager(device=device)} if compile else {}),
    }
