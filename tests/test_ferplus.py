"""FER+ crowd labels: loading the votes, the targets they give, training on them, and measuring
whether a model's probabilities are calibrated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectlite.labels import EMOTIONS
from affectlite_convert.calibration import cross_entropy, expected_calibration_error, fit_temperature, tempered
from affectlite_convert.data.faces import DataError, FaceSet, load_face_npz
from affectlite_convert.data.ferplus import VOTE_CLASSES, Votes, load_votes, votes_for
from affectlite_convert.training.face_cnn import FaceCnnSpec
from affectlite_convert.training.train_face import FaceRecipe, export_for_deployment, face_targets, train_face

# One row per case, in FER+ column order:
#   neutral happiness surprise sadness anger disgust fear contempt unknown NF
ROWS = np.array([
    [2, 0, 0, 1, 7, 0, 0, 0, 0, 0],          # angry by 7 of 10
    [-1] * 10,                               # no FER+ image matched: left out
    [1, 0, 0, 0, 0, 0, 0, 0, 6, 3],          # mostly unknown / not a face: left out
    [0, 0, 0, 0, 1, 2, 0, 7, 0, 0],          # contempt majority: left out
    [5, 3, 0, 0, 0, 0, 0, 2, 0, 0],          # neutral; the contempt votes are dropped
    [0, 0, 0, 0, 0, 4, 4, 0, 2, 0],          # tie disgust/fear: the first in FER+'s order wins
])


def test_votes_give_majority_labels_and_distributions():
    votes = Votes(ROWS)
    assert votes.usable.tolist() == [True, False, False, False, True, True]
    majority = votes.majority()
    assert [EMOTIONS[i] if i >= 0 else None for i in majority] == ["angry", None, None, None, "neutral", "disgust"]
    dist = votes.distribution()
    assert dist[0, EMOTIONS.index("angry")] == pytest.approx(0.7)
    assert dist[0, EMOTIONS.index("neutral")] == pytest.approx(0.2)
    assert dist[4, EMOTIONS.index("neutral")] == pytest.approx(5 / 8)      # renormalised without contempt
    assert dist[5, EMOTIONS.index("disgust")] == pytest.approx(0.5)         # and without unknown
    assert np.allclose(dist[[0, 4, 5]].sum(axis=1), 1.0)
    assert not dist[[1, 2, 3]].any()


def test_load_votes_checks_the_file(tmp_path):
    path = tmp_path / "ferplus_votes.npz"
    np.savez(path, train=ROWS, publictest=ROWS[:2], vote_classes=np.array(VOTE_CLASSES))
    assert len(load_votes(path, "train")) == 6
    with pytest.raises(DataError, match="no split 'valid'"):
        load_votes(path, "valid")
    with pytest.raises(DataError, match="has 2 rows but the images have 3"):
        votes_for(tmp_path / "fer2013_publictest.npz", path, rows=3)
    with pytest.raises(DataError, match="votes exist for"):
        votes_for(tmp_path / "my_faces.npz", path, rows=2)
    np.savez(path, train=ROWS[:, :7], vote_classes=np.array(VOTE_CLASSES))
    with pytest.raises(DataError, match=r"shape \(N, 10\)"):
        load_votes(path, "train")


def test_shared_votes_are_row_aligned_with_fer2013(publictest_path):
    votes = votes_for(publictest_path, publictest_path.with_name("ferplus_votes.npz"),
                      len(load_face_npz(publictest_path)))
    assert (votes.counts < 0).all(axis=1).sum() == 10                      # the 10 unmatched rows
    assert votes.usable.sum() == 3529                                       # the FER+ majority protocol


def test_targets_mix_the_votes_with_the_single_label():
    faces = FaceSet(np.zeros((2, 48, 48), np.uint8), np.array([0, 3]), "test", Votes(ROWS[[0, 4]]))
    targets, weight_labels = face_targets(faces, FaceRecipe(labels="ferplus", label_mix=0.5))
    assert weight_labels.tolist() == [0, 4]                                 # weighted as the majority
    assert targets[1, EMOTIONS.index("happy")] == pytest.approx(0.5 * 3 / 8 + 0.5)
    assert np.allclose(targets.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="usable votes"):
        face_targets(FaceSet(faces.x, faces.y, "t", Votes(ROWS[[0, 1]])), FaceRecipe(labels="ferplus"))


def test_calibration_error_on_known_answers():
    # Two bins: 0.9 confident and right 9 times of 10; 0.6 confident and right 3 times of 10.
    probs = np.array([[0.9, 0.1]] * 10 + [[0.6, 0.4]] * 10)
    labels = np.array([0] * 9 + [1] + [0] * 3 + [1] * 7)
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx((0.0 + 0.3) / 2)
    assert cross_entropy(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])) == pytest.approx(np.log(2))


def test_temperature_recovers_how_sure_the_answers_should_be():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(4000, 5))
    truth = tempered(logits, 1.0)
    labels = np.array([rng.choice(5, p=p) for p in truth])
    overconfident = tempered(logits, 0.5)                                    # twice as sharp as the truth
    temperature = fit_temperature(overconfident, np.eye(5)[labels])
    assert temperature == pytest.approx(2.0, rel=0.1)
    fixed = tempered(np.log(overconfident), temperature)
    assert expected_calibration_error(fixed, labels) < expected_calibration_error(overconfident, labels) / 2
    assert (fixed.argmax(axis=1) == overconfident.argmax(axis=1)).all()      # no decision changes


@pytest.fixture
def ferplus_folder(tmp_path):
    """The first 400 FER2013 training rows and 200 PublicTest rows with their FER+ votes, named as
    in ../shared so that the votes are found by file name."""
    from conftest import FACES

    with np.load(FACES / "fer2013_train.npz") as train, np.load(FACES / "fer2013_publictest.npz") as test, \
            np.load(FACES / "ferplus_votes.npz") as votes:
        np.savez(tmp_path / "fer2013_train.npz", x=train["x"][:400], y=train["y"][:400], classes=train["classes"])
        np.savez(tmp_path / "fer2013_publictest.npz", x=test["x"][:200], y=test["y"][:200], classes=test["classes"])
        np.savez(tmp_path / "ferplus_votes.npz", train=votes["train"][:400], publictest=votes["publictest"][:200],
                 vote_classes=votes["vote_classes"])
    return tmp_path


def test_training_on_votes_fits_and_folds_a_temperature(tmp_path, ferplus_folder):
    import keras

    from affectlite_convert.training.train_face import export_for_deployment

    recipe = FaceRecipe(epochs=1, batch_size=50, warmup_epochs=1, labels="ferplus", label_mix=0.25,
                        temperature_holdout=60, model=FaceCnnSpec(widths=(8, 16, 16, 32)))
    run = tmp_path / "run"
    final = train_face(ferplus_folder / "fer2013_train.npz", ferplus_folder / "fer2013_publictest.npz", run,
                       recipe, verbose=0, votes_path=ferplus_folder / "ferplus_votes.npz")
    state = json.loads((run / "state.json").read_text())
    cleaning = state["data"]["cleaning"]
    assert cleaning["temperature_holdout"] == 60 and cleaning["without_usable_votes"] > 0
    assert "MIT" in state["data"]["labels"]["licence"]
    temperature = state["temperature"]
    assert temperature > 0 and temperature != 1.0

    plain = export_for_deployment(final, tmp_path / "plain.keras")
    folded = export_for_deployment(final, tmp_path / "folded.keras", temperature=temperature)
    faces = load_face_npz(ferplus_folder / "fer2013_publictest.npz").x[:20, ..., None] / 255.0
    before = keras.models.load_model(plain).predict(faces, verbose=0)
    after = keras.models.load_model(folded).predict(faces, verbose=0)
    assert np.allclose(after, tempered(np.log(before), temperature), atol=1e-4)


def test_votes_are_required_for_crowd_labels(tmp_path, ferplus_folder):
    recipe = FaceRecipe(epochs=1, batch_size=50, labels="ferplus")
    with pytest.raises(ValueError, match="needs the votes file"):
        train_face(ferplus_folder / "fer2013_train.npz", ferplus_folder / "fer2013_publictest.npz",
                   tmp_path / "run", recipe, verbose=0)


def test_evaluate_reports_the_raters_and_calibration(tmp_path, ferplus_folder, tiny_keras_model):
    """`affectlite-convert evaluate` finds the votes beside a FER2013 file and adds the crowd figures
    and the reliability diagram; the --plots folder is created."""
    from affectlite_convert.cli import main

    plots = tmp_path / "plots" / "new"
    assert main(["evaluate", str(tiny_keras_model), "--data", str(ferplus_folder / "fer2013_publictest.npz"),
                 "--plots", str(plots)]) == 0
    assert (plots / "tiny_reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert (plots / "tiny_ferplus_confusion.png").exists()

    from affectlite_convert.evaluate import evaluate

    data = load_face_npz(ferplus_folder / "fer2013_publictest.npz")
    plain = evaluate(tiny_keras_model, data)
    assert plain.crowd is None
    data = FaceSet(data.x, data.y, data.source,
                   votes_for(ferplus_folder / "fer2013_publictest.npz", ferplus_folder / "ferplus_votes.npz", 200))
    result = evaluate(tiny_keras_model, data)
    assert result.accuracy == plain.accuracy
    assert result.crowd.majority.n == int(data.votes.usable.sum()) < 200
    assert 0 <= result.crowd.ece <= 1 and result.crowd.cross_entropy > 0
    assert result.as_dict()["ferplus_majority"]["ece"] == round(result.crowd.ece, 4)


def test_a_second_face_set_trains_beside_the_votes_and_a_masked_teacher_teaches(tmp_path, ferplus_folder, monkeypatch):
    """``--new-set``: the second set's train part beside FER2013, the prior adjustment chosen on the
    held-out images. ``--teacher-mask``: the teachers see every face through that set's oval, as a
    teacher trained on the set alone saw faces."""
    from conftest import FACES

    import affectlite_convert.training.train_face as trainer
    from affectlite_convert.data.faces import holdout_part
    from affectlite_convert.training.augment import oval_mask

    with np.load(FACES / "affectnet7_train.npz") as new:
        np.savez(tmp_path / "new.npz", x=new["x"][:600], y=new["y"][:600], classes=new["classes"])
    data = dict(train_path=ferplus_folder / "fer2013_train.npz", val_path=ferplus_folder / "fer2013_publictest.npz",
                votes_path=ferplus_folder / "ferplus_votes.npz", verbose=0)
    tiny = dict(epochs=1, batch_size=50, warmup_epochs=1, labels="ferplus", label_mix=0.1, temperature_holdout=60,
                model=FaceCnnSpec(widths=(8, 16, 16, 32)), new_set=str(tmp_path / "new.npz"),
                mask_probability=0.5, blur_probability=0.5)
    teacher = train_face(run_dir=tmp_path / "teacher", recipe=FaceRecipe(**tiny), **data)
    state = json.loads((tmp_path / "teacher" / "state.json").read_text())
    assert 400 < state["data"]["new_set"]["train"] < 600 and state["data"]["new_set"]["choose"] > 0
    assert -0.5 <= state["data"]["prior_adjustment"]["alpha"] <= 1.0

    shown = []
    real = trainer.teacher_probabilities
    monkeypatch.setattr(trainer, "teacher_probabilities", lambda teachers, views: shown.append(views) or real(teachers, views))
    student = FaceRecipe(**tiny, teachers=(str(teacher),), distill_weight=0.3, teacher_mask=True)
    train_face(run_dir=tmp_path / "student", recipe=student, **data)
    outside = oval_mask(holdout_part(load_face_npz(tmp_path / "new.npz"), "train").x) == 0
    image, mirrored = shown[0]                                   # every face masked, and its mirror image
    assert outside.any() and np.all(image[:, outside] == 0) and np.all(mirrored[:, outside[:, ::-1]] == 0)
    assert json.loads((tmp_path / "student" / "state.json").read_text())["recipe"]["teacher_mask"] is True

    with pytest.raises(ValueError, match="teacher_mask .* needs a new set"):
        train_face(run_dir=tmp_path / "bare", recipe=FaceRecipe(**{**tiny, "new_set": ""}, teachers=(str(teacher),),
                                                                distill_weight=0.3, teacher_mask=True), **data)


def test_a_source_head_with_its_gradient_reversed_trains_and_only_the_face_model_ships(tmp_path, ferplus_folder):
    """``--domain-adversarial``: a head learns which set each face came from while its reversed
    gradient pushes the CNN to hide it; ``final.keras`` is the plain face model, and a stopped
    run resumes with the head."""
    import keras
    import tensorflow as tf
    from conftest import FACES

    from affectlite_convert.training.domain_adversarial import GradientReversal

    x = tf.constant([[1.0, -2.0, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = GradientReversal()(x)
        total = tf.reduce_sum(y * tf.constant([1.0, 2.0, 3.0]))
    assert np.allclose(y.numpy(), x.numpy()) and np.allclose(tape.gradient(total, x).numpy(), [[-1.0, -2.0, -3.0]])

    with np.load(FACES / "affectnet7_train.npz") as new:
        np.savez(tmp_path / "new.npz", x=new["x"][:600], y=new["y"][:600], classes=new["classes"])
    data = dict(train_path=ferplus_folder / "fer2013_train.npz", val_path=ferplus_folder / "fer2013_publictest.npz",
                votes_path=ferplus_folder / "ferplus_votes.npz", verbose=0)
    tiny = dict(batch_size=50, warmup_epochs=1, labels="ferplus", label_mix=0.1, temperature_holdout=60,
                model=FaceCnnSpec(widths=(8, 16, 16, 32)), new_set=str(tmp_path / "new.npz"),
                mask_probability=0.5, blur_probability=0.5, domain_adversarial=0.3)
    recipe = FaceRecipe(epochs=2, **tiny)
    train_face(run_dir=tmp_path / "run", recipe=recipe, **data)
    state_path = tmp_path / "run" / "state.json"
    state = json.loads(state_path.read_text())
    assert "source_loss" in state["history"][0] and "val_source_binary_accuracy" in state["history"][0]

    # stopped after the first epoch: last.keras holds the model with its head
    state["epochs_done"], state["history"] = 1, state["history"][:1]
    state_path.write_text(json.dumps(state))
    (tmp_path / "run" / "final.keras").unlink()
    final = train_face(run_dir=tmp_path / "run", recipe=recipe, resume=True, **data)
    assert json.loads(state_path.read_text())["epochs_done"] == 2
    model = keras.models.load_model(final, compile=False)
    assert len(model.outputs) == 1 and model.output_shape == (None, 7)
    assert not any(isinstance(layer, GradientReversal) for layer in model.layers)
    state = json.loads(state_path.read_text())
    assert "prior_adjustment" in state["data"] and "temperature_fitted_on" in state["data"]
    deploy = keras.models.load_model(export_for_deployment(final, tmp_path / "face.keras", temperature=state["temperature"],
                                                           prior_shift=state["prior_shift"]), compile=False)
    assert deploy.input_shape == (None, 48, 48, 1)
    probabilities = deploy.predict(np.zeros((2, 48, 48, 1), np.float32), verbose=0)
    assert probabilities.shape == (2, 7) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    with pytest.raises(ValueError, match="domain_adversarial .* needs a new set"):
        train_face(run_dir=tmp_path / "bare", recipe=FaceRecipe(epochs=1, **{**tiny, "new_set": ""}), **data)
