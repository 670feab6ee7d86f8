"""The fp16 variant's accuracy computed in fp16, as a phone CPU computes it, where this machine can.

The Interpreter widens fp16 weights to fp32 at load, so the ordinary verification measures fp32
arithmetic; XNNPACK's fp16 arithmetic (through CompiledModel) rounds every activation too. The
description records both, so the number a phone will see is known before shipping.
"""

from __future__ import annotations

from pathlib import Path

from petseg.capability import FP16_NEEDS, fp16_arithmetic
from petseg.metrics import agreement, confusion, scores


def fp16_verification(path: Path, reference) -> dict:
    """Agreement with Keras and mIoU of ``path`` computed in fp16; why not, where the CPU cannot."""
    feature = fp16_arithmetic()
    if feature is None:
        print(f"fp16 arithmetic: not on this machine ({FP16_NEEDS}); verified in fp32 arithmetic only")
        return {"ran": False, "why": f"the export machine has no fp16 arithmetic ({FP16_NEEDS})"}
    from petseg.compiled import CompiledSegmenter

    split = reference.split
    pred = CompiledSegmenter(path, "cpu-fp16", num_threads=1).predict(split.images)
    miou = scores(confusion(split.masks, pred))["mean_iou"]
    found = {"ran": True, "cpu_feature": feature, "images": len(split), "split": "val",
             "agreement": agreement(pred, reference.classes), "miou": miou,
             "miou_delta_points": 100 * (miou - reference.miou)}
    print(f"fp16 computed in fp16 ({feature}): agreement {100 * found['agreement']:.2f}% with Keras, "
          f"ΔmIoU {found['miou_delta_points']:+.2f}")
    return found
