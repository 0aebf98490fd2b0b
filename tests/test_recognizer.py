"""EmotionRecognizer on real clips with the bundled int8 expression model."""

from __future__ import annotations

import collections
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from affectlite import EMOTIONS, EmotionRecognizer, RecognizerOptions
from affectlite.classifiers.expression import BUNDLED_MODEL
from conftest import SHARED


@pytest.fixture(scope="module")
def recognizer():
    with EmotionRecognizer() as recognizer:
        yield recognizer


def test_analyze_image(recognizer, frame):
    faces = recognizer.analyze_image(frame)
    assert len(faces) == 1
    face = faces[0]
    assert set(face.probabilities) == set(EMOTIONS)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=0.02)
    assert face.emotion == max(face.probabilities, key=face.probabilities.get)
    assert face.track_id is None
    assert recognizer.analyze_image(np.full((360, 480, 3), 120, np.uint8)) == []


def test_happy_clip_comes_out_mostly_happy(recognizer, happy_clip):
    frames = list(recognizer.analyze_video(happy_clip))
    emotions = collections.Counter(face.emotion for frame in frames for face in frame.faces)
    assert sum(emotions.values()) == len(frames)               # one face in every frame
    # measured with the bundled model: 33 of 56 frames happy, the next label 11 (angry, mid-word)
    assert emotions.most_common(1)[0][0] == "happy" and emotions["happy"] / len(frames) > 0.5, emotions


def test_one_face_keeps_one_track_id(recognizer, sad_clip):
    frames = list(recognizer.analyze_video(sad_clip, every=2))
    assert {face.track_id for frame in frames for face in frame.faces} == {1}
    assert [frame.index for frame in frames][:3] == [0, 2, 4]
    timestamps = [frame.timestamp for frame in frames]
    assert timestamps == sorted(timestamps)


def test_fps_sampling(recognizer, sad_clip):
    frames = list(recognizer.analyze_video(sad_clip, fps=5))
    gaps = np.diff([frame.timestamp for frame in frames])
    assert len(frames) in range(8, 12) and gaps.min() >= 0.19


def test_options_are_checked_when_built():
    with pytest.raises(ValueError, match="detector must be"):
        EmotionRecognizer(RecognizerOptions(detector="long"))
    with pytest.raises(ValueError, match="edgetpu must be one of"):
        EmotionRecognizer(RecognizerOptions(edgetpu="yes"))


def _card_for(model: Path, card_source: Path) -> None:
    """Write ``card_source``'s card beside ``model`` with the model's own hash, as a card made for it."""
    card = json.loads(card_source.read_text()) | {"sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    model.with_suffix(".json").write_text(json.dumps(card))


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "face_expression_int8.tflite"
    bad.write_bytes(b"\x00" * 2000)
    _card_for(bad, BUNDLED_MODEL.with_suffix(".json"))
    with pytest.raises(ValueError, match="not a valid TFLite model"):
        EmotionRecognizer(RecognizerOptions(expression_model=bad))


def test_a_model_changed_after_its_card_was_written_is_refused(tmp_path):
    """2,000 flipped bytes in the weights still load and answer - wrongly; the card's hash catches them."""
    model = tmp_path / "face_expression_int8.tflite"
    data = bytearray(BUNDLED_MODEL.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = bytes(b ^ 0xFF for b in data[middle:middle + 2000])
    model.write_bytes(bytes(data))
    shutil.copy(BUNDLED_MODEL.with_suffix(".json"), tmp_path)
    expected = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())["sha256"]
    with pytest.raises(ValueError) as caught:
        EmotionRecognizer(RecognizerOptions(expression_model=model))
    message = str(caught.value)
    assert str(model) in message and "face_expression_int8.json" in message
    assert expected in message and hashlib.sha256(bytes(data)).hexdigest() in message


def test_a_model_that_is_not_there_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"nothere.tflite: no such expression model file"):
        EmotionRecognizer(RecognizerOptions(expression_model=tmp_path / "nothere.tflite"))


def test_model_without_a_card(tmp_path):
    lonely = tmp_path / "mine.tflite"
    shutil.copy(BUNDLED_MODEL, lonely)
    with pytest.raises(ValueError, match="no model card mine.json"):
        EmotionRecognizer(RecognizerOptions(expression_model=lonely))


def test_card_of_another_model(tmp_path):
    """The detector's card beside the expression model: the shapes disagree, and it says so."""
    model = tmp_path / "face.tflite"
    shutil.copy(BUNDLED_MODEL, model)
    shutil.copy(BUNDLED_MODEL.parent / "face_detection_short_range.json", tmp_path / "face.json")
    with pytest.raises(ValueError, match="the card belongs to another model"):   # caught by its hash first
        EmotionRecognizer(RecognizerOptions(expression_model=model))
    _card_for(model, BUNDLED_MODEL.parent / "face_detection_short_range.json")
    with pytest.raises(ValueError, match="does not match its card"):             # and by its shapes
        EmotionRecognizer(RecognizerOptions(expression_model=model))


def test_analyze_image_takes_a_path_a_pil_image_or_an_array(recognizer, frame, tmp_path):
    from PIL import Image

    from affectlite import read_image

    path = tmp_path / "face.png"
    Image.fromarray(frame).save(path)
    from_array = recognizer.analyze_image(frame)
    for given in (path, str(path), Image.open(path), read_image(path), np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])):
        faces = recognizer.analyze_image(given)
        assert len(faces) == 1 and faces[0].emotion == from_array[0].emotion
    with pytest.raises(ValueError, match="expected a uint8 image"):
        recognizer.analyze_image(frame.astype(np.float32) / 255)


def test_video_with_sound_gives_voice_and_fused_results(recognizer, sad_clip):
    """The speech model is unsure of the disgust take's voice (top probability 0.28): it counts
    only with a voice_min_confidence below that (the default, 0.3, is the service's)."""
    disgust = SHARED / "data" / "av" / "crema-d-sample" / "VideoFlash" / "1001_DFA_DIS_XX.flv"
    assert all(r.voice is None for r in recognizer.analyze_video(disgust, every=10, listen=True))
    with EmotionRecognizer(RecognizerOptions(voice_min_confidence=0.2)) as lenient:
        listened = list(lenient.analyze_video(disgust, every=5, listen=True))
    assert all(r.listened and len(r.fused) == len(r.faces) for r in listened)
    assert any(r.voice is not None for r in listened)
    for result in listened:
        for face, fused in zip(result.faces, result.fused):
            assert set(fused) == set(EMOTIONS) and sum(fused.values()) == pytest.approx(1.0, abs=0.03)
            if result.voice is None:                       # no voice: the fused result is the face's own
                assert fused == pytest.approx(face.probabilities)
    silent = list(recognizer.analyze_video(sad_clip, every=5))
    assert not any(r.listened for r in silent) and all(r.voice is None and r.fused is None for r in silent)


def test_a_live_loop_over_a_camera_source(recognizer, happy_clip):
    """analyze_stream over a frame source (here the clip replayed as a camera would deliver it):
    the newest frame each time, one track id for the one person."""
    from affectlite.sources.replay import VideoReplaySource

    results = list(recognizer.analyze_stream(VideoReplaySource(happy_clip, realtime=True, loop=False), max_fps=10))
    assert 5 <= len(results) <= 25                             # about 10 a second over ~1.9 s, never all 56
    assert {f.track_id for r in results for f in r.faces} == {1}


def test_an_oversized_image_is_refused_and_the_batch_goes_on(tmp_path, frame, capsys):
    """A 20000x20000 PNG of a few hundred kilobytes (it would need 1.2 GB decoded): one line, next file."""
    from PIL import Image

    from affectlite.cli import main

    bomb = tmp_path / "a_bomb.png"
    Image.new("L", (20000, 20000)).save(bomb)
    large = tmp_path / "b_large.png"                          # below Pillow's own limit, above ours
    Image.new("L", (10000, 8000)).save(large)
    good = tmp_path / "c_face.png"
    Image.fromarray(frame).save(good)
    assert main(["analyze", str(bomb), str(large), str(good)]) == 1
    captured = capsys.readouterr()
    assert "a_bomb.png: over the 64 MP limit for one image, refused undecoded" in captured.err
    assert "b_large.png: 10000x8000 is 80 megapixels, over the 64 MP limit" in captured.err
    assert "2 of 3 file(s) failed" in captured.err and "c_face.png" in captured.out


def test_faces_classified_together_match_one_by_one(publictest_path):
    """One interpreter call for all faces of a frame gives exactly the per-face answers, for
    every batch size a crowd brings (and back to one)."""
    from affectlite.classifiers.expression import ExpressionClassifier

    with np.load(publictest_path) as data:
        crops = list(data["x"][:20, ..., None])
    with ExpressionClassifier() as classifier:
        one_by_one = np.stack([classifier.classify(c) for c in crops])
        for n in (5, 20, 3, 1, 10):
            assert np.array_equal(classifier.classify_many(crops[:n]), one_by_one[:n])
        assert classifier.classify_many([]).shape == (0, 7)
