"""Speech from several corpora: manifest loaders, a corpus with only four labels, the loss over a
corpus's own labels, balanced batches, and simulated recording conditions on real clips."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from affectlite.audio.features import SAMPLE_RATE
from affectlite.labels import EMOTIONS
from affectlite_convert.data.faces import DataError
from affectlite_convert.data.speech import CORPORA, load_corpus, read_clip, read_manifest
from conftest import SHARED

SPEECH = SHARED / "data" / "speech"


def small_corpus(folder: Path, name: str, per_speaker_label: int = 2) -> Path:
    """A copy of a shared corpus's manifest with a few real clips per speaker and label (the
    audio stays where it is: paths are absolute)."""
    source = SPEECH / name
    root = folder / name
    root.mkdir(parents=True)
    with (source / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    column = CORPORA[name].speaker_column
    kept, seen = [], {}
    for row in rows:
        key = (row[column], row["emotion"])
        if seen.get(key, 0) < per_speaker_label:
            seen[key] = seen.get(key, 0) + 1
            kept.append(row | {"path": str(source / row["path"])})
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return root


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    small_corpus(folder, "turev-db")
    small_corpus(folder, "emovo", per_speaker_label=1)
    return folder


def test_a_four_label_corpus_says_which_labels_it_has(corpora):
    turev = load_corpus(corpora / "turev-db")
    assert turev.corpus == "turev-db"
    assert [e for e, m in zip(EMOTIONS, turev.label_mask) if m] == ["angry", "happy", "neutral", "sad"]
    assert set(EMOTIONS[i] for i in turev.clip_labels) <= {"angry", "happy", "neutral", "sad"}
    assert sorted(set(turev.clip_actors)) == ["1157", "1234", "1358", "1984", "6783", "7895"]
    one = turev.speakers(lambda s: s == "1234")
    assert set(one.clip_actors) == {"1234"} and one.clips.max() == len(one.clip_labels) - 1
    assert len(one.windows) == len(one.labels) == len(one.clips)

    emovo = load_corpus(corpora / "emovo")
    assert emovo.label_mask.all() and len(set(emovo.clip_labels)) == 7


def test_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="unknown corpus folder"):
        load_corpus(tmp_path / "my_speech")
    root = tmp_path / "emovo"
    root.mkdir()
    (root / "manifest.csv").write_text("path,emotion,speaker\nx.flac,bored,f1\n")
    with pytest.raises(DataError, match=r"unknown emotion label\(s\) \['bored'\]"):
        read_manifest(root)
    (root / "manifest.csv").write_text("path,emotion\nx.flac,happy\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['speaker'\]"):
        read_manifest(root)


def test_the_loss_covers_only_the_labels_a_corpus_has():
    import keras

    from affectlite_convert.training.label_mask import masked_accuracy, masked_crossentropy, pack_targets

    four = CORPORA["turev-db"].label_mask
    probs = np.array([[0.05, 0.3, 0.3, 0.2, 0.05, 0.05, 0.05]], np.float32)   # much on disgust and fear
    angry = EMOTIONS.index("angry")
    packed = pack_targets(np.array([angry]), four[None])
    # Over the four labels, p(angry) = 0.05 / (0.05 + 0.2 + 0.05 + 0.05): disgust and fear do not count.
    loss = float(keras.ops.convert_to_numpy(masked_crossentropy(packed, probs))[0])
    assert loss == pytest.approx(-np.log(0.05 / 0.35), rel=1e-4)
    full = pack_targets(np.array([angry]), np.ones((1, 7), bool))
    assert float(keras.ops.convert_to_numpy(masked_crossentropy(full, probs))[0]) == pytest.approx(-np.log(0.05),
                                                                                                   rel=1e-4)
    # Within the four labels happy (0.2) leads, so the answer is wrong, not "disgust".
    assert float(keras.ops.convert_to_numpy(masked_accuracy(packed, probs))[0]) == 0.0
    smoothed = pack_targets(np.array([angry]), four[None], smoothing=0.1)[0, :7]
    assert smoothed[~four].sum() == 0 and smoothed.sum() == pytest.approx(1.0)


def test_batches_are_balanced_by_corpus_and_label(corpora):
    from affectlite_convert.training.train_speech import Pool, balanced_batches

    pool = Pool.of([load_corpus(corpora / "turev-db"), load_corpus(corpora / "emovo")])
    batches = balanced_batches(pool, 64, 0.0, seed=0)
    corpus_counts = np.zeros(2)
    label_counts = np.zeros(7)
    for _ in range(60):
        x, y = next(batches)
        assert x.shape == (64, 200, 64, 1) and y.shape == (64, 14)
        masks = y[:, 7:]
        turev = masks.sum(axis=1) == 4
        corpus_counts += [turev.sum(), (~turev).sum()]
        label_counts += y[:, :7].sum(axis=0)
    assert corpus_counts[0] / corpus_counts.sum() == pytest.approx(0.5, abs=0.05)
    # emovo's seven labels share half the draws, TurEV-DB's four the other half
    assert label_counts[EMOTIONS.index("fear")] / label_counts.sum() == pytest.approx(0.5 / 7, abs=0.02)
    assert label_counts[EMOTIONS.index("sad")] / label_counts.sum() == pytest.approx(0.5 / 4 + 0.5 / 7, abs=0.03)


def test_corpus_weights_shift_the_draws_between_corpora(tmp_path, corpora):
    """--corpus-weights turev-db=3: three draws of TurEV-DB for one of EMOVO, labels still
    balanced within each corpus; a weight that is not CORPUS=NUMBER>0, or one for a corpus the
    run does not train on, is refused before anything is written."""
    from affectlite_convert.training.train_speech import (Pool, SpeechRecipe, balanced_batches, corpus_weights,
                                                          train_speech)

    pool = Pool.of([load_corpus(corpora / "turev-db"), load_corpus(corpora / "emovo")])
    batches = balanced_batches(pool, 64, 0.0, seed=0, weights=corpus_weights(("turev-db=3",)))
    turev = sum(int((next(batches)[1][:, 7:].sum(axis=1) == 4).sum()) for _ in range(60))
    assert turev / (60 * 64) == pytest.approx(0.75, abs=0.03)
    for bad in ("ravdess", "ravdess=0", "ravdess=-1", "ravdess=two", "savee=2"):
        with pytest.raises(ValueError, match="expected CORPUS=WEIGHT"):
            corpus_weights((bad,))
    recipe = SpeechRecipe(corpora=("emovo",), val_speakers=("emovo:f3",), corpus_weights=("ravdess=2",))
    with pytest.raises(ValueError, match=r"corpus weights for \['ravdess'\], which this run does not train on"):
        train_speech(corpora / "emovo", tmp_path / "run", recipe, verbose=0)
    assert not (tmp_path / "run").exists()


def test_split_keeps_validation_speakers_out_of_training(tmp_path, corpora):
    from affectlite_convert.training.speech_cnn import SpeechCnnSpec
    from affectlite_convert.training.train_speech import SpeechRecipe, split_speakers, train_speech

    recipe = SpeechRecipe(epochs=1, corpora=("emovo", "turev-db"), val_speakers=("emovo:f3", "turev-db:1984"),
                          windows_per_epoch=128, model=SpeechCnnSpec(widths=(8, 8, 8, 8)))
    train, val = split_speakers(recipe, "turev-db", ["1157", "1234", "1984"])
    assert train == ["1157", "1234"] and val == ["1984"]
    with pytest.raises(ValueError, match="not in emovo"):
        split_speakers(SpeechRecipe(val_speakers=("emovo:x9",)), "emovo", ["f1", "f3"])

    train_speech(corpora, tmp_path / "run", recipe, verbose=0)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    described = state["data"]["corpora"]
    assert described["turev-db"]["validation_speakers"] == ["1984"]
    assert "1984" not in described["turev-db"]["train_speakers"]
    assert described["turev-db"]["labels"] == ["angry", "happy", "neutral", "sad"]
    assert "non-commercial" in described["turev-db"]["licence"]
    assert state["temperature"] > 0


def test_a_run_can_start_from_a_trained_model(tmp_path, corpora):
    """--init: the first epoch starts from the given model's weights (same architecture only)."""
    import keras

    from affectlite_convert.training.speech_cnn import SpeechCnnSpec, build_speech_cnn
    from affectlite_convert.training.train_speech import SpeechRecipe, train_speech

    spec = SpeechCnnSpec(widths=(8, 8, 8, 8))
    start = build_speech_cnn(spec)
    start.save(tmp_path / "start.keras")
    recipe = SpeechRecipe(epochs=1, corpora=("emovo",), val_speakers=("emovo:f3",), windows_per_epoch=64,
                          learning_rate=1e-9, model=spec, init=str(tmp_path / "start.keras"))
    final = keras.models.load_model(train_speech(corpora / "emovo", tmp_path / "run", recipe, verbose=0), compile=False)
    kernels = [w for w in final.get_weights() if w.ndim == 4]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(kernels, [w for w in start.get_weights() if w.ndim == 4]))
    # `train blend`: half of each model's weights, calibrated, written where `convert` takes it.
    from affectlite_convert.cli import main

    other = build_speech_cnn(spec)
    other.set_weights([w + 1.0 for w in start.get_weights()])
    other.save(tmp_path / "other.keras")
    assert main(["train", "blend", "--run", str(tmp_path / "run"), "--base", str(tmp_path / "other.keras"),
                 "--share", "0.5", "--data", str(corpora / "emovo"), "--cache", str(tmp_path / "cache")]) == 0
    blended = keras.models.load_model(tmp_path / "run" / "speech_emotion.keras", compile=False)
    assert all(np.allclose(b, a + 0.5, atol=1e-4) for b, a in
               zip([w for w in blended.get_weights() if w.ndim == 4], kernels))
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["data"]["weight_interpolation"] == "weights = 0.5 x this run's final + 0.5 x other.keras (WiSE-FT)"
    # the other way round: a fine-tune of the run (from its final.keras), averaged with the run
    home = SpeechRecipe(epochs=1, corpora=("emovo",), val_speakers=("emovo:f3",), windows_per_epoch=64,
                        learning_rate=1e-4, model=spec, init=str(tmp_path / "run" / "final.keras"))
    train_speech(corpora / "emovo", tmp_path / "home", home, verbose=0)
    assert main(["train", "blend", "--run", str(tmp_path / "run"), "--base", str(tmp_path / "home" / "final.keras"),
                 "--share", "0.7", "--data", str(corpora / "emovo"), "--cache", str(tmp_path / "cache")]) == 0
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["data"]["weight_interpolation"] == (
        "weights = 0.7 x this run's final + 0.3 x this run's final trained 1 more epochs on emovo alone at learning "
        "rate 0.0001 (final.keras) (WiSE-FT)")

    wider = SpeechRecipe(epochs=1, corpora=("emovo",), val_speakers=("emovo:f3",), windows_per_epoch=64,
                         model=SpeechCnnSpec(widths=(8, 8, 8, 16)), init=str(tmp_path / "start.keras"))
    with pytest.raises(ValueError, match="not a model of this recipe's architecture"):
        train_speech(corpora / "emovo", tmp_path / "run2", wider, verbose=0)


def test_teachers_probabilities_count_only_over_the_labels_a_corpus_has():
    """Distillation: a teacher's belief in fear is no target for a TurEV-DB word (no fear there)."""
    from affectlite_convert.training.label_mask import pack_targets

    four = CORPORA["turev-db"].label_mask
    teacher = np.array([[0.1, 0.0, 0.5, 0.2, 0.1, 0.1, 0.0]], np.float32)
    angry = EMOTIONS.index("angry")
    target = pack_targets(np.array([angry]), four[None], soft=teacher, soft_weight=0.5)[0, :7]
    # 0.5 x one-hot + 0.5 x (0.1, 0.2, 0.1, 0.1) / 0.5 over angry, happy, neutral, sad
    expected = np.zeros(7, np.float32)
    expected[[angry, EMOTIONS.index("happy"), EMOTIONS.index("neutral"), EMOTIONS.index("sad")]] = [0.6, 0.2, 0.1, 0.1]
    assert np.allclose(target, expected, atol=1e-6)
    assert np.allclose(pack_targets(np.array([angry]), four[None], soft=teacher, soft_weight=0.0),
                       pack_targets(np.array([angry]), four[None]))


def test_a_run_can_learn_from_an_ensemble_of_teachers(tmp_path, corpora):
    """--teacher A --teacher B --distill 0.5: half of each target is the teachers' mean on that
    window (teachers of any width, trained on the same windows); a teacher of other windows is
    refused before training."""
    from affectlite_convert.training.distill import teacher_probabilities
    from affectlite_convert.training.speech_cnn import SpeechCnnSpec, build_speech_cnn
    from affectlite_convert.training.train_speech import Pool, SpeechRecipe, balanced_batches, train_speech

    teachers = []
    for name, widths in (("narrow", (8, 8, 8, 8)), ("wide", (8, 8, 16, 16))):
        build_speech_cnn(SpeechCnnSpec(widths=widths)).save(tmp_path / f"{name}.keras")
        teachers.append(str(tmp_path / f"{name}.keras"))
    pool = Pool.of([load_corpus(corpora / "turev-db")])
    pool.soft = teacher_probabilities(teachers, [pool.windows.astype(np.float32)[..., None]])
    assert pool.soft.shape == (len(pool.labels), 7) and np.allclose(pool.soft.sum(axis=1), 1, atol=1e-4)
    x, y = next(balanced_batches(pool, 16, 0.0, seed=0, distill_weight=0.5))
    hard = y[:, :7] >= 0.5                                      # the label keeps at least half of the target
    assert (hard.sum(axis=1) == 1).all() and (y[:, :7][~hard] > 0).any() and np.allclose(y[:, :7].sum(axis=1), 1)

    recipe = SpeechRecipe(epochs=1, corpora=("emovo",), val_speakers=("emovo:f3",), windows_per_epoch=64,
                          model=SpeechCnnSpec(widths=(8, 8, 8, 8)), teachers=tuple(teachers), distill_weight=0.5)
    train_speech(corpora / "emovo", tmp_path / "run", recipe, verbose=0)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["recipe"]["teachers"] == teachers and state["recipe"]["distill_weight"] == 0.5
    assert state["data"]["distillation"].startswith("0.5 of each window's target from the mean probabilities of")

    import keras

    other = keras.Sequential([keras.Input((100, 64, 1)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(7)])
    other.save(tmp_path / "other_windows.keras")
    refused = SpeechRecipe(**{**recipe.__dict__, "teachers": (str(tmp_path / "other_windows.keras"),)})
    with pytest.raises(ValueError, match="distil from models trained on the same inputs"):
        train_speech(corpora / "emovo", tmp_path / "run2", refused, verbose=0)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """A real RAVDESS sentence (about 3.5 s, 16 kHz)."""
    return read_clip(SPEECH / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac")


def _changed_same_shape(original: np.ndarray, out: np.ndarray) -> None:
    assert out.dtype == np.float32 and out.shape == original.shape       # same length at the same rate
    assert np.abs(out - original).mean() > 1e-4


def test_each_recording_condition_changes_the_clip_and_keeps_its_length(clip):
    from affectlite_convert.training import recording

    rng = np.random.default_rng(0)
    other = read_clip(SPEECH / "ravdess" / "Actor_02" / "03-01-01-01-01-01-02.flac")
    _changed_same_shape(clip, recording.speed(clip, 1.1))
    _changed_same_shape(clip, recording.reverberate(clip, 0.5, rng))
    for kind in ("white", "pink"):
        _changed_same_shape(clip, recording.add_noise(clip, 10.0, kind, rng))
    babble = recording.add_noise(clip, 5.0, "babble", rng, [other])
    _changed_same_shape(clip, babble)
    noise = babble - clip
    assert 10 * np.log10(np.mean(clip ** 2) / np.mean(noise ** 2)) == pytest.approx(5.0, abs=0.1)
    telephone = recording.band_limit(clip, 300.0, 3400.0)
    _changed_same_shape(clip, telephone)
    spectrum = np.abs(np.fft.rfft(telephone))
    freqs = np.fft.rfftfreq(len(clip), 1 / SAMPLE_RATE)
    assert spectrum[freqs > 6000].sum() < 0.01 * spectrum[(freqs > 500) & (freqs < 3000)].sum()
    loud = recording.gain_and_clip(clip, 40.0)
    _changed_same_shape(clip, loud)
    assert np.abs(loud).max() == 1.0                                     # clipped at full scale
    for codec in ("mp3", "opus", "aac"):
        coded = recording.lossy_codec(clip, codec, 16)
        _changed_same_shape(clip, coded)
        assert np.corrcoef(clip, coded)[0, 1] > 0.8                      # lined up again after the codec's delay


def test_a_short_utterance_is_one_stretch_of_the_voice_with_silence_around_it(clip):
    """`train speech --short-utterances`: lone words as a kiosk hears them, cut from sentences."""
    from affectlite.audio.voice import speech_windows
    from affectlite_convert.training import recording

    word = recording.excerpt(clip, 0.8, np.random.default_rng(0))
    _changed_same_shape(clip, word)
    kept = np.flatnonzero(word)
    assert kept[-1] - kept[0] + 1 <= int(0.8 * SAMPLE_RATE)              # one stretch, at most 0.8 s
    assert np.array_equal(word[kept[0] + 200:kept[-1] - 200], clip[kept[0] + 200:kept[-1] - 200])   # in place
    assert np.sqrt(np.mean(word[kept[0]:kept[-1]] ** 2)) > 0.3 * np.sqrt(np.mean(clip ** 2))       # voice, not a pause
    assert 0 < len(speech_windows(word)[0]) < len(speech_windows(clip)[0])   # the device still hears speech
    assert np.array_equal(recording.excerpt(clip, 10.0, np.random.default_rng(0)), clip)   # longer than the clip


def test_simulated_recordings_keep_their_cache_when_a_new_condition_is_off():
    """Recordings cached before short utterances existed are the same recordings: same key."""
    from affectlite_convert.training.recording import RecordingConditions

    assert "excerpt_probability" not in RecordingConditions().identity()
    assert RecordingConditions(excerpt_probability=0.5).identity()["excerpt_range_s"] == (0.5, 1.5)


def test_simulated_recordings_are_cached(tmp_path, corpora):
    from affectlite_convert.data.speech import simulated_corpus

    first = simulated_corpus(corpora / "emovo", copies=1, seed=3, cache=tmp_path)
    assert len(list(tmp_path.glob("emovo-1x-*.npz"))) == 1
    again = simulated_corpus(corpora / "emovo", copies=1, seed=3, cache=tmp_path)
    assert np.array_equal(first.windows, again.windows) and first.clip_actors == again.clip_actors
    clean = load_corpus(corpora / "emovo")
    assert first.windows.dtype == np.float16 and len(first.clip_labels) <= len(clean.clip_labels)


def test_runs_that_differ_only_in_seed_share_their_recordings(tmp_path, corpora):
    """`train speech --seed`: another draw of batches, masks and dropout over the same simulated
    recordings (one cache file), so that runs can be compared or averaged on equal data."""
    from dataclasses import replace

    from affectlite_convert.training.train_speech import Pool, SpeechRecipe, balanced_batches, load_training_data

    recipe = SpeechRecipe(corpora=("emovo",), val_speakers=("emovo:f3",), recorded_copies=1)
    first, _, _ = load_training_data(corpora / "emovo", recipe, tmp_path / "cache")
    again, _, _ = load_training_data(corpora / "emovo", replace(recipe, seed=8), tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert np.array_equal(first[1].windows, again[1].windows)
    pool = Pool.of(first)
    batch_7, batch_8 = (next(balanced_batches(pool, 32, 0.0, seed))[0] for seed in (recipe.seed, 8))
    assert not np.array_equal(batch_7, batch_8)
    load_training_data(corpora / "emovo", replace(recipe, recording_seed=8), tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2          # other recordings: their own file


def test_a_recipe_with_short_utterances_trains_on_lone_words_as_well(tmp_path, corpora):
    from dataclasses import replace

    from affectlite_convert.training.recording import RecordingConditions, simulate
    from affectlite_convert.training.train_speech import SpeechRecipe, load_training_data

    clip = read_clip(read_manifest(corpora / "emovo")[0].path)
    _, applied = simulate(clip, np.random.default_rng(0), RecordingConditions(excerpt_probability=1.0))
    assert applied[0].startswith("excerpt")
    sentences = SpeechRecipe(corpora=("emovo",), val_speakers=("emovo:f3",), recorded_copies=1)
    whole, _, _ = load_training_data(corpora / "emovo", sentences, tmp_path / "cache")
    words, _, _ = load_training_data(corpora / "emovo", replace(sentences, short_utterances=1.0),
                                             tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2            # recordings of their own
    assert np.array_equal(words[0].windows, whole[0].windows)              # the clean clips stay whole
    assert words[1].windows.shape[1:] == whole[1].windows.shape[1:]
    assert not np.array_equal(words[1].windows[:5], whole[1].windows[:5])  # the recorded copies are cut


def test_a_model_trained_on_clamped_windows_carries_them_to_the_device(tmp_path, corpora):
    """`train speech --dynamic-range-db 60`: its own recordings cache, and `convert
    --training-info RUN` writes the clamp on the card, from which the device computes its windows."""
    from affectlite.classifiers.speech import SpeechClassifier
    from affectlite.models.card import ModelCard
    from affectlite_convert.cli import main
    from affectlite_convert.training.speech_cnn import SpeechCnnSpec
    from affectlite_convert.training.train_speech import SpeechRecipe, load_training_data, train_speech

    recipe = SpeechRecipe(epochs=1, corpora=("emovo",), val_speakers=("emovo:f3",), windows_per_epoch=64,
                          model=SpeechCnnSpec(widths=(8, 8, 8, 8)), dynamic_range_db=60.0)
    final = train_speech(corpora / "emovo", tmp_path / "run", recipe, verbose=0)
    plain, _, _ = load_training_data(corpora / "emovo", SpeechRecipe(corpora=("emovo",), val_speakers=("emovo:f3",)))
    clamped, _, _ = load_training_data(corpora / "emovo", recipe)
    assert plain[0].windows.shape == clamped[0].windows.shape and not np.allclose(plain[0].windows, clamped[0].windows)
    np.savez(tmp_path / "calibration.npz", x=clamped[0].windows[:50, ..., None])
    out = tmp_path / "speech_int8.tflite"
    assert main(["convert", str(final), "--input-kind", "features", "--task", "speech-emotion", "--calibration",
                 str(tmp_path / "calibration.npz"), "--training-info", str(tmp_path / "run"), "--out", str(out)]) == 0
    assert ModelCard.load(out.with_suffix(".json")).input.dynamic_range_db == 60.0
    assert "clamped at 60 dB below their loudest value" in out.with_suffix(".md").read_text()
    with SpeechClassifier(out) as speech:
        assert speech.windows.dynamic_range_db == 60.0


def test_runs_from_different_seeds_ship_as_one_model_that_averages_them(tmp_path, corpora, capsys):
    """`train ensemble --run A --run B`: one Keras model whose answer is the mean of the members'
    probabilities, converted to one int8 file that the device runs like any speech model; members
    that take other windows, or a folder that is no finished run, are refused."""
    import keras

    from affectlite.classifiers.speech import SpeechClassifier
    from affectlite_convert.cli import main
    from affectlite_convert.training.train_speech import SpeechRecipe, load_training_data

    def train(out: str, *options: str) -> str:
        assert main(["train", "speech", "--data", str(corpora / "emovo"), "--corpora", "emovo", "--val-speakers",
                     "emovo:f3", "--recipe", "ravdess", "--epochs", "1", "--widths", "8,8,8",
                     "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / out), *options]) == 0
        return str(tmp_path / out)

    runs = [train(f"seed{seed}", "--seed", str(seed), "--dynamic-range-db", "60") for seed in (1, 2)]
    assert main(["train", "ensemble", "--run", runs[0], "--run", runs[1], "--out", str(tmp_path / "pair")]) == 0

    recipe = SpeechRecipe(corpora=("emovo",), val_speakers=("emovo:f3",), dynamic_range_db=60.0)
    windows = load_training_data(corpora / "emovo", recipe)[1][0].windows[:20, ..., None]
    members = [keras.models.load_model(Path(run) / "speech_emotion.keras", compile=False).predict(windows, verbose=0)
               for run in runs]
    pair = keras.models.load_model(tmp_path / "pair" / "speech_emotion.keras", compile=False)
    assert np.allclose(pair.predict(windows, verbose=0), (members[0] + members[1]) / 2, atol=1e-5)
    state = json.loads((tmp_path / "pair" / "state.json").read_text())
    assert [m["seed"] for m in state["data"]["members"]] == [1, 2] and "seed" not in state["recipe"]
    assert state["recipe"]["dynamic_range_db"] == 60.0 and state["epochs_done"] == 2

    out = tmp_path / "pair_int8.tflite"
    assert main(["convert", str(tmp_path / "pair" / "speech_emotion.keras"), "--input-kind", "features", "--task",
                 "speech-emotion", "--calibration", str(tmp_path / "pair" / "calibration.npz"), "--training-info",
                 str(tmp_path / "pair"), "--out", str(out)]) == 0
    card = out.with_suffix(".md").read_text()
    assert "mean of the probabilities of 2 networks" in card and "- members: run seed1; seed 1; " in card
    assert " | run seed2; seed 2; " in card                       # one record per member, told apart
    with SpeechClassifier(out) as speech:
        assert speech.windows.dynamic_range_db == 60.0

    unclamped = train("unclamped")
    for members, message in (([runs[0], unclamped], "members differ in dynamic_range_db (seed1: 60.0, unclamped: None)"),
                             ([runs[0], str(tmp_path)], "not a finished speech run"),
                             ([runs[0]], "at least two")):
        assert main(["train", "ensemble", *(f"--run={run}" for run in members), "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_train_speech_widths_choose_the_network(tmp_path, corpora, capsys):
    """`train speech --widths`: a wider (or narrower) network than the bundled one, and a clear
    refusal of a list that is not one (and of a corpus weight that is not CORPUS=WEIGHT)."""
    import keras

    from affectlite_convert.cli import main

    for option, value, message in (("--widths", "8,wide", "--widths takes whole numbers separated by commas"),
                                   ("--widths", "16", "--widths needs at least two blocks"),
                                   ("--corpus-weights", "emovo", "expected CORPUS=WEIGHT"),
                                   ("--short-utterances", "1.5", "a share of the simulated recordings, 0..1")):
        assert main(["train", "speech", "--data", str(corpora / "emovo"), "--corpora", "emovo",
                     "--out", str(tmp_path / "refused"), option, value]) == 2
        assert message in capsys.readouterr().err
    assert main(["train", "speech", "--data", str(corpora / "emovo"), "--recipe", "ravdess", "--short-utterances",
                 "0.5", "--out", str(tmp_path / "refused")]) == 2
    assert "this recipe has none (use --recipe multi)" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    assert main(["train", "speech", "--data", str(corpora / "emovo"), "--corpora", "emovo", "--val-speakers",
                 "emovo:f3", "--recipe", "ravdess", "--epochs", "1", "--widths", "8,12,16",
                 "--out", str(tmp_path / "run")]) == 0
    model = keras.models.load_model(tmp_path / "run" / "speech_emotion.keras", compile=False)
    assert [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == [8, 12, 16]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["recipe"]["model"]["widths"] == [8, 12, 16]


@pytest.mark.parametrize("script, settings, message", [
    ("emovo_speaker_folds.sh", {"HOME_TUNE": "--epochs 6", "SHARE": "0.7"}, "HOME_TUNE goes with SCRATCH"),
    ("emovo_speaker_folds.sh", {"SCRATCH": "--epochs 40", "HOME_TUNE": "--epochs 6"}, "SHARE is needed"),
    ("emovo_speaker_folds.sh", {"SCRATCH": "--epochs 40", "SEEDS": "7"}, "SEEDS needs at least two seeds"),
    ("leave_one_corpus_out.sh", {"HOME_TUNE": "--epochs 6", "SHARE": "0.7"}, "HOME_TUNE goes with SCRATCH"),
    ("leave_one_corpus_out.sh", {"SCRATCH": "--epochs 40", "SEEDS": "7"}, "SEEDS needs at least two seeds"),
    ("leave_one_corpus_out.sh", {"SCRATCH": "--epochs 40", "HOME_TUNE": "--epochs 6", "SHARE": "0.7"},
     "leave out emovo or turev-db only"),
])
def test_the_validation_scripts_refuse_half_a_recipe_before_training(tmp_path, script, settings, message):
    """Hours of training must not start on a recipe given by halves (a RAVDESS tune with nothing to
    tune, no blend share, RAVDESS left out of a recipe whose second step is RAVDESS, an ensemble of
    one seed)."""
    repo = Path(__file__).resolve().parents[1]
    env = {key: value for key, value in os.environ.items() if key not in ("SCRATCH", "HOME_TUNE", "SHARE", "LEFT", "SEEDS")}
    done = subprocess.run(["bash", str(repo / "scripts" / script), str(tmp_path / "runs")], env={**env, **settings},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr
    assert not (tmp_path / "runs").exists()
