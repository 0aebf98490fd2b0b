"""Audio-visual fusion: label-paired sequences, the LSTM's int8 conversion, and the report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import affectlite

from affectlite.labels import EMOTIONS
from affectlite_convert.cli import main as convert_main
from affectlite_convert.converter import ConvertOptions, convert
from affectlite_convert.data.pairs import PairingOptions, make_sequences, remove_modality
from affectlite_convert.edgetpu.check import check_model
from affectlite_convert.training.fusion_lstm import FusionSpec, build_fusion_lstm
from conftest import CLIPS


def toy_sources(rng):
    face_labels = np.repeat(np.arange(7), 10)
    face_probs = rng.dirichlet(np.ones(7), len(face_labels))
    voice_labels = np.repeat(np.arange(7), 3)
    voice_clips = [rng.dirichlet(np.ones(7), rng.integers(2, 6)) for _ in voice_labels]
    return face_probs, face_labels, voice_clips, voice_labels


def test_sequences_carry_both_modalities_and_their_flags():
    rng = np.random.default_rng(0)
    x, y = make_sequences(*toy_sources(rng), count=500, options=PairingOptions(steps=8), seed=1)
    assert x.shape == (500, 8, 16) and set(np.unique(y)) == set(range(7))
    face_on, voice_on = x[:, :, 7], x[:, :, 15]
    assert set(np.unique(face_on)) == {0.0, 1.0} and set(np.unique(voice_on)) == {0.0, 1.0}
    np.testing.assert_allclose(x[:, :, 0:7].sum(-1), face_on, atol=1e-5)     # probabilities, or zeros when absent
    np.testing.assert_allclose(x[:, :, 8:15].sum(-1), voice_on, atol=1e-5)
    assert 0.1 < 1 - face_on.all(1).mean() < 0.6                              # modality dropout happens
    assert not remove_modality(x, "face")[:, :, 0:8].any()
    assert np.array_equal(remove_modality(x, "face")[:, :, 8:], x[:, :, 8:])


def test_fusion_lstm_converts_to_one_mappable_int8_graph(tmp_path):
    rng = np.random.default_rng(2)
    model = build_fusion_lstm(FusionSpec(steps=8))
    model.save(tmp_path / "fusion.keras")
    x, _ = make_sequences(*toy_sources(rng), count=200, seed=3)
    np.savez(tmp_path / "calibration.npz", x=x)
    out = tmp_path / "fusion_int8.tflite"
    card = convert(tmp_path / "fusion.keras", out, ConvertOptions(quant="int8", input_kind="features", task="fusion"),
                   calibration=tmp_path / "calibration.npz")
    assert card.input.shape == [1, 8, 16] and card.input.dtype == "int8"
    report = check_model(out)
    ops = [op.op for op in report.ops]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1 and "BATCH_MATMUL" not in ops
    assert report.fully_mappable


def test_training_pairs_can_hold_more_neutral_people():
    sources = toy_sources(np.random.default_rng(5))
    _, y = make_sequences(*sources, count=2000, options=PairingOptions(neutral_share=0.5), seed=2)
    assert abs(np.mean(y == EMOTIONS.index("neutral")) - 0.5) < 0.04
    assert abs(np.mean(y == EMOTIONS.index("fear")) - 0.5 / 6) < 0.03    # the rest alike
    with pytest.raises(ValueError, match="neutral share must be between 0 and 1"):
        PairingOptions(neutral_share=1.0)


def test_a_voice_less_sure_than_the_device_accepts_is_no_voice():
    rng = np.random.default_rng(6)
    face_probs, face_labels, _, voice_labels = toy_sources(rng)
    sure, unsure = np.eye(7)[[0]] * 0.9 + 0.1 / 7, np.full((1, 7), 1 / 7)
    voices = [np.concatenate([sure, unsure] * 4) for _ in voice_labels]     # sure and unsure windows take turns
    both = PairingOptions(face_missing=0.0, voice_missing=0.0, gap_probability=0.0, voice_jitter=0.0)
    x, _ = make_sequences(face_probs, face_labels, voices, voice_labels, count=200, options=both, seed=7)
    voice_on = x[:, :, 15].astype(bool)
    assert 0.3 < voice_on.mean() < 0.7                                   # the unsure half is gone
    assert np.allclose(x[voice_on][:, 8:15].max(axis=1), sure.max())    # only sure windows remain
    assert not x[~voice_on][:, 8:15].any()
    everything = PairingOptions(**{**both.__dict__, "voice_min_confidence": 0.0})
    x, _ = make_sequences(face_probs, face_labels, voices, voice_labels, count=50, options=everything, seed=7)
    assert x[:, :, 15].all()


def test_training_and_report_on_voices_the_speech_model_never_heard(tmp_path, small_faces):
    """The bundled speech model heard EMOVO f1, f2, m1, m2 and TurEV-DB 1157, 1234, 1358, 7895:
    the fusion trains on f3 and 1984 (clean and recorded), and reports on m3 and 6783."""
    from affectlite.classifiers.expression import BUNDLED_MODEL as FACE
    from affectlite.classifiers.speech import BUNDLED_MODEL as SPEECH
    from affectlite.models.card import ModelCard, card_path_for
    from affectlite_convert.data.faces import load_face_npz
    from affectlite_convert.training.train_fusion import FusionRecipe, split_faces, train_fusion, unheard_voices
    from test_speech_corpora import small_corpus

    corpora = tmp_path / "speech"
    small_corpus(corpora, "emovo", per_speaker_label=1)
    small_corpus(corpora, "turev-db", per_speaker_label=1)
    recipe = FusionRecipe(epochs=2, train_sequences=600, eval_sequences=300, recorded_copies=1)
    voices, held = unheard_voices(SPEECH, corpora, recipe, cache=tmp_path / "cache")
    assert set(voices.actors) == {"emovo:f3", "turev-db:1984"} and set(held.actors) == {"emovo:m3", "turev-db:6783"}
    clean_clips = 7 + 4                                                  # one clip per label and speaker
    assert len(held.clips) == clean_clips
    # + one recorded copy each (a copy whose noise leaves no voiced window is left out, as in training)
    assert 2 * clean_clips - 2 <= len(voices.clips) <= 2 * clean_clips
    assert all(np.allclose(c.sum(axis=1), 1, atol=0.02) for c in voices.clips)
    # EMOVO f3's seven clips, then their recorded copies: the same clip, heard otherwise
    assert voices.labels[7] == voices.labels[0] and not np.allclose(voices.clips[0].mean(0), voices.clips[7].mean(0))

    faces_train, faces_eval = split_faces(load_face_npz(small_faces))
    final, figures, (x_eval, _) = train_fusion(faces_train, faces_eval, voices, held, FACE, SPEECH, tmp_path / "run",
                                               recipe, verbose=0)
    assert final.exists() and x_eval.shape == (300, 8, 16)
    assert set(figures) == {"face_only", "voice_only", "late_fusion", "lstm", "lstm_face_removed", "lstm_voice_removed",
                               "face_neutral_recall", "late_fusion_neutral_recall", "lstm_neutral_recall"}
    assert figures["face_only"] > 1 / 7                                  # the real face model is better than chance
    # a voice the speech model is unsure of (most of these eleven clips) is no voice, and a pair
    # without a sure voice counts against "voice only"
    assert 0 < figures["voice_only"] < figures["face_only"]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert "emovo speakers f3; turev-db speakers 1984 (training, with 1 simulated recordings" in state["data"]["voices"]
    assert "emovo speakers m3; turev-db speakers 6783 (held out" in state["data"]["voices"]
    # the weighted average is scored as the device computes it: with the reliabilities on the cards
    voice_card = ModelCard.load(card_path_for(SPEECH))
    assert state["data"]["late_fusion_reliability"]["voice"] == voice_card.metrics["reliability"]["value"]
    # the same contest on validation pairs from the training pool: what recipes are chosen on
    assert set(state["validation_report"]) == set(figures) and state["validation_report"] != figures
    with pytest.raises(ValueError, match="never heard"):
        only_heard = tmp_path / "heard"
        small_corpus(only_heard, "emovo", per_speaker_label=1)
        rows = (only_heard / "emovo" / "manifest.csv").read_text().splitlines()
        (only_heard / "emovo" / "manifest.csv").write_text("\n".join([rows[0]] + [r for r in rows[1:] if ",f3," not in r
                                                                                  and ",m3," not in r]) + "\n")
        unheard_voices(SPEECH, only_heard, recipe)


# -- real audio-visual corpora (CREMA-D / RAVDESS layouts) ------------------------------------------

def test_clip_names_carry_actor_and_label(tmp_path):
    from affectlite_convert.data.av_corpus import parse_clip, scan_corpus

    crema = parse_clip(Path("VideoFlash/1076_MTI_SAD_XX.flv"))
    assert crema.actor == "crema-d:1076" and EMOTIONS[crema.label] == "sad"
    calm = parse_clip(Path("Actor_12/01-01-02-01-01-02-12.mp4"))           # calm counts as neutral
    assert calm.actor == "ravdess:12" and EMOTIONS[calm.label] == "neutral"
    assert EMOTIONS[parse_clip(Path("02-01-08-02-02-01-03.mp4")).label] == "surprise"   # video-only file
    assert parse_clip(Path("holiday.mp4")) is None
    assert parse_clip(Path("03-01-05-01-01-01-01.wav")) is None                # audio-only (modality 03)
    (tmp_path / "holiday.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="no CREMA-D .* or RAVDESS .* clips found \\(holiday.mp4\\)"):
        scan_corpus(tmp_path)


def test_split_by_actor_keeps_each_speaker_on_one_side():
    from affectlite_convert.data.av_corpus import split_by_actor

    actors = np.repeat([f"a{i}" for i in range(10)], 5)
    train, held = split_by_actor(actors, 0.2)
    assert held.sum() == 10 and not set(actors[train]) & set(actors[held])
    with pytest.raises(ValueError, match="at least 2"):
        split_by_actor(np.array(["a", "a"]))


def test_clip_steps_from_a_real_crema_d_clip():
    from affectlite.classifiers.speech import SpeechClassifier
    from affectlite.recognizer import EmotionRecognizer
    from affectlite_convert.data.av_corpus import clip_steps, sequences_from_steps

    with EmotionRecognizer() as recognizer, SpeechClassifier() as speech:
        steps = clip_steps(CLIPS / "1001_DFA_ANG_XX.flv", recognizer, speech)
    assert steps.shape[1] == 16 and len(steps) >= 8                        # 4 steps a second over ~2.5 s
    assert steps[:, 7].all()                                               # a face in every step
    assert steps[:, 15].any()                                              # he speaks
    # int8 probabilities in steps of 1/256: seven of them sum to 1 within 7/512
    assert np.allclose(steps[steps[:, 15] == 1, 8:15].sum(axis=1), 1, atol=7 / 512)
    assert not steps[steps[:, 15] == 0, 8:15].any()                        # no voice: zeros, flag 0
    windows = sequences_from_steps(steps, 8, 4)
    assert windows.shape[1:] == (8, 16) and np.array_equal(windows[0], steps[:8])
    assert sequences_from_steps(steps[:3], 8, 4).shape == (1, 8, 16)      # short clips are padded


def test_train_fusion_on_an_av_corpus(tmp_path):
    """The six real clips under three actor ids (the same recordings; enough to exercise the
    actor split and the whole path, not to learn anything)."""
    corpus = tmp_path / "CREMA-D" / "VideoFlash"
    corpus.mkdir(parents=True)
    for clip in sorted(CLIPS.glob("*.flv")):
        for actor in ("1001", "1002", "1003"):
            (corpus / clip.name.replace("1001", actor)).symlink_to(clip.resolve())
    run = tmp_path / "run"
    assert convert_main(["train", "fusion", "--av-corpus", str(corpus.parent), "--out", str(run), "--epochs", "2"]) == 0
    state = json.loads((run / "state.json").read_text())
    assert "18 clips of 3 actors" in state["data"]["corpus"]
    assert "1 actor(s) held out" in state["data"]["split"]
    assert set(state["report"]) == {"face_only", "voice_only", "late_fusion", "lstm", "lstm_face_removed",
                                   "lstm_voice_removed", "face_neutral_recall", "late_fusion_neutral_recall", "lstm_neutral_recall"}
    assert (run / "final.keras").exists() and (run / "calibration.npz").exists()


def test_out_of_fold_speech_outputs_feed_the_fusion(tmp_path, small_faces):
    """`train speech --folds` then `train fusion --speech-folds`, at toy size: every fold model is
    validated on actors it never trained on, and their outputs join the fusion's training voices."""
    from affectlite.classifiers.expression import BUNDLED_MODEL as FACE
    from affectlite.classifiers.speech import BUNDLED_MODEL as SPEECH
    from affectlite_convert.data.faces import load_face_npz
    from affectlite_convert.training.train_fusion import (FusionRecipe, out_of_fold_voices, split_faces, train_fusion,
                                                          unheard_voices)
    from affectlite_convert.training.train_speech import SpeechRecipe, fold_actors, train_speech_folds
    from conftest import SHARED

    assert fold_actors(tuple(range(1, 17)), 4)[0] == (1, 5, 9, 13)
    with pytest.raises(ValueError, match="--folds must be from 2 to 16"):
        fold_actors(tuple(range(1, 17)), 1)
    root = SHARED / "data/speech/ravdess"
    with pytest.raises(ValueError, match="no fold_N runs"):
        out_of_fold_voices(tmp_path / "folds", root)
    folds = train_speech_folds(root, tmp_path / "folds", SpeechRecipe(epochs=1, train_actors=(1, 2, 3, 4)), 2,
                               verbose=0)
    assert [held for held, _ in folds] == [(1, 3), (2, 4)]
    for held, final in folds:
        state = json.loads((final.parent / "state.json").read_text())
        assert set(state["recipe"]["train_actors"]).isdisjoint(held) and state["recipe"]["val_actors"] == list(held)
    voices = out_of_fold_voices(tmp_path / "folds", root)
    assert sorted(set(voices.actors.tolist())) == [f"ravdess:{a}" for a in (1, 2, 3, 4)]
    assert voices.early_stopping_actors == ("ravdess:2", "ravdess:4")
    assert len(voices.clips) == len(voices.labels) and all(np.allclose(c.sum(axis=1), 1, atol=1e-3) for c in voices.clips)

    faces_train, faces_eval = split_faces(load_face_npz(small_faces))
    recipe = FusionRecipe(epochs=1, train_sequences=400, eval_sequences=200, recorded_copies=0)
    unheard, held = unheard_voices(SPEECH, root, recipe)               # RAVDESS 17-18 train, 19-20 held out
    final, figures, _ = train_fusion(faces_train, faces_eval, voices + unheard, held, FACE, SPEECH, tmp_path / "fusion",
                                     recipe, verbose=0)
    state = json.loads((tmp_path / "fusion" / "state.json").read_text())
    assert ("out-of-fold outputs of RAVDESS actors [1, 2, 3, 4] (early stopping on ['ravdess:2', 'ravdess:4']); "
            "ravdess speakers 17, 18 (training)") in state["data"]["voices"]
    assert figures["voice_only"] > 1 / 7


# -- a learned fusion model on the device ---------------------------------------------------------

@pytest.fixture(scope="module")
def fusion_model(tmp_path_factory):
    """An int8 fusion model as `train fusion` + `convert` make it (here: briefly fitted on toy pairs)."""
    import tf_keras as K

    rng = np.random.default_rng(4)
    folder = tmp_path_factory.mktemp("fusion")
    x, y = make_sequences(*toy_sources(rng), count=600, seed=5)
    model = build_fusion_lstm(FusionSpec(steps=8))
    model.compile("adam", "sparse_categorical_crossentropy")
    K.utils.set_random_seed(0)
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    model.save(folder / "fusion.keras")
    np.savez(folder / "calibration.npz", x=x[:200])
    convert(folder / "fusion.keras", folder / "fusion_int8.tflite",
            ConvertOptions(quant="int8", input_kind="features", task="fusion"), calibration=folder / "calibration.npz")
    return folder / "fusion_int8.tflite"


def test_sequence_fusion_on_the_device(fusion_model):
    from affectlite.fusion.sequence import SequenceFusion, StepHistory, make_step

    fusion = SequenceFusion(fusion_model)
    assert fusion.steps == 8
    history = StepHistory(fusion.steps)
    happy = np.eye(7, dtype=np.float32)[EMOTIONS.index("happy")]
    for _ in range(12):
        history.push(1, happy, None)
    steps = history.sequence(1)
    assert steps.shape == (8, 16) and np.array_equal(steps[0], make_step(happy, None))
    probs = fusion.predict(steps)
    assert probs.shape == (7,) and abs(probs.sum() - 1) < 0.02
    assert fusion.contributions(steps) == {"face": 1.0}                   # no voice: the face carries it all
    assert fusion.predict(steps[:3]).shape == (7,)                        # a new track: fewer steps, padded
    # which moments the answer rests on: a step with nothing in it has no say
    gappy = steps.copy()
    gappy[:3] = 0.0
    shares = fusion.step_shares(gappy)
    assert shares.shape == (8,) and abs(shares.sum() - 1) < 1e-6 and not shares[:3].any()
    history.keep_only([2])
    assert len(history.sequence(1)) == 0


def test_each_sequence_starts_from_a_blank_state(fusion_model):
    """A converted LSTM keeps its state in variable tensors between invocations; the device must
    answer every sequence as the Keras model does, not carry the last one over."""
    import tf_keras as K

    from affectlite.fusion.sequence import SequenceFusion

    keras_model = K.models.load_model(fusion_model.parent / "fusion.keras", compile=False)
    x, _ = make_sequences(*toy_sources(np.random.default_rng(12)), count=20, seed=13)
    expected = keras_model.predict(x, verbose=0)
    fusion = SequenceFusion(fusion_model)
    answers = np.stack([fusion.predict(sequence) for sequence in x])
    assert np.abs(answers - expected).max() < 0.03                 # int8 against float, sequence by sequence
    np.testing.assert_array_equal(fusion.predict(x[0]), answers[0])  # the same sequence again, later


def test_service_uses_the_learned_fusion(fusion_model, frame):
    from affectlite import config as configuration
    from affectlite.service import Service
    from affectlite.sources.memory import MemorySource

    config = configuration.validate({"mqtt": {"enabled": False}, "recognizer": {"max_fps": 30},
                                     "states": {"min_duration_s": 0.2}, "explain": {"enabled": True},
                                     "fusion": {"model": str(fusion_model)}}, environ={})
    service = Service(config, source=MemorySource([frame] * 45, fps=30))
    service.run()
    steps = service.history.sequence(1)
    assert len(steps) >= 4 and steps[:, 7].all() and not steps[:, 15].any()   # 1.5 s of face, no microphone
    person = service.state_payload(time.monotonic())["persons"][0]
    expected = service.fusion.predict(steps)
    assert person["fused"]["probabilities"] == {e: round(float(p), 4) for e, p in zip(EMOTIONS, expected)}
    assert person["explain"]["modalities"]["face"]["share"] == 1.0
    steps_explained = person["explain"]["steps"]
    assert len(steps_explained) == len(steps) and steps_explained[-1]["age_s"] == 0.0
    assert steps_explained[0]["age_s"] == (len(steps) - 1) * 0.25
    assert abs(sum(step["share"] for step in steps_explained) - 1) < 1e-3
    schema = json.loads((Path(affectlite.__file__).parent / "schemas" / "mqtt-state.v1.json").read_text())
    jsonschema.validate(service.state_payload(time.monotonic()), schema)


def test_evaluate_a_converted_fusion_model_beside_its_contenders(fusion_model, small_faces, tmp_path, capsys):
    """`train fusion` leaves its held-out pairs in held_out.npz; `evaluate` then measures the int8
    model on exactly those, with face only, voice only and late fusion on the same sequences."""
    import shutil

    from affectlite.fusion.late import Reliability, late_fusion
    from affectlite_convert.data.faces import DataError
    from affectlite_convert.data.pairs import load_sequences, save_sequences

    both = PairingOptions(face_missing=0.0, voice_missing=0.0, gap_probability=0.0, voice_min_confidence=0.0)
    x, y = make_sequences(*toy_sources(np.random.default_rng(8)), count=300, options=both, seed=9)
    # the file remembers the reliabilities of the models that made the pairs (from their cards)
    reliability = Reliability(face=0.8, voice=0.3)
    held_out = save_sequences(tmp_path / "held_out.npz", x, y, reliability)
    assert load_sequences(held_out)[2] == reliability
    model = tmp_path / "fusion_int8.tflite"
    shutil.copy(fusion_model, model)
    shutil.copy(fusion_model.with_suffix(".json"), model.with_suffix(".json"))
    keras_model = fusion_model.parent / "fusion.keras"
    assert convert_main(["evaluate", str(keras_model), str(model), "--data", str(held_out), "--plots", str(tmp_path),
                         "--record"]) == 0
    out = capsys.readouterr().out
    assert "fusion_int8.tflite: 300 sequences" in out and "late_fusion" in out
    entry = json.loads(model.with_suffix(".json").read_text())["metrics"]["held_out"]
    contenders = entry["contenders"]
    assert set(contenders) == {"face_only", "voice_only", "late_fusion", "lstm", "lstm_face_removed", "lstm_voice_removed",
                               "face_neutral_recall", "late_fusion_neutral_recall", "lstm_neutral_recall"}
    assert contenders["lstm"] == round(entry["accuracy"], 4)
    face = x[:, :, 0:7].mean(axis=1)                                   # every step has both modalities here
    voice = x[:, :, 8:15].mean(axis=1)
    late = np.mean([np.argmax(late_fusion(f, v, reliability)) == label for f, v, label in zip(face, voice, y)])
    assert contenders["late_fusion"] == round(float(late), 4)
    neutral = y == EMOTIONS.index("neutral")
    late_neutral = np.mean([np.argmax(late_fusion(f, v, reliability)) == label
                            for f, v, label in zip(face[neutral], voice[neutral], y[neutral])])
    assert contenders["late_fusion_neutral_recall"] == round(float(late_neutral), 4)
    assert late != np.mean([np.argmax(late_fusion(f, v)) == label for f, v, label in zip(face, voice, y)])
    assert (tmp_path / "fusion_int8_confusion.png").exists()
    with pytest.raises(DataError, match="not a sequence file"):
        load_sequences(small_faces)             # images, not steps


def test_the_bundled_fusion_lstm():
    """`[fusion] model = "bundled"`: the LSTM that ships reads a modality that is present, and
    says which recent steps its answer rests on."""
    from affectlite.fusion.sequence import SequenceFusion, make_step

    fusion = SequenceFusion("bundled")
    assert fusion.card.name == "fusion_lstm_int8" and fusion.steps == 8

    def confident(label):
        probs = np.full(7, 0.02, np.float32)
        probs[EMOTIONS.index(label)] = 0.88
        return probs

    both = np.stack([make_step(confident("happy"), confident("happy"))] * 8)
    assert EMOTIONS[int(np.argmax(fusion.predict(both)))] == "happy"
    face_only = np.stack([make_step(None, None)] * 4 + [make_step(confident("sad"), None)] * 4)
    assert EMOTIONS[int(np.argmax(fusion.predict(face_only)))] == "sad"
    shares = fusion.step_shares(face_only)
    assert not shares[:4].any() and shares[4:].sum() > 0.999          # nothing there, no say
    voice_only = np.stack([make_step(None, confident("angry"))] * 8)
    assert EMOTIONS[int(np.argmax(fusion.predict(voice_only)))] == "angry"


def test_a_wrong_fusion_model_is_refused(tmp_path):
    from affectlite.fusion.sequence import SequenceFusion

    with pytest.raises(ValueError, match="no such fusion model"):
        SequenceFusion(tmp_path / "missing.tflite")
    from affectlite.classifiers.speech import BUNDLED_MODEL as SPEECH

    with pytest.raises(ValueError, match="not a fusion model"):
        SequenceFusion(SPEECH)
