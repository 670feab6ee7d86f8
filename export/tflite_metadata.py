"""Standard TFLite model metadata, so that MediaPipe Tasks and other apps take the file as is.

The writer is MediaPipe's (``mediapipe.tasks.python.metadata.metadata_writers``), the
maintained home of the TFLite metadata tools; ``tflite-support``, the old home, pins
protobuf 3 and cannot live beside TensorFlow 2.21. The metadata says what MediaPipe's
ImageSegmenter needs to run the model unchanged:

- the input is an RGB image, normalised with mean 0 and std 1: petseg's models take
  0..255 and scale inside, so the app feeds pixel values as they are;
- the output is a segmentation mask whose channels carry the labels pet, background,
  border (an associated ``labels.txt``), and SOFTMAX turns its logits into the
  confidence masks' probabilities.

petseg's own description of the model (the sidecar JSON's content) travels inside the
file as an associated ``petseg.json``, so a copied ``.tflite`` alone is enough.
"""

from __future__ import annotations

import io
import zipfile

from petseg import __version__, atomic
from petseg.description import Description
from petseg.modelfile import EMBEDDED_JSON

from .parser_version import install

# Fixed zip timestamps: the same model and data give the same bytes (see README, Determinism).
_EPOCH = (1980, 1, 1, 0, 0, 0)


def embed(flatbuffer: bytes, info: Description) -> bytes:
    """``flatbuffer`` with MediaPipe-ready metadata and ``info`` as ``petseg.json`` inside."""
    install()
    from mediapipe.tasks.python.metadata.metadata_writers import image_segmenter, metadata_writer

    writer = image_segmenter.MetadataWriter.create(
        bytearray(flatbuffer), input_norm_mean=list(info.input.mean), input_norm_std=list(info.input.std),
        labels=metadata_writer.Labels().add(list(info.classes)),
        activation=image_segmenter.Activation.SOFTMAX)
    with_labels, _ = writer.populate()
    # MediaPipe keeps a traceback that holds this frame alive; without the del, the writer's
    # __del__ runs at interpreter exit and prints an AttributeError.
    del writer
    return _stable_zip(_add_model_card(bytes(with_labels), info))


def _add_model_card(model: bytes, info: Description) -> bytes:
    """Name, description, version, licence, and petseg.json recorded as an associated file."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.python.metadata import metadata

    meta = fb.ModelMetadataT.InitFromObj(
        fb.ModelMetadata.GetRootAsModelMetadata(metadata.get_metadata_buffer(model), 0))
    meta.name = f"petseg {info.variant}"
    meta.description = description(info)
    meta.version = f"petseg {__version__}"
    meta.author = "petseg"
    meta.license = licence(info)
    card = fb.AssociatedFileT()
    card.name = EMBEDDED_JSON
    card.description = "petseg's description of this model: classes, input, variant, calibration, provenance"
    card.type = fb.AssociatedFileType.DESCRIPTIONS
    meta.associatedFiles = [*(meta.associatedFiles or []), card]
    import flatbuffers

    builder = flatbuffers.Builder(0)
    builder.Finish(meta.Pack(builder), metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    populator = metadata.MetadataPopulator.with_model_buffer(model)
    populator.load_metadata_buffer(builder.Output())
    populator.load_associated_file_buffers({EMBEDDED_JSON: atomic.json_bytes(info.to_json())})
    populator.populate()
    return bytes(populator.get_model_buffer())


def description(info: Description) -> str:
    size = info.image_size
    return (f"Pet segmentation U-Net (MobileNetV2 encoder, pix2pix-style decoder), {info.variant} "
            f"export. Input: one RGB image, {size}x{size}, pixel values 0..255 as they are (the model "
            f"scales them itself). Output: {size}x{size}x{len(info.classes)} logits for the classes "
            f"{', '.join(info.classes)}; softmax gives probabilities, argmax the class.")


def licence(info: Description) -> str:
    source = (info.source_model and info.source_model.trained_on) or ""
    if "oxford" in source.lower() or source == "tfds":
        return "Apache-2.0 (petseg); trained on Oxford-IIIT Pet, CC BY-SA 4.0"
    return "Apache-2.0"


def _stable_zip(model: bytes) -> bytes:
    """Rewrite the appended associated-file archive with fixed timestamps (MediaPipe stamps 'now')."""
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
        start = min(info.header_offset for info in archive.infolist())
    out = io.BytesIO(model[:start])
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=_EPOCH), data)
    return out.getvalue()
