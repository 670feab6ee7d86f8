"""The minimum metadata parser version a TFLite metadata buffer needs, in Python.

MediaPipe's metadata populator stamps every metadata buffer with the oldest parser
version that understands all of its fields. It asks a compiled helper
(``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``) that the mediapipe
1.2.x wheels do not ship, so importing the writers fails. ``install()`` registers this
module under that name when, and only when, the compiled one is missing.

The rules follow MediaPipe's ``metadata_version.cc``: fields added after schema 1.0.0
raise the version to the release that introduced them.
"""

from __future__ import annotations

import importlib
import sys
import types

COMPILED = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"

# (schema release, fields or enum values that release added)
_ASSOCIATED_FILE_VOCABULARY = (1, 0, 1)
_PROCESS_UNITS = (1, 1, 0)  # SubGraphMetadata input/output process units
_TOKENIZERS = {4: (1, 1, 0), 5: (1, 1, 0), 6: (1, 2, 1)}  # Bert, SentencePiece, Regex options
_TENSOR_GROUPS = (1, 2, 0)
_AUDIO_PROPERTIES = (1, 3, 0)
_SCANN_INDEX_FILE = (1, 4, 0)
_ASSOCIATED_FILE_VERSION = (1, 4, 1)
_CUSTOM_METADATA = (1, 5, 0)


def _files(files, found: set) -> None:
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    for f in files or []:
        if f.type == fb.AssociatedFileType.VOCABULARY:
            found.add(_ASSOCIATED_FILE_VOCABULARY)
        if f.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
            found.add(_SCANN_INDEX_FILE)
        if f.version is not None:
            found.add(_ASSOCIATED_FILE_VERSION)


def _units(units, found: set) -> None:
    for unit in units or []:
        if unit.optionsType in _TOKENIZERS:
            found.add(_TOKENIZERS[unit.optionsType])


def _tensors(tensors, found: set) -> None:
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    for t in tensors or []:
        _files(t.associatedFiles, found)
        _units(t.processUnits, found)
        if t.content is not None and t.content.contentPropertiesType == fb.ContentProperties.AudioProperties:
            found.add(_AUDIO_PROPERTIES)


def minimum_parser_version(buffer: bytes) -> str:
    """'1.0.0' unless the buffer uses fields added later; then the latest such release."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    if not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0):
        raise ValueError("not a TFLite metadata buffer (identifier M001 missing)")
    meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(buffer, 0))
    found = {(1, 0, 0)}
    for sub in meta.subgraphMetadata or []:
        _tensors(sub.inputTensorMetadata, found)
        _tensors(sub.outputTensorMetadata, found)
        _files(sub.associatedFiles, found)
        for units in (sub.inputProcessUnits, sub.outputProcessUnits):
            if units is not None:
                found.add(_PROCESS_UNITS)
                _units(units, found)
        if sub.inputTensorGroups is not None or sub.outputTensorGroups is not None:
            found.add(_TENSOR_GROUPS)
        if sub.customMetadata is not None:
            found.add(_CUSTOM_METADATA)
    _files(meta.associatedFiles, found)
    return ".".join(map(str, max(found)))


def install() -> None:
    """Make MediaPipe's metadata writers importable when the compiled helper is missing."""
    try:
        importlib.import_module(COMPILED)
        return
    except ImportError:
        pass
    parent = COMPILED.rpartition(".")[0]
    for name in ("mediapipe.tasks.cc", "mediapipe.tasks.cc.metadata", parent):
        try:
            importlib.import_module(name)
        except ImportError:  # absent from the wheel: an empty package stands in
            sys.modules[name] = types.ModuleType(name)
    module = types.ModuleType(COMPILED)
    module.GetMinimumMetadataParserVersion = minimum_parser_version
    sys.modules[COMPILED] = module
    sys.modules[parent]._pywrap_metadata_version = module
