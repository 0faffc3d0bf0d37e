"""Watermark evidence: a corner logo that stays while the picture changes, built in the test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from media.signals.borders import border_signals
from media.signals.text import TextParams, TextSignals
from media.signals.watermark import WatermarkParams, static_edge_evidence, watermark_signals

H, W = 384, 682


def picture(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blobs = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)
    return cv2.resize(blobs, (W, H), interpolation=cv2.INTER_LINEAR)


def jpeg(img: np.ndarray) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR)


def with_logo(img: np.ndarray, x: int = W - 92, y: int = H - 54) -> np.ndarray:
    img = img.copy()
    cv2.rectangle(img, (x, y), (x + 70, y + 35), (255, 255, 255), 2)
    cv2.putText(img, "TV", (x + 12, y + 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def text(corner: str | None) -> TextSignals:
    return TextSignals((0.01,) * 3, 0.01, 0.01, 100, 0.001, 3, 0.0, False, 1.0 if corner else 0.0, corner,
                       TextParams())


def test_static_logo_over_a_changing_picture() -> None:
    signals = watermark_signals([jpeg(with_logo(picture(i))) for i in range(4)])
    assert signals.corner == "bottom_right"
    assert signals.watermark_score > 0.8
    assert signals.static_edge_corners["bottom_right"] > 0.8
    assert max(v for k, v in signals.static_edge_corners.items() if k != "bottom_right") < 0.2
    assert signals.centre_change > 0.5


def test_no_logo_no_evidence() -> None:
    signals = watermark_signals([jpeg(picture(i)) for i in range(4)])
    assert signals.watermark_score < 0.2 and signals.corner is None


def test_static_camera_over_a_static_scene_does_not_fire() -> None:
    """Everything is static there, the logo included: no way (and no need) to call it a logo."""
    still = with_logo(picture(0))
    signals = watermark_signals([jpeg(still) for _ in range(4)])
    assert signals.watermark_score == 0.0 and signals.centre_change < 0.01


def test_static_background_behind_a_moving_subject_does_not_fire() -> None:
    frames = []
    for i in range(4):
        img = picture(0)
        cv2.rectangle(img, (20, 20), (120, 80), (255, 255, 255), 2)  # a static frame on the wall
        img[100:300, 180:500] = picture(10 + i)[100:300, 180:500]  # the subject moves
        frames.append(jpeg(img))
    evidence, centre_change = static_edge_evidence(frames)
    assert centre_change > 0.3
    assert evidence["top_left"] < 0.2


def test_persistent_corner_text_is_evidence_on_its_own() -> None:
    frames = [jpeg(picture(i)) for i in range(3)]
    signals = watermark_signals(frames, text("top_left"))
    assert signals.corner == "top_left" and signals.corner_text == "top_left"
    assert signals.watermark_score == pytest.approx(WatermarkParams().text_evidence)
    both = watermark_signals([jpeg(with_logo(picture(i), 20, 20)) for i in range(3)], text("top_left"))
    assert both.watermark_score >= signals.watermark_score
    assert watermark_signals(frames, text(None)).corner is None


def test_bar_edges_are_not_a_logo_when_the_crop_is_given() -> None:
    frames = []
    for i in range(4):
        img = picture(i)
        img[:48], img[-48:] = 0, 0
        frames.append(jpeg(img))
    crop = border_signals(frames).crop
    assert crop[1] > 0.1
    assert watermark_signals(frames, active=crop).watermark_score < 0.2
    logo = [jpeg(with_logo(f, y=H - 48 - 54)) for f in frames]
    assert watermark_signals(logo, active=crop).corner == "bottom_right"


def test_one_keyframe_gives_no_edge_evidence() -> None:
    evidence, centre = static_edge_evidence([with_logo(picture(0))])
    assert set(evidence.values()) == {0.0} and centre == 0.0


def held_subtitle(img: np.ndarray) -> np.ndarray:
    """One long subtitle line held over the clip: it reaches into both bottom corners."""
    img = img.copy()
    text = "nobody knows what happened here tonight"
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 6)
    x, y = (W - w) // 2, H - 30
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 6, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def test_a_subtitle_held_over_the_clip_is_not_a_logo() -> None:
    """Its static edges run on across the corner's inner side: a line, not a bug (the policy
    keeps subtitles at half weight, a watermark would drop the clip)."""
    frames = [jpeg(held_subtitle(picture(i))) for i in range(4)]
    signals = watermark_signals(frames)
    assert signals.corner is None and signals.watermark_score < 0.2
    with_bug = watermark_signals([jpeg(with_logo(held_subtitle(picture(i)), y=20)) for i in range(4)])
    assert with_bug.corner == "top_right"
