"""Training the facial-expression CNN on FER2013, in a :class:`TrainingRun` (checkpoints every
epoch, ``--resume``).

Two kinds of targets: FER2013's single labels, or the FER+ raters' vote distributions
(``labels="ferplus"``), optionally mixed with the single label. The votes teach what people
agree a face shows; they hold few disgusted or fearful faces, so a share of the original label
and square-root class weights keep those expressions recalled. With the votes, a part of the
training images is held out to fit a temperature that makes the probabilities match how often
raters agree; it is folded into the last layer of the deployed model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from affectlite.labels import EMOTIONS
from affectlite_convert.calibration import fit_temperature, fold_temperature, shift_logits, tempered
from affectlite_convert.data.faces import FaceSet, clean_training_set, holdout_part, load_face_npz
from affectlite_convert.data.ferplus import FERPLUS_INFO, votes_for
from affectlite_convert.training.augment import AugmentSpec, augment_batch, disguise_source, oval_mask
from affectlite_convert.training.distill import teacher_probabilities
from affectlite_convert.training.domain_adversarial import DOMAIN_OUTPUT
from affectlite_convert.training.face_cnn import FaceCnnSpec, build_face_cnn
from affectlite_convert.training.run import TrainingRun
from affectlite_convert.training.widen import start_from


@dataclass(frozen=True)
class FaceRecipe:
    """Everything that decides the result of a run; written into ``state.json`` and the card."""

    epochs: int = 60
    #: "fer2013": the single labels; "ferplus": the raters' vote distributions.
    labels: str = "fer2013"
    #: With ``labels="ferplus"``: share of the FER2013 single label mixed into each target.
    label_mix: float = 0.0
    #: With ``labels="ferplus"``: training images kept out of training to fit the temperature.
    temperature_holdout: int = 0
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
    #: With ``new_set``: teachers see every face through the new set's oval mask, for a teacher
    #: trained on that set alone, which has never seen an unmasked face.
    teacher_mask: bool = False
    #: With ``new_set``: weight of a head that tells the two sets apart from the embedding, its
    #: gradient reversed into the CNN (:mod:`domain_adversarial`); 0: no head.
    domain_adversarial: float = 0.0
    #: A trained face model (same architecture) to start from instead of random weights: a second,
    #: shorter cycle at a lower learning rate, e.g. to move a model towards other targets.
    init: str = ""
    #: A second training set with single labels and none of FER2013's images (e.g.
    #: ``affectnet7_train.npz``): its ``train`` part (:func:`holdout_part`) is trained on beside
    #: FER2013, its ``choose`` part joins the held-out FER2013 images as what settings are picked on,
    #: its ``report`` part is never seen. Needs ``labels="ferplus"`` and a temperature holdout.
    new_set: str = ""
    #: Share of the one-hot target of a new-set face spread evenly over the labels: its labels are
    #: single annotations (AffectNet's agree between annotators about 60-65 % of the time).
    new_set_smoothing: float = 0.1
    #: With ``new_set``: FER2013 faces given the new set's oval mask, and new-set faces blurred to
    #: FER2013's resolution, each with this probability (:func:`disguise_source`).
    mask_probability: float = 0.0
    blur_probability: float = 0.0
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


def face_targets(faces: FaceSet, recipe: FaceRecipe) -> tuple[np.ndarray, np.ndarray]:
    """Target distributions (N, 7) and the label each row is weighted as (N,): the single label,
    or with ``ferplus`` the vote distribution mixed with ``label_mix`` of the single label and
    weighted as the majority. FER+ rows must be usable (see :mod:`affectlite_convert.data.ferplus`)."""
    hard = np.eye(len(EMOTIONS), dtype=np.float32)[faces.y]
    if recipe.labels == "fer2013" or faces.votes is None:
        smoothing = recipe.new_set_smoothing if recipe.labels == "ferplus" else 0.0
        return (1.0 - smoothing) * hard + smoothing / len(EMOTIONS), faces.y
    majority = faces.votes.majority()
    if (majority < 0).any():
        raise ValueError("face_targets: drop the rows without usable votes first")
    mixed = (1.0 - recipe.label_mix) * faces.votes.distribution() + recipe.label_mix * hard
    return mixed.astype(np.float32), majority


def _with_votes(faces: FaceSet, path: str | Path, votes_path: str | Path | None) -> FaceSet:
    """The faces with their votes, less the rows without usable votes."""
    if votes_path is None:
        raise ValueError("labels='ferplus' needs the votes file (ferplus_votes.npz)")
    faces = FaceSet(faces.x, faces.y, faces.source, votes_for(path, votes_path, len(faces)))
    return faces.subset(faces.votes.usable)


def split_holdout(faces: FaceSet, size: int, seed: int) -> tuple[FaceSet, FaceSet]:
    """(training, held-out) with ``size`` random images held out; the same split for the same seed."""
    order = np.random.default_rng(seed).permutation(len(faces))
    held = np.zeros(len(faces), bool)
    held[order[:size]] = True
    return faces.subset(~held), faces.subset(held)


def _sample_weights(faces: FaceSet, recipe: FaceRecipe) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loss weights that balance the classes *within* this source, and the per-class
    weights behind them. Balancing each source on its own (rather than the union) is what keeps
    the source from predicting the label: with FER+'s few disgusted faces, a model trained on the
    union learns "disgust" as "a face from the other set" and never says it of a FER2013 face."""
    _, labels = face_targets(faces, recipe)
    weights = class_weights(np.bincount(labels, minlength=len(EMOTIONS)), recipe.class_weight_power)
    return weights[labels].astype(np.float32), weights


def _datasets(sources: list[FaceSet], val: list[FaceSet], recipe: FaceRecipe, mask: np.ndarray | None):
    import tensorflow as tf

    x_train = np.concatenate([_as_float_images(s.x) for s in sources])
    targets = np.concatenate([face_targets(s, recipe)[0] for s in sources])
    sample_weights = np.concatenate([_sample_weights(s, recipe)[0] for s in sources])
    source_ids = np.concatenate([np.full(len(s), i, np.int32) for i, s in enumerate(sources)])
    if recipe.teachers and recipe.distill_weight > 0:
        shown = x_train * mask[None, :, :, None] if recipe.teacher_mask else x_train
        soft = teacher_probabilities(recipe.teachers, [shown, shown[:, :, ::-1]])
        targets = (1 - recipe.distill_weight) * targets + recipe.distill_weight * soft
    mask_tensor = None if mask is None else tf.constant(mask)
    adversarial = recipe.domain_adversarial > 0
    # the source head's loss counts each set equally, however many faces each holds
    source_weights = (len(source_ids) / (len(sources) * np.bincount(source_ids)))[source_ids].astype(np.float32)

    def train_batch(images, target, weight, source, source_weight):
        if mask_tensor is not None:
            images = disguise_source(images, source, mask_tensor, recipe.mask_probability, recipe.blur_probability)
        images = augment_batch(images, recipe.augment)
        if adversarial:
            source_target = tf.cast(source, tf.float32)[:, None]
            return images, {"probabilities": target, DOMAIN_OUTPUT: source_target}, \
                {"probabilities": weight, DOMAIN_OUTPUT: source_weight}
        return images, target, weight

    train_ds = (
        tf.data.Dataset.from_tensor_slices((x_train, targets, sample_weights, source_ids, source_weights))
        .shuffle(len(x_train), seed=recipe.seed, reshuffle_each_iteration=True)
        .batch(recipe.batch_size, drop_remainder=True)
        .map(train_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(2)
    )
    val_targets = np.concatenate([face_targets(v, recipe)[0] for v in val])
    if adversarial:
        val_sources = np.concatenate([np.full((len(v), 1), i, np.float32) for i, v in enumerate(val)])
        val_targets = {"probabilities": val_targets, DOMAIN_OUTPUT: val_sources}
    val_ds = (
        tf.data.Dataset.from_tensor_slices((np.concatenate([_as_float_images(v.x) for v in val]), val_targets))
        .batch(256)
        .prefetch(2)
    )
    return train_ds, val_ds


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
    votes_path: str | Path | None = None,
) -> Path:
    """Train (or resume) a run; returns the path of ``final.keras``. With ``labels="ferplus"``
    the run's state also gets the ``temperature`` fitted on the held-out images against the
    raters' majority (see :func:`export_for_deployment`)."""
    import keras

    from affectlite_convert.training import domain_adversarial  # registers its layer for --resume

    if recipe.labels not in ("fer2013", "ferplus"):
        raise ValueError(f"labels must be 'fer2013' or 'ferplus', got {recipe.labels!r}")
    if not 0.0 <= recipe.label_mix <= 1.0:
        raise ValueError(f"label_mix must be in [0, 1], got {recipe.label_mix}")
    if recipe.new_set and (recipe.labels != "ferplus" or not recipe.temperature_holdout):
        raise ValueError("a new set (--new-set) trains beside the FER+ votes and is checked on the held-out "
                         "training images: use --labels ferplus with --temperature-holdout N > 0")
    if recipe.teacher_mask and not (recipe.new_set and recipe.teachers):
        raise ValueError("teacher_mask shows the teachers faces through the new set's oval mask: it needs a new set "
                         "(--new-set) and a teacher (--teacher)")
    if recipe.domain_adversarial and not recipe.new_set:
        raise ValueError("domain_adversarial hides which set a face came from: it needs a new set (--new-set)")
    if recipe.domain_adversarial < 0:
        raise ValueError(f"domain_adversarial must be 0 or more, got {recipe.domain_adversarial}")
    for name in ("new_set_smoothing", "mask_probability", "blur_probability"):
        if not 0.0 <= getattr(recipe, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(recipe, name)}")
    run = TrainingRun(run_dir, asdict(recipe), resume, defaults=asdict(FaceRecipe()))
    val, train = load_face_npz(val_path), load_face_npz(train_path)
    without_votes = 0
    if recipe.labels == "ferplus":
        rows = len(train)
        val, train = _with_votes(val, val_path, votes_path), _with_votes(train, train_path, votes_path)
        without_votes = rows - len(train)
    train, cleaning = clean_training_set(train, held_out=val)
    holdout = None
    if recipe.labels == "ferplus":
        cleaning["without_usable_votes"] = without_votes
        if recipe.temperature_holdout:
            train, holdout = split_holdout(train, recipe.temperature_holdout, recipe.seed)
            cleaning["temperature_holdout"] = len(holdout)
        cleaning["kept"] = len(train)
    if len(train) < recipe.batch_size:
        raise ValueError(
            f"{train_path}: {len(train)} training images left after cleaning {cleaning} - fewer than one batch "
            f"of {recipe.batch_size}; is the validation file the training file?"
        )
    sources, choose, mask = [train], [val], None
    if recipe.new_set:
        new_set = load_face_npz(recipe.new_set)
        new_train, new_choose = holdout_part(new_set, "train"), holdout_part(new_set, "choose")
        sources, choose = [train, new_train], [holdout, new_choose]
        mask = oval_mask(new_train.x)
    train_ds, val_ds = _datasets(sources, choose, recipe, mask)
    steps_per_epoch = sum(map(len, sources)) // recipe.batch_size

    def build():
        keras.utils.set_random_seed(recipe.seed)
        model = build_face_cnn(recipe.model)
        if recipe.init:
            start_from(recipe.init, model)
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
        metrics: list | dict = ["accuracy"]
        if recipe.domain_adversarial:
            model = domain_adversarial.with_domain_head(model)
            loss = {"probabilities": loss, DOMAIN_OUTPUT: keras.losses.BinaryCrossentropy(from_logits=True)}
            metrics = {"probabilities": ["accuracy"], DOMAIN_OUTPUT: [keras.metrics.BinaryAccuracy(threshold=0.0)]}
        model.compile(
            optimizer=keras.optimizers.AdamW(_schedule(recipe, steps_per_epoch), weight_decay=recipe.weight_decay,
                                             use_ema=recipe.ema_momentum > 0,
                                             ema_momentum=recipe.ema_momentum or 0.99),
            loss=loss,
            loss_weights={"probabilities": 1.0, DOMAIN_OUTPUT: recipe.domain_adversarial}
            if recipe.domain_adversarial else None,
            metrics=metrics,
        )
        return model

    model = run.model(build)
    weights = _sample_weights(train, recipe)[1]
    run.state["data"] = FER2013_INFO | {"train": str(train_path), "validation": str(val_path), "cleaning": cleaning,
                         "class_weights": dict(zip(EMOTIONS, map(float, weights)))}
    if recipe.labels == "ferplus":
        run.state["data"]["labels"] = FERPLUS_INFO | {
            "votes": str(votes_path),
            "targets": f"vote distribution over the seven labels x {1 - recipe.label_mix:g} + FER2013 label x "
                       f"{recipe.label_mix:g}; contempt, unknown and NF votes dropped; images whose majority is "
                       "contempt, unknown or NF (or without votes) left out"}
    if recipe.new_set:
        run.state["data"]["validation_split"] = (
            "none seen in training: the final epoch is shipped; the prior adjustment and temperature are chosen on "
            "the held-out FER2013 training images and the new set's 'choose' part")
        run.state["data"]["new_set"] = NEW_SET_INFO | {
            "file": str(recipe.new_set), "train": len(new_train), "choose": len(new_choose),
            "report": "the 10 % 'report' part (affectlite_convert.data.faces.holdout_part), never used in training "
                      "or for choosing",
            "targets": f"its single label x {1 - recipe.new_set_smoothing:g} + {recipe.new_set_smoothing:g} spread "
                       "evenly over the seven labels",
            "class_weights": dict(zip(EMOTIONS, map(float, _sample_weights(new_train, recipe)[1]))),
            "source_disguise": f"FER2013 faces given the new set's oval mask with probability {recipe.mask_probability:g}, "
                               f"new-set faces blurred to a 20-36 px side and back with probability "
                               f"{recipe.blur_probability:g}"}
    final = domain_adversarial.save_face_part(run.fit(model, train_ds, val_ds, recipe.epochs, verbose))
    if holdout is not None:  # again on a resumed run: its state's data were just rebuilt
        trained = keras.models.load_model(final, compile=False)
        predict = lambda faces: trained.predict(_as_float_images(faces.x), batch_size=512, verbose=0)  # noqa: E731
        probs = predict(holdout)
        if recipe.new_set:
            prior = np.bincount(train.votes.majority(), minlength=len(EMOTIONS)) / len(train)
            choice = choose_prior_adjustment(probs, holdout.votes.majority(), predict(new_choose), new_choose.y, prior)
            run.state["prior_shift"] = choice["shift"]
            run.state["data"]["prior_adjustment"] = {k: v for k, v in choice.items() if k != "shift"}
            probs = tempered(np.log(np.clip(probs, 1e-12, 1.0)) + np.array(choice["shift"]), 1.0)
        run.state["temperature"] = fit_temperature(probs, np.eye(len(EMOTIONS))[holdout.votes.majority()])
        run.state["data"]["temperature_fitted_on"] = (
            f"{len(holdout)} training images held out of training (seed {recipe.seed}), against the raters' majority "
            "(so that a top-class probability of 0.7 means the raters' majority agrees about 70 % of the time)")
        run.save_state()
    return final


def choose_prior_adjustment(fer_probs: np.ndarray, fer_majority: np.ndarray, new_probs: np.ndarray,
                            new_labels: np.ndarray, prior: np.ndarray) -> dict:
    """The logit adjustment ``alpha * log(prior)`` (Menon et al. 2021) that the deployed model adds.

    Trained with each source's classes balanced, the network answers as if every expression were
    equally common; ``alpha`` puts back a share of FER2013's prior (1: all of it; below 0 the rare
    classes are favoured further), trading the rare classes' recall against accuracy on ordinary
    faces. It is chosen on held-out images only (the
    FER2013 training images kept out and the new set's ``choose`` part), by the sum of FER+-majority
    accuracy, FER+-majority macro recall and the new set's macro recall."""
    from affectlite_convert.evaluate import metrics

    log_prior = np.log(np.clip(prior, 1e-6, 1.0))
    fer_log, new_log = (np.log(np.clip(p, 1e-12, 1.0)) for p in (fer_probs, new_probs))
    table = []
    for alpha in np.round(np.arange(-0.5, 1.01, 0.1), 2):
        fer = metrics(fer_majority, (fer_log + alpha * log_prior).argmax(axis=1), "fer")
        new = metrics(new_labels, (new_log + alpha * log_prior).argmax(axis=1), "new")
        table.append({"alpha": float(alpha), "fer_accuracy": round(fer.accuracy, 4),
                      "fer_macro_recall": round(fer.macro_recall, 4), "new_set_macro_recall": round(new.macro_recall, 4),
                      "score": round(fer.accuracy + fer.macro_recall + new.macro_recall, 4)})
    best = max(table, key=lambda row: (row["score"], -row["alpha"]))
    return {"alpha": best["alpha"], "prior": dict(zip(EMOTIONS, np.round(prior, 4).tolist())),
            "chosen_by": "the sum of FER+-majority accuracy and macro recall on the held-out FER2013 training images "
                         "and macro recall on the new set's 'choose' part",
            "table": table, "shift": (best["alpha"] * log_prior).tolist()}


NEW_SET_INFO = {
    "name": "AffectNet-style 7-class faces (public snapshot quanbk2512/effectnet@b01f889, its train/ split), "
            "aligned and masked to an oval upstream; not derived from FER2013",
    "licence": "AffectNet's terms: academic research, non-commercial, no redistribution of the images",
}

FER2013_INFO = {
    "name": "FER2013 (ICML 2013 representation-learning challenge, Goodfellow et al.)",
    "licence": "no explicit licence (web-scraped images); models trained on it are widely published",
    "train_split": "Training (28,709 images) minus near-blank images, conflicting duplicates and images also in PublicTest",
    "validation_split": "PublicTest (3,589 images); the final epoch is shipped, no checkpoint was picked on it",
}


def export_for_deployment(trained: str | Path, out: str | Path, size: int = 48, temperature: float = 1.0,
                          prior_shift: list[float] | None = None) -> Path:
    """Rebuild the trained network with a fixed (size, size, 1) input and copy the weights, so
    that the saved ``.keras`` converts to static batch-1 shapes without extra options. A
    ``temperature`` other than 1 is folded into the softmax layer (its kernel and bias divided by
    it): the deployed model gives the calibrated probabilities itself, on every runtime. A
    ``prior_shift`` (per-class logit offsets, :func:`choose_prior_adjustment`) is added to the
    bias first."""
    import keras

    trained_model = keras.models.load_model(trained, compile=False)
    model = keras.models.clone_model(
        trained_model, input_tensors=keras.Input((size, size, 1), name="face")
    )
    model.set_weights(trained_model.get_weights())
    if prior_shift is not None:
        shift_logits(model, np.asarray(prior_shift, np.float32))
    fold_temperature(model, temperature)
    out = Path(out)
    tmp = out.with_name(out.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(out)
    return out
