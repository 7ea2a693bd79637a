"""Hand-made ONNX models that a dlx export never is (a Loop of 2**62 turns, outputs that are no probabilities),
put in place of an export's model.onnx with export.json re-recording its sha256, as someone replacing both would."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IMAGES = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 8, 8, 1])
OUTPUT = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, None)


def _save(nodes: list, folder: Path, initializers=()) -> Path:
    graph = helper.make_graph(nodes, "tampered", [IMAGES], [OUTPUT], initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path = folder / "model.onnx"
    onnx.save(model, str(path))
    record = folder / "export.json"
    document = json.loads(record.read_text())
    document["model_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    record.write_text(json.dumps(document))
    return path


def per_image(values: np.ndarray, folder: Path) -> Path:
    """A model whose output is `values` (1×K) for every image: sum(images) × 0 + values, shape N×K."""
    constant = numpy_helper.from_array(values.astype(np.float32).reshape(1, -1), "values")
    nodes = [helper.make_node("Flatten", ["images"], ["flat"], axis=1),
             helper.make_node("ReduceSum", ["flat", "one_axis"], ["rows"], keepdims=1),  # N×1
             helper.make_node("Mul", ["rows", "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "values"], ["probabilities"])]
    return _save(nodes, folder, [constant, numpy_helper.from_array(np.array([1], np.int64), "one_axis"),
                                 numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero")])


def scalar(folder: Path) -> Path:
    """A model whose output is one number for the whole batch."""
    return _save([helper.make_node("ReduceSum", ["images"], ["probabilities"], keepdims=0)], folder)


def endless_loop(folder: Path, turns: int = 2**62) -> Path:
    """A Loop of `turns` iterations adding 1 to the images' sum, then 10 "probabilities" of 0.1 scaled by it."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Constant", [], ["c1"], value=one),
         helper.make_node("Add", ["acc_in", "c1"], ["acc_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])])
    nodes = [helper.make_node("Constant", [], ["trip"], value=helper.make_tensor("t", TensorProto.INT64, [], [turns])),
             helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
             helper.make_node("ReduceSum", ["images"], ["s"], keepdims=0),
             helper.make_node("Loop", ["trip", "cond", "s"], ["final"], body=body),
             helper.make_node("Constant", [], ["tenth"],
                              value=helper.make_tensor("z", TensorProto.FLOAT, [1, 10], [0.1] * 10)),
             helper.make_node("Mul", ["tenth", "final"], ["probabilities"])]
    return _save(nodes, folder)
