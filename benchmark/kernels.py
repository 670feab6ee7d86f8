"""Where a model's time goes, in words both runtimes share: each op, kernel or symbol -> one family.

LiteRT's Python packages have no op profiler, so petseg samples the CPU (perf) and names
XNNPACK's microkernels; ONNX Runtime profiles its own nodes. Both land in the same families,
so one table can say which kind of work one runtime does slower than the other.
"""

from __future__ import annotations

import re

from petseg.onnx_runtime import WEIGHT_INPUT

CONV, DEPTHWISE = "convolution", "depthwise convolution"
ELEMENTWISE, MOVEMENT = "elementwise", "data movement"
PACKING, TFLITE_KERNELS = "weight packing", "TFLite kernels (outside XNNPACK)"
SCHEDULING, OUTSIDE = "runtime scheduling and threads", "outside the runtime"
# In table order: the families that do the multiply-accumulates first.
FAMILIES = (CONV, DEPTHWISE, ELEMENTWISE, MOVEMENT, PACKING, TFLITE_KERNELS, SCHEDULING, OUTSIDE)

# The TFLite ops whose MACs petseg.graph counts, and the ONNX ops that do the same work.
TFLITE_FAMILIES = {"CONV_2D": CONV, "TRANSPOSE_CONV": CONV, "FULLY_CONNECTED": CONV,
                   "DEPTHWISE_CONV_2D": DEPTHWISE}

_ONNX_MOVEMENT = {"Concat", "Pad", "Slice", "Split", "Transpose", "Reshape", "DepthToSpace",
                  "SpaceToDepth", "Identity", "Squeeze", "Unsqueeze", "Flatten", "Gather",
                  "ReorderInput", "ReorderOutput", "Expand", "Tile"}  # Resize and Cast compute: elementwise
_ONNX_CONV = {"Conv", "FusedConv", "ConvTranspose", "Gemm", "MatMul", "FusedGemm", "FusedMatMul",
              "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}
_GROUPED = {"Conv", "FusedConv", "QLinearConv", "ConvInteger"}  # the ops that may be depthwise

# XNNPACK microkernels are named xnn_<types>_<operation>_..._ukernel_<tile>__<isa>. The
# operation decides the family; packw (weights re-laid for a GEMM) comes before gemm. Resizing
# (ibilinear) and conversions (vcvt) are elementwise, as ONNX's Resize and Cast are.
_XNN_RULES = (
    (re.compile(r"packw|pack_lh|packb|x32_zerob|x8_packq"), PACKING),
    (re.compile(r"dwconv"), DEPTHWISE),
    (re.compile(r"_(gemm|igemm|ppmm|spmm|conv_hwc|deconv)"), CONV),
    (re.compile(r"_v[a-z0-9]+_|vunary|vbinary|raddstore|rminmax|r[d]?sum|x8_lut|"
                r"gavgpool|avgpool|maxpool|argmaxpool|ibilinear|prelu"), ELEMENTWISE),
    (re.compile(r"transpose|copy|fill|pad|depthtospace|spacetodepth|packx|zip|unpool|concat|"
                r"_xx_|x32_pack"), MOVEMENT),
)
_LIBC_MOVEMENT = re.compile(r"^_*(memcpy|memmove|memset|__memcpy|__memmove|__memset)")
# The ops a delegate left behind run on TFLite's own kernels (optimized_ops, reference_ops, ruy).
_TFLITE_KERNELS = re.compile(r"tflite::(optimized_ops|optimized_integer_ops|reference_ops|"
                             r"reference_integer_ops|ops::builtin)|ruy::")
# XNNPACK's glue around its kernels (xnn_compute_*: indirection, tiling) is scheduling too.
_THREADS = re.compile(r"pthreadpool|thread_main|sched_yield|"
                      r"xnn_compute_|xnn_run_|xnn_invoke|xnn_indirection|TfLiteXNNPack|tflite::|litert::")


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
    if _TFLITE_KERNELS.search(name):
        return TFLITE_KERNELS
    if _THREADS.search(name) or name.startswith("xnn_") or "litert" in dso.lower():
        return SCHEDULING
    return OUTSIDE  # Python, NumPy, the OS kernel, the profiler's own loop


def kernel_variant(symbol: str) -> str:
    """What follows '__' in an XNNPACK microkernel's name: its instruction set and unrolling
    (``fma3_broadcast``, ``avx512vnni_prfm``, ``8x8_reuse_multi_avx``), else ''."""
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
    index = WEIGHT_INPUT.get(op_type, 1)
    return inputs[index] if len(inputs) > index else []
