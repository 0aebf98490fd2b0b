"""Training the facial-expression CNN on FER2013, in a :class:`TrainingRun` (checkpoints every
epoch, ``--resume``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from affectlite.labels import EMOTIONS
from affectlite_convert.data.faces import FaceSet, clean_training_set, load_face_npz
from affectlite_convert.training.augment import AugmentSpec, augment_batch
from affectlite_convert.training.face_cnn import FaceCnnSpec, build_face_cnn
from affectlite_convert.training.run import TrainingRun


@dataclass(frozen=True)
class FaceRecipe:
    """Everything that decides the result of a run; written into ``state.json`` and the card."""

    epochs: int = 60
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: int = 3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    #: Per-class loss weights are (N / (K * n_c)) ** power: 0.5 lifts the rare ``disgust`` class
    #: (436 of 28,709 images) without letting it dominate the loss.
    class_weight_power: float = 0.5
    #: Exponential moving average of the weights (0: off); the averaged weights are the result.
    ema_momentum: float = 0.0
    #: Knowledge distillation: trained models whose averaged probabilities (each also on the
    #: mirrored image) are mixed into the targets with ``distill_weight``. An ensemble teaches a
    #: single network of the same size what one run alone does not find.
    teachers: tuple[str, ...] = ()
    distill_weight: float = 0.0
    seed: int = 1234
    model: FaceCnnSpec = field(default_factory=FaceCnnSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)


def class_weights(counts: np.ndarray, power: float) -> np.ndarray:
    """Weights whose mean over the training samples is 1, so the learning rate keeps its meaning."""
    counts = np.maximum(counts.astype(np.float64), 1.0)
    weights = (counts.sum() / (len(counts) * counts)) ** power
    return weights / (weights * counts).sum() * counts.sum()


def _as_float_images(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


def teacher_probabilities(teachers: tuple[str, ...], x: np.ndarray) -> np.ndarray:
    """Mean probabilities of the teacher models over the images and their mirror images."""
    import keras

    total = np.zeros((len(x), len(EMOTIONS)), np.float32)
    for path in teachers:
        model = keras.models.load_model(path, compile=False)
        for images in (x, x[:, :, ::-1]):
            total += model.predict(images, batch_size=512, verbose=0)
    return total / (2 * len(teachers))


def _datasets(train: FaceSet, val: FaceSet, recipe: FaceRecipe):
    import tensorflow as tf

    weights = class_weights(train.class_counts(), recipe.class_weight_power).astype(np.float32)
    num_classes = len(EMOTIONS)
    x_train = _as_float_images(train.x)
    hard = np.eye(num_classes, dtype=np.float32)[train.y]
    if recipe.teachers and recipe.distill_weight > 0:
        soft = teacher_probabilities(recipe.teachers, x_train)
        targets = (1 - recipe.distill_weight) * hard + recipe.distill_weight * soft
    else:
        targets = hard

    def train_batch(images, target, labels):
        images = augment_batch(images, recipe.augment)
        return images, target, tf.gather(weights, labels)

    train_ds = (
        tf.data.Dataset.from_tensor_slices((x_train, targets, train.y))
        .shuffle(len(train), seed=recipe.seed, reshuffle_each_iteration=True)
        .batch(recipe.batch_size, drop_remainder=True)
        .map(train_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(2)
    )
    val_ds = (
        tf.data.Dataset.from_tensor_slices((_as_float_images(val.x), tf.one_hot(val.y, num_classes)))
        .batch(256)
        .prefetch(2)
    )
    return train_ds, val_ds, weights


def _schedule(recipe: FaceRecipe, steps_per_epoch: int):
    import keras

    total = recipe.epochs * steps_per_epoch
    warmup = recipe.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.learning_rate / 20,
        decay_steps=max(total - warmup, 1),
        alpha=0.0,
        warmup_target=recipe.learning_rate,
        warmup_steps=warmup,
    )


def train_face(
    train_path: str | Path,
    val_path: str | Path,
    run_dir: str | Path,
    recipe: FaceRecipe = FaceRecipe(),
    resume: bool = False,
    verbose: int = 1,
) -> Path:
    """Train (or resume) a run; returns the path of ``final.keras``."""
    import keras

    run = TrainingRun(run_dir, asdict(recipe), resume)
    val = load_face_npz(val_path)
    train, cleaning = clean_training_set(load_face_npz(train_path), held_out=val)
    if len(train) < recipe.batch_size:
        raise ValueError(
            f"{train_path}: {len(train)} training images left after cleaning {cleaning} - fewer than one batch "
            f"of {recipe.batch_size}; is the validation file the training file?"
        )
    train_ds, val_ds, weights = _datasets(train, val, recipe)
    steps_per_epoch = len(train) // recipe.batch_size

    def build():
        keras.utils.set_random_seed(recipe.seed)
        model = build_face_cnn(recipe.model)
        model.compile(
            optimizer=keras.optimizers.AdamW(_schedule(recipe, steps_per_epoch), weight_decay=recipe.weight_decay,
                                             use_ema=recipe.ema_momentum > 0,
                                             ema_momentum=recipe.ema_momentum or 0.99),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
            metrics=["accuracy"],
        )
        return model

    model = run.model(build)
    run.state["data"] = FER2013_INFO | {"train": str(train_path), "validation": str(val_path), "cleaning": cleaning,
                         "class_weights": dict(zip(EMOTIONS, map(float, weights)))}
    return run.fit(model, train_ds, val_ds, recipe.epochs, verbose)


FER2013_INFO = {
    "name": "FER2013 (ICML 2013 representation-learning challenge, Goodfellow et al.)",
    "licence": "no explicit licence (web-scraped images); models trained on it are widely published",
    "train_split": "Training (28,709 images) minus near-blank images, conflicting duplicates and images also in PublicTest",
    "validation_split": "PublicTest (3,589 images); the final epoch is shipped, no checkpoint was picked on it",
}


def export_for_deployment(trained: str | Path, out: str | Path, size: int = 48) -> Path:
    """Rebuild the trained network with a fixed (size, size, 1) input and copy the weights, so
    that the saved ``.keras`` converts to static batch-1 shapes without extra options."""
    import keras

    trained_model = keras.models.load_model(trained, compile=False)
    model = keras.models.clone_model(
        trained_model, input_tensors=keras.Input((size, size, 1), name="face")
    )
    model.set_weights(trained_model.get_weights())
    out = Path(out)
    tmp = out.with_name(out.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(out)
    return out
