"""Run folders: plain files a report or a later analysis can read without re-running.

A run folder holds::

    config.json       the study, preset, seed and full configuration
    metrics.jsonl     one JSON object per line, streamed while the run works
    result.json       written once, atomically, when the run has finished
    checkpoints/      safetensors files (tensors plus a JSON state in the metadata)
    figures/          PNG figures the report inlines

Every write is atomic (write to a temporary file in the same folder, then rename), so a run killed
at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from lmlab.errors import LmlabError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
RESULT = "result.json"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def jsonable(x: Any) -> Any:
    """Convert numpy/torch scalars, paths and non-finite floats into plain JSON values."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return jsonable(x.tolist())
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, Path):
        return str(x)
    return x


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with a one-line error naming the file when it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LmlabError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LmlabError(f"{path}: not valid JSON ({e})") from None


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], state: Any = None) -> None:
    """Save tensors (and a JSON-serializable `state`) to one safetensors file, atomically."""
    from safetensors.torch import save

    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"lmlab_state": json.dumps(jsonable(state))} if state is not None else None
    atomic_write_bytes(path, save(flat, metadata=meta))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Any]:
    """Load tensors and state saved by `save_tensors`; a corrupt file is a one-line LmlabError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise LmlabError(f"{path}: checkpoint not found")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            for k in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                tensors[k] = f.get_tensor(k)
        state = json.loads(meta["lmlab_state"]) if "lmlab_state" in meta else None
    except Exception as e:  # safetensors raises several exception types for damaged files
        raise LmlabError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None
    return tensors, state


def git_sha(path: str | os.PathLike | None = None) -> str | None:
    """The commit of the git work tree holding `path` (default: lmlab's source), '+dirty' if modified."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "") if sha else None


def _cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else what `platform` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(seed: int | None = None, device: str | None = None) -> dict[str, Any]:
    """Versions, git commit, seed and device: what is needed to reproduce a number."""
    import numpy

    import lmlab

    env: dict[str, Any] = {
        "lmlab": lmlab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git": git_sha(),
        "seed": seed,
        "device": device,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
        # the CPU and the vector kernels torch picked there: float results (and so a long
        # training's trajectory) can differ between machines that differ here
        "cpu": _cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def last_logged_step(path: str | os.PathLike) -> int:
    """The last step logged in a run's metrics.jsonl (0 when there is none yet), reading the
    file's tail only: how a parent watches a training that another process logs."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int):
            return step
    return 0


class Run:
    """A run folder. Studies write metrics, checkpoints and figures through it."""

    def __init__(self, path: str | os.PathLike, *, resume: bool = False):
        self.path = Path(path)
        self.resume = resume
        self.path.mkdir(parents=True, exist_ok=True)

    # -- files ------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def result_path(self) -> Path:
        return self.path / RESULT

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    @property
    def finished(self) -> bool:
        return self.result_path.is_file()

    def figure_path(self, name: str) -> Path:
        """Where to save a figure named `name` (a '.png' suffix is added if missing)."""
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        return self.figures_dir / (name if name.endswith(".png") else f"{name}.png")

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure atomically under figures/ and close it."""
        import io

        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        path = self.figure_path(name)
        atomic_write_bytes(path, buf.getvalue())
        return path

    # -- metrics ----------------------------------------------------------------------------
    def log(self, step: int | None = None, **metrics: Any) -> None:
        """Append one record to metrics.jsonl and flush it, so a crash loses nothing logged."""
        rec = {"step": step, **metrics} if step is not None else dict(metrics)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(jsonable(rec)) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete records of metrics.jsonl (a torn last line from a crash is ignored)."""
        if not self.metrics_path.is_file():
            return []
        out = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def rewind_metrics(self, step: int, key: str = "step") -> None:
        """Drop records logged after `step` (used when resuming from a checkpoint at `step`)."""
        keep = [r for r in self.read_metrics() if r.get(key) is None or r[key] <= step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint_path(self, name: str = "last") -> Path:
        return self.checkpoint_dir / f"{name}.safetensors"

    def save_checkpoint(self, tensors: dict[str, torch.Tensor], state: Any, name: str = "last") -> Path:
        """Save a checkpoint atomically: `tensors` as safetensors, `state` (JSON) in its metadata."""
        path = self.checkpoint_path(name)
        save_tensors(path, tensors, state)
        return path

    def load_checkpoint(self, name: str = "last") -> tuple[dict[str, torch.Tensor], Any] | None:
        """The checkpoint saved under `name`, or None when there is none."""
        path = self.checkpoint_path(name)
        return load_tensors(path) if path.exists() else None
