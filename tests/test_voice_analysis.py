"""The bundled speech model and late fusion, on real RAVDESS and CREMA-D audio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from affectlite.classifiers.speech import SpeechClassifier
from affectlite.cli import main
from affectlite.classifiers.speech import sure_or_none
from affectlite.fusion.late import Reliability, late_fusion, modality_weights, reliability_from_cards
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


def test_late_fusion_weighs_reliability_and_confidence():
    face, voice = np.eye(7)[3], np.eye(7)[5]
    fused = late_fusion(face, voice, Reliability(face=0.6, voice=0.4))
    assert fused[3] == pytest.approx(0.6) and fused[5] == pytest.approx(0.4)     # equally sure: reliability decides
    assert np.array_equal(late_fusion(face, None), face) and np.array_equal(late_fusion(None, voice), voice)
    assert late_fusion(None, None) is None
    with pytest.raises(ValueError, match="reliability"):
        Reliability(face=1.5)

    # A sure face (0.9 happy) against a voice that is barely sure of anger (0.3) and has proven
    # less reliable: the face keeps its emotion, where an even average would have let it slip.
    sure_face = np.full(7, 0.1 / 6)
    sure_face[3] = 0.9
    unsure_voice = np.full(7, 0.7 / 6)
    unsure_voice[0] = 0.3
    weights = modality_weights(sure_face, unsure_voice, Reliability(face=0.8, voice=0.45))
    assert weights["face"] == pytest.approx(0.8 * 0.9 / (0.8 * 0.9 + 0.45 * 0.3))
    assert np.argmax(late_fusion(sure_face, unsure_voice, Reliability(face=0.8, voice=0.45))) == 3


def test_an_unsure_voice_counts_as_no_voice():
    probs = np.array([0.3, 0.1, 0.1, 0.2, 0.1, 0.1, 0.1])
    assert sure_or_none(probs, 0.25) is probs
    assert sure_or_none(probs, 0.35) is None
    assert sure_or_none(None, 0.0) is None


def test_reliability_comes_from_the_model_cards():
    from affectlite.classifiers.expression import BUNDLED_MODEL as FACE
    from affectlite.classifiers.speech import BUNDLED_MODEL as VOICE
    from affectlite.models.card import ModelCard, card_path_for

    face_card, voice_card = ModelCard.load(card_path_for(FACE)), ModelCard.load(card_path_for(VOICE))
    measured = reliability_from_cards(face_card, voice_card)
    for card, value, default in ((face_card, measured.face, Reliability().face),
                                 (voice_card, measured.voice, Reliability().voice)):
        recorded = card.metrics.get("reliability")
        assert value == (recorded["value"] if recorded else default)
    assert reliability_from_cards(None, None) == Reliability()


def test_analyze_uses_the_sound_track(sad_clip, capsys):
    """The speech model is unsure of both takes' voices (top probability 0.28 for disgust, 0.26
    for sad: below [audio] min_confidence's default, 0.3), so by default they count as no voice
    and the fused result is the face's; a lower --voice-min-confidence lets the disgust take's count."""
    disgust = SHARED / "data" / "av" / "crema-d-sample" / "VideoFlash" / "1001_DFA_DIS_XX.flv"
    assert main(["analyze", str(disgust), "--every", "5", "--voice-min-confidence", "0.2"]) == 0
    rows = records(capsys.readouterr().out)
    assert rows and all("voice" in r and "fused" in r for r in rows)
    spoken = [r for r in rows if r["voice"] is not None]
    assert spoken, "the actor speaks through most of the clip"
    for r in spoken:
        assert set(r["voice"]["probabilities"]) == set(EMOTIONS)
    assert main(["analyze", str(disgust), "--every", "5", "--no-audio"]) == 0
    assert all("voice" not in r for r in records(capsys.readouterr().out))

    for clip in (disgust, sad_clip):
        assert main(["analyze", str(clip), "--every", "5"]) == 0
        unsure = records(capsys.readouterr().out)
        assert unsure and all(r["voice"] is None for r in unsure)
        assert all(r["fused"]["emotion"] == r["emotion"] for r in unsure)     # face alone without a sure voice
    json.dumps(rows)


def test_the_device_reads_the_windows_the_card_describes(tmp_path, speech):
    """A speech model trained on clamped windows says so on its card and the device clamps too
    (one code path: affectlite.audio.voice.speech_windows with the card's WindowSpec); a card that
    says nothing (models before v3) gets the windows unclamped."""
    import shutil

    from affectlite.audio.voice import WindowSpec, speech_windows
    from affectlite.classifiers.speech import BUNDLED_MODEL

    assert speech.windows.dynamic_range_db == 60.0                    # the bundled model (v3) is clamped
    model = tmp_path / BUNDLED_MODEL.name
    shutil.copy(BUNDLED_MODEL, model)
    card = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    card["input"]["dynamic_range_db"] = None                            # as a card of v1 or v2 says nothing
    model.with_suffix(".json").write_text(json.dumps(card))
    audio, _ = soundfile.read(SHARED / "data/speech/ravdess/Actor_18/03-01-03-02-01-01-18.flac", dtype="float32")
    _, probs, _ = speech.classify(audio)
    np.testing.assert_array_equal(probs, speech.classify_windows(speech_windows(audio, windows=speech.windows)[0]))
    with SpeechClassifier(model) as unclamped:
        assert unclamped.windows == WindowSpec()
        assert not np.array_equal(probs, unclamped.classify(audio)[1])
