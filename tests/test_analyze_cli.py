"""`affectlite analyze` and `affectlite doctor`: outputs, schema, and bad input file by file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image

from affectlite.cli import main

SCHEMA = json.loads((Path(__import__("affectlite").__file__).parent / "schemas" / "analyze-record.v1.json").read_text())


def records(text: str) -> list[dict]:
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for row in rows:
        jsonschema.validate(row, SCHEMA)
    return rows


@pytest.fixture
def photo(tmp_path, frame) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(frame).save(path, quality=92)
    return path


def test_default_input_is_the_bundled_clip(capsys):
    assert main(["analyze", "--every", "10"]) == 0
    rows = records(capsys.readouterr().out)
    assert len(rows) == 6 and all(r["file"].endswith("1001_DFA_HAP_XX.flv") for r in rows)
    assert {r["track_id"] for r in rows} == {1}
    assert [r["frame"] for r in rows] == [0, 10, 20, 30, 40, 50]


def test_consecutive_frames_reuse_results_and_sampled_frames_are_classified_afresh(capsys):
    """Every frame of the clip: each face is classified on every 4th frame and its result repeated
    in between. With --fps the frames are far apart, so each is detected and classified afresh
    (unless --detect-every / --classify-every say otherwise)."""
    def repeats(args: list[str]) -> tuple[int, int]:
        assert main(["analyze", "--no-audio", *args]) == 0
        rows = records(capsys.readouterr().out)
        return sum(a["probabilities"] == b["probabilities"] for a, b in zip(rows, rows[1:])), len(rows) - 1

    same, pairs = repeats([])
    assert same >= 0.7 * pairs                                 # 3 of every 4 frames repeat a result
    same, pairs = repeats(["--fps", "10"])
    assert same <= 0.3 * pairs                                 # only where int8 outputs happen to agree
    same, pairs = repeats(["--fps", "10", "--classify-every", "4"])
    assert same >= 0.7 * pairs


def test_photo_and_video_with_annotations(tmp_path, photo, sad_clip, capsys):
    out = tmp_path / "annotated"
    assert main(["analyze", str(photo), str(sad_clip), "--fps", "5", "--annotate", str(out)]) == 0
    rows = records(capsys.readouterr().out)
    assert rows[0]["file"] == str(photo) and rows[0]["timestamp"] is None and rows[0]["track_id"] is None
    assert all(r["track_id"] == 1 for r in rows[1:])
    assert Image.open(out / "photo_annotated.jpg").size == (480, 360)
    import av

    with av.open(str(out / "1001_DFA_SAD_XX_annotated.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == len(rows) - 1


def test_csv_output_to_a_file(tmp_path, photo):
    target = tmp_path / "faces.csv"
    assert main(["analyze", str(photo), "--format", "csv", "--output", str(target)]) == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 1
    assert abs(sum(float(rows[0][f"p_{e}"]) for e in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")) - 1) < 0.02


def test_image_modes_and_sizes(tmp_path, frame, capsys):
    """Grayscale, CMYK, 16-bit and 4000x3000 images all analyse; one face each."""
    gray16 = (np.asarray(Image.fromarray(frame).convert("L"), np.uint16) * 257)
    paths = {
        "gray.png": Image.fromarray(frame).convert("L"),
        "cmyk.jpg": Image.fromarray(frame).convert("CMYK"),
        "deep.png": Image.fromarray(gray16),
        "large.jpg": Image.fromarray(frame).resize((4000, 3000), Image.BILINEAR),
    }
    for name, image in paths.items():
        image.save(tmp_path / name)
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert main(["analyze", *(str(tmp_path / n) for n in paths)]) == 0
    rows = records(capsys.readouterr().out)
    assert sorted(Path(r["file"]).name for r in rows) == sorted(paths)
    large = next(r for r in rows if r["file"].endswith("large.jpg"))
    assert large["box"][2] - large["box"][0] > 700           # found at full resolution


def test_bad_files_are_reported_and_the_rest_processed(tmp_path, photo, capsys):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo.read_bytes()[:2000])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (30, 30, 30)).save(blank)

    code = main(["analyze", str(truncated), str(text), str(empty), str(tmp_path / "missing.png"), str(photo), str(blank)])
    captured = capsys.readouterr()
    assert code == 1
    rows = records(captured.out)
    assert [Path(r["file"]).name for r in rows] == ["photo.jpg", "blank.png"]
    assert rows[1] == {"schema": 1, "file": str(blank), "frame": 0, "timestamp": None, "face": None, "faces": 0}
    for row in rows:                                            # the blank image is no error: a record with no face
        jsonschema.validate(row, SCHEMA)
    errors = captured.err.splitlines()
    assert any("truncated.jpg: not a readable image" in e for e in errors)
    assert any("notes.mp4: not a readable video" in e for e in errors)
    assert any("empty.mp4: not a readable video" in e for e in errors)
    assert any("missing.png: no such file" in e for e in errors)
    assert errors[-1] == "affectlite: 4 of 6 file(s) failed"


def test_video_without_frames(tmp_path, capsys):
    import av

    path = tmp_path / "no_frames.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()                      # a header, then nothing
    assert main(["analyze", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "no_frames.mkv: not a readable video" in captured.err


def test_a_truncated_video_gives_what_it_has_and_says_it_ended_early(tmp_path, happy_clip, capsys):
    """A download cut at 40 %: FFmpeg simply stops at the end of the data, so without a check the
    partial clip would pass for a short one."""
    cut = tmp_path / "cut.flv"
    data = happy_clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.4)])
    assert main(["analyze", str(cut), str(happy_clip)]) == 1
    captured = capsys.readouterr()
    rows = records(captured.out)
    cut_rows = [r for r in rows if Path(r["file"]).name == "cut.flv"]
    whole_rows = [r for r in rows if Path(r["file"]).name == happy_clip.name]
    assert 0 < len(cut_rows) < len(whole_rows) / 2                 # the part that is there, analysed
    assert "cut.flv: the file ends early: video up to 0.6" in captured.err
    assert "of the 1.87 s its header declares" in captured.err
    assert captured.err.splitlines()[-1] == "affectlite: 1 of 2 file(s) failed"


def test_usage_errors(capsys):
    assert main(["analyze", "--every", "0"]) == 2
    assert "--every must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--every", "2", "--fps", "3"])
    assert exit_info.value.code == 2


def test_mismatched_model_file(tmp_path, capsys):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"garbage" * 100)
    (tmp_path / "model.json").write_text("{}")
    assert main(["analyze", "--model", str(bad)]) == 2
    assert "model.json: model card is missing or has unknown fields" in capsys.readouterr().err


def test_doctor(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "ai-edge-litert" in out
    assert "Edge TPU:" in out and "libedgetpu" in out
    assert "face_detection_short_range.tflite" in out and "ok" in out


def test_explain_writes_heat_maps_beside_the_annotated_output(tmp_path, frame, happy_clip, capsys):
    import av
    from PIL import Image

    Image.fromarray(frame).save(tmp_path / "photo.png")
    out = tmp_path / "annotated"
    assert main(["analyze", str(tmp_path / "photo.png"), str(happy_clip), "--fps", "4", "--no-audio",
                 "--annotate", str(out), "--explain"]) == 0
    annotated = np.asarray(Image.open(out / "photo_annotated.png"))
    explained = np.asarray(Image.open(out / "photo_annotated_explain.png"))
    assert explained.shape == annotated.shape
    changed = np.any(explained != annotated, axis=2)
    ys, xs = np.nonzero(changed)
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    x0, y0, x1, y1 = record["box"]
    assert x0 - 20 < xs.mean() < x1 + 20 and y0 - 20 < ys.mean() < y1 + 20     # the map sits on the face
    assert changed.mean() < 0.3                                                 # and nowhere else
    with av.open(str(out / f"{happy_clip.stem}_annotated_explain.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) >= 6


def test_explain_needs_annotate(capsys):
    assert main(["analyze", "--explain"]) == 2
    assert "add --annotate" in capsys.readouterr().err


def test_a_folder_of_inputs_and_an_annotation_folder_that_does_not_exist_yet(tmp_path, photo, sad_clip, capsys):
    folder = tmp_path / "media"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "photo.jpg").write_bytes(photo.read_bytes())
    (folder / "notes.txt").write_text("not media")
    (folder / "clip.flv").write_bytes(sad_clip.read_bytes())
    out = tmp_path / "new" / "annotated"                    # one input file, a folder that is not there
    assert main(["analyze", str(folder / "clip.flv"), "--every", "10", "--no-audio", "--annotate", str(out)]) == 0
    assert (out / "clip_annotated.mp4").exists()
    capsys.readouterr()
    assert main(["analyze", str(folder), "--every", "10", "--no-audio"]) == 0
    files = [r["file"] for r in records(capsys.readouterr().out)]
    assert files[0] == str(folder / "clip.flv") and files[-1] == str(folder / "sub" / "photo.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["analyze", str(empty)]) == 2
    assert f"{empty}: no images or videos in this folder" in capsys.readouterr().err


def test_help_shows_defaults_examples_and_the_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("affectlite 0.")
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    assert "(default: 0.5)" in text and "examples:" in text and "``" not in text


def test_native_log_lines_stay_hidden_unless_verbose(tmp_path):
    """The interpreter's "Created TensorFlow Lite XNNPACK delegate" line reaches the terminal only
    with --verbose (run in a child process: the test's own stderr is captured by pytest)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "affectlite.cli", "analyze", "--every", "30", "--no-audio"]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=120)
    loud = subprocess.run(command + ["--verbose"], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == loud.returncode == 0
    assert "XNNPACK" not in quiet.stderr and "XNNPACK" in loud.stderr
