"""Shared fixtures: real FER2013 images from ../shared and tiny real Keras models.

Session-scoped, because building and converting TensorFlow models costs seconds each.

``../shared`` (or ``$AFFECTLITE_SHARED``) holds the development data sets (FER2013, the speech
corpora, the CREMA-D clips); it is not distributed with the code. A test that reads it - its own
code or one of its fixtures names ``SHARED``, ``FACES``, ``CLIPS``, ``RAVDESS`` or ``SPEECH`` - is
skipped, with the reason, where the folder is absent, so that a contributor without the data
still gets a passing run of everything else. Under ``CI=1`` nothing is skipped for it: CI has the
data, and a missing folder there is a failure.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AFFECTLITE_SHARED", ROOT.parent / "shared"))
FACES = SHARED / "data" / "faces"


def _shared_names(module) -> re.Pattern:
    """``SHARED``, conftest's ``FACES`` and ``CLIPS``, and every module-level path under ``SHARED`` in a
    test module (``CLIP = SHARED / ...``)."""
    names = {"SHARED", "FACES", "CLIPS"} | {name for name, value in vars(module).items()
                          if isinstance(value, Path) and str(value).startswith(str(SHARED))}
    return re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b")


def _reads_shared(item) -> bool:
    """Whether the test, one of its fixtures or a helper of its module that they call names the data."""
    pending = [getattr(item, "function", None)]
    pending += [d.func for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs]
    seen = set()
    while pending:
        function = pending.pop()
        if function is None or function in seen:
            continue
        seen.add(function)
        module = inspect.getmodule(function)
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            continue
        if module is not None and _shared_names(module).search(source):
            return True
        helpers = vars(module) if module is not None else {}
        pending += [helpers[name] for name in set(re.findall(r"\b(\w+)\(", source))
                    if inspect.isfunction(helpers.get(name))]
    return False


def pytest_collection_modifyitems(config, items):
    if SHARED.is_dir() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"needs the development data in {SHARED} (see tests/conftest.py; "
                                   "set AFFECTLITE_SHARED to use another folder)")
    for item in items:
        if _reads_shared(item):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def publictest_path() -> Path:
    path = FACES / "fer2013_publictest.npz"
    assert path.exists(), f"shared data missing: {path} (set AFFECTLITE_SHARED)"
    return path


@pytest.fixture(scope="session")
def small_faces(tmp_path_factory, publictest_path) -> Path:
    """A stratified 350-image slice of FER2013 PublicTest, as an .npz in the shared format."""
    with np.load(publictest_path) as data:
        x, y, classes = data["x"], data["y"], data["classes"]
    rng = np.random.default_rng(0)
    keep = np.concatenate([rng.choice(np.flatnonzero(y == c), 50, replace=False) for c in range(7)])
    path = tmp_path_factory.mktemp("faces") / "small.npz"
    np.savez(path, x=x[keep], y=y[keep], classes=classes)
    return path


@pytest.fixture(scope="session")
def tiny_keras_model(tmp_path_factory, small_faces) -> Path:
    """A small CNN fitted for a few steps on real faces, saved as .keras with a fixed 48x48x1 input."""
    with np.load(small_faces) as data:
        model = tiny_cnn(data["x"], data["y"], 7)
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    model.save(path)
    return path


def tiny_cnn(images: np.ndarray, targets: np.ndarray, classes: int):
    """A small CNN over 48x48 grey faces, fitted for two epochs: real weights, seconds to train."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((48, 48, 1)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images[..., None] / 255.0, targets, epochs=2, batch_size=32, verbose=0)
    return model


CLIPS = SHARED / "data" / "av" / "crema-d-sample" / "VideoFlash"
FIXTURES = Path(__file__).parent / "fixtures"


def read_frames(path, every: int = 1) -> list:
    from affectlite.sources.video_file import read_video

    return [frame.rgb for frame in read_video(path, every=every)]


@pytest.fixture(scope="session")
def sad_clip() -> Path:
    return FIXTURES / "1001_DFA_SAD_XX.flv"


@pytest.fixture(scope="session")
def happy_clip() -> Path:
    from affectlite import SAMPLE_CLIP

    return SAMPLE_CLIP


@pytest.fixture(scope="session")
def frame(happy_clip):
    """A 480x360 RGB frame of actor 1001; his face spans about x 160-270, y 95-205."""
    return read_frames(happy_clip)[30]


@pytest.fixture
def broker(tmp_path):
    from broker import Broker

    instance = Broker(tmp_path).start()
    yield instance
    instance.stop()
