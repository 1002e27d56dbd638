"""The cache of pre-trained bases: keys that follow the recipe, the torch version and the code;
stores read back exactly; anything unusable is one line and None (the caller pre-trains)."""

from __future__ import annotations

import pytest
import torch

from lmlab.nn.basecache import BaseCache, code_digest, sources_summary, tensor_shapes

CACHE = BaseCache("toy", ("lmlab.seeding",))
RECIPE = {"model": {"d": 4}, "pretrain": {"steps": 3, "lr": 0.1}, "seed": 7}
TENSORS = {"w": torch.arange(12.0).reshape(3, 4), "b": torch.zeros(4)}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path))
    return tmp_path


def test_the_key_follows_the_recipe_format_torch_and_code(monkeypatch) -> None:
    key = CACHE.key(RECIPE)
    assert len(key) == 64 and key == CACHE.key(dict(reversed(list(RECIPE.items()))))
    for changed in ({**RECIPE, "seed": 8}, {**RECIPE, "pretrain": {"steps": 4, "lr": 0.1}},
                    {**RECIPE, "model": {"d": 8}}, {**RECIPE, "threads": 2}):
        assert CACHE.key(changed) != key, changed
    assert BaseCache("toy", ("lmlab.seeding",), format=2).key(RECIPE) != key
    assert BaseCache("toy", ("lmlab.seeding", "lmlab.errors")).key(RECIPE) != key
    assert code_digest(("lmlab.seeding",)) != code_digest(("lmlab.errors",))
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert CACHE.key(RECIPE) != key
    with pytest.raises(ValueError, match="no source file"):
        code_digest(("lmlab.no_such_module",))


def test_a_stored_base_reads_back_exactly(cache_dir) -> None:
    key = CACHE.key(RECIPE)
    assert CACHE.load(key, tensor_shapes(TENSORS)) is None  # nothing there yet: silent
    path = CACHE.store(key, TENSORS, {"loss": 1.25})
    assert path == cache_dir / "toy" / "bases" / f"{key[:32]}.safetensors" and path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic
    tensors, metrics = CACHE.load(key, tensor_shapes(TENSORS))
    assert metrics == {"loss": 1.25}
    assert set(tensors) == set(TENSORS)
    assert all(torch.equal(tensors[k], v) for k, v in TENSORS.items())


@pytest.mark.parametrize("why", ["wrong key", "missing tensor", "wrong shape", "damaged"])
def test_an_unusable_base_is_one_line_and_none(cache_dir, capsys, why) -> None:
    key = CACHE.key(RECIPE)
    want = tensor_shapes(TENSORS)
    if why == "wrong key":
        other = CACHE.key({**RECIPE, "seed": 1})
        CACHE.store(other, TENSORS, {})
        CACHE.path(key).parent.mkdir(parents=True, exist_ok=True)
        CACHE.path(key).write_bytes(CACHE.path(other).read_bytes())
    elif why == "missing tensor":
        CACHE.store(key, {"w": TENSORS["w"]}, {})
    elif why == "wrong shape":
        CACHE.store(key, {**TENSORS, "b": torch.zeros(5)}, {})
    else:
        CACHE.store(key, TENSORS, {})
        CACHE.path(key).write_bytes(CACHE.path(key).read_bytes()[:40])
    capsys.readouterr()
    assert CACHE.load(key, want) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("toy: ignoring the cached base")
    assert err[0].endswith("pre-training again")
    expected = {"wrong key": "recorded key does not match", "missing tensor": "(b)",
                "wrong shape": "(b)", "damaged": "corrupt"}[why]
    assert expected in err[0]
    CACHE.store(key, TENSORS, {})  # a fresh base replaces it
    assert CACHE.load(key, want) is not None


def test_an_unwritable_cache_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LMLAB_CACHE", str(blocker))
    assert CACHE.store(CACHE.key(RECIPE), TENSORS, {}) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot keep the pre-trained base" in err[0]


def test_sources_summary() -> None:
    assert sources_summary(["cache", "cache"]) == "cache"
    assert sources_summary(["trained"]) == "trained"
    assert sources_summary(["cache", "trained", "cache"]) == "cache 2 of 3"
    assert sources_summary([]) == "none"
