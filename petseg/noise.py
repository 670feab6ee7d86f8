"""The native libraries' log lines that tell a user of petseg nothing: what the quiet CLI drops and
what a child's failure report skips (quiet.py, child.py)."""

from __future__ import annotations

import re

# Lines from native code that tell a user of petseg nothing (shown with --verbose).
NOISE = re.compile(
    rb"[IWE]\d{4} [\d:. ]+\s+\d+ [\w./-]+:\d+\] "  # absl/TensorFlow C++ log lines: info, warning, error
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow"  # 2nd line of a CPU-feature note
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate"
    rb"|INFO: Initialized TensorFlow Lite runtime"
    rb"|fully_quantize: \d+, inference_type: "
    rb"|(INFO|WARNING): \[[\w./-]+:\d+\] "  # LiteRT's CompiledModel: accelerator registry, vendor plugins
    rb"|\xe2\x94\x94 Could not load shared library"  # the second line of a vendor plugin's warning
    rb"|INFO: Failed to load OpenCL library"
    rb"|WARNING: Logging before InitGoogle\(\) is written to STDERR"
)
