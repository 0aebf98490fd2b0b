"""The model card's labels and input normalisation as standard TFLite metadata, for other tools.

The JSON card stays the source of truth for affectlite; this copy lets Netron, MediaPipe Tasks,
the TFLite Task Library and Android Studio read the same facts from the ``.tflite`` alone: a
``TFLITE_METADATA`` entry (a ``ModelMetadata`` flatbuffer, schema file identifier ``M001``,
tflite-support's ``metadata_schema.fbs`` 1.0) with the input's colour space and normalisation
(``(pixel - mean) / std``) and the output's label file, and that ``labels.txt`` packed as a zip
archive after the model, as tflite-support's populator does (interpreters read the flatbuffer
and ignore what follows it).

No maintained writer installs beside current TensorFlow (tflite-support is archived and pins
protobuf < 4; MediaPipe's wheels lack its metadata extension), so the few tables needed are built
here with the flatbuffers library, field by field in the schema's order, and the model's own
flatbuffer is extended through LiteRT's generated object API.
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np

from affectlite.models.card import ModelCard

METADATA_NAME = b"TFLITE_METADATA"
LABEL_FILE = "labels.txt"
PARSER_VERSION = "1.0.0"

# Enum and union values of metadata_schema.fbs.
_TENSOR_AXIS_LABELS = 2
_RGB, _GRAYSCALE = 1, 2
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_NORMALIZATION_OPTIONS = 1


def add_metadata(content: bytes, card: ModelCard) -> bytes:
    """``content`` (a .tflite) with the card's labels and normalisation as TFLite metadata."""
    metadata = model_metadata(card)
    model = _with_metadata_buffer(content, metadata)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as files:
        files.writestr(LABEL_FILE, "\n".join(card.labels) + "\n")
    return model + archive.getvalue()


def model_metadata(card: ModelCard) -> bytes:
    """The ``ModelMetadata`` flatbuffer for a card."""
    b = flatbuffers.Builder(1024)
    image = card.input.color in ("grayscale", "rgb")
    low, high = card.input.value_range
    # A pixel p in 0..255 becomes low + p * (high - low) / 255 = (p - mean) / std.
    std = 255.0 / (high - low)
    mean = -low * std + 0.0                       # never -0.0

    def string(text: str) -> int:
        return b.CreateString(text)

    def floats(values: list[float]) -> int:
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependFloat32(value)
        return b.EndVector()

    def offsets(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def table(*fields) -> int:
        """fields: (slot, kind, value) with kind "offset", "uint8" or "int8"; None values left out."""
        b.StartObject(max(slot for slot, _, _ in fields) + 1)
        for slot, kind, value in fields:
            if value is None:
                continue
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "uint8":
                b.PrependUint8Slot(slot, value, 0)
            else:
                b.PrependInt8Slot(slot, value, 0)
        return b.EndObject()

    # Input: the image (its colour space and normalisation) or a feature tensor.
    in_name = string("image" if image else "features")
    in_description = string(
        f"{card.input.shape} {card.input.color}, pixels 0..255 scaled to [{low:g}, {high:g}]" if image
        else f"{card.input.shape} features in [{low:g}, {high:g}]; see the model card (JSON) for how they are made")
    if image:
        properties = table((0, "int8", _RGB if card.input.color == "rgb" else _GRAYSCALE))
        content = table((0, "uint8", _IMAGE_PROPERTIES), (1, "offset", properties))
        normalization = table((0, "offset", floats([mean])), (1, "offset", floats([std])))
        unit = table((0, "uint8", _NORMALIZATION_OPTIONS), (1, "offset", normalization))
        units = offsets([unit])
    else:
        content = table((0, "uint8", _FEATURE_PROPERTIES), (1, "offset", table((0, "offset", None))))
        units = None
    stats = table((0, "offset", floats([float(high)])), (1, "offset", floats([float(low)])))
    input_tensor = table((0, "offset", in_name), (1, "offset", in_description), (3, "offset", content),
                         (4, "offset", units), (5, "offset", stats))

    # Output: probabilities over the labels, which the packed label file names in order.
    label_file = table((0, "offset", string(LABEL_FILE)),
                       (1, "offset", string("the labels, one per line, in output order")),
                       (2, "int8", _TENSOR_AXIS_LABELS))
    out_content = table((0, "uint8", _FEATURE_PROPERTIES), (1, "offset", table((0, "offset", None))))
    out_stats = table((0, "offset", floats([1.0])), (1, "offset", floats([0.0])))
    output_tensor = table((0, "offset", string("probabilities")),
                          (1, "offset", string(f"probabilities over {', '.join(card.labels)}")),
                          (3, "offset", out_content), (5, "offset", out_stats), (6, "offset", offsets([label_file])))

    subgraph = table((2, "offset", offsets([input_tensor])), (3, "offset", offsets([output_tensor])))
    licence = card.training_data.get("licence") or card.training_data.get("license")
    root = table((0, "offset", string(card.name)),
                 (1, "offset", string(f"affectlite {card.task} model; the JSON model card beside it is the "
                                      "source of truth")),
                 (3, "offset", offsets([subgraph])),
                 (4, "offset", string("affectlite")),
                 (5, "offset", string(str(licence)) if licence else None),
                 (7, "offset", string(PARSER_VERSION)))
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:                     # older environments: TensorFlow's copy of the same file
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _with_metadata_buffer(content: bytes, metadata: bytes) -> bytes:
    """The model flatbuffer with one more buffer holding ``metadata`` and a TFLITE_METADATA entry
    pointing at it (an existing entry of that name is replaced)."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(content), 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME] + [entry]
    builder = flatbuffers.Builder(len(content) + len(metadata) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(content: bytes) -> tuple[bytes, list[str]] | None:
    """(the ModelMetadata flatbuffer, the packed labels) of a .tflite, or None without metadata."""
    schema = _schema()
    model = schema.Model.GetRootAsModel(bytearray(content), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            with zipfile.ZipFile(io.BytesIO(content)) as files:
                labels = files.read(LABEL_FILE).decode().split()
            return bytes(data), labels
    return None
