"""Edge TPU compatibility: the flatbuffer rules on real converted models, and the compiler's log."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from affectlite_convert.converter import ConvertOptions, convert
from affectlite_convert.edgetpu.check import check_model
from affectlite_convert.edgetpu.compiler import parse_compiler_log, run_compiler

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory, tiny_keras_model, small_faces):
    out = tmp_path_factory.mktemp("edgetpu") / "tiny_int8.tflite"
    convert(tiny_keras_model, out, ConvertOptions(quant="int8"), calibration=small_faces)
    return out


def test_full_integer_model_is_fully_mappable(int8_model):
    report = check_model(int8_model)
    assert report.fully_mappable
    assert report.first_unsupported is None
    assert [op.op for op in report.ops] == ["CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert report.mapped == 5 and report.on_cpu == 0
    assert "every op mappable" in report.render()


def test_float_model_is_not_mappable_from_the_first_op(tmp_path, tiny_keras_model):
    out = tmp_path / "float.tflite"
    convert(tiny_keras_model, out, ConvertOptions(quant="float32"))
    report = check_model(out)
    assert not report.fully_mappable
    assert report.first_unsupported.index == 0
    assert any("FLOAT32" in reason for reason in report.first_unsupported.reasons)
    assert report.mapped == 0
    assert "first unmappable op: #0 CONV_2D" in report.render()


def test_unsupported_op_splits_the_graph(tmp_path, small_faces):
    """An op the Edge TPU lacks (here EXP, from a hand-written softmax) sends the rest to the CPU."""
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(7)(x)
    x = keras.layers.Activation("exponential")(x)
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    keras.Model(inputs, outputs).save(tmp_path / "exp.keras")
    out = tmp_path / "exp.tflite"
    convert(tmp_path / "exp.keras", out, ConvertOptions(quant="int8"), calibration=small_faces)

    report = check_model(out)
    first = report.first_unsupported
    assert first is not None and first.op == "EXP"
    assert [op.status for op in report.ops[first.index + 1:]] == ["after-split"] * (len(report.ops) - first.index - 1)
    assert report.mapped == first.index


def test_dynamic_batch_is_reported(tmp_path, tiny_keras_model):
    import tensorflow as tf
    from affectlite_convert.keras_io import load_model

    model = load_model(tiny_keras_model)
    concrete = tf.function(model.fn).get_concrete_function(tf.TensorSpec([None, 48, 48, 1], tf.float32))
    content = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model.keras_model).convert()
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(content)
    report = check_model(path)
    assert any("dynamic shape" in r for op in report.ops for r in op.reasons)


def test_not_a_tflite_file(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        check_model(bad)
    with pytest.raises(ValueError, match="no such model file"):
        check_model(tmp_path / "missing.tflite")


# -- the compiler's own output ------------------------------------------------------------------

def test_parse_partially_mapped_log():
    log = parse_compiler_log((FIXTURES / "edgetpu_compiler_partial.txt").read_text())
    assert log.version == "16.0.384591198"
    assert (log.mapped, log.unmapped, log.total_ops, log.subgraphs) == (10, 4, 14, 1)
    assert [(r.op, r.count, r.mapped) for r in log.rows][:4] == [
        ("CONV_2D", 8, True), ("MEAN", 1, True), ("FULLY_CONNECTED", 1, True), ("EXP", 1, False)]
    assert log.rows[3].status == "Operation version not supported"
    assert not log.errors


def test_parse_fully_mapped_log_from_the_operation_log_file():
    text = (FIXTURES / "edgetpu_compiler_full.txt").read_text() + (FIXTURES / "edgetpu_compiler_full.log").read_text()
    log = parse_compiler_log(text)
    assert (log.mapped, log.unmapped) == (10, 0)


def test_parse_rejected_model():
    log = parse_compiler_log((FIXTURES / "edgetpu_compiler_error.txt").read_text())
    assert any("CONV_2D' version '6'" in e for e in log.errors)
    assert log.rows == []


def test_run_compiler_through_a_stand_in(tmp_path, monkeypatch, int8_model):
    """A stand-in `edgetpu_compiler` with the real command line (-s -o DIR MODEL) and outputs."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "edgetpu_compiler"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib, shutil\n"
        "args = sys.argv[1:]\n"
        "assert args[0] == '-s' and args[1] == '-o', args\n"
        "out, model = pathlib.Path(args[2]), pathlib.Path(args[3])\n"
        f"print(open({str(FIXTURES / 'edgetpu_compiler_full.txt')!r}).read())\n"
        f"shutil.copy({str(FIXTURES / 'edgetpu_compiler_full.log')!r}, out / (model.stem + '_edgetpu.log'))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    log = run_compiler(int8_model)
    assert (log.mapped, log.unmapped) == (10, 0)
    assert [r.op for r in log.rows] == ["CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
