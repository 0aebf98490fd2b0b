"""The card's labels and normalisation as standard TFLite metadata, readable without affectlite:
the ModelMetadata flatbuffer (identifier M001) in the model's metadata, labels.txt packed after it."""

from __future__ import annotations

import hashlib
import struct
import zipfile

import flatbuffers
import numpy as np
import pytest

from affectlite.models.card import ModelCard
from affectlite.runtime import adapters
from affectlite.runtime.interpreter import make_interpreter
from affectlite_convert.cli import main
from affectlite_convert.converter import ConvertOptions, convert
from affectlite_convert.tflite_metadata import read_metadata


class Table:
    """Just enough of a flatbuffer reader to check the metadata by the schema's field slots."""

    def __init__(self, buf: bytes, pos: int):
        self.table = flatbuffers.table.Table(bytearray(buf), pos)

    @classmethod
    def root(cls, buf: bytes) -> "Table":
        return cls(buf, struct.unpack_from("<I", buf, 0)[0])

    def _offset(self, slot: int) -> int:
        return self.table.Offset(4 + 2 * slot)

    def string(self, slot: int) -> str | None:
        o = self._offset(slot)
        return self.table.String(o + self.table.Pos).decode() if o else None

    def byte(self, slot: int) -> int:
        o = self._offset(slot)
        return self.table.Get(flatbuffers.number_types.Int8Flags, o + self.table.Pos) if o else 0

    def child(self, slot: int) -> "Table":
        o = self._offset(slot)
        return Table(self.table.Bytes, self.table.Indirect(o + self.table.Pos))

    def children(self, slot: int) -> list["Table"]:
        o = self._offset(slot)
        start, count = self.table.Vector(o), self.table.VectorLen(o)
        return [Table(self.table.Bytes, self.table.Indirect(start + 4 * i)) for i in range(count)]

    def floats(self, slot: int) -> list[float]:
        o = self._offset(slot)
        start, count = self.table.Vector(o), self.table.VectorLen(o)
        return [self.table.Get(flatbuffers.number_types.Float32Flags, start + 4 * i) for i in range(count)]


def test_a_converted_model_carries_its_labels_and_normalisation(tmp_path, tiny_keras_model, small_faces):
    out = tmp_path / "tiny_int8.tflite"
    card = convert(tiny_keras_model, out, ConvertOptions(quant="int8", value_range=(-1.0, 1.0)), calibration=small_faces)
    content = out.read_bytes()
    assert card.sha256 == hashlib.sha256(content).hexdigest()           # the card describes the file as written
    metadata, labels = read_metadata(content)
    assert labels == card.labels
    assert zipfile.ZipFile(out).read("labels.txt").decode().split() == card.labels   # any zip tool finds it
    assert flatbuffers.util.GetBufferIdentifier(metadata, 0) == b"M001"

    root = Table.root(metadata)                     # ModelMetadata
    assert root.string(0) == card.name and root.string(7) == "1.0.0"
    subgraph = root.children(3)[0]
    image, = subgraph.children(2)                   # input TensorMetadata
    assert image.string(0) == "image"
    content_table = image.child(3)
    assert content_table.byte(0) == 2 and content_table.child(1).byte(0) == 2     # ImageProperties, GRAYSCALE
    unit = image.children(4)[0]
    assert unit.byte(0) == 1                        # NormalizationOptions: (pixel - 127.5) / 127.5 = [-1, 1]
    assert unit.child(1).floats(0) == [127.5] and unit.child(1).floats(1) == [127.5]
    output, = subgraph.children(3)
    label_file = output.children(6)[0]
    assert label_file.string(0) == "labels.txt" and label_file.byte(2) == 2            # TENSOR_AXIS_LABELS


def test_the_metadata_changes_nothing_the_interpreter_computes(tmp_path, small_faces):
    """The bundled expression model with metadata written by the `metadata` command: same
    outputs, same card except its checksum, and the command refuses a card of another file."""
    import shutil

    from affectlite.classifiers.expression import BUNDLED_MODEL

    model = tmp_path / BUNDLED_MODEL.name
    shutil.copy(BUNDLED_MODEL, model)
    shutil.copy(BUNDLED_MODEL.with_suffix(".json"), model.with_suffix(".json"))
    before = ModelCard.load(model.with_suffix(".json"))
    with np.load(small_faces) as data:
        x = data["x"][:20, :, :, None].astype(np.float32) / 255.0
    interpreter = make_interpreter(model)
    expected = np.stack([adapters.run_from_blank_state(interpreter, s[None])[0] for s in x])

    assert main(["metadata", str(model)]) == 0
    interpreter = make_interpreter(model)
    got = np.stack([adapters.run_from_blank_state(interpreter, s[None])[0] for s in x])
    assert np.array_equal(got, expected)
    after = ModelCard.load(model.with_suffix(".json"))
    assert after.sha256 == hashlib.sha256(model.read_bytes()).hexdigest() != before.sha256
    assert {**vars(after), "sha256": ""} == {**vars(before), "sha256": ""}
    assert read_metadata(model.read_bytes())[1] == before.labels
    assert main(["metadata", str(model)]) == 0                           # again: replaced, not added twice
    assert read_metadata(model.read_bytes())[1] == before.labels

    other = tmp_path / "other.tflite"
    other.write_bytes(model.read_bytes() + b"\0")
    shutil.copy(BUNDLED_MODEL.with_suffix(".json"), other.with_suffix(".json"))
    assert main(["metadata", str(other)]) == 2


@pytest.mark.parametrize("missing", ["model", "card"])
def test_metadata_command_errors(tmp_path, missing, capsys):
    model = tmp_path / "m.tflite"
    if missing == "card":
        model.write_bytes(b"x")
    assert main(["metadata", str(model)]) == 2
    assert ("no such file" if missing == "model" else "no model card") in capsys.readouterr().err
