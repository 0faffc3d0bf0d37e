"""An int8 copy of the packaged PP-OCR text detector, made on this machine and cached by content.

PP-OCR detection is most of the scored tier's CPU (about 80 % of it on real footage at fp32).
ONNX Runtime's int8 convolutions run it about 2.3x cheaper on one thread. The copy is made
once per machine from the fp32 model inside the rapidocr wheel: the graph is lifted to opset
13 (per-channel weight scales need it), and every Conv gets QDQ nodes, weights int8 per
channel, activations uint8 with ranges calibrated (MinMax) on synthetic frames drawn here
from a fixed seed (smooth colour fields, blocks, noise, blur and text in Pillow's own font),
so no footage is needed and every machine makes the same file. The other nodes (GELU, the
layer norms, the head's transposed convolutions and sigmoid) stay fp32.

The quantized map is a little more confident on texture, so int8 runs with a higher box
threshold (TextParams.box_threshold 0.6, calibrated on bench/text.py's calibration seed;
docs/benchmarks.md has the validation figures).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from media.decode.hashing import sha256_file
from media.files import atomic_path

RECIPE = "ppocr-det-int8-1: opset13, QDQ, Conv only, per-channel s8 weights, u8 activations, " \
         "MinMax over 32 synthetic frames seed 0"
CALIBRATION_FRAMES = 32
_ALPHABET = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ©+:-")


def int8_detector_model(source: Path, cache_dir: Path, prepare) -> Path:
    """Path of the int8 copy of `source` under `cache_dir`, made on first use.

    `prepare(bgr) -> (1, 3, H, W) float32` is the detector's own preprocessing, so the
    calibration frames reach the graph exactly as keyframes do. The file name holds the
    source's sha256 and the recipe; writes are atomic, so concurrent workers may race.
    """
    key = hashlib.sha256((sha256_file(source) + "\0" + RECIPE).encode()).hexdigest()[:16]
    target = cache_dir / f"{source.stem}-int8-{key}.onnx"
    if target.is_file():
        return target
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    frames = [prepare(np.ascontiguousarray(calibration_frame(i)[..., ::-1]))  # BGR, as the detector sees
              for i in range(CALIBRATION_FRAMES)]

    class _Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(frames)

        def get_next(self) -> dict | None:
            frame = next(self._it, None)
            return None if frame is None else {"x": frame}

    with tempfile.TemporaryDirectory() as scratch, atomic_path(target) as partial:
        lifted = Path(scratch) / "opset13.onnx"
        onnx.save(version_converter.convert_version(onnx.load(str(source)), 13), str(lifted))
        out = Path(scratch) / "int8.onnx"
        quantize_static(str(lifted), str(out), _Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"],
                        calibration_providers=["CPUExecutionProvider"])
        partial.write_bytes(out.read_bytes())
    return target


def calibration_frame(index: int) -> np.ndarray:
    """Synthetic RGB frame `index` (keyframe-sized, short side 384): deterministic."""
    import cv2
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(index)
    height, width = 384, int(rng.choice([480, 512, 682]))
    coarse = rng.uniform(0, 255, (int(rng.integers(2, 9)), int(rng.integers(2, 9)), 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, rng.uniform(2, 25), img.shape)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(0, 12))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        draw.rectangle((x0, y0, x0 + int(rng.integers(5, 200)), y0 + int(rng.integers(5, 150))),
                       fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    for _ in range(int(rng.integers(0, 5))):
        font = ImageFont.load_default(int(rng.integers(10, 60)))
        text = "".join(rng.choice(_ALPHABET, int(rng.integers(2, 25))))
        draw.text((int(rng.integers(0, width - 40)), int(rng.integers(0, height - 20))), text, font=font,
                  fill=tuple(int(v) for v in rng.integers(0, 256, 3)), stroke_width=int(rng.integers(0, 3)),
                  stroke_fill=(0, 0, 0))
    out = np.asarray(pil)
    blur = int(rng.choice([0, 0, 3, 5]))
    return cv2.GaussianBlur(out, (blur, blur), 0) if blur else out
