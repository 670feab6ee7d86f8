"""A thinner MobileNetV2 from the pretrained alpha-1.0 one: structured channel pruning.

Keras offers ImageNet weights for alpha 0.35-0.75 only by download, and ImageNet itself cannot be
had offline; the alpha-1.0 weights can. So the thinner encoder is Keras' own
``MobileNetV2(alpha=width)`` architecture, filled with the most important channels of the
alpha-1.0 one, and fine-tuned with the decoder afterwards (train/trainer.py).

Channels live in *spaces*: the tensor axis a layer writes and the layers after it read. Each
inverted-residual block has its own expansion space; the blocks of a residual chain (``block_N_add``)
share one output space, so that the additions stay aligned. A channel's importance is the size of
what it passes on: for an expansion channel, its last batch norm's |gamma| times the norm of its
row in the projection that reads it; for a chain's output channel, the |gamma| its projections'
batch norms write into it, summed over the chain (network slimming's criterion, per space).
"""

from __future__ import annotations

import keras
import numpy as np

_STEM = "stem"  # Conv1's output, which the first (expansion-free) block's depthwise reads


def _block_names(model: keras.Model) -> list[str]:
    """The inverted-residual blocks in order: ``expanded_conv`` (no expansion), then block_1..."""
    names = {layer.name for layer in model.layers}
    blocks = ["expanded_conv"]
    while f"block_{len(blocks)}_project" in names:
        blocks.append(f"block_{len(blocks)}")
    return blocks


def _axis_spaces(model: keras.Model) -> dict[str, list[tuple]]:
    """Per layer with weights, per weight, the space of each axis (None: an axis never pruned)."""
    names = {layer.name for layer in model.layers}
    spaces: dict[str, list[tuple]] = {}

    def conv(name: str, into: str | None, out: str | None) -> None:
        spaces[name] = [(None, None, into, out)]

    def depthwise(name: str, space: str) -> None:
        spaces[name] = [(None, None, space, None)]

    def norm(name: str, space: str | None) -> None:
        spaces[name] = [(space,)] * 4  # gamma, beta, moving mean, moving variance

    conv("Conv1", None, _STEM)
    norm("bn_Conv1", _STEM)
    current = _STEM
    for block in _block_names(model):
        inner = current if block == "expanded_conv" else f"{block}_expanded"
        if block != "expanded_conv":
            conv(f"{block}_expand", current, inner)
            norm(f"{block}_expand_BN", inner)
        depthwise(f"{block}_depthwise", inner)
        norm(f"{block}_depthwise_BN", inner)
        # A block that adds its input keeps its input's space; any other starts a new one.
        out = current if f"{block}_add" in names else f"{block}_out"
        conv(f"{block}_project", inner, out)
        norm(f"{block}_project_BN", out)
        current = out
    conv("Conv_1", current, None)  # the 1280-channel head conv, which no width narrows
    norm("Conv_1_bn", None)
    # An encoder cut at its taps lacks the layers after them.
    return {name: axes for name, axes in spaces.items() if name in names}


def _weights(model: keras.Model, name: str) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_layer(name).get_weights()]


def channel_scores(model: keras.Model) -> dict[str, np.ndarray]:
    """Each space's channel importance in the alpha-1.0 ``model`` (module docstring)."""
    scores: dict[str, np.ndarray] = {}
    spaces = _axis_spaces(model)
    for name, axes in spaces.items():
        if not name.endswith("_project"):
            continue
        block = name[: -len("_project")]
        into, out = axes[0][2], axes[0][3]
        # What the projection reads: its input's activation scale times the row that carries it on.
        gamma = np.abs(_weights(model, f"{block}_depthwise_BN")[0])
        rows = np.linalg.norm(_weights(model, name)[0][0, 0], axis=1)
        scores[into] = gamma * rows
        # What the chain writes: every member's output scale, summed.
        written = np.abs(_weights(model, f"{name}_BN")[0])
        scores[out] = scores.get(out, 0) + written
    return scores


def kept_channels(full: keras.Model, thin: keras.Model) -> dict[str, np.ndarray]:
    """Per space, the indices into ``full``'s channels that ``thin`` keeps (ascending). ``full`` is
    a whole alpha-1.0 MobileNetV2 (its scores need every batch norm); ``thin`` may be cut."""
    counts: dict[str, int] = {}
    for name, axes in _axis_spaces(thin).items():
        for weight, spaces in zip(thin.get_layer(name).weights, axes):
            for length, space in zip(weight.shape, spaces):
                if space is not None and counts.setdefault(space, length) != length:
                    raise ValueError(f"space {space} has {counts[space]} and {length} channels in {name}")
    scores = channel_scores(full)
    return {space: np.sort(np.argsort(-scores[space], kind="stable")[:count])
            for space, count in counts.items()}


def thinned_mobilenet_v2(full: keras.Model, width: float) -> keras.Model:
    """Keras' ``MobileNetV2(alpha=width, include_top=False)``, its weights the kept channels of
    ``full`` (an alpha-1.0 one with the same input shape)."""
    if width == 1.0:
        return full
    thin = keras.applications.MobileNetV2(input_shape=full.input_shape[1:], include_top=False,
                                          weights=None, alpha=width)
    keep = kept_channels(full, thin)
    for name, axes in _axis_spaces(thin).items():
        sliced = []
        for weight, spaces in zip(_weights(full, name), axes):
            for axis, space in enumerate(spaces):
                if space is not None:
                    weight = np.take(weight, keep[space], axis=axis)
            sliced.append(weight)
        thin.get_layer(name).set_weights(sliced)
    return thin


def tap_channels(full: keras.Model, thin: keras.Model, taps: tuple[str, ...]) -> list[np.ndarray]:
    """For each tap layer, the indices into ``full``'s channels that ``thin``'s keeps (``full`` as
    in kept_channels)."""
    spaces, keep = _axis_spaces(full), kept_channels(full, thin)
    # A tap is a conv's output or its activation (``block_1_expand_relu``): the conv's space.
    return [keep[spaces[tap.removesuffix("_relu")][0][3]] for tap in taps]
