"""TransNetV2 backend: the packaged weights, fed from our single decode (`--extra transnet`)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np

from media.shots.analysis import AnalysisParams, analyze_video_decoding_once
from media.shots.transnet import load_transnetv2, shots_from_predictions
from tests.video_factory import write_cut_video


def test_loading_the_model_leaves_global_random_state_alone():
    random.seed(1234)
    np.random.seed(1234)
    expected = (random.random(), np.random.rand())
    random.seed(1234)
    np.random.seed(1234)
    load_transnetv2("cpu")
    assert (random.random(), np.random.rand()) == expected


def test_transnetv2_finds_known_hard_cuts(tmp_path: Path):
    path, cuts = write_cut_video(tmp_path / "cuts.mp4", segment_seconds=(3.0, 2.5, 3.0), fps=24)
    params = replace(AnalysisParams(), detector="transnetv2", dissolves=False)
    analysis = analyze_video_decoding_once(path, params)
    assert len(analysis.cuts) == len(cuts)
    for expected, found in zip(cuts, analysis.cuts, strict=True):
        assert abs(found - expected) <= 2
    assert len(analysis.clips) == 3


def test_predictions_to_cuts_rule():
    probs = np.array([0.1, 0.2, 0.9, 0.1, 0.1, 0.7, 0.8, 0.2, 0.1])
    assert shots_from_predictions(probs, 0.5) == [3, 7]
