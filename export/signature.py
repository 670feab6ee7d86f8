"""Give an exported flatbuffer the serving signature that LiteRT's signature APIs look for.

petseg converts a frozen concrete function (weights become constants, see converter.py),
and that path writes no SignatureDef. LiteRT's signature runner, its CompiledModel API
and the LiteRT Quantizer address a model by signature, so one is added afterwards;
it only names existing tensors, the ops stay as they are.
"""

from __future__ import annotations

# The names' one owner: aeq.py and variant.py read them too. TensorFlow is imported only to add
# the signature, so that reading the names loads nothing (petseg-export --help stays fast).
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def _tensor_map(name: str, index: int):
    from tensorflow.lite.python import schema_py_generated as schema

    entry = schema.TensorMapT()
    entry.name, entry.tensorIndex = name, index
    return entry


def add_serving_signature(flatbuffer: bytes) -> bytes:
    """``flatbuffer`` with one signature, ``serving_default``: ``image`` in, ``logits`` out."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    # read_model_from_bytearray also resolves buffers stored after the flatbuffer (as the LiteRT
    # Quantizer writes large models), which the plain object conversion would leave dangling.
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"expected one input and one output, found {len(graph.inputs)} and "
                         f"{len(graph.outputs)}")
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = SIGNATURE_KEY, 0
    signature.inputs = [_tensor_map(INPUT_NAME, graph.inputs[0])]
    signature.outputs = [_tensor_map(OUTPUT_NAME, graph.outputs[0])]
    model.signatureDefs = [signature]
    # The converter names them after the traced function ("image", "Identity"); apps and the
    # metadata see the signature's names on the tensors too.
    graph.tensors[graph.inputs[0]].name = INPUT_NAME.encode()
    graph.tensors[graph.outputs[0]].name = OUTPUT_NAME.encode()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
