"""EmotionRecognizer on real clips with the bundled int8 expression model."""

from __future__ import annotations

import collections
import shutil

import numpy as np
import pytest

from affectlite import EMOTIONS, EmotionRecognizer, RecognizerOptions
from affectlite.classifiers.expression import BUNDLED_MODEL


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


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "face_expression_int8.tflite"
    bad.write_bytes(b"\x00" * 2000)
    shutil.copy(BUNDLED_MODEL.with_suffix(".json"), tmp_path)
    with pytest.raises(ValueError, match="not a valid TFLite model"):
        EmotionRecognizer(RecognizerOptions(expression_model=bad))


def test_model_without_a_card(tmp_path):
    lonely = tmp_path / "mine.tflite"
    shutil.copy(BUNDLED_MODEL, lonely)
    with pytest.raises(ValueError, match="no model card mine.json"):
        EmotionRecognizer(RecognizerOptions(expression_model=lonely))


def test_card_of_another_model(tmp_path):
    """The detector's card beside the expression model: the shapes disagree, and it says so."""
    model = tmp_path / "face.tflite"
    shutil.copy(BUNDLED_MODEL, model)
    card = (BUNDLED_MODEL.parent / "face_detection_short_range.json").read_text()
    (tmp_path / "face.json").write_text(card)
    with pytest.raises(ValueError, match="does not match its card"):
        EmotionRecognizer(RecognizerOptions(expression_model=model))
