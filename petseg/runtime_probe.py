"""Child-process half of ``petseg.runtime.probe``: load, allocate, run once, print I/O details."""

from __future__ import annotations

import json
import sys

import numpy as np

from .child import report_failure
from .runtime import load_runtime


def main(path: str) -> int:
    interpreter = load_runtime().interpreter_class(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    details = []
    for d in interpreter.get_input_details():
        interpreter.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        details.append(d)
    interpreter.invoke()

    def tensor_json(d: dict) -> dict:  # the interpreter's details of one tensor, as plain JSON values
        return {"name": d["name"], "shape": [int(x) for x in d["shape"]],
                "dtype": np.dtype(d["dtype"]).name,
                "quantization": [float(d["quantization"][0]), int(d["quantization"][1])]}

    print(json.dumps({"inputs": [tensor_json(d) for d in details],
                      "outputs": [tensor_json(d) for d in interpreter.get_output_details()]}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1]))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        report_failure(exc)
