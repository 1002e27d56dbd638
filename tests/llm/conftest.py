"""Shared fixtures of the LLM tests: the embedded model (loaded once) and a real
`transformers serve` on loopback serving its folder on CPU (started once, always stopped)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.llm.faults import free_port

SERVE_START_TIMEOUT_S = 180.0


@pytest.fixture(scope="session")
def smol_folder(converted: dict) -> Path:
    """The embedded SmolLM2's converted folder (converted once into the session's lmlab cache)."""
    return converted["folder"]


@pytest.fixture(scope="session")
def hf(smol_folder: Path):
    """One hf backend over the embedded model, shared by the tests (usage accumulates)."""
    from lmlab.llm.hf import HFBackend

    return HFBackend("smollm2-135m-instruct")


@dataclass
class Served:
    """A running `transformers serve`: its API root, its model name, its log."""

    url: str
    root: str
    model: str
    log: Path

    def spec(self, url: str | None = None) -> str:
        return f"openai:{self.model}@{url or self.url}"


def _transformers_cli() -> str:
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("the `transformers` command is missing: pip install 'transformers[serving]'")
    return exe


@pytest.fixture(scope="session")
def served(smol_folder: Path, tmp_path_factory: pytest.TempPathFactory):
    """`transformers serve FOLDER` on 127.0.0.1 (a free port), CPU, fp32; stopped at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # One thread: the server shares 2 cores with the test process, and with two threads per
        # process a loaded machine spends its time waiting on locks (10x slower measured).
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        _transformers_cli(), "serve", str(smol_folder), "--host", "127.0.0.1", "--port", str(port),
        "--device", "cpu", "--dtype", "float32", "--log-level", "warning",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{root}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not up after {SERVE_START_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield Served(url=f"{root}/v1", root=root, model=str(smol_folder), log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
