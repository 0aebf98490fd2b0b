"""Training the speech-emotion CNN on RAVDESS, validated on actors kept out of training."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from affectlite.labels import EMOTIONS
from affectlite_convert.data.speech import RAVDESS_INFO, SpeechSet, load_speech
from affectlite_convert.training.run import TrainingRun
from affectlite_convert.training.speech_cnn import SpeechCnnSpec, build_speech_cnn
from affectlite_convert.training.train_face import class_weights


@dataclass(frozen=True)
class SpeechRecipe:
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    #: Actors 17-20 (two male, two female) are held out; RAVDESS actors 21-24 are held back
    #: by the project as an independent test set and are not here at all.
    train_actors: tuple[int, ...] = tuple(range(1, 17))
    val_actors: tuple[int, ...] = (17, 18, 19, 20)
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bands: int = 8
    seed: int = 7
    model: SpeechCnnSpec = field(default_factory=SpeechCnnSpec)


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


def _datasets(train: SpeechSet, val: SpeechSet, recipe: SpeechRecipe):
    import tensorflow as tf

    weights = class_weights(np.bincount(train.labels, minlength=len(EMOTIONS)), 0.5).astype(np.float32)
    k = len(EMOTIONS)
    train_ds = (tf.data.Dataset.from_tensor_slices((train.windows, train.labels))
                .shuffle(len(train.labels), seed=recipe.seed, reshuffle_each_iteration=True)
                .batch(recipe.batch_size)
                .map(lambda x, y: (_spec_augment(x, recipe)[..., None], tf.one_hot(y, k), tf.gather(weights, y)))
                .prefetch(2))
    val_ds = (tf.data.Dataset.from_tensor_slices((val.windows[..., None], tf.one_hot(val.labels, k)))
              .batch(256))
    return train_ds, val_ds, weights


def train_speech(root: str | Path, run_dir: str | Path, recipe: SpeechRecipe = SpeechRecipe(),
                 resume: bool = False, verbose: int = 1) -> Path:
    import keras

    overlap = set(recipe.train_actors) & set(recipe.val_actors)
    if overlap:
        raise ValueError(f"actors {sorted(overlap)} are in both training and validation; split by actor")
    run = TrainingRun(run_dir, asdict(recipe), resume)
    train = load_speech(root, list(recipe.train_actors))
    val = load_speech(root, list(recipe.val_actors))
    train_ds, val_ds, weights = _datasets(train, val, recipe)
    steps = -(-len(train.labels) // recipe.batch_size)

    def build():
        keras.utils.set_random_seed(recipe.seed)
        model = build_speech_cnn(recipe.model, train.windows.shape[1], train.windows.shape[2])
        schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate / 20, recipe.epochs * steps,
                                                          warmup_target=recipe.learning_rate, warmup_steps=2 * steps)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                      metrics=["accuracy"])
        return model

    model = run.model(build)
    run.state["data"] = RAVDESS_INFO | {
        "root": str(root), "train_actors": list(recipe.train_actors), "validation_actors": list(recipe.val_actors),
        "train_windows": int(len(train.labels)), "train_clips": int(len(train.clip_labels)),
        "validation_clips": int(len(val.clip_labels)),
        "class_weights": dict(zip(EMOTIONS, map(float, weights))),
    }
    return run.fit(model, train_ds, val_ds, recipe.epochs, verbose)


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
