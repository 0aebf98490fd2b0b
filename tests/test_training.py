"""Training: a short real run on FER2013 images, stopped and resumed from its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectlite_convert.data.faces import clean_training_set, load_face_npz
from affectlite_convert.training.face_cnn import FaceCnnSpec
from affectlite_convert.training.train_face import FaceRecipe, class_weights, export_for_deployment, train_face

TINY = FaceRecipe(epochs=2, batch_size=50, warmup_epochs=1, model=FaceCnnSpec(widths=(8, 16, 16, 32)))


@pytest.fixture
def split(tmp_path, small_faces):
    """The 350 images as 250 for training and 100 for validation."""
    data = np.load(small_faces)
    order = np.random.default_rng(1).permutation(len(data["y"]))
    paths = []
    for name, part in (("train", order[:250]), ("val", order[250:])):
        paths.append(tmp_path / f"{name}.npz")
        np.savez(paths[-1], x=data["x"][part], y=data["y"][part], classes=data["classes"])
    return paths


def test_train_then_resume(tmp_path, split):
    train, val = split
    run = tmp_path / "run"
    first = FaceRecipe(**{**TINY.__dict__, "epochs": 1, "ema_momentum": 0.9})
    train_face(train, val, run, first, verbose=0)
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 1

    with pytest.raises(FileExistsError, match="--resume"):
        train_face(train, val, run, first, verbose=0)
    with pytest.raises(ValueError, match="another recipe"):
        train_face(train, val, run, TINY, resume=True, verbose=0)

    # Resuming the same recipe after it finished only re-exports it.
    final = train_face(train, val, run, first, resume=True, verbose=0)
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 1 and len(state["history"]) == 1
    assert (run / "log.csv").read_text().count("\n") == 2

    import keras

    deploy = export_for_deployment(final, tmp_path / "deploy.keras")
    assert tuple(keras.models.load_model(deploy).inputs[0].shape) == (None, 48, 48, 1)

    # Stopped between the last checkpoint and the final save: the final model is rebuilt with the
    # optimizer's averaged (EMA) weights, as the finished run had, not the checkpoint's raw ones.
    shipped = keras.models.load_model(final, compile=False).get_weights()
    final.unlink()
    rebuilt = keras.models.load_model(train_face(train, val, run, first, resume=True, verbose=0), compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(shipped, rebuilt.get_weights()))
    checkpoint = keras.models.load_model(run / "last.keras", compile=False).get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(shipped, checkpoint))


def test_validation_file_equal_to_training_file(tmp_path, small_faces):
    with pytest.raises(ValueError, match="is the validation file the training file"):
        train_face(small_faces, small_faces, tmp_path / "run", TINY, verbose=0)


def test_class_weights_lift_rare_classes_and_keep_the_mean():
    counts = np.array([3995, 436, 4097, 7215, 4965, 4830, 3171])
    weights = class_weights(counts, 0.5)
    assert weights.argmax() == 1
    assert (weights * counts).sum() / counts.sum() == pytest.approx(1.0)


def test_cleaning_drops_blank_conflicting_and_leaked_images(small_faces):
    data = load_face_npz(small_faces)
    x = data.x.copy()
    x[0] = 128                       # near-blank
    x[2] = x[1]                      # duplicate of image 1 ...
    y = data.y.copy()
    y[2] = (y[1] + 1) % 7            # ... with another label
    train = type(data)(x, y, "test")
    held_out = train.subset(np.arange(10, 20))
    cleaned, report = clean_training_set(train, held_out)
    assert report == {"near_blank": 1, "conflicting_duplicates": 2, "also_in_validation": 10, "kept": 350 - 13}
    assert len(cleaned) == 337


def test_killed_run_resumes_from_its_last_epoch(tmp_path, split):
    """`affectlite-convert train face` killed after its first epoch goes on with --resume."""
    import signal
    import subprocess
    import sys
    import time

    train, val = split
    run = tmp_path / "run"
    command = [sys.executable, "-m", "affectlite_convert.cli", "train", "face", "--train", str(train),
               "--val", str(val), "--out", str(run), "--epochs", "3", "--batch-size", "50"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "state.json"
    deadline = time.monotonic() + 300
    while not (state.exists() and json.loads(state.read_text())["epochs_done"] >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before its first checkpoint"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = json.loads(state.read_text())["epochs_done"]
    assert done_before < 3 and not (run / "final.keras").exists()

    result = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    history = json.loads(state.read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert (run / "face_expression.keras").exists()


def test_distillation_mixes_the_teachers_into_the_targets(tmp_path, split, tiny_keras_model):
    from affectlite_convert.training.distill import teacher_probabilities

    with np.load(split[0]) as data:
        x = data["x"][:40, ..., None].astype(np.float32) / 255.0
    soft = teacher_probabilities((str(tiny_keras_model),), [x, x[:, :, ::-1]])
    assert soft.shape == (40, 7) and np.allclose(soft.sum(axis=1), 1, atol=1e-4)
    import keras

    teacher = keras.models.load_model(tiny_keras_model)
    direct = (teacher.predict(x, verbose=0) + teacher.predict(x[:, :, ::-1], verbose=0)) / 2
    assert np.allclose(soft, direct, atol=1e-5)                   # the mean over the image and its mirror

    recipe = FaceRecipe(**{**TINY.__dict__, "epochs": 1, "teachers": (str(tiny_keras_model),), "distill_weight": 0.5})
    train_face(split[0], split[1], tmp_path / "run", recipe, verbose=0)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["recipe"]["teachers"] == [str(tiny_keras_model)] and state["recipe"]["distill_weight"] == 0.5


def test_a_run_can_start_from_a_trained_model(tmp_path, split):
    """``--init``: a second, shorter cycle from a trained model instead of random weights."""
    import keras

    first = train_face(split[0], split[1], tmp_path / "first", FaceRecipe(**{**TINY.__dict__, "epochs": 1}), verbose=0)
    # at a learning rate of 0 the run keeps the weights it starts from: they are the first run's
    frozen = FaceRecipe(**{**TINY.__dict__, "epochs": 1, "warmup_epochs": 0, "learning_rate": 0.0,
                           "weight_decay": 0.0, "init": str(first)})
    second = train_face(split[0], split[1], tmp_path / "second", frozen, verbose=0)
    before, after = keras.models.load_model(first), keras.models.load_model(second)
    kernels = [(a, b) for a, b in zip(before.get_weights(), after.get_weights()) if a.ndim == 4]
    assert kernels and all(np.allclose(a, b) for a, b in kernels)

    narrower = FaceRecipe(**{**TINY.__dict__, "epochs": 1, "init": str(first),
                             "model": FaceCnnSpec(widths=(8, 16, 16, 16))})
    with pytest.raises(ValueError, match="not a model of this recipe's architecture, nor a narrower one"):
        train_face(split[0], split[1], tmp_path / "third", narrower, verbose=0)


def test_a_wider_student_learns_from_a_fully_convolutional_teacher(tmp_path, split, capsys):
    """A run's own final.keras takes faces of any size (None, None, 1): it teaches a student of
    another width (``--widths``) trained on 48x48 faces."""
    import keras

    from affectlite_convert.cli import main

    teacher = train_face(split[0], split[1], tmp_path / "teacher", FaceRecipe(**{**TINY.__dict__, "epochs": 1}), verbose=0)
    assert tuple(keras.models.load_model(teacher).inputs[0].shape[1:]) == (None, None, 1)
    student = FaceRecipe(**{**TINY.__dict__, "epochs": 1, "teachers": (str(teacher),), "distill_weight": 0.5,
                            "model": FaceCnnSpec(widths=(8, 16, 24, 48))})
    final = train_face(split[0], split[1], tmp_path / "student", student, verbose=0)
    assert keras.models.load_model(final).count_params() > keras.models.load_model(teacher).count_params()
    with pytest.raises(SystemExit):
        main(["train", "face", "--widths", "64", "--out", str(tmp_path / "x")])
    assert "--widths: expected two or more channel counts separated by commas" in capsys.readouterr().err


def test_a_run_started_before_an_option_existed_resumes_with_it_at_its_default(tmp_path):
    """A toolchain update that adds a recipe option (e.g. speech distillation) must not strand a
    run stopped half-way: the new option at its default resumes; at another value, or any other
    change, it is refused with what changed."""
    from affectlite_convert.training.run import TrainingRun

    TrainingRun(tmp_path / "run", {"epochs": 4}).save_state()
    defaults = {"epochs": 40, "teachers": []}
    TrainingRun(tmp_path / "run", {"epochs": 4, "teachers": ()}, resume=True, defaults=defaults)
    with pytest.raises(ValueError, match=r"teachers: \[\] then, \['a.keras'\] now"):
        TrainingRun(tmp_path / "run", {"epochs": 4, "teachers": ("a.keras",)}, resume=True, defaults=defaults)
    with pytest.raises(ValueError, match="epochs: 4 then, 5 now"):
        TrainingRun(tmp_path / "run", {"epochs": 5, "teachers": ()}, resume=True, defaults=defaults)


def test_a_wider_network_starts_from_a_narrower_trained_one_with_the_same_answers(tmp_path):
    """``--init`` with a narrower model and ``--widths``: the extra channels copy existing ones
    and the next layer shares their weight, so training starts where the narrow model ended."""
    from affectlite_convert.training.face_cnn import build_face_cnn
    from affectlite_convert.training.widen import start_from

    rng = np.random.default_rng(3)
    narrow = build_face_cnn(FaceCnnSpec(widths=(8, 16, 16, 32)))
    # as if trained: BatchNorm statistics and scales away from their initial 0 and 1
    narrow.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) if w.ndim == 1 else w
                        for w in narrow.get_weights()])
    narrow.save(tmp_path / "narrow.keras")

    wide = build_face_cnn(FaceCnnSpec(widths=(12, 16, 24, 48)))
    start_from(tmp_path / "narrow.keras", wide)
    faces = rng.random((6, 48, 48, 1)).astype(np.float32)
    assert wide.count_params() > narrow.count_params()
    assert np.allclose(wide.predict(faces, verbose=0), narrow.predict(faces, verbose=0), atol=1e-5)

    wide.save(tmp_path / "wide.keras")
    with pytest.raises(ValueError, match="wide.keras: not a model of this recipe's architecture, nor a narrower one"):
        start_from(tmp_path / "wide.keras", build_face_cnn(FaceCnnSpec(widths=(8, 16, 16, 32))))
    with pytest.raises(ValueError, match="another number of classes"):
        start_from(tmp_path / "narrow.keras", build_face_cnn(FaceCnnSpec(widths=(8, 16, 16, 32), num_classes=8)))
