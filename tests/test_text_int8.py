"""The opt-in int8 text detector and the detector's table-driven preprocessing (issue 20)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from media.signals.text import TextDetector, TextParams, _lookup_preprocess


def _frame_with_subtitle() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    rng = np.random.default_rng(3)
    coarse = rng.uniform(40, 200, (4, 6, 3)).astype(np.float32)
    img = np.clip(cv2.resize(coarse, (682, 384), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
    text = "we have to go now"
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.9, 6)
    x, y = (682 - w) // 2, 384 - 30
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 6, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    return img, (x, y - h, x + w, y + base)


def test_lookup_preprocess_is_rapidocrs_bit_for_bit():
    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    rng = np.random.default_rng(0)
    ours, theirs = _lookup_preprocess(384, "min", [0.5] * 3, [0.5] * 3), DetPreProcess(384, "min", [0.5] * 3,
                                                                                         [0.5] * 3)
    for shape in ((384, 682, 3), (120, 160, 3), (400, 300, 3)):
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        a, b = ours(img), theirs(img)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(a, b)


def test_int8_detector_finds_the_subtitle(tmp_path):
    img, (x0, y0, x1, y1) = _frame_with_subtitle()
    detector = TextDetector(TextParams(precision="int8", box_threshold=0.6), cache_dir=tmp_path)
    assert "int8" in detector.model_name
    boxes = detector.detect(img)
    assert boxes, "no text found"
    best = max(boxes, key=lambda b: b.area)
    overlap = max(0, min(x1, best.x1) - max(x0, best.x0)) * max(0, min(y1, best.y1) - max(y0, best.y0))
    assert overlap >= 0.5 * (x1 - x0) * (y1 - y0)
    again = TextDetector(TextParams(precision="int8", box_threshold=0.6), cache_dir=tmp_path)
    assert again.model_name == detector.model_name  # made once, then reused from the cache
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    cached = next(tmp_path.glob("*.onnx"))
    cached.write_bytes(b"not an onnx model")  # a damaged cache entry is made again
    repaired = TextDetector(TextParams(precision="int8", box_threshold=0.6), cache_dir=tmp_path)
    assert repaired.detect(img) and cached.stat().st_size > 1000


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        TextDetector(TextParams(precision="int4"))
