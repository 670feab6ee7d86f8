"""One runner on LiteRT's CompiledModel API, for the CPU computing in fp16 and for the GPU.

The Interpreter (petseg.runtime) turns fp16 weights back into fp32 at load and computes in fp32;
CompiledModel can ask XNNPACK for fp16 arithmetic, and it is also the only Python door to
LiteRT's GPU accelerator. Which ops ran where: CompiledModel says only whether the whole graph
was accelerated, so that is what is reported.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import vulkan
from .capability import FP16_NEEDS, fp16_arithmetic
from .environment import package_version
from .errors import PetsegError
from .graph import count_macs
from .runtime import check_image_io, checked_convention, dequantize, quantize
from .segmenter import Segmenter

# XNNPACK delegate flags (tflite/delegates/xnnpack/xnnpack_delegate.h). CpuOptions.xnnpack_flags
# replaces the default flags, which in LiteRT's build are QS8 | QU8: without them integer models
# would fall to reference kernels, so they stay set beside FORCE_FP16.
XNNPACK_QS8, XNNPACK_QU8, XNNPACK_FORCE_FP16 = 0x1, 0x2, 0x4
XNNPACK_DEFAULT_FLAGS = XNNPACK_QS8 | XNNPACK_QU8


@dataclass(frozen=True)
class Backend:
    name: str
    gpu: bool
    fp16: bool  # CPU: XNNPACK forced to fp16 arithmetic; GPU: fp16 allowed (LiteRT's default)
    summary: str


BACKENDS = {b.name: b for b in (
    Backend("cpu-fp16", False, True, "XNNPACK computing in fp16 (CompiledModel, FORCE_FP16)"),
    Backend("gpu", True, True, "LiteRT GPU accelerator, fp16 allowed (its default; phone GPUs compute "
                               "in fp16)"),
    Backend("gpu-fp32", True, False, "LiteRT GPU accelerator, fp32 enforced"),
)}


ARITHMETIC = ("auto", "fp16", "fp32")


def choose_backend(variant: str, accelerator: str, arithmetic: str) -> str:
    """The backend for one model: 'cpu' (the Interpreter, fp32 arithmetic) or a BACKENDS name.

    ``auto`` computes an fp16 variant in fp16 where the hardware can (what the variant is for) and
    anything else in fp32; ``fp16`` asks for fp16 arithmetic and is refused where the CPU lacks it.
    """
    if accelerator == "gpu":
        return "gpu-fp32" if arithmetic == "fp32" else "gpu"
    if arithmetic == "fp16" or (arithmetic == "auto" and variant == "fp16" and fp16_arithmetic()):
        return "cpu-fp16"
    return "cpu"


def _options(backend: Backend, num_threads: int | None):
    from ai_edge_litert.compiled_model import CpuOptions, GpuOptions, HardwareAccelerator, Options

    cpu = CpuOptions(num_threads=num_threads or 1,
                     xnnpack_flags=XNNPACK_DEFAULT_FLAGS | XNNPACK_FORCE_FP16 if backend.fp16 else None)
    if not backend.gpu:
        return Options(hardware_accelerators=HardwareAccelerator.CPU, cpu_options=cpu)
    # CPU as fallback: ops the GPU refuses run there and is_fully_accelerated() says so.
    return Options(hardware_accelerators=HardwareAccelerator.GPU | HardwareAccelerator.CPU,
                   cpu_options=CpuOptions(num_threads=num_threads or 1),
                   gpu_options=GpuOptions(enforce_f32=not backend.fp16))


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """What native code prints meanwhile, on fd 1 or 2, passed on to stderr once done.

    The GPU adapter is named only there, and the OpenCL probe prints to stdout, where it would
    corrupt a JSON answer.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield log
        finally:
            for fd, original in zip((1, 2), saved):
                os.dup2(original, fd)
                os.close(original)
            tmp.seek(0)
            text = tmp.read()
            log.append(text.decode(errors="replace"))
            os.write(2, text)


def check_backend(backend: Backend) -> str | None:
    """Refuse what this machine cannot run, in one line; the fp16 flag ('avx512_fp16') for cpu-fp16."""
    if backend.gpu:
        vulkan.prepare()
        if not vulkan.device_configured():
            raise PetsegError(vulkan.missing_device())
        return None
    feature = fp16_arithmetic()
    if backend.fp16 and feature is None:
        raise PetsegError(f"fp16 arithmetic is not available on this CPU ({FP16_NEEDS}); "
                          "run without it (fp32 arithmetic) on this machine")
    return feature


class CompiledSegmenter(Segmenter):
    """A .tflite compiled by LiteRT for ``backend``: uint8 images in, class ids out."""

    def __init__(self, path: Path, backend: str, num_threads: int | None = None) -> None:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path, self.backend = Path(path), BACKENDS[backend]
        self.fp16_feature = check_backend(self.backend)
        # An undelegated, unallocated Interpreter: the tensors' quantisation and the graph's MACs,
        # which CompiledModel does not report.
        self.graph = Interpreter(model_path=str(path),
                                 experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.input, self.output = self.graph.get_input_details()[0], self.graph.get_output_details()[0]
        check_image_io(self.input["shape"], self.output["shape"], path)
        self.mean, self.std, self.raw_pixels = checked_convention(path, self.input, self.output)
        failure = None
        with captured_output() as log:
            try:
                self.model = CompiledModel.from_file(str(path), options=_options(self.backend, num_threads))
            except RuntimeError as exc:
                failure = exc
        if failure is not None:  # raised here, once the log is complete
            raise self._compile_error(failure, log) from failure
        self.adapter = vulkan.adapter_from_log(log[0]) if self.backend.gpu else None
        self.inputs, self.outputs = self.model.create_input_buffers(0), self.model.create_output_buffers(0)
        self._result: np.ndarray | None = None

    def _compile_error(self, exc: RuntimeError, log: list[str]) -> PetsegError:
        text = "".join(log)
        if self.backend.gpu and ("No adapters found" in text or "Couldn't load Vulkan" in text):
            return PetsegError(vulkan.missing_device("the GPU accelerator found no adapter"))
        lines = [ln for ln in text.splitlines() + str(exc).splitlines() if "ERROR" in ln]
        return PetsegError(f"{self.path}: LiteRT could not compile it for {self.backend.name} "
                           f"({lines[-1].strip() if lines else exc})")

    @property
    def image_size(self) -> int:
        return int(self.input["shape"][1])

    @property
    def runtime_name(self) -> str:
        return f"ai-edge-litert {package_version('ai-edge-litert') or '?'} CompiledModel"

    @property
    def input_dtype(self) -> str:
        return np.dtype(self.input["dtype"]).name

    def outside_delegate(self) -> dict[str, int]:
        return {}  # CompiledModel names no ops; placement() says whether any stayed behind

    def placement(self) -> dict:
        """Where it ran, as far as LiteRT tells: fully accelerated or not, the GPU adapter."""
        return {"backend": self.backend.name, "fully_accelerated": self.model.is_fully_accelerated(),
                "adapter": self.adapter, "software_device": vulkan.is_software(self.adapter),
                "fp16_arithmetic": self.fp16_feature if self.backend.fp16 and not self.backend.gpu else None}

    def macs(self) -> int:
        return count_macs(self.graph)

    def set_input(self, image: np.ndarray) -> None:
        pixels = image[None] if self.raw_pixels else (image[None].astype(np.float32) - self.mean) / self.std
        self.inputs[0].write(np.ascontiguousarray(quantize(pixels, self.input)))

    def invoke(self) -> None:
        self.model.run_by_index(0, self.inputs, self.outputs)
        # The GPU may still be computing when the call returns; reading the output waits for it, so an
        # inference is timed until its result is on the host, as an app would use it.
        self._result = self._read() if self.backend.gpu else None

    def _read(self) -> np.ndarray:
        shape, dtype = self.output["shape"], np.dtype(self.output["dtype"])
        return np.asarray(self.outputs[0].read(int(np.prod(shape)), dtype)).reshape(shape)

    def logits(self) -> np.ndarray:
        values = self._result if self._result is not None else self._read()
        return dequantize(values, self.output)[0]
