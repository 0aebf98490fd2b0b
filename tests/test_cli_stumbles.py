"""What a new user runs into first, each answered in one line (or by doing the obvious thing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from affectlite.cli import main


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_an_output_file_in_a_folder_that_does_not_exist_yet(tmp_path, capsys):
    target = tmp_path / "new" / "deeper" / "faces.jsonl"
    assert main(["analyze", "-o", str(target)]) == 0
    assert len(records(target.read_text())) > 10


def test_a_model_that_is_not_there_is_named_as_the_model(tmp_path, capsys):
    assert main(["analyze", "--model", str(tmp_path / "nothere.tflite")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("nothere.tflite: no such expression model file") and "card" not in error


def test_hidden_files_in_a_folder_are_not_analysed(tmp_path, frame, capsys):
    Image.fromarray(frame).save(tmp_path / "visitor.jpg")
    Image.fromarray(frame).save(tmp_path / "._visitor.jpg")              # macOS resource fork copy
    (tmp_path / ".thumbnails").mkdir()
    Image.fromarray(frame).save(tmp_path / ".thumbnails" / "visitor.jpg")
    assert main(["analyze", str(tmp_path)]) == 0
    assert {Path(r["file"]).name for r in records(capsys.readouterr().out)} == {"visitor.jpg"}


def test_the_top_level_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and text.splitlines()[2].startswith("affectlite: emotion recognition")


def test_evaluate_writes_no_pictures_unless_asked(tmp_path, tiny_keras_model, small_faces, monkeypatch):
    from affectlite_convert.cli import main as convert

    monkeypatch.chdir(tmp_path)
    assert convert(["evaluate", str(tiny_keras_model), "--data", str(small_faces)]) == 0
    assert list(tmp_path.glob("*.png")) == []


def test_the_toolchain_without_tensorflow_says_what_to_install(tmp_path):
    """A device install has no TensorFlow: a blocker on its import stands in for its absence."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'tensorflow':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n")
    environment = os.environ | {"PYTHONPATH": str(blocker) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-m", "affectlite_convert.cli", "convert", "m.keras", "--out", "m.tflite"],
                            capture_output=True, text=True, env=environment, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'affectlite[convert]'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_bytes_of_an_image_file_are_an_image(frame, tmp_path):
    from affectlite import EmotionRecognizer

    path = tmp_path / "visitor.jpg"
    Image.fromarray(frame).save(path)
    with EmotionRecognizer() as recognizer:
        faces = recognizer.analyze_image(path.read_bytes())
        assert len(faces) == 1
        with pytest.raises(ValueError, match="not a readable image"):
            recognizer.analyze_image(b"these are not the bytes of an image")


def test_run_without_a_broker_says_where_results_go(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(f'[mqtt]\nport = 1\nqueue_path = "{tmp_path / "q.sqlite3"}"\n')
    assert main(["run", "--config", str(config), "--duration", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("affectlite: ") and "mqtt://localhost:1" in out[0] and "q.sqlite3" in out[0]
    assert "wait for the broker" in out[-1] and "unreachable" in out[-1]
