"""evaluating(): eval mode for a block, the previous mode back afterwards (also on an error)."""

from __future__ import annotations

import pytest
from torch import nn

from lmlab.nn import evaluating


@pytest.mark.parametrize("training", [True, False])
def test_evaluating_restores_the_mode_it_found(training: bool) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with evaluating(model) as m:
        assert m is model and not model.training and not model[1].training
    assert model.training is training and model[1].training is training
    with pytest.raises(RuntimeError), evaluating(model):
        raise RuntimeError("boom")
    assert model.training is training
