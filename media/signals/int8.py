"""An int8 copy of the packaged PP-OCR text detector, made on this machine and cached by content.

PP-OCR detection is most of the scored tier's CPU (about 80 % of it on real footage at fp32).
ONNX Runtime's int8 convolutions run it about 2.2x cheaper on one thread. The copy is made
once per machine from the fp32 model inside the rapidocr wheel: the graph is lifted to opset
13 (per-channel weight scales need it), and every Conv gets QDQ nodes, weights int8 per
channel, activations uint8 with ranges calibrated (MinMax) on 18 views (crops at three scales)
of three photographs that ship inside two of our dependencies' wheels (matplotlib's Grace
Hopper, scikit-learn's china and flower), so no footage is needed and every machine makes the
same file. The other nodes (GELU, the layer norms, the head's transposed convolutions and
sigmoid) stay fp32.

It is opt-in (`TextParams.precision: int8`, with `box_threshold: 0.6`: the quantized map is a
little more confident on texture). On bench/text.py's validation seed it found one overlay
fewer than fp32 (recall 0.992 against 0.996) at a higher precision (0.992 against 0.967);
docs/benchmarks.md has the figures. Synthetic calibration frames did worse (recall 0.983).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from media.decode.hashing import sha256_file
from media.files import atomic_path

RECIPE = "ppocr-det-int8-1: opset13, QDQ, Conv only, per-channel s8 weights, u8 activations, " \
         "MinMax over 18 views of 3 packaged photographs"
PHOTOS = (("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"), ("sklearn", "datasets/images/flower.jpg"),
          ("sklearn", "datasets/images/china.jpg"))


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

    frames = [prepare(np.ascontiguousarray(view[..., ::-1])) for view in calibration_frames()]  # BGR

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


def calibration_frames() -> list[np.ndarray]:
    """RGB views of the packaged photographs at keyframe size (short side 384): the whole photo
    and two corner crops at 0.7 and 0.5 of it."""
    import importlib.util

    import cv2

    views = []
    for package, relative in PHOTOS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"{package} is not installed: the int8 detector calibrates on {relative}")
        path = Path(next(iter(spec.submodule_search_locations))) / relative
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise FileNotFoundError(f"{path}: a calibration photograph of the int8 detector is missing")
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        height, width = img.shape[:2]
        for scale in (1.0, 0.7, 0.5):
            h, w = int(height * scale), int(width * scale)
            for y, x in ((0, 0), (height - h, width - w)):
                crop = img[y : y + h, x : x + w]
                factor = 384 / min(h, w)
                size = (round(w * factor), round(h * factor))
                views.append(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
    return views
