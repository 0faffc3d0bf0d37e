"""Packaged ONNX models cut down to the intermediate outputs we want, cached by content.

Models that ship inside wheels expose only their head (a class score, a saliency map); the
layers worth reusing as embeddings sit inside the graph. `model_with_outputs` writes a copy
whose outputs are exactly the tensors asked for (nodes nothing needs are pruned, so they cost
nothing at run time) and reuses it on later calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

from media.decode.hashing import sha256_file
from media.files import atomic_path
from media.signals.onnx_fold import FOLD_RECIPE, fold_conv_affine


def model_with_outputs(source: Path, outputs: Sequence[str], cache_dir: Path, fold: bool = False) -> Path:
    """Path of a copy of `source` whose graph outputs are `outputs`, in that order; with `fold`,
    per-channel arithmetic after its convolutions is folded into them (media/signals/onnx_fold.py).

    The file name holds the source's sha256, the output names and the fold recipe, so a changed
    model or a different cut gets a new file; writes are atomic, so concurrent workers may race.
    """
    import onnx.utils  # seconds to import; only needed the first time a cut is made

    parts = [sha256_file(source), *outputs, *([FOLD_RECIPE] if fold else [])]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    target = cache_dir / f"{source.stem}-{key}.onnx"
    if target.is_file():
        return target
    inputs = [value.name for value in _graph_inputs(source)]
    with atomic_path(target) as partial:
        onnx.utils.extract_model(str(source), str(partial), inputs, list(outputs))
        if fold:
            model = onnx.load(str(partial))
            fold_conv_affine(model)
            onnx.save(model, str(partial))
    return target


def _graph_inputs(source: Path) -> list:
    import onnx

    model = onnx.load(str(source), load_external_data=False)
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def cpu_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU ONNX Runtime session; `threads` pins intra-op threads (None: runtime default)."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
