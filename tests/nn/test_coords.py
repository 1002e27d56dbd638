"""GPTConfig.coord_sizes: extra per-token coordinate embeddings, off by default."""

from __future__ import annotations

import pytest
import torch

from lmlab.nn import GPT, GPTConfig
from lmlab.nn.gpt import GPTConfigError

V, BLOCK = 19, 16


def _gpt(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=2, n_head=2, d_model=32, **kw))


def test_default_has_no_coordinate_parameters_and_same_init() -> None:
    plain, with_coords = _gpt(), _gpt(coord_sizes=(5, 7))
    assert GPTConfig().coord_sizes == ()
    assert not any(n.startswith("coord_emb") for n, _ in plain.named_parameters())
    assert not hasattr(plain, "hook_coord_embed")
    # the coordinate tables are created after everything else: the rest initializes identically
    coord = with_coords.state_dict()
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(coord[name], value, rtol=0, atol=0)
    sizes = [p.shape for n, p in with_coords.named_parameters() if n.startswith("coord_emb")]
    assert sizes == [torch.Size([5, 32]), torch.Size([7, 32])]
    assert with_coords.num_params(non_embedding=True) == plain.num_params(non_embedding=True)


def test_coords_are_added_to_the_token_embedding_through_a_hook() -> None:
    model = _gpt(coord_sizes=(4, 3)).eval()
    idx = torch.randint(0, V, (2, 6))
    coords = torch.stack((torch.randint(0, 4, (2, 6)), torch.randint(0, 3, (2, 6))), dim=-1)
    seen = {}
    model.hook_coord_embed.add_hook(lambda x, hook: seen.__setitem__("c", x.clone()))
    model(idx, coords=coords)
    expected = model.coord_emb[0].weight[coords[..., 0]] + model.coord_emb[1].weight[coords[..., 1]]
    torch.testing.assert_close(seen["c"], expected)
    torch.testing.assert_close(model.embed(idx, coords), model.tok_emb(idx) + expected)
    # the coordinates change the output: the tables are used
    other = coords.clone()
    other[..., 0] = (other[..., 0] + 1) % 4
    assert (model(idx, coords=coords)[0] - model(idx, coords=other)[0]).abs().max() > 1e-4


def test_coords_get_gradients_and_loss_works() -> None:
    model = _gpt(coord_sizes=(4,))
    idx = torch.randint(0, V, (2, 6))
    coords = torch.randint(0, 4, (2, 6, 1))
    _, loss = model(idx, idx, coords=coords)
    loss.backward()
    grad = model.coord_emb[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_coords_validation() -> None:
    with pytest.raises(GPTConfigError, match="coord_sizes"):
        GPTConfig(coord_sizes=(3, 0))
    model, plain = _gpt(coord_sizes=(4, 3)), _gpt()
    idx = torch.zeros(1, 5, dtype=torch.long)
    with pytest.raises(GPTConfigError, match="coords must have shape"):
        model(idx)
    with pytest.raises(GPTConfigError, match="coords must have shape"):
        model(idx, coords=torch.zeros(1, 5, 1, dtype=torch.long))
    with pytest.raises(GPTConfigError, match="no coord_sizes"):
        plain(idx, coords=torch.zeros(1, 5, 2, dtype=torch.long))


def test_freeze_modes_treat_coordinates_as_embeddings() -> None:
    model = _gpt(coord_sizes=(4,), tie_embeddings=False)
    assert "coord_emb.0.weight" in model.set_trainable("embed")
    assert "coord_emb.0.weight" in model.set_trainable("random")
    assert "coord_emb.0.weight" not in model.set_trainable("unembed")
