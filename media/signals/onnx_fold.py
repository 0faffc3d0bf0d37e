"""Per-channel arithmetic after a convolution folded into the convolution's own weights.

OpenNSFW's ONNX export (a TensorFlow conversion) follows every Conv with a Transpose to NHWC
and then its bias and batch norm as separate Add, Sub, Mul, Add nodes (with no-op Casts in
between). ONNX Runtime fuses none of them, so each convolution pays a layout reorder and four
element-wise passes over its output: about a third of the model's CPU. The same values come
from one Conv whose weights and bias absorb that arithmetic: for y = a * conv(x) + b per output
channel, W' = a W and bias' = b. The results match the original graph to float rounding
(about 1e-6), which is why a fold is its own model file, keyed by FOLD_RECIPE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

FOLD_RECIPE = "conv-affine-fold-1"
_TO_NHWC = [0, 2, 3, 1]


def fold_conv_affine(model: onnx.ModelProto) -> int:
    """Folds, in place, each chain Conv → Transpose(NCHW→NHWC) → (Cast | Add | Sub | Mul by a
    per-channel constant)* into the Conv; returns how many convolutions were folded."""
    import onnx  # seconds to import: only when a model file is made
    from onnx import numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    kept_outputs = {value.name for value in graph.output}
    removed: set[int] = set()
    folded = 0
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        transpose = _only_consumer(conv.output[0], consumers, kept_outputs)
        if (transpose is None or transpose.op_type != "Transpose" or len(conv.input) < 2
                or conv.input[1] not in constants
                or list(onnx.helper.get_attribute_value(transpose.attribute[0])) != _TO_NHWC):
            continue
        weights = numpy_helper.to_array(constants[conv.input[1]]).astype(np.float64)
        channels = weights.shape[0]
        scale = np.ones(channels)
        shift = (numpy_helper.to_array(constants[conv.input[2]]).astype(np.float64)
                 if len(conv.input) > 2 and conv.input[2] else np.zeros(channels))
        chain, current = [], transpose.output[0]
        while (node := _only_consumer(current, consumers, kept_outputs)) is not None:
            step = _affine_step(node, current, constants, channels)
            if step is None:
                break
            op, value = step
            if op == "Add":
                shift = shift + value
            elif op == "Sub":
                shift = shift - value
            elif op == "Mul":
                scale, shift = scale * value, shift * value
            chain.append(node)
            current = node.output[0]
        if not any(n.op_type in ("Add", "Sub", "Mul") for n in chain):
            continue
        w_name, b_name = f"{conv.name}/folded_weight", f"{conv.name}/folded_bias"
        graph.initializer.append(numpy_helper.from_array(
            (weights * scale[:, None, None, None]).astype(np.float32), w_name))
        graph.initializer.append(numpy_helper.from_array(shift.astype(np.float32), b_name))
        del conv.input[1:]
        conv.input.extend([w_name, b_name])
        transpose.output[0] = current  # the chain's last value, now the Transpose's output
        removed.update(id(n) for n in chain)
        folded += 1
    kept = [n for n in graph.node if id(n) not in removed]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return folded


def _only_consumer(name: str, consumers: dict[str, list[onnx.NodeProto]],
                   kept_outputs: set[str]) -> onnx.NodeProto | None:
    """The one node reading `name`, or None when it has several readers or is a graph output."""
    readers = consumers.get(name, [])
    return readers[0] if len(readers) == 1 and name not in kept_outputs else None


def _affine_step(node: onnx.NodeProto, current: str, constants: dict, channels: int
                 ) -> tuple[str, np.ndarray] | None:
    """(op, per-channel value) when `node` is a float Cast or x ± c / x * c with c a constant of
    one value per channel (NHWC: the last axis); None otherwise."""
    import onnx
    from onnx import numpy_helper

    if node.op_type == "Cast":
        to = onnx.helper.get_attribute_value(node.attribute[0])
        return ("Cast", np.empty(0)) if to == onnx.TensorProto.FLOAT else None
    if node.op_type not in ("Add", "Sub", "Mul") or len(node.input) != 2:
        return None
    first, second = node.input
    if node.op_type == "Sub" and first != current:
        return None  # c - x would flip the sign; not a pattern OpenNSFW has
    other = second if first == current else first
    if other not in constants:
        return None
    value = numpy_helper.to_array(constants[other]).astype(np.float64)
    if value.size != channels or (value.ndim and value.shape[-1] != channels):
        return None
    return node.op_type, value.reshape(channels)
