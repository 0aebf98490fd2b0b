"""Evaluation figures: exact on known predictions, consistent between Keras and TFLite."""

from __future__ import annotations

import numpy as np
import pytest

from affectlite_convert.converter import ConvertOptions, convert
from affectlite_convert.data.faces import DataError, load_face_npz
from affectlite_convert.evaluate import evaluate, metrics, plot_confusion


def test_metrics_on_known_predictions():
    y_true = np.array([0, 0, 1, 3, 3, 3, 6])
    y_pred = np.array([0, 3, 1, 3, 3, 0, 6])
    result = metrics(y_true, y_pred, "known")
    assert result.accuracy == pytest.approx(5 / 7)
    assert result.per_class_recall["angry"] == 0.5
    assert result.per_class_recall["happy"] == pytest.approx(2 / 3)
    # classes absent from the data (fear, neutral, sad) do not count in the macro average
    assert result.macro_recall == pytest.approx((0.5 + 1 + 2 / 3 + 1) / 4)
    assert result.confusion[3, 0] == 1 and result.confusion.sum() == 7


def test_keras_and_int8_tflite_agree_and_plot(tmp_path, tiny_keras_model, small_faces):
    out = tmp_path / "tiny_int8.tflite"
    convert(tiny_keras_model, out, ConvertOptions(quant="int8"), calibration=small_faces)
    data = load_face_npz(small_faces)
    float_result = evaluate(tiny_keras_model, data)
    int8_result = evaluate(out, data)
    assert float_result.n == int8_result.n == 350
    assert abs(float_result.accuracy - int8_result.accuracy) < 0.05
    png = plot_confusion(int8_result, tmp_path / "confusion.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_file_with_wrong_labels(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros((3, 48, 48), np.uint8), y=np.array([0, 1, 2]), classes=np.array(["cat", "dog", "cow"]))
    with pytest.raises(DataError, match="classes .* differ from affectlite's order"):
        load_face_npz(path)


def test_data_file_with_wrong_shape(tmp_path):
    path = tmp_path / "flat.npz"
    np.savez(path, x=np.zeros((3, 2304), np.uint8), y=np.array([0, 1, 2]))
    with pytest.raises(DataError, match="must be uint8 of shape"):
        load_face_npz(path)
    np.savez(path, x=np.zeros((3, 48, 48), np.uint8), y=np.array([0, 9, 2]))
    with pytest.raises(DataError, match="labels must be integers in"):
        load_face_npz(path)
    path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_face_npz(path)


def test_a_folder_of_class_subfolders(tmp_path, small_faces, tiny_keras_model):
    """evaluate --data FOLDER with one subfolder per label, as image tools lay data sets out."""
    from PIL import Image

    from affectlite.labels import EMOTIONS
    from affectlite_convert.data.images import load_class_folders

    data = load_face_npz(small_faces)
    for i in range(0, 350, 10):
        folder = tmp_path / "faces" / EMOTIONS[data.y[i]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.x[i]).save(folder / f"{i}.png")
    loaded = load_class_folders(tmp_path / "faces", EMOTIONS)
    assert len(loaded) == 35 and sorted(set(loaded.y)) == sorted(set(data.y[::10]))
    from_npz = evaluate(tiny_keras_model, type(data)(data.x[::10], data.y[::10], "npz"))
    from_folders = evaluate(tiny_keras_model, loaded)
    assert from_folders.n == 35 and (from_folders.confusion == from_npz.confusion).all()   # the same images, read back
    (tmp_path / "faces" / "bored").mkdir()
    with pytest.raises(DataError, match="unknown: bored"):
        load_class_folders(tmp_path / "faces", EMOTIONS)
