"""Repairs of LiteRT Quantizer 0.11 output (AEQ 0.10 renamed) that LiteRT needs to run the model right.

- Buffers inline: above 256 KB of weights AEQ stores buffers after the flatbuffer (offset and
  size); the object API and MediaPipe's metadata populator expect them inline.
- ADD/SUB ``pot_scale_int16`` off: AEQ keeps the float model's option, whose schema default is
  true; with int16 scales that are powers of two (the input scaling to [-1, 1] gives exactly
  that) LiteRT takes its power-of-two ADD path and refuses to prepare. TF's 16x8 converter
  writes false; so does this.
- Saturated int32 biases: AEQ floors a channel's weight range at 1e-9, so a dead channel (MobileNetV2's
  first conv has seven, all weights ~1e-20) gets a bias scale near 1e-14 and its bias overflows
  int32, a positive one wrapping to INT32_MIN. As TF's converter does, such channels get a weight
  scale large enough for their bias, and weights and bias are re-quantised from the float model.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.tools import flatbuffer_utils

_BIASED = (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.DEPTHWISE_CONV_2D,
           fb.BuiltinOperator.FULLY_CONNECTED)
_INT32_MAX = 2**31 - 1


def repair(float_model: bytes, quantized: bytes) -> bytes:
    """The quantized model with buffers inline, int16 ADD/SUB preparable and biases in range."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(quantized))  # inlines the buffers
    _clear_pot_scale_int16(model)
    _fix_saturated_biases(flatbuffer_utils.read_model_from_bytearray(bytearray(float_model)), model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcode(model, op) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _clear_pot_scale_int16(model) -> None:
    for graph in model.subgraphs:
        for op in graph.operators:
            code = _opcode(model, op)
            if code not in (fb.BuiltinOperator.ADD, fb.BuiltinOperator.SUB):
                continue
            if op.builtinOptions is None:  # an absent table means the schema default: true
                add = code == fb.BuiltinOperator.ADD
                op.builtinOptionsType = fb.BuiltinOptions.AddOptions if add else fb.BuiltinOptions.SubOptions
                op.builtinOptions = fb.AddOptionsT() if add else fb.SubOptionsT()
            op.builtinOptions.potScaleInt16 = False


def _constant(model, tensor, dtype) -> np.ndarray:
    return np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype).reshape(list(tensor.shape)).copy()


def _float_weights(model) -> dict[bytes, tuple[np.ndarray, np.ndarray]]:
    """Output tensor name -> (weights, bias) of every biased op of the float model."""
    graph, found = model.subgraphs[0], {}
    for op in graph.operators:
        if _opcode(model, op) in _BIASED and len(op.inputs) > 2 and op.inputs[2] >= 0:
            weights, bias = (graph.tensors[i] for i in op.inputs[1:3])
            found[graph.tensors[op.outputs[0]].name] = (_constant(model, weights, np.float32),
                                                        _constant(model, bias, np.float32))
    return found


def _fix_saturated_biases(float_model, model) -> None:
    floats, graph = _float_weights(float_model), model.subgraphs[0]
    for op in graph.operators:
        if _opcode(model, op) not in _BIASED or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        x, w, b = (graph.tensors[i] for i in op.inputs[:3])
        name = graph.tensors[op.outputs[0]].name
        if b.type != fb.TensorType.INT32 or w.type != fb.TensorType.INT8 or name not in floats:
            continue
        weights, bias = floats[name]
        in_scale = float(x.quantization.scale[0])
        scale = np.asarray(w.quantization.scale, np.float64).copy()
        needed = np.abs(bias.astype(np.float64)) / (in_scale * _INT32_MAX)
        bad = np.flatnonzero(scale < needed)
        if not bad.size:
            continue
        scale[bad] = 2 * needed[bad]
        shape = [1] * weights.ndim
        shape[w.quantization.quantizedDimension] = -1
        w_q = np.clip(np.rint(weights / scale.reshape(shape)), -127, 127).astype(np.int8)
        b_q = np.clip(np.rint(bias / (in_scale * scale)), -_INT32_MAX, _INT32_MAX).astype(np.int32)
        w.quantization.scale = scale.astype(np.float32)
        b.quantization.scale = (in_scale * scale).astype(np.float32)
        model.buffers[w.buffer].data = np.frombuffer(w_q.tobytes(), np.uint8)
        model.buffers[b.buffer].data = np.frombuffer(b_q.tobytes(), np.uint8)
