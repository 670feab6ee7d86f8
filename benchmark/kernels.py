"""Where a model's time goes, in words both runtimes share: each op, kernel or symbol -> one family.

LiteRT's Python packages have no op profiler, so petseg samples the CPU (perf) and names
XNNPACK's microkernels; ONNX Runtime profiles its own nodes. Both land in the same families,
so one table can say which kind of work one runtime does slower than the other.
"""

from __future__ import annotations

import re

CONV, DEPTHWISE = "convolution", "depthwise convolution"
ELEMENTWISE, MOVEMENT = "elementwise", "data movement"
PACKING, SCHEDULING, OUTSIDE = "weight packing", "runtime scheduling and threads", "outside the runtime"
# In table order: the families that do the multiply-accumulates first.
FAMILIES = (CONV, DEPTHWISE, ELEMENTWISE, MOVEMENT, PACKING, SCHEDULING, OUTSIDE)

# The TFLite ops whose MACs petseg.graph counts, and the ONNX ops that do the same work.
TFLITE_FAMILIES = {"CONV_2D": CONV, "TRANSPOSE_CONV": CONV, "FULLY_CONNECTED": CONV,
                   "DEPTHWISE_CONV_2D": DEPTHWISE}

_ONNX_MOVEMENT = {"Concat", "Pad", "Slice", "Split", "Transpose", "Reshape", "DepthToSpace",
                  "SpaceToDepth", "Resize", "Identity", "Squeeze", "Unsqueeze", "Flatten", "Gather",
                  "ReorderInput", "ReorderOutput", "Expand", "Tile", "Cast"}
_ONNX_CONV = {"Conv", "FusedConv", "ConvTranspose", "Gemm", "MatMul", "FusedGemm", "FusedMatMul",
              "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}
_GROUPED = {"Conv", "FusedConv", "QLinearConv", "ConvInteger"}  # the ops that may be depthwise

# XNNPACK microkernels are named xnn_<types>_<operation>_..._ukernel_<tile>__<isa>. The
# operation decides the family; packw (weights re-laid for a GEMM) comes before gemm.
_XNN_RULES = (
    (re.compile(r"packw|pack_lh|packb|x32_zerob|x8_packq"), PACKING),
    (re.compile(r"dwconv"), DEPTHWISE),
    (re.compile(r"_(gemm|igemm|ppmm|spmm|conv_hwc|deconv)"), CONV),
    (re.compile(r"_v[a-z0-9]+_|vunary|vbinary|raddstore|rminmax|r[d]?sum|x8_lut|"
                r"gavgpool|avgpool|maxpool|argmaxpool|ibilinear|prelu"), ELEMENTWISE),
    (re.compile(r"transpose|copy|fill|pad|depthtospace|spacetodepth|packx|zip|unpool|concat|"
                r"_xx_|x32_pack|indirection|im2col"), MOVEMENT),
)
_LIBC_MOVEMENT = re.compile(r"^_*(memcpy|memmove|memset|__memcpy|__memmove|__memset)")
_THREADS = re.compile(r"pthreadpool|thread_main|futex|sched_yield|spin|_raw_spin|"
                      r"xnn_compute_|xnn_run_|xnn_invoke|TfLiteXNNPack|tflite::|litert::")


def symbol_family(symbol: str, dso: str = "") -> str:
    """The family of one sampled function (perf's symbol and the library it lives in)."""
    name = symbol.strip()
    if "ukernel" in name and name.startswith("xnn_"):
        for rule, family in _XNN_RULES:
            if rule.search(name):
                return family
        return ELEMENTWISE  # an unnamed xnn_*_ukernel is a small per-element kernel
    if _LIBC_MOVEMENT.match(name):
        return MOVEMENT
    if _THREADS.search(name) or name.startswith("xnn_") or "litert" in dso.lower():
        return SCHEDULING
    return OUTSIDE  # Python, NumPy, the kernel, the profiler's own loop


def kernel_isa(symbol: str) -> str:
    """The instruction set an XNNPACK microkernel was written for (after '__'), else ''."""
    match = re.search(r"ukernel\w*?__([a-z0-9_]+)", symbol)
    return match.group(1) if match else ""


def onnx_family(op_type: str, weight_shape: list[int] | None = None) -> str:
    """The family of one ONNX Runtime node (after its graph optimisations), by op type.

    A Conv whose weights have one input channel per group and a spatial kernel is depthwise.
    """
    if op_type in _ONNX_CONV:
        w = weight_shape or []
        if op_type in _GROUPED and len(w) == 4 and w[1] == 1 and w[2] * w[3] > 1:
            return DEPTHWISE
        return CONV
    if op_type in _ONNX_MOVEMENT:
        return MOVEMENT
    return ELEMENTWISE


def conv_weights(op_type: str, inputs: list[list[int]]) -> list[int]:
    """The weight shape among a node's inputs (QLinearConv's come after the input's scale and zero)."""
    index = 3 if op_type.startswith("QLinear") else 1
    return inputs[index] if len(inputs) > index else []
