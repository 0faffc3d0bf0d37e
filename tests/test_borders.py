"""Letterbox / pillarbox bars over keyframes built in the test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from media.decode.hashing import hamming, phash
from media.signals.borders import BorderParams, active_picture, border_signals

H, W = 384, 682


def picture(seed: int, height: int = H, width: int = W) -> np.ndarray:
    """A textured, changing picture: smooth colour blobs plus grain (different per seed)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (12, 20, 3), dtype=np.uint8), (width, height),
                     interpolation=cv2.INTER_CUBIC)
    return cv2.add(img, rng.integers(0, 40, (height, width, 3), dtype=np.uint8))


def jpeg(img: np.ndarray) -> np.ndarray:
    """Keyframes are stored as JPEG: bars get ringing next to the picture."""
    return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR)


def test_full_frame_picture_has_no_bars() -> None:
    signals = border_signals([jpeg(picture(i)) for i in range(4)])
    assert (signals.top, signals.bottom, signals.left, signals.right) == (0, 0, 0, 0)
    assert signals.crop == (0.0, 0.0, 1.0, 1.0) and not signals.flat


def test_letterbox_bars_and_crop() -> None:
    frames = []
    for i in range(4):
        img = picture(i)
        img[:48], img[-48:] = 0, 0
        frames.append(jpeg(img))
    signals = border_signals(frames)
    assert signals.top == pytest.approx(48 / H, abs=3 / H)
    assert signals.bottom == pytest.approx(48 / H, abs=3 / H)
    assert signals.left == signals.right == 0
    x, y, w, h = signals.crop
    assert (x, w) == (0.0, 1.0) and y == signals.top and h == pytest.approx(1 - signals.top - signals.bottom)


def test_coloured_pillarbox() -> None:
    frames = []
    for i in range(3):
        img = picture(i)
        img[:, :85], img[:, -85:] = (40, 40, 200), (40, 40, 200)
        frames.append(jpeg(img))
    signals = border_signals(frames)
    assert signals.left == pytest.approx(85 / W, abs=3 / W)
    assert signals.right == pytest.approx(85 / W, abs=3 / W)
    assert signals.top == signals.bottom == 0


def test_subtitles_inside_a_bar_do_not_cut_it_short() -> None:
    frames = []
    for i, text in enumerate(("where did you find it", "nobody knows", "come back soon")):
        img = picture(i)
        img[:60], img[-60:] = 0, 0
        cv2.putText(img, text, (200, H - 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        frames.append(jpeg(img))
    signals = border_signals(frames)
    assert signals.bottom == pytest.approx(60 / H, abs=3 / H)
    assert signals.top == pytest.approx(60 / H, abs=3 / H)


def test_bar_must_be_in_every_keyframe() -> None:
    frames = [picture(i) for i in range(4)]
    frames[0][:48] = 0  # a dark band in one frame only
    assert border_signals(frames).top == 0


def test_a_slow_gradient_is_picture_not_a_bar() -> None:
    """A static camera under a sky that brightens slowly towards the horizon."""
    frames = []
    for i in range(4):
        img = picture(i)
        ramp = np.linspace(200, 120, 150)[:, None, None]  # 80 grey levels over 150 rows
        img[:150] = np.broadcast_to(ramp, (150, W, 3)).astype(np.uint8)
        frames.append(img)
    assert border_signals(frames).top == 0


def test_thin_lines_are_ignored_and_flat_frames_flagged() -> None:
    frames = [picture(i) for i in range(2)]
    for img in frames:
        img[:2] = 0  # 2 px: below min_size (1% of 384 ≈ 4 px)
    assert border_signals(frames).top == 0
    assert border_signals(frames, BorderParams(min_size=0.001)).top == pytest.approx(2 / H)
    black = border_signals([np.zeros((H, W, 3), np.uint8)] * 3)
    assert black.flat and black.crop == (0.0, 0.0, 1.0, 1.0)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no keyframes"):
        border_signals([])
    with pytest.raises(ValueError, match="differ in shape"):
        border_signals([picture(0), picture(1, 200, 300)])


@pytest.mark.parametrize("vertical", [True, False])
def test_active_picture_of_a_boxed_copy_hashes_like_the_original(vertical: bool) -> None:
    """A letterboxed (or pillarboxed) copy: the picture shrunk onto black bars. Cut to its active
    picture it hashes like the original again; the whole frame does not."""
    originals = [picture(i, 270, 480) for i in range(3)]
    copies = []
    for img in originals:
        canvas = np.zeros((360, 480, 3) if vertical else (270, 640, 3), np.uint8)
        top, left = (45, 0) if vertical else (0, 80)
        canvas[top : top + 270, left : left + 480] = img
        copies.append(jpeg(canvas))
    crop = border_signals(copies).crop
    cut = [active_picture(c, crop) for c in copies]
    assert cut[0].shape[:2] == pytest.approx((270, 480), abs=4)
    assert max(hamming(phash(a), phash(b)) for a, b in zip(originals, cut, strict=True)) <= 4
    assert min(hamming(phash(a), phash(b)) for a, b in zip(originals, copies, strict=True)) > 4
    whole = picture(0)
    assert active_picture(whole, (0.0, 0.0, 1.0, 1.0)) is whole
