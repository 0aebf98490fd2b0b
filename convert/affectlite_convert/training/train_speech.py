"""Training the speech-emotion CNN on one or several corpora, validated on speakers kept out of
training.

A voice model that has only heard one studio hears a lobby as another language. So training can
mix corpora (each through its manifest loader, a corpus with only some labels scored over those
only: :mod:`affectlite_convert.training.label_mask`), add copies of every clip under simulated
recording conditions (:mod:`affectlite_convert.training.recording`), and draw its batches
balanced by corpus and, within a corpus, by label, so that the largest corpus does not decide
what "angry" sounds like. Validation is speaker-independent in every corpus; leave-one-corpus-out
runs simply leave the corpus out of ``corpora``. With validation speakers, a temperature is
fitted on them and folded into the model, so that an "unsure" threshold on the device means the
same thing for every model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from affectlite.audio.voice import WindowSpec
from affectlite.labels import EMOTIONS
from affectlite_convert.data.speech import CORPORA, SpeechSet, load_corpus, simulated_corpus
from affectlite_convert.training.distill import teacher_probabilities
from affectlite_convert.training.recording import RecordingConditions
from affectlite_convert.training.run import TrainingRun, weights_like
from affectlite_convert.training.speech_cnn import SpeechCnnSpec, build_speech_cnn
from affectlite_convert.training.train_face import class_weights


@dataclass(frozen=True)
class SpeechRecipe:
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    #: Corpora to train on (folders of that name under the data folder).
    corpora: tuple[str, ...] = ("ravdess",)
    #: RAVDESS actors 17-20 (two male, two female) are held out; RAVDESS actors 21-24 are held
    #: back by the project as an independent test set and are not here at all.
    train_actors: tuple[int, ...] = tuple(range(1, 17))
    val_actors: tuple[int, ...] = (17, 18, 19, 20)
    #: Validation speakers of the other corpora, as "corpus:speaker"; the rest of each corpus trains.
    val_speakers: tuple[str, ...] = ()
    #: Copies of every training clip under random recording conditions, beside the clean clip.
    recorded_copies: int = 0
    #: Share of those copies cut to one short stretch of voice, 0.5-1.5 s, silence around it: the
    #: lone words a device hears, which no acted corpus of sentences has
    #: (:func:`affectlite_convert.training.recording.excerpt`).
    short_utterances: float = 0.0
    #: Windows drawn per epoch, balanced by corpus and label; 0: every training window once,
    #: with square-root class weights (the single-corpus recipe).
    windows_per_epoch: int = 0
    #: Relative share of each corpus in those draws, as "corpus=weight" (a corpus not named: 1):
    #: e.g. ("ravdess=2",) gives RAVDESS half the draws of three corpora, so that the home corpus,
    #: which has the most speakers, is not learned less than when trained alone.
    corpus_weights: tuple[str, ...] = ()
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bands: int = 8
    #: The training seed (batch draws, masks, dropout, new weights).
    seed: int = 7
    #: The simulated recordings' seed, apart from the training seed: runs that differ only in
    #: ``seed`` share one cache and one split, so their weights can be averaged (a soup).
    recording_seed: int = 7
    #: Clamp each window at this many dB below its loudest value (None: not clamped; the
    #: bundled v1 and v2 were trained without): :class:`affectlite.audio.voice.WindowSpec`.
    dynamic_range_db: float | None = None
    model: SpeechCnnSpec = field(default_factory=SpeechCnnSpec)
    #: A trained speech model (same architecture) to start from instead of random weights: e.g.
    #: the RAVDESS model taught the other corpora and recording conditions, at a lower rate.
    init: str = ""
    #: Knowledge distillation (:mod:`affectlite_convert.training.distill`): trained speech models
    #: (same windows, any widths) whose mean probabilities on each training window make up
    #: ``distill_weight`` of its target, over the labels its corpus has: an ensemble's average
    #: taught to one network, which keeps the device's cost of one.
    teachers: tuple[str, ...] = ()
    distill_weight: float = 0.0


#: The multi-corpus recipe the bundled model is trained with (``train speech --recipe multi``).
MULTI_CORPUS = SpeechRecipe(
    epochs=30, corpora=("ravdess", "emovo", "turev-db"), val_speakers=("emovo:f3", "emovo:m3", "turev-db:1984",
                                                                      "turev-db:6783"),
    recorded_copies=2, windows_per_epoch=6400)


def corpus_root(data: str | Path, name: str, single: bool) -> Path:
    """``data`` is the folder of corpora (../shared/data/speech) or, for a one-corpus recipe, that
    corpus's own folder (whatever its name)."""
    data = Path(data)
    if (data / "manifest.csv").exists():
        if not single:
            raise ValueError(f"{data} is one corpus; for several, --data is the folder holding them")
        return data
    root = data / name
    if not (root / "manifest.csv").exists():
        raise ValueError(f"{root}: no {name} corpus (manifest.csv) here; --data is the folder holding "
                         f"{', '.join(sorted(CORPORA))}")
    return root


def split_speakers(recipe: SpeechRecipe, corpus: str, speakers: list) -> tuple[list, list]:
    """(training, validation) speakers of one corpus."""
    if corpus == "ravdess":
        return ([s for s in speakers if s in recipe.train_actors], [s for s in speakers if s in recipe.val_actors])
    held = {v.split(":", 1)[1] for v in recipe.val_speakers if v.split(":", 1)[0] == corpus}
    unknown = held - {str(s) for s in speakers}
    if unknown:
        raise ValueError(f"validation speakers {sorted(unknown)} are not in {corpus} (it has {speakers})")
    return [s for s in speakers if str(s) not in held], [s for s in speakers if str(s) in held]


def _spec_augment(windows, recipe: SpeechRecipe):
    """SpecAugment-style masks: blank random stretches of time and bands of frequency."""
    import tensorflow as tf

    batch, frames, bands = tf.shape(windows)[0], tf.shape(windows)[1], tf.shape(windows)[2]
    mask = tf.ones_like(windows)
    for size, count, axis_len, axis in ((recipe.time_mask_frames, recipe.time_masks, frames, 1),
                                        (recipe.freq_mask_bands, recipe.freq_masks, bands, 2)):
        for _ in range(count):
            width = tf.random.uniform([batch, 1, 1], 0, size + 1, dtype=tf.int32)
            start = tf.cast(tf.random.uniform([batch, 1, 1]) * tf.cast(axis_len - width, tf.float32), tf.int32)
            positions = tf.range(axis_len)
            positions = positions[None, :, None] if axis == 1 else positions[None, None, :]
            inside = (positions >= start) & (positions < start + width)
            mask *= 1.0 - tf.cast(inside, windows.dtype)
    return windows * mask


@dataclass
class Pool:
    """Training or validation windows of several corpora, with each window's corpus and label mask."""

    windows: np.ndarray
    labels: np.ndarray
    corpus: np.ndarray          # (N,) index into ``names``
    names: list[str]
    soft: np.ndarray | None = None   # (N, K) teachers' probabilities, when distilling

    @classmethod
    def of(cls, sets: list[SpeechSet]) -> "Pool":
        names = sorted({s.corpus for s in sets})
        return cls(np.concatenate([s.windows for s in sets]), np.concatenate([s.labels for s in sets]),
                   np.concatenate([np.full(len(s.labels), names.index(s.corpus)) for s in sets]), names)

    @property
    def masks(self) -> np.ndarray:
        return np.stack([CORPORA[name].label_mask for name in self.names])[self.corpus]

    def groups(self, weights: dict[str, float] | None = None) -> tuple[list[np.ndarray], np.ndarray]:
        """Window indices per (corpus, label) and each group's share of a balanced draw: corpora
        by ``weights`` (equally when not given), and within a corpus its labels equally."""
        weights = weights or {}
        corpus_share = np.array([weights.get(name, 1.0) for name in self.names])
        corpus_share = corpus_share / corpus_share.sum()
        groups, shares = [], []
        for c in range(len(self.names)):
            labels = np.unique(self.labels[self.corpus == c])
            for label in labels:
                groups.append(np.flatnonzero((self.corpus == c) & (self.labels == label)))
                shares.append(corpus_share[c] / len(labels))
        return groups, np.array(shares)


def corpus_weights(pairs: tuple[str, ...]) -> dict[str, float]:
    """("ravdess=2", ...) as {"ravdess": 2.0}; refuses what is not a corpus name and a weight above 0."""
    weights = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            weight = float(value) if sep else float("nan")
        except ValueError:
            weight = float("nan")
        if not weight > 0 or name.strip() not in CORPORA:
            raise ValueError(f"corpus weight {pair!r}: expected CORPUS=WEIGHT with CORPUS one of "
                             f"{', '.join(sorted(CORPORA))} and WEIGHT above 0, e.g. ravdess=2")
        weights[name.strip()] = weight
    return weights


def balanced_batches(pool: Pool, batch_size: int, smoothing: float, seed: int,
                     weights: dict[str, float] | None = None, distill_weight: float = 0.0):
    """An endless generator of (windows, packed targets) batches drawn balanced by corpus (or by
    ``weights``) and label; ``distill_weight`` of each target from ``pool.soft``."""
    from affectlite_convert.training.label_mask import pack_targets

    groups, shares = pool.groups(weights)
    masks = pool.masks
    rng = np.random.default_rng(seed)
    while True:
        chosen = rng.choice(len(groups), size=batch_size, p=shares)
        index = np.array([groups[g][rng.integers(len(groups[g]))] for g in chosen])
        soft = None if pool.soft is None else pool.soft[index]
        yield (pool.windows[index].astype(np.float32)[..., None],
               pack_targets(pool.labels[index], masks[index], smoothing, soft, distill_weight))


def _datasets(train: Pool, val: Pool, recipe: SpeechRecipe, corpus_share: dict[str, float]):
    import tensorflow as tf

    from affectlite_convert.training.label_mask import pack_targets

    k = len(EMOTIONS)
    frames, bands = train.windows.shape[1:]
    if recipe.windows_per_epoch:
        weights = np.ones(k, np.float32)
        train_ds = (tf.data.Dataset.from_generator(
            lambda: balanced_batches(train, recipe.batch_size, recipe.label_smoothing, recipe.seed, corpus_share,
                                     recipe.distill_weight),
            output_signature=(tf.TensorSpec((recipe.batch_size, frames, bands, 1), tf.float32),
                              tf.TensorSpec((recipe.batch_size, 2 * k), tf.float32)))
            .map(lambda x, y: (_spec_augment(x[..., 0], recipe)[..., None], y))
            .prefetch(2))
        steps = recipe.windows_per_epoch // recipe.batch_size
    else:
        weights = class_weights(np.bincount(train.labels, minlength=k), 0.5).astype(np.float32)
        targets = pack_targets(train.labels, train.masks, recipe.label_smoothing, train.soft, recipe.distill_weight)
        train_ds = (tf.data.Dataset.from_tensor_slices((train.windows, targets, train.labels))
                    .shuffle(len(train.labels), seed=recipe.seed, reshuffle_each_iteration=True)
                    .batch(recipe.batch_size)
                    .map(lambda x, y, label: (_spec_augment(tf.cast(x, tf.float32), recipe)[..., None], y,
                                              tf.gather(weights, label)))
                    .prefetch(2))
        steps = -(-len(train.labels) // recipe.batch_size)
    val_ds = (tf.data.Dataset.from_tensor_slices((val.windows.astype(np.float32)[..., None],
                                                  pack_targets(val.labels, val.masks)))
              .batch(256))
    return train_ds, val_ds, weights, steps


def load_training_data(data: str | Path, recipe: SpeechRecipe, cache: str | Path | None = None,
                       progress: Callable = lambda rows: rows) -> tuple[list[SpeechSet], list[SpeechSet], dict]:
    """(training sets, validation sets, a description for the card) for every corpus of the recipe."""
    train_sets, val_sets, described = [], [], {}
    windows = WindowSpec(dynamic_range_db=recipe.dynamic_range_db)
    for name in recipe.corpora:
        root, corpus = corpus_root(data, name, len(recipe.corpora) == 1), CORPORA[name]
        clean = load_corpus(root, corpus=corpus, windows=windows)
        train_speakers, val_speakers = split_speakers(recipe, name, sorted(set(clean.clip_actors), key=str))
        train_set = clean.speakers(lambda s: s in train_speakers)
        parts = [train_set]
        if recipe.recorded_copies:
            recorded = simulated_corpus(root, recipe.recorded_copies, recipe.recording_seed, cache, progress, corpus,
                                        windows, RecordingConditions(excerpt_probability=recipe.short_utterances))
            parts.append(recorded.speakers(lambda s: s in train_speakers))
        train_sets += parts
        if val_speakers:
            val_sets.append(clean.speakers(lambda s: s in val_speakers))
        described[name] = CORPORA[name].info | {
            "root": str(root), "train_speakers": [str(s) for s in train_speakers],
            "validation_speakers": [str(s) for s in val_speakers],
            "train_clips": int(len(train_set.clip_labels)), "train_windows": int(sum(len(p.labels) for p in parts)),
            "labels": [e for e, m in zip(EMOTIONS, CORPORA[name].label_mask) if m],
        }
    if not val_sets:
        raise ValueError("no validation speakers: keep some speakers of a corpus out of training")
    return train_sets, val_sets, described


def train_speech(data: str | Path, run_dir: str | Path, recipe: SpeechRecipe = SpeechRecipe(),
                 resume: bool = False, verbose: int = 1, cache: str | Path | None = None,
                 progress: Callable = lambda rows: rows) -> Path:
    """Train (or resume) a run; returns ``final.keras``. The run's state gets the fitted
    ``temperature`` (fold it in with :func:`affectlite_convert.calibration.fold_temperature`)."""
    import keras

    from affectlite_convert.training.label_mask import masked_accuracy, masked_crossentropy

    overlap = set(recipe.train_actors) & set(recipe.val_actors)
    if overlap:
        raise ValueError(f"actors {sorted(overlap)} are in both training and validation; split by actor")
    unknown = set(recipe.corpora) - set(CORPORA)
    if unknown:
        raise ValueError(f"unknown corpora {sorted(unknown)}; known: {sorted(CORPORA)}")
    corpus_share = corpus_weights(recipe.corpus_weights)
    weighted = set(corpus_share) - set(recipe.corpora)
    if weighted:
        raise ValueError(f"corpus weights for {sorted(weighted)}, which this run does not train on "
                         f"({', '.join(recipe.corpora)})")
    run = TrainingRun(run_dir, asdict(recipe), resume, defaults=asdict(SpeechRecipe()))
    train_sets, val_sets, described = load_training_data(data, recipe, cache, progress)
    train, val = Pool.of(train_sets), Pool.of(val_sets)
    if recipe.teachers and recipe.distill_weight > 0:
        train.soft = teacher_probabilities(recipe.teachers, [train.windows.astype(np.float32)[..., None]])
    train_ds, val_ds, weights, steps = _datasets(train, val, recipe, corpus_share)

    def build():
        keras.utils.set_random_seed(recipe.seed)
        model = build_speech_cnn(recipe.model, train.windows.shape[1], train.windows.shape[2])
        if recipe.init:
            model.set_weights(weights_like(recipe.init, model))
        schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate / 20, recipe.epochs * steps,
                                                          warmup_target=recipe.learning_rate, warmup_steps=2 * steps)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay),
                      loss=masked_crossentropy, metrics=[masked_accuracy])
        return model

    model = run.model(build)
    shares = f" (weights {', '.join(recipe.corpus_weights)})" if recipe.corpus_weights else ""
    run.state["data"] = {
        "corpora": described,
        "sampling": (f"{recipe.windows_per_epoch} windows an epoch, balanced by corpus{shares} and, within a "
                     "corpus, by label" if recipe.windows_per_epoch
                     else "every training window once an epoch, square-root class weights"),
        "recorded_copies": recipe.recorded_copies,
        "short_utterances": recipe.short_utterances,
        "loss": "cross-entropy over the labels each corpus has (probabilities renormalised over them)",
        "class_weights": dict(zip(EMOTIONS, map(float, weights))),
        **({"distillation": f"{recipe.distill_weight:g} of each window's target from the mean probabilities of "
                            f"{', '.join(Path(t).parent.name + '/' + Path(t).name for t in recipe.teachers)} "
                            "on it (over its corpus's labels)"}
           if recipe.teachers and recipe.distill_weight > 0 else {}),
        "validation_clips": int(sum(len(v.clip_labels) for v in val_sets)),
    }
    final = run.fit(model, train_ds, val_ds, recipe.epochs, verbose, steps_per_epoch=steps)
    # fitted again on a resumed run too: its state's data were just rebuilt
    run.state["temperature"] = fit_speech_temperature(keras.models.load_model(final, compile=False), val)
    run.state["data"]["temperature_fitted_on"] = "the validation speakers' windows (clean recordings)"
    run.save_state()
    return final


def fit_speech_temperature(model, val: Pool) -> float:
    """The temperature that calibrates ``model`` on the validation windows, each scored over the
    labels its corpus has (as the loss is)."""
    from affectlite_convert.calibration import fit_temperature

    probs = model.predict(val.windows.astype(np.float32)[..., None], batch_size=256, verbose=0)
    masked = probs * val.masks
    return fit_temperature(masked / masked.sum(axis=1, keepdims=True), np.eye(len(EMOTIONS))[val.labels] * val.masks)


def fold_actors(actors: tuple[int, ...], folds: int) -> list[tuple[int, ...]]:
    """Actors dealt into ``folds`` groups (1, 5, 9, 13 / 2, 6, 10, 14 / ...): each group mixes
    speakers from across the corpus (RAVDESS alternates male and female actors)."""
    if not 2 <= folds <= len(actors):
        raise ValueError(f"--folds must be from 2 to {len(actors)}, got {folds}")
    return [tuple(actors[i::folds]) for i in range(folds)]


def train_speech_folds(root: str | Path, out: str | Path, recipe: SpeechRecipe = SpeechRecipe(), folds: int = 4,
                       resume: bool = False, verbose: int = 1) -> list[tuple[tuple[int, ...], Path]]:
    """One model per fold of the training actors, each validated on (and never trained on) its
    fold: their predictions on the fold are the out-of-fold outputs a fusion model must learn
    from. Each fold is its own resumable run in ``out/fold_N``."""
    results = []
    for index, held in enumerate(fold_actors(recipe.train_actors, folds)):
        fold = replace(recipe, train_actors=tuple(a for a in recipe.train_actors if a not in held), val_actors=held)
        run_dir = Path(out) / f"fold_{index + 1}"
        results.append((held, train_speech(root, run_dir, fold, resume=resume, verbose=verbose)))
    return results
