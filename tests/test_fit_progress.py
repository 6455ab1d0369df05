"""RecurrentBinarizer.fit(progress=True) shows a bar that moves during the fit: one step per
training step, with the phases before training named on it."""

from __future__ import annotations

import numpy as np

import bitgraph as bg


def test_learned_fit_progress_counts_training_steps(capsys):
    x = np.random.default_rng(0).standard_normal((600, 16)).astype(np.float32)
    bg.RecurrentBinarizer(16, loops=2, learned=True).fit(x, progress=True)
    err = capsys.readouterr().err
    assert "fit binarizer: training" in err
    assert "2/2" in err and "step" in err          # 600 rows // 256 anchors = 2 steps


def test_fit_without_progress_is_silent(capsys):
    x = np.random.default_rng(0).standard_normal((600, 16)).astype(np.float32)
    bg.RecurrentBinarizer(16, loops=2, learned=True).fit(x)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
