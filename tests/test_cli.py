"""The command line: one clear line per user error, exit status 2, and nothing half-written."""

from __future__ import annotations

import json

import subprocess
import sys

import pytest

from affectlite_convert.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "affectlite_convert.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_convert_evaluate_and_check(tmp_path, tiny_keras_model, small_faces, capsys):
    out = tmp_path / "tiny_int8.tflite"
    assert main(["convert", str(tiny_keras_model), "--calibration", str(small_faces), "--out", str(out)]) == 0
    assert out.exists() and out.with_suffix(".json").exists() and out.with_suffix(".md").exists()

    assert main(["evaluate", str(tiny_keras_model), str(out), "--data", str(small_faces),
                 "--plots", str(tmp_path), "--record"]) == 0
    printed = capsys.readouterr().out
    assert "macro recall" in printed and "tiny_int8.tflite - tiny.keras: accuracy" in printed
    assert (tmp_path / "tiny_int8_confusion.png").exists()
    assert '"small"' in out.with_suffix(".json").read_text()  # metrics recorded under the data set's name

    assert main(["edgetpu-check", str(out), "--no-compiler"]) == 0
    assert "every op mappable" in capsys.readouterr().out
    assert main(["edgetpu-check", str(out), "--no-compiler", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["fully_mappable"] is True and verdict["compiler"] == {"ran": False, "why_not": "--no-compiler"}
    assert verdict["ops_on_edgetpu"] == len(verdict["ops"]) and verdict["ops"][0]["op"] == "CONV_2D"


def test_version_and_quiet_tensorflow():
    """--version; and TensorFlow's CUDA and absl lines stay off the terminal unless --verbose."""
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("affectlite-convert 0.")
    quiet = run_cli("evaluate", "missing.keras", "--data", "missing.npz")
    assert quiet.returncode == 2 and "missing.npz" in quiet.stderr
    assert "cuda" not in quiet.stderr.lower() and "absl" not in quiet.stderr


def test_unknown_option():
    result = run_cli("convert", "model.keras", "--out", "x.tflite", "--quantize", "int8")
    assert result.returncode == 2
    assert "unrecognized arguments: --quantize" in result.stderr


def test_missing_model_file(tmp_path):
    result = run_cli("convert", tmp_path / "missing.keras", "--out", tmp_path / "x.tflite", "--quant", "float32")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("missing.keras: no such model file or folder")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 100)
    result = run_cli("edgetpu-check", bad)
    assert result.returncode == 2 and "not a TFLite flatbuffer" in result.stderr
    result = run_cli("evaluate", bad, "--data", tmp_path / "none.npz")
    assert result.returncode == 2 and "no such data file" in result.stderr


def test_calibration_mismatch_leaves_no_output(tmp_path, tiny_keras_model):
    import numpy as np

    calib = tmp_path / "rgb.npz"
    np.savez(calib, x=np.zeros((4, 48, 48, 3), np.uint8))
    out = tmp_path / "out.tflite"
    result = run_cli("convert", tiny_keras_model, "--calibration", calib, "--out", out)
    assert result.returncode == 2 and "3 channel(s)" in result.stderr
    assert not out.exists() and not out.with_suffix(".json").exists()


@pytest.mark.parametrize("bad", ["48x48", "axbxc"])
def test_bad_input_shape_option(bad):
    result = run_cli("convert", "m.keras", "--out", "x.tflite", "--input-shape", bad)
    assert result.returncode == 2 and "expected HxWxC" in result.stderr


@pytest.mark.parametrize("options, message", [
    (["--init", "missing.keras"], "--init missing.keras: no such file"),
    (["--teacher", "missing.keras"], "--teacher missing.keras: no such file"),
    (["--epochs", "4", "--warmup-epochs", "5"], "--warmup-epochs must be from 0 to --epochs (4), got 5"),
])
def test_train_face_refuses_before_training(tmp_path, options, message):
    result = run_cli("train", "face", "--out", tmp_path / "run", *options)
    assert result.returncode == 2 and result.stderr.strip().endswith(message)
    assert not (tmp_path / "run").exists()
