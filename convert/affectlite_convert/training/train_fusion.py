"""Training the fusion LSTM on label-paired sequences, and the report that says whether it
earns its place: face only, voice only, the weighted average (as the device computes it, with
the models' measured reliabilities), the LSTM, and the LSTM with each modality removed, on
held-out pairs.

The LSTM learns how far to trust each modality, so it must see the unimodal models' outputs on
data those models were not trained on (as in stacking): on their own training data both are
overconfident, and a fusion trained there over-trusts them. So the faces are FER2013 PublicTest
in two halves by image, and the voices are the speakers the speech model never heard, in every
corpus its card names (RAVDESS 17-20, and for a multi-corpus model its held-out EMOVO and TurEV-DB
speakers): the first half of each corpus's speakers trains the fusion, the second half is held
out, so that speakers never cross. The training voices are also heard under simulated recording
conditions (noise, rooms, codecs: :mod:`affectlite_convert.training.recording`), so that the
LSTM learns how far to trust a voice in a lobby, not in a studio. The LSTM needs no separate
reliability input: it learns each modality's reliability from these outputs, which is what the
weighted average reads from the cards."""

from __future__ import annotations

import functools
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from affectlite.fusion.late import Reliability
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
    #: Copies of every training voice under simulated recording conditions (the speech runs' cache).
    recorded_copies: int = 2
    recording_seed: int = 7
    seed: int = 11
    #: A neutral share of 0.3 (chosen on the validation pairs: the smallest tried, 0.3 and 0.45,
    #: at which the LSTM keeps neutral people neutral at least as often as the face alone does).
    pairing: PairingOptions = field(default_factory=lambda: PairingOptions(neutral_share=0.3))
    model: FusionSpec = field(default_factory=FusionSpec)


@dataclass
class VoiceOutputs:
    """Speech-model outputs per clip (each clip's windows in order), with label and speaker."""

    clips: list[np.ndarray]
    labels: np.ndarray
    actors: np.ndarray
    early_stopping_actors: tuple = ()     # speakers kept for the fusion's validation
    description: str = ""

    @classmethod
    def of(cls, predict, speech, prefix: str = "", description: str = "") -> "VoiceOutputs":
        """``predict``'s outputs on a :class:`~affectlite_convert.data.speech.SpeechSet`."""
        probs = predict(speech.windows[..., None].astype(np.float32))
        return cls([probs[speech.clips == c] for c in range(len(speech.clip_labels))], speech.clip_labels,
                   np.array([f"{prefix}{a}" for a in speech.clip_actors]), description=description)

    def __add__(self, other: "VoiceOutputs") -> "VoiceOutputs":
        return VoiceOutputs(self.clips + other.clips, np.concatenate([self.labels, other.labels]),
                            np.concatenate([self.actors, other.actors]),
                            self.early_stopping_actors + other.early_stopping_actors,
                            "; ".join(d for d in (self.description, other.description) if d))


def unheard_voices(speech_model: str | Path, data_root: str | Path, recipe: FusionRecipe | None = None,
                   cache: str | Path | None = None) -> tuple[VoiceOutputs, VoiceOutputs]:
    """(training, held-out) voices: the speech model's outputs on the speakers it never heard, per
    corpus under ``data_root`` (a folder of corpora, or one corpus's folder); the first half of
    each corpus's speakers (sorted) trains, also under ``recipe.recorded_copies`` simulated
    recordings, the second half is held out (clean)."""
    from affectlite_convert.data.speech import CORPORA, corpus_of, load_corpus, read_manifest, simulated_corpus
    from affectlite_convert.evaluate import feature_predictor, model_windows, trained_speakers

    recipe = recipe or FusionRecipe()
    data_root = Path(data_root)
    roots = ([data_root] if (data_root / "manifest.csv").exists()
             else [data_root / name for name in CORPORA if (data_root / name / "manifest.csv").exists()])
    if not roots:
        raise ValueError(f"{data_root}: no speech corpus here (a folder with manifest.csv, or a folder of "
                         f"{', '.join(CORPORA)})")
    trained, predict = trained_speakers(speech_model), feature_predictor(speech_model)
    windows = model_windows([speech_model])
    fit, held = [], []
    for root in roots:
        corpus = corpus_of(root)
        heard = set(trained.get(corpus.name, []))
        unheard = sorted({r.speaker for r in read_manifest(root, corpus) if str(r.speaker) not in heard}, key=str)
        if len(unheard) < 2:
            continue
        clean = load_corpus(root, unheard, corpus, windows)
        first, second = unheard[:len(unheard) // 2], unheard[len(unheard) // 2:]
        prefix = f"{corpus.name}:"
        fit.append(VoiceOutputs.of(predict, clean.speakers(lambda s: s in first), prefix,
                                   f"{corpus.name} speakers {', '.join(map(str, first))}"))
        if recipe.recorded_copies:
            recorded = simulated_corpus(root, recipe.recorded_copies, recipe.recording_seed, cache, corpus=corpus,
                                        windows=windows)
            fit.append(VoiceOutputs.of(predict, recorded.speakers(lambda s: s in first), prefix))
        held.append(VoiceOutputs.of(predict, clean.speakers(lambda s: s in second), prefix,
                                    f"{corpus.name} speakers {', '.join(map(str, second))}"))
    if not fit:
        raise ValueError(f"{speech_model}: it heard (nearly) every speaker under {data_root}; the fusion needs "
                         "voices it never heard (train the speech model with --val-speakers)")
    return functools.reduce(operator.add, fit), functools.reduce(operator.add, held)


def out_of_fold_voices(folds_dir: str | Path, speech_root: str | Path) -> VoiceOutputs:
    """Each fold model's outputs on the actors it was validated on and never trained on
    (``affectlite-convert train speech --folds``): speech outputs as the fusion will meet them."""
    import json

    from affectlite_convert.data.speech import load_speech
    from affectlite_convert.evaluate import feature_predictor, model_windows

    runs = sorted(Path(folds_dir).glob("fold_*/state.json"))
    if not runs:
        raise ValueError(f"{folds_dir}: no fold_N runs; make them with: affectlite-convert train speech --folds 4 "
                         f"--out {folds_dir}")
    voices = None
    for state_file in runs:
        state = json.loads(state_file.read_text())
        model = state_file.parent / "final.keras"
        if not model.exists() or state["epochs_done"] < state["recipe"]["epochs"]:
            raise ValueError(f"{state_file.parent}: fold not finished; continue it with --resume")
        held = load_speech(speech_root, list(state["recipe"]["val_actors"]), model_windows([model]))
        part = VoiceOutputs.of(feature_predictor(model), held, "ravdess:")
        voices = part if voices is None else voices + part
    last_fold = tuple(f"ravdess:{a}" for a in json.loads(runs[-1].read_text())["recipe"]["val_actors"])
    actors = sorted({int(a.split(":")[1]) for a in voices.actors})
    voices.early_stopping_actors = last_fold
    voices.description = f"the out-of-fold outputs of RAVDESS actors {actors} (early stopping on {list(last_fold)})"
    return voices


def cards_reliability(face_model, speech_model) -> Reliability:
    """What the device's weighted average uses: the reliabilities the two models' cards record."""
    from affectlite.fusion.late import reliability_from_cards
    from affectlite.models.card import ModelCard, card_path_for

    return reliability_from_cards(*(ModelCard.load(card_path_for(Path(m))) for m in (face_model, speech_model)))


def train_fusion(faces_train, faces_eval, voices: VoiceOutputs, held_voices: VoiceOutputs, face_model,
                 speech_model, run_dir: str | Path, recipe: FusionRecipe = FusionRecipe(), resume: bool = False,
                 verbose: int = 1) -> tuple[Path, dict, tuple[np.ndarray, np.ndarray]]:
    """Returns the final model, the held-out report and the held-out sequences (for calibration).

    When ``voices`` names early-stopping speakers (out-of-fold outputs), their clips validate and
    validation is speaker-independent too; otherwise a quarter of each speaker's clips does."""
    from affectlite_convert.evaluate import predict_tflite

    run = TrainingRun(run_dir, asdict(recipe), resume, library="tf_keras", defaults=asdict(FusionRecipe()))
    reliability = cards_reliability(face_model, speech_model)
    train_face, eval_face = predict_tflite(Path(face_model), faces_train.x), predict_tflite(Path(face_model), faces_eval.x)
    # Validation for early stopping comes from the training pool itself, split by face image and
    # by clip, never from the held-out pairs of the report. Every training speaker trains: with
    # one, the fusion learns that speaker's errors (67.1 % on held-out pairs against 69.1 % with two).
    fit_faces, val_faces = np.arange(len(faces_train.y)) % 5 != 0, np.arange(len(faces_train.y)) % 5 == 0
    if voices.early_stopping_actors:
        val_clips = np.isin(voices.actors, voices.early_stopping_actors)
    else:
        val_clips = np.arange(len(voices.clips)) % 4 == 0
    fit_clips = ~val_clips

    def pairs(faces, face_labels, clips, count, options, seed):
        return make_sequences(faces, face_labels, [c for c, keep in zip(voices.clips, clips) if keep],
                              voices.labels[clips], count, options, seed)

    x, y = pairs(train_face[fit_faces], faces_train.y[fit_faces], fit_clips, recipe.train_sequences, recipe.pairing,
                 recipe.seed)
    x_val, y_val = pairs(train_face[val_faces], faces_train.y[val_faces], val_clips, recipe.eval_sequences // 2,
                         recipe.pairing, recipe.seed + 2)
    # Held-out and selection pairs: both modalities, no noise, every class alike.
    both = PairingOptions(**{**asdict(recipe.pairing), "face_missing": 0.0, "voice_missing": 0.0, "gap_probability": 0.0,
                             "voice_jitter": 0.0, "neutral_share": None})
    x_eval, y_eval = make_sequences(eval_face, faces_eval.y, held_voices.clips, held_voices.labels,
                                    recipe.eval_sequences, both, recipe.seed + 1)
    # The same contest on validation pairs made like the held-out ones (both modalities, no noise):
    # the figures to choose between recipes on, so that the held-out pairs only ever report.
    selection = pairs(train_face[val_faces], faces_train.y[val_faces], val_clips, recipe.eval_sequences // 2, both,
                      recipe.seed + 3)
    data = {
        "faces": "FER2013 PublicTest, one half for training pairs and the other for held-out pairs "
                 "(images the face model never saw); no explicit licence",
        "voices": f"speakers the speech model never heard: {voices.description} (training"
                  + (f", with {recipe.recorded_copies} simulated recordings of each clip" if recipe.recorded_copies else "")
                  + f") / {held_voices.description} (held out, clean); all three corpora are non-commercial",
        "pairing": "sequences paired by label from the unimodal sets (no audio-visual corpus), with modality dropout; "
                   "faces and speakers disjoint between training and held-out pairs; a voice window below "
                   f"min_confidence {recipe.pairing.voice_min_confidence:g} is no voice, as on the device",
        "late_fusion_reliability": {"face": reliability.face, "voice": reliability.voice},
    }
    final, figures = _fit_and_report(run, recipe, (x, y), (x_val, y_val), (x_eval, y_eval), data, verbose, selection,
                                     reliability)
    return final, figures, (x_eval, y_eval)


def train_fusion_av(corpus: str | Path, face_model, speech_model, run_dir: str | Path,
                    recipe: FusionRecipe = FusionRecipe(), resume: bool = False, verbose: int = 1,
                    progress=None) -> tuple[Path, dict, tuple[np.ndarray, np.ndarray]]:
    """The same model and report on a real audio-visual corpus (CREMA-D or RAVDESS layout): real
    pairs from the device's own path, split by actor into training, validation and held out."""
    from affectlite_convert.data.av_corpus import corpus_sequences, scan_corpus, split_by_actor

    run = TrainingRun(run_dir, asdict(recipe) | {"corpus": str(corpus)}, resume, library="tf_keras",
                      defaults=asdict(FusionRecipe()))
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
                                     (sequences.x[held], sequences.y[held]), data, verbose,
                                     reliability=cards_reliability(face_model, speech_model))
    return final, figures, (sequences.x[held], sequences.y[held])


def _fit_and_report(run: TrainingRun, recipe: FusionRecipe, train, validation, held_out, data: dict,
                    verbose: int, selection=None, reliability: Reliability = Reliability()) -> tuple[Path, dict]:
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
    figures = fusion_report(predict, x_eval, y_eval, reliability)
    run.state["report"] = figures
    if selection is not None:
        run.state["validation_report"] = fusion_report(predict, *selection, reliability)
    run.save_state()
    return final, figures


def split_faces(faces, seed: int = 0):
    """Two disjoint halves of a face set (for the fusion's training and held-out pairs)."""
    order = np.random.default_rng(seed).permutation(len(faces))
    half = len(order) // 2
    return faces.subset(np.sort(order[:half])), faces.subset(np.sort(order[half:]))
