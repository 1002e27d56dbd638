"""Running untrusted (model-written) Python in a subprocess with limits.

`run_python(source, timeout_s)` runs `source` in a fresh interpreter in isolated mode (``-I``: no
user site, no environment variables, no current directory on the path), in an empty temporary
working directory, with an empty environment, a CPU-time limit, an address-space limit and no
child processes allowed. It returns whether it exited with status 0 within the time limit. There
is no network isolation beyond the empty environment (proxies unset); run code you would not run
without a network namespace only inside a container.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

__all__ = ["SandboxResult", "run_python"]


@dataclass(frozen=True)
class SandboxResult:
    ok: bool
    returncode: int | None
    timed_out: bool
    stderr: str


def _limits(cpu_s: int, memory_mb: int):  # runs in the child before exec
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        if os.getuid() != 0:  # no child processes (root ignores this limit anyway)
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    return apply


def run_python(source: str, timeout_s: float = 5.0, memory_mb: int = 512) -> SandboxResult:
    """Run `source` with a wall-clock `timeout_s`, CPU and memory limits; never raises on the
    program's own failure."""
    with tempfile.TemporaryDirectory(prefix="lmlab-sandbox-") as tmp:
        path = os.path.join(tmp, "main.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        try:
            p = subprocess.run(
                [sys.executable, "-I", "-S", path], cwd=tmp, env={}, capture_output=True,
                text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
                preexec_fn=_limits(max(1, int(timeout_s) + 1), memory_mb),
            )
        except subprocess.TimeoutExpired:
            return SandboxResult(False, None, True, "")
        return SandboxResult(p.returncode == 0, p.returncode, False, p.stderr[-2000:])
