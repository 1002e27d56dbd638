"""The intermediate tasks' topic-word matrices: the paper's released one (packaged) and the
seeded fallback."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import torch

from lmlab.studies.state_tracking.groups import make_group
from lmlab.studies.state_tracking.steering import (
    PAPER_LABEL,
    paper_topic_mapping,
    topic_documents,
    topic_matrix_for,
    topic_word_matrix,
)


def test_paper_mapping_ships_with_its_licence_and_provenance() -> None:
    folder = resources.files("lmlab.studies.state_tracking") / "topic_mapping"
    assert "MIT License" in (folder / "LICENSE").read_text()
    prov = (folder / "PROVENANCE.md").read_text()
    assert "fc63e2db262265f42e9d2ac5c05888284f843b4c" in prov
    m = paper_topic_mapping()
    assert m.shape == (4, 6) and np.allclose(m.sum(1), 1.0) and (m >= 0).all()
    # the documented reading: columns are S3's actions in lexicographic order, and most of the
    # mass sits on the odd actions (132, 213, 321) and the identity (123)
    g = make_group("S3")
    assert g.names() == ["123", "132", "213", "231", "312", "321"]
    odd_or_id = (g.parity == 1) | (np.arange(6) == g.identity)
    assert (m[:, odd_or_id].sum(1) > 0.95).all()


def test_topic_matrix_for_uses_the_paper_mapping_for_s3_only() -> None:
    s3 = make_group("S3")
    m, label = topic_matrix_for(s3, "paper", seed=5)
    assert label == PAPER_LABEL and np.array_equal(m, paper_topic_mapping())
    # scatter uses the same action tokens, so the same matrix
    assert np.array_equal(topic_matrix_for(make_group("S3", "scatter"), "paper", 5)[0], m)
    a4 = make_group("A4")
    m4, label4 = topic_matrix_for(a4, "paper", seed=5)
    assert m4.shape == (4, 12) and label4.startswith("seeded") and "S3 only" in label4
    ms, labels = topic_matrix_for(s3, "seeded", seed=5)
    assert labels == "seeded" and np.array_equal(ms, topic_word_matrix(6, seed=5))
    with pytest.raises(ValueError, match="unknown topic mapping"):
        topic_matrix_for(s3, "released", seed=5)


def test_documents_follow_the_paper_mapping() -> None:
    """Word frequencies of many LDA documents match the mixture of the topic rows."""
    m = paper_topic_mapping()
    docs = topic_documents(m, 4000, 20, alpha=0.3, generator=torch.Generator().manual_seed(0))
    freq = np.bincount(docs.ravel(), minlength=6) / docs.size
    # E[theta] is uniform over topics, so the expected word distribution is the row mean
    assert np.abs(freq - m.mean(0)).max() < 0.03
