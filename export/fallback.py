"""The fallback policy of every quantised variant: which layers, if any, get something else.

Both quantizers call ``choose_layers`` (converter.py for int8, aeq_variants.py for the LiteRT
Quantizer's variants); only what a chosen layer gets differs (kept in float, int16 activations,
int8 weights), and that is the caller's ``make``. The policy:

1. every layer quantised is judged first: within the budget, nothing falls back; nor does it
   when the caller's other every-layer-quantised model (``instead``, e.g. int8 on min..max
   activation ranges) is within it;
2. otherwise layers are added worst first (``ranked``) until the budget is met on held-out images;
3. the layers found are kept only when they beat every-layer-quantised measurably on the same
   images (a paired bootstrap): a layer outside the quantiser costs speed and the integer-only
   accelerators, and a noisy check that merely ranks a set first is not worth that.

``--keep-float`` names layers to force; with ``--max-drop off`` they are all that falls back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from petseg.errors import PetsegError

from .budget import LEVEL, Judgement, judge, paired_gain
from .settings import Budget, Fallback

if TYPE_CHECKING:
    from .verify import Reference

# Calibration images the per-layer debugger ranks layers on (sensitivity.layer_errors).
RANK_IMAGES = 32


def choose_layers(ranked: Callable[[], list[str]], make: Callable[[list[str]], bytes], fallback: Fallback,
                  reference: Reference, label: str, budget: Budget | None = None,
                  every_layer: Callable[[], bytes] | None = None, note: str = "",
                  instead: Callable[[], bool] | None = None) -> list[str]:
    """The layers ``make(layers)`` should give the fallback (``label`` says what they get).

    ``ranked()`` lists the layers worst first; it costs a debugger run, which a model within its
    budget never needs. ``every_layer()`` is the model with every layer quantised as it would ship
    (default ``make([])``), ``note`` what its line should add; ``budget`` overrides the fallback's
    own (a variant with a stricter floor). ``instead()``, asked when that model misses, judges
    another way to quantise every layer and says whether the caller ships it (then [] is returned).
    """
    budget = budget or fallback.budget
    forced = resolve(fallback.keep_float, ranked()) if fallback.keep_float else []
    if not fallback.searching:
        return forced
    if forced:
        return search(ranked, make, budget, reference, forced, label, start=0)[0]
    first = (every_layer or (lambda: make([])))()
    verdict = judge_model(first, reference, budget)
    print(f"   0 layers {label}: {verdict.line(budget)}{note}")
    if verdict.verdict == "within" or (instead is not None and instead()) or not ranked():
        return []
    keep = search(ranked, make, budget, reference, [], label, start=1)[0]
    return keep if keep and _measurably_better(first, make(keep), reference, label) else []


def _measurably_better(before: bytes, after: bytes, reference: Reference, label: str) -> bool:
    """Whether ``after`` gains over ``before`` in mIoU or agreement, paired on the same images."""
    from .verify import run_tflite_bytes

    split = reference.split
    miou, agreement = paired_gain(split.masks, reference.classes, run_tflite_bytes(before, split.images),
                                  run_tflite_bytes(after, split.images))
    if miou.low > 0 or agreement.low > 0:
        return True
    print(f"fallback: the layers {label} changed mIoU by {miou.low:+.2f} to {miou.high:+.2f} points and "
          f"agreement by {100 * agreement.low:+.2f} to {100 * agreement.high:+.2f} ({LEVEL:.0%} intervals, "
          "same images): not measurably better than every layer quantised, which is kept")
    return False


def resolve(names: tuple[str, ...] | list[str], tensors: list[str]) -> list[str]:
    """Full tensor names for the names given, each matched as a substring (report names are long)."""
    resolved = []
    for name in names:
        matches = [t for t in tensors if name in t]
        if not matches:
            raise PetsegError(f"--keep-float {name}: no quantised tensor has that in its name; "
                              "see the names --report prints")
        resolved += [t for t in matches if t not in resolved]
    return resolved


def search(ranked: Callable[[], list[str]], make: Callable[[list[str]], bytes], budget: Budget,
           reference: Reference, forced: list[str], label: str, start: int) -> tuple[list[str], Judgement]:
    """The fewest of the ``ranked`` layers, after ``forced``, with which the model meets ``budget``.

    The budget (budget.py) is judged on held-out images, never test: validation images plus
    training images calibration never saw, with a bootstrap interval that must lie within it as a
    whole. Layers are added worst first from ``start`` of them. Where no set meets the budget, the
    best one tried is returned (fewer layers win ties): more float layers do not always help.
    """
    count, tried = start, []
    while True:
        chosen = ranked()[:count] if count else []
        candidate = forced + [t for t in chosen if t not in forced]
        verdict = judge_model(make(candidate), reference, budget)
        print(f"  {count:2d} layers {label}: {verdict.line(budget)}")
        if verdict.verdict == "within":
            if candidate:
                names = ", ".join(short_name(t) for t in candidate)
                print(f"fallback: {len(candidate)} layer(s) {label} to meet the {budget.as_text()}: {names}")
            return candidate, verdict
        tried.append((candidate, verdict))
        if count >= len(ranked()):
            break
        count = _next_count(count, len(ranked()))
    candidate, verdict = min(tried, key=lambda t: (t[1].drop_interval.high, -t[1].agreement, len(t[0])))
    print(f"fallback: the {budget.as_text()} is not met with any set of layers {label}; the best tried "
          f"has {len(candidate)}")
    return candidate, verdict


def judge_model(model: bytes, reference: Reference, budget: Budget) -> Judgement:
    """The budget's verdict on a candidate TFLite model, on the reference's held-out images."""
    from .verify import run_tflite_bytes

    pred = run_tflite_bytes(model, reference.split.images)
    return judge(reference.split.masks, reference.classes, pred, budget)


def _next_count(count: int, total: int) -> int:
    """Grow the set gently at first (usually one or two layers do it), then faster."""
    steps = [c for c in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64) if count < c < total]
    return steps[0] if steps else total


def short_name(tensor: str) -> str:
    """A fused op's tensor name lists every TF op folded into it; the first part names the layer."""
    return tensor.split(";")[0]
