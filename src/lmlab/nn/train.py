"""The trainer: AdamW, warmup then cosine/linear decay, clipping, evaluation, early stop, resume.

One `Trainer` trains any `nn.Module` from a batch function::

    trainer = Trainer(model, TrainConfig(steps=2000, lr=1e-3), task, evaluate=task.evaluate,
                      run=Run("runs/copy"))
    metrics = trainer.fit()

Determinism is the design constraint. Step `s` (counted from 1) draws its batch from
`batches(s, seeding.generator(cfg.seed, s))`, so the data depends only on (seed, step); the
learning rate is the pure function `lr_at(s, cfg)`; and a checkpoint holds everything else that
moves (weights, AdamW moments, the trainer's running scalars, the torch RNG states). A run resumed
from a checkpoint at step `s` therefore continues at `s + 1` exactly as the uninterrupted run did,
and ends with bit-identical weights and metrics (wall time and throughput aside).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from lmlab.device import resolve_device
from lmlab.errors import LmlabError
from lmlab.runs import Run
from lmlab.seeding import generator, seed_everything

__all__ = ["TrainConfig", "Trainer", "accuracy", "bucketed_loss", "lr_at"]

Batch = dict[str, torch.Tensor]
BatchFn = Callable[[int, torch.Generator], Batch]
EvalFn = Callable[[nn.Module], Mapping[str, float]]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]

SCHEDULES = ("cosine", "linear", "constant")
CKPT_FORMAT = "lmlab.trainer/1"


@dataclass
class TrainConfig:
    """Everything the trainer needs to know; every field has a usable default."""

    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.0  # AdamW decay, on matrices only (not biases or norm gains)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "cosine"  # "cosine" | "linear" | "constant"
    min_lr_ratio: float = 0.1  # cosine/linear decay ends at lr * min_lr_ratio
    # the step where the decay ends (None: `steps`); steps after it keep the final rate, so a
    # run may go on past its schedule (e.g. until an early stop) with the same first steps
    decay_steps: int | None = None
    grad_clip: float | None = 1.0  # max global grad norm; None turns clipping off
    log_every: int = 50
    eval_every: int = 0  # 0: evaluate only at the end
    ckpt_every: int = 0  # 0: never checkpoint
    stop_metric: str | None = None  # early stop when this eval metric reaches stop_at
    stop_at: float | None = None
    stop_mode: str = "max"  # "max": stop when metric >= stop_at; "min": when <= stop_at
    device: str = "auto"
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        bad = None
        if self.steps < 0:
            bad = f"steps must be >= 0, got {self.steps}"
        elif not self.lr > 0:
            bad = f"lr must be > 0, got {self.lr}"
        elif self.schedule not in SCHEDULES:
            bad = f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
        elif not 0.0 <= self.min_lr_ratio <= 1.0:
            bad = f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}"
        elif self.warmup_steps < 0:
            bad = f"warmup_steps must be >= 0, got {self.warmup_steps}"
        elif self.decay_steps is not None and self.decay_steps < 0:
            bad = f"decay_steps must be >= 0 or None, got {self.decay_steps}"
        elif self.grad_clip is not None and not self.grad_clip > 0:
            bad = f"grad_clip must be > 0 or None, got {self.grad_clip}"
        elif self.log_every < 1:
            bad = f"log_every must be >= 1, got {self.log_every}"
        elif self.eval_every < 0 or self.ckpt_every < 0:
            bad = "eval_every and ckpt_every must be >= 0"
        elif self.stop_mode not in ("max", "min"):
            bad = f"stop_mode must be 'max' or 'min', got {self.stop_mode!r}"
        elif (self.stop_metric is None) != (self.stop_at is None):
            bad = "stop_metric and stop_at must be given together"
        elif not all(0.0 <= b < 1.0 for b in self.betas):
            bad = f"betas must be in [0, 1), got {self.betas}"
        if bad:
            raise LmlabError(f"TrainConfig: {bad}")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of optimizer step `step` (1-based).

    Warmup rises linearly, reaching `cfg.lr` at step `warmup_steps`; then the schedule decays
    monotonically to `cfg.lr * cfg.min_lr_ratio` at step `cfg.decay_steps` (default `cfg.steps`;
    cosine or linear) or stays at `cfg.lr` (constant). Steps past the end keep the final rate.
    """
    if cfg.warmup_steps and step <= cfg.warmup_steps:
        return cfg.lr * max(step, 0) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    end = cfg.steps if cfg.decay_steps is None else cfg.decay_steps
    span = end - cfg.warmup_steps
    progress = 1.0 if span <= 0 else min(1.0, (step - cfg.warmup_steps) / span)
    if cfg.schedule == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        decay = 1.0 - progress
    return cfg.lr * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * decay)


def accuracy(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None
) -> dict[str, float]:
    """Greedy accuracy of `logits` (B, T, V) against `targets` (B, T) on the positions in `mask`.

    Returns `token_acc` (fraction of masked positions predicted right) and `seq_acc` (fraction
    of sequences whose masked positions are all right: exact match). With teacher forcing, a
    sequence that is exactly right is also what greedy decoding would produce.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise LmlabError(
            f"accuracy: expected logits (B, T, V) and targets (B, T), got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if mask is None:
        mask = torch.ones_like(targets, dtype=torch.bool)
    elif mask.shape != targets.shape:
        raise LmlabError(
            f"accuracy: mask shape {tuple(mask.shape)} != targets shape {tuple(targets.shape)}"
        )
    mask = mask.bool()
    right = logits.argmax(dim=-1) == targets  # (B, T)
    n = int(mask.sum())
    token_acc = float((right & mask).sum()) / n if n else float("nan")
    seq_acc = float((right | ~mask).all(dim=-1).float().mean()) if len(targets) else float("nan")
    return {"token_acc": token_acc, "seq_acc": seq_acc}


def _default_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """`model(input_ids, targets=..., loss_mask=...)[1]`: the GPT convention."""
    rest = {k: v for k, v in batch.items() if k != "input_ids"}
    return model(batch["input_ids"], **rest)[1]


def bucketed_loss(buckets: int = 4, trim: tuple[str, ...] = ()) -> LossFn:
    """The default loss, computed without the padding: a `loss_fn` for causal models on batches
    of varied length.

    Each sequence only matters up to its last scored position (its `loss_mask`, else targets
    other than -100), and in a causal model nothing after that changes it. So the batch is sorted
    by that length, cut into `buckets` groups, and each group runs trimmed to its own longest
    member; the result is the same masked mean as the padded batch (to float rounding), for less
    compute when lengths vary (about a third less for uniformly spread lengths and 4 buckets).
    `trim` names further per-position inputs of the batch, (B, T, ...) like `coords`, that are
    cut with the ids and passed to the model by name; any other extra key is refused.
    """
    if buckets < 1:
        raise LmlabError(f"bucketed_loss: buckets must be >= 1, got {buckets}")

    def loss_fn(model: nn.Module, batch: Batch) -> torch.Tensor:
        extra = set(batch) - {"input_ids", "targets", "loss_mask", *trim}
        if extra:
            raise LmlabError(f"bucketed_loss: cannot trim the batch's {sorted(extra)}")
        x, y = batch["input_ids"], batch["targets"]
        m = batch.get("loss_mask")
        weight = (y != -100).float()  # (B, T); a float loss_mask weights positions
        if m is not None:
            weight = weight * m.float()
        last = torch.arange(1, x.shape[1] + 1, device=x.device) * (weight != 0)  # (B, T)
        length = last.amax(dim=1)  # (B,): last scored position + 1; 0 when nothing is scored
        if int(length.max()) == 0:  # nothing scored: the padded loss (0, with a graph)
            return _default_loss(model, batch)
        total = weight.sum()
        loss = x.new_zeros((), dtype=torch.float32)
        groups = 1 if int(length.min()) == int(length.max()) else buckets
        for idx in torch.argsort(length).tensor_split(groups):
            n = int(length[idx].max()) if len(idx) else 0
            if n == 0:
                continue
            w = weight[idx, :n]
            more = {k: batch[k][idx, :n] for k in trim if k in batch}
            loss = loss + model(x[idx, :n], targets=y[idx, :n], loss_mask=w, **more)[1] * w.sum()
        return loss / total

    return loss_fn


def _float(x: Any) -> float:
    """Undo runs.jsonable for a float: None was NaN, "inf"/"-inf" were infinities."""
    return float("nan") if x is None else float(x)


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(d) for d in t.shape) + ")"


class Trainer:
    """Trains `model` on `batches` with AdamW; see the module docstring and `TrainConfig`.

    - `batches(step, generator) -> {"input_ids", "targets", optional "loss_mask", ...}`; the
      generator is `seeding.generator(cfg.seed, step)`.
    - `loss_fn(model, batch) -> scalar` replaces the default `model(input_ids, **rest)[1]`.
    - `evaluate(model) -> {name: float}` runs under `torch.no_grad()` in eval mode.
    - `run`: metrics go to `run.log`, checkpoints to `run.save_checkpoint`; with `run.resume`
      and a checkpoint present, training continues from it.
    - `params`: what the optimizer updates (default: the model's parameters that require grad).
      Frozen parameters (`requires_grad=False`) are never given to the optimizer.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        batches: BatchFn,
        *,
        evaluate: EvalFn | None = None,
        loss_fn: LossFn | None = None,
        run: Run | None = None,
        params: Iterable[nn.Parameter] | None = None,
    ):
        self.model = model
        self.cfg = cfg
        self.batches = batches
        self.evaluate = evaluate
        self.loss_fn = loss_fn or _default_loss
        self.run = run
        self._params_arg = None if params is None else list(params)
        if cfg.stop_metric is not None and evaluate is None:
            raise LmlabError(f"stop_metric {cfg.stop_metric!r} needs an evaluate function")
        self.device: torch.device | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.param_names: list[str] = []
        # Running state, all saved in a checkpoint.
        self.step = 0
        self.finished = False
        self.stopped_early = False
        self.tokens = 0
        self.wall_s = 0.0
        self.last_train_loss: float | None = None
        self.eval_metrics: dict[str, float] = {}
        self._loss_sum: torch.Tensor | None = None
        self._loss_count = 0
        self._window_tokens = 0
        self._window_start = 0.0  # perf_counter() when the current logging window began
        self._window_s0 = 0.0  # seconds an earlier session already spent in that window

    # -- setup -------------------------------------------------------------------------------
    def _setup(self) -> None:
        """Move the model to the device and build the optimizer over the trainable parameters."""
        self.device = resolve_device(self.cfg.device)
        self.model.to(self.device)
        names = {id(p): n for n, p in self.model.named_parameters()}
        given = self.model.parameters() if self._params_arg is None else self._params_arg
        params: list[nn.Parameter] = []
        seen: set[int] = set()
        for p in given:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        if not params:
            raise LmlabError("Trainer: no trainable parameters (all have requires_grad=False)")
        # Decay matrices (weights, embeddings), not biases or norm gains: the usual AdamW recipe.
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [
            {"params": g, "weight_decay": wd}
            for g, wd in ((decay, self.cfg.weight_decay), (no_decay, 0.0))
            if g
        ]
        # The optimizer's state is indexed by position over the groups; keep the names in order.
        self.param_names = [
            names.get(id(p), f"<external {i}>")
            for i, p in enumerate(p for g in groups for p in g["params"])
        ]
        self.optimizer = self._adamw(groups)
        self._loss_sum = torch.zeros((), device=self.device)

    def _adamw(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        kw = {"lr": lr_at(1, self.cfg), "betas": self.cfg.betas, "eps": self.cfg.eps}
        try:  # one fused kernel where the device supports it, else multi-tensor (foreach)
            return torch.optim.AdamW(groups, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.AdamW(groups, foreach=True, **kw)

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to `cfg.steps` (or an early stop) and return the final metrics.

        Returns `train_loss` (mean over the last logging window), the last evaluation's metrics,
        `steps_done`, `stopped_early`, `tokens` and `wall_s` (summed over resumed sessions).
        """
        cfg = self.cfg
        if self.optimizer is None:  # a second call continues where the first one stopped
            seed_everything(cfg.seed)
            self._setup()
            if self.run is not None and self.run.resume:
                self._resume()
        if cfg.steps == 0 and not self.finished:  # nothing to train: measure the model as it is
            self._evaluate(0)
            self.finished = True
        if self.finished or self.step >= cfg.steps:
            self.finished = True
            return self.final_metrics()
        progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), TextColumn("{task.description}"),
            console=Console(stderr=True), transient=True, disable=not cfg.progress,
        )
        self.model.train()
        t_session = time.perf_counter()
        self._window_start, self._window_s0 = t_session - self._window_s0, 0.0
        with progress:
            bar = progress.add_task("", total=cfg.steps, completed=self.step)
            while self.step < cfg.steps and not self.finished:
                step = self.step + 1
                self._train_step(step)
                self.step = step
                last = step == cfg.steps
                if step % cfg.log_every == 0 or last:
                    self._log_train(step)
                    progress.update(bar, description=f"loss {self.last_train_loss:.4f}")
                if (cfg.eval_every and step % cfg.eval_every == 0) or last:
                    self._evaluate(step)
                    if self._target_reached():
                        self.stopped_early = not last
                        if not last and self._loss_count:
                            self._log_train(step)
                        last = True
                if last:
                    self.finished = True
                self.wall_s += time.perf_counter() - t_session
                t_session = time.perf_counter()
                if cfg.ckpt_every and (step % cfg.ckpt_every == 0 or last):
                    self.save_checkpoint()
                progress.update(bar, completed=step)
        self.finished = True
        return self.final_metrics()

    def _train_step(self, step: int) -> None:
        assert self.optimizer is not None and self._loss_sum is not None
        batch = self.batches(step, generator(self.cfg.seed, step))
        if not isinstance(batch, Mapping) or "input_ids" not in batch:
            raise LmlabError(f"batches(step={step}) must return a dict with 'input_ids'")
        batch = {
            k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()
        }
        lr = lr_at(step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.loss_fn(self.model, batch)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise LmlabError(f"the loss at step {step} is not a scalar tensor: {loss!r:.80}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip is not None:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.optimizer.step()
        self._loss_sum += loss.detach().float()
        self._loss_count += 1
        n_tokens = batch["input_ids"].numel()
        self.tokens += n_tokens
        self._window_tokens += n_tokens

    def _log_train(self, step: int) -> None:
        assert self._loss_sum is not None
        now = time.perf_counter()
        elapsed, self._window_start = now - self._window_start, now
        loss = float(self._loss_sum) / max(self._loss_count, 1)
        if not math.isfinite(loss):
            raise LmlabError(f"the training loss is {loss} at step {step}; lower lr or clip grads")
        self.last_train_loss = loss
        if self.run is not None:
            self.run.log(
                step, train_loss=loss, lr=lr_at(step, self.cfg),
                tokens_per_s=self._window_tokens / elapsed if elapsed > 0 else None,
            )
        self._loss_sum.zero_()
        self._loss_count = 0
        self._window_tokens = 0

    def _evaluate(self, step: int) -> None:
        if self.evaluate is None:
            return
        self.model.eval()
        try:
            with torch.no_grad():
                metrics = {k: float(v) for k, v in dict(self.evaluate(self.model)).items()}
        finally:
            self.model.train()
        if self.cfg.stop_metric is not None and self.cfg.stop_metric not in metrics:
            raise LmlabError(
                f"stop_metric {self.cfg.stop_metric!r} is not among the evaluation metrics "
                f"({', '.join(metrics) or 'none'})"
            )
        self.eval_metrics = metrics
        if self.run is not None:
            self.run.log(step, **metrics)

    def _target_reached(self) -> bool:
        cfg = self.cfg
        if cfg.stop_metric is None or cfg.stop_metric not in self.eval_metrics:
            return False
        value = self.eval_metrics[cfg.stop_metric]
        assert cfg.stop_at is not None
        return value >= cfg.stop_at if cfg.stop_mode == "max" else value <= cfg.stop_at

    def final_metrics(self) -> dict[str, Any]:
        """The metrics `fit` returns: final train loss, last eval metrics, steps, timing."""
        return {
            "train_loss": self.last_train_loss,
            **self.eval_metrics,
            "steps_done": self.step,
            "stopped_early": self.stopped_early,
            "tokens": self.tokens,
            "wall_s": self.wall_s,
        }

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_tensors_and_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything needed to resume: weights, AdamW state, RNG states, running scalars."""
        assert self.optimizer is not None and self._loss_sum is not None
        # Clone: tied weights share storage, which safetensors refuses to save twice.
        tensors = {f"model/{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        opt = self.optimizer.state_dict()
        opt_scalars: dict[str, dict[str, Any]] = {}
        for idx, pstate in opt["state"].items():
            for key, val in pstate.items():
                if isinstance(val, torch.Tensor):
                    tensors[f"optim/{idx}/{key}"] = val.detach().clone()
                else:
                    opt_scalars.setdefault(str(idx), {})[key] = val
        tensors["rng/cpu"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng/cuda/{i}"] = s
        tensors["trainer/loss_sum"] = self._loss_sum.detach().clone()
        state = {
            "format": CKPT_FORMAT,
            "step": self.step,
            "finished": self.finished,
            "stopped_early": self.stopped_early,
            "tokens": self.tokens,
            "wall_s": self.wall_s,
            "last_train_loss": self.last_train_loss,
            "eval_metrics": self.eval_metrics,
            "loss_count": self._loss_count,
            "window_tokens": self._window_tokens,
            "window_s": time.perf_counter() - self._window_start,
            "lr": lr_at(self.step, self.cfg),
            "param_names": self.param_names,
            "param_groups": [{k: v for k, v in g.items()} for g in opt["param_groups"]],
            "optim_scalars": opt_scalars,
            "config": asdict(self.cfg),
        }
        return tensors, state

    def save_checkpoint(self, name: str = "last") -> None:
        """Save the trainer's state to `run` under `name` (a no-op without a run)."""
        if self.run is None:
            return
        tensors, state = self.checkpoint_tensors_and_state()
        self.run.save_checkpoint(tensors, state, name=name)

    def _resume(self, name: str = "last") -> None:
        assert self.run is not None
        loaded = self.run.load_checkpoint(name)
        if loaded is None:
            return
        self.load_checkpoint_tensors_and_state(*loaded, where=str(self.run.checkpoint_path(name)))
        self.run.rewind_metrics(self.step)

    def load_checkpoint_tensors_and_state(
        self, tensors: dict[str, torch.Tensor], state: Any, where: str = "checkpoint"
    ) -> None:
        """Restore what `checkpoint_tensors_and_state` saved; a mismatch is a one-line error."""
        assert self.optimizer is not None and self._loss_sum is not None
        if not isinstance(state, dict) or state.get("format") != CKPT_FORMAT:
            raise LmlabError(f"{where}: not a trainer checkpoint (no '{CKPT_FORMAT}' state)")
        # The model: names and shapes must match before anything is touched.
        model_sd = self.model.state_dict()
        saved = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        for k, v in model_sd.items():
            if k not in saved:
                raise LmlabError(f"{where}: checkpoint does not match the model: missing tensor {k!r}")
            if saved[k].shape != v.shape:
                raise LmlabError(
                    f"{where}: checkpoint does not match the model: tensor {k!r} has shape "
                    f"{_shape(saved[k])} in the checkpoint but {_shape(v)} in the model"
                )
        for k in saved:
            if k not in model_sd:
                raise LmlabError(
                    f"{where}: checkpoint does not match the model: unexpected tensor {k!r}"
                )
        if state.get("param_names") != self.param_names:
            old, new = state.get("param_names") or [], self.param_names
            diff = next(
                (f"{a!r} vs {b!r}" for a, b in zip(old, new, strict=False) if a != b),
                f"{len(old)} vs {len(new)} parameters",
            )
            raise LmlabError(
                f"{where}: checkpoint trained a different set of parameters ({diff}); "
                "was the freeze mode changed?"
            )
        try:
            self.model.load_state_dict(saved, strict=True)
            opt_state: dict[int, dict[str, Any]] = {}
            for key, val in tensors.items():
                if key.startswith("optim/"):
                    _, idx, name = key.split("/", 2)
                    opt_state.setdefault(int(idx), {})[name] = val
            for idx, scalars in state.get("optim_scalars", {}).items():
                opt_state.setdefault(int(idx), {}).update(scalars)
            groups = state["param_groups"]
            for g, current in zip(groups, self.optimizer.param_groups, strict=True):
                g["betas"] = tuple(g["betas"])
                # Kernel choice belongs to this machine, not to the one that saved the state.
                for k in ("fused", "foreach", "capturable"):
                    if k in current:
                        g[k] = current[k]
            self.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
            torch.set_rng_state(tensors["rng/cpu"])
            cuda = [tensors[f"rng/cuda/{i}"] for i in range(torch.cuda.device_count())
                    if f"rng/cuda/{i}" in tensors]
            if cuda and len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
            self._loss_sum.copy_(tensors["trainer/loss_sum"])
            self.step = int(state["step"])
            self.finished = bool(state["finished"])
            self.stopped_early = bool(state["stopped_early"])
            self.tokens = int(state["tokens"])
            self.wall_s = float(state["wall_s"])
            loss = state["last_train_loss"]
            self.last_train_loss = None if loss is None else _float(loss)
            self.eval_metrics = {k: _float(v) for k, v in state["eval_metrics"].items()}
            self._loss_count = int(state["loss_count"])
            self._window_tokens = int(state["window_tokens"])
            self._window_s0 = float(state.get("window_s", 0.0))
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LmlabError(f"{where}: cannot resume from checkpoint ({msg})") from None

    def __repr__(self) -> str:
        return f"Trainer(step={self.step}, cfg={json.dumps(asdict(self.cfg))})"
