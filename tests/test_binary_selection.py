"""Fit-time choices of a RecurrentBinarizer (bitgraph.binary.selection): the code distance and,
for a bits budget, the layout, each by held-out recall after a 4x re-rank."""

from __future__ import annotations

import numpy as np
import pytest

import bitgraph as bg
from bitgraph.binary import RecurrentBinarizer, selection

from bg_testutil import clustered

DIM = 96


@pytest.fixture(scope="module")
def sample():
    return clustered(3000, DIM, seed=21, n_clusters=25)


def test_candidate_layouts():
    assert selection.candidate_layouts(384, 1, 8) == [(1, 384), (4, 96), (6, 64)]
    assert selection.candidate_layouts(384, 2, 8) == [(2, 384), (8, 96)]
    assert selection.candidate_layouts(50, 1, 8) == [(1, 50)]          # 50/4, 50/6: no
    assert selection.candidate_layouts(384, 0.5, 8) == [(1, 192)]


def test_fit_keeps_the_best_scored_layout(sample):
    b = RecurrentBinarizer(DIM, bits=1, learned=False, seed=1).fit(sample)
    scores = b.info["layout_score"]
    assert set(scores) == {"1x96", "4x24", "6x16"}
    best = max(scores, key=scores.get)
    assert f"{b.loops}x{b.code_dim}" == best and b.bits_per_dim == 1.0
    # the kept codes are the winner's own: its held-out scores are in the info
    assert max(b.info["held_out_score"].values()) == pytest.approx(scores[best])


def test_distance_is_the_best_held_out(sample):
    for loops in (1, 2):
        b = RecurrentBinarizer(DIM, loops=loops, learned=False, seed=2).fit(sample)
        scores = b.info["held_out_score"]
        assert set(scores) == {"asymmetric", "sdc"}
        assert scores[b.distance] == max(scores.values())
        assert bg.BinaryIndex(b).distance == b.distance
        # the score is a mean of two recalls: in [0, 1]
        assert all(0 <= v <= 1 for v in scores.values())


def test_held_out_score_tracks_code_quality(sample):
    """More bits rank better: a check that the score measures something."""
    coarse = RecurrentBinarizer(DIM, loops=1, code_dim=16, learned=False).fit(sample)
    fine = RecurrentBinarizer(DIM, loops=4, learned=False).fit(sample)
    assert max(fine.info["held_out_score"].values()) > \
        max(coarse.info["held_out_score"].values()) + 0.2


def test_tiny_samples_skip_the_measurement():
    x = clustered(50, DIM, seed=3)
    b = RecurrentBinarizer(DIM, bits=1, learned=False).fit(x)
    assert b.distance == "asymmetric" and b.info["held_out_score"] == {}


def test_choices_survive_save_and_load(sample, tmp_path):
    b = RecurrentBinarizer(DIM, bits=1, learned=False, seed=1).fit(sample)
    b.save(tmp_path / "b.bgb")
    loaded = RecurrentBinarizer.load(tmp_path / "b.bgb")
    assert (loaded.loops, loaded.code_dim, loaded.distance, loaded.bits) == (
        b.loops, b.code_dim, b.distance, 1.0)
    assert loaded.info["layout_score"] == b.info["layout_score"]
    meta, arrays = b.get_state()
    meta["distance"] = "cosine"
    with pytest.raises(bg.BitgraphValueError, match="distance"):
        RecurrentBinarizer.from_state(meta, arrays)
