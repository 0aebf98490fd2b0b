"""The bundled speech model and late fusion, on real RAVDESS and CREMA-D audio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from affectlite.classifiers.speech import SpeechClassifier
from affectlite.cli import main
from affectlite.fusion.late import late_fusion
from affectlite.labels import EMOTIONS
from conftest import SHARED
from test_analyze_cli import records


@pytest.fixture(scope="module")
def speech():
    with SpeechClassifier() as classifier:
        yield classifier


def test_speech_gives_probabilities_and_silence_gives_none(speech):
    audio, _ = soundfile.read(SHARED / "data/speech/ravdess/Actor_18/03-01-03-02-01-01-18.flac", dtype="float32")
    mean, per_window, starts = speech.classify(audio)
    assert mean.shape == (7,) and mean.sum() == pytest.approx(1.0, abs=0.03)
    assert len(per_window) == len(starts) >= 2
    nothing, windows, _ = speech.classify(np.zeros(3 * 16000, np.float32))
    assert nothing is None and len(windows) == 0


def test_late_fusion():
    face, voice = np.eye(7)[3], np.eye(7)[5]
    fused = late_fusion(face, voice, face_weight=0.6)
    assert fused[3] == pytest.approx(0.6) and fused[5] == pytest.approx(0.4)
    assert np.array_equal(late_fusion(face, None), face) and np.array_equal(late_fusion(None, voice), voice)
    assert late_fusion(None, None) is None
    with pytest.raises(ValueError):
        late_fusion(face, voice, face_weight=1.5)


def test_analyze_uses_the_sound_track(sad_clip, capsys):
    assert main(["analyze", str(sad_clip), "--every", "5"]) == 0
    rows = records(capsys.readouterr().out)
    assert rows and all("voice" in r and "fused" in r for r in rows)
    spoken = [r for r in rows if r["voice"] is not None]
    assert spoken, "the actor speaks through most of the clip"
    for r in spoken:
        assert set(r["voice"]["probabilities"]) == set(EMOTIONS)
    assert main(["analyze", str(sad_clip), "--every", "5", "--no-audio"]) == 0
    assert all("voice" not in r for r in records(capsys.readouterr().out))
    silent_rows = [r for r in rows if r["voice"] is None]
    assert all(r["fused"]["emotion"] == r["emotion"] for r in silent_rows)   # face alone while nobody speaks
    json.dumps(rows)
