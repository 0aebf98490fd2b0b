"""Converting Keras models to TFLite: each quantization, checked against the original's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectlite.models.card import ModelCard
from affectlite.runtime import adapters
from affectlite.runtime.interpreter import make_interpreter
from affectlite_convert.converter import ConvertOptions, convert
from affectlite_convert.data.faces import DataError
from affectlite_convert.keras_io import ModelLoadError, load_model


def faces(path, n=64):
    with np.load(path) as data:
        return data["x"][:n, :, :, None].astype(np.float32) / 255.0


def tflite_outputs(path, x):
    interpreter = make_interpreter(path)
    return np.stack([adapters.run_from_blank_state(interpreter, sample[None])[0] for sample in x])


@pytest.mark.parametrize("quant, tolerance", [("float32", 1e-5), ("dynamic", 0.05), ("int8", 0.05)])
def test_conversion_matches_the_keras_model(tmp_path, tiny_keras_model, small_faces, quant, tolerance):
    out = tmp_path / f"tiny_{quant}.tflite"
    card = convert(tiny_keras_model, out, ConvertOptions(quant=quant), calibration=small_faces if quant == "int8" else None)

    x = faces(small_faces)
    expected = np.asarray(load_model(tiny_keras_model).fn(x))
    got = tflite_outputs(out, x)
    assert np.abs(got - expected).max() < tolerance
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * tolerance  # where the original is not near a tie
    assert (got.argmax(1) == expected.argmax(1))[clear].all()

    assert card.quantization == quant
    assert card.input.shape == [1, 48, 48, 1]
    if quant == "int8":      # measured at conversion on the calibration inputs, and kept in the card
        check = card.converter["agreement"]
        assert check["inputs"] == 100
        # the tiny model is unsure of most faces: its share is measured on the clear ones only,
        # and "n/a" (None) when there are none, never "100 % of 0"
        assert (check["same_top_class"] is None) == (check["clear_inputs"] == 0)
        assert check["same_top_class"] is None or check["same_top_class"] >= 0.9
        assert check["largest_output_difference"] < tolerance
    else:
        assert "agreement" not in card.converter                    # no calibration inputs given
    assert ModelCard.load(out.with_suffix(".json")) == card
    assert "angry, disgust, fear, happy, neutral, sad, surprise" in out.with_suffix(".md").read_text()


def test_int8_model_takes_pixels_exactly(tmp_path, tiny_keras_model, small_faces):
    """Input scale 1/255 and zero point -128: a uint8 pixel p becomes the int8 value p - 128."""
    card = convert(tiny_keras_model, tmp_path / "m.tflite", ConvertOptions(quant="int8"), calibration=small_faces)
    assert card.input.dtype == "int8" and card.output.dtype == "int8"
    assert card.input.scale == pytest.approx(1 / 255, rel=1e-6)
    assert card.input.zero_point == -128


def test_uint8_io_for_older_coral_code(tmp_path, tiny_keras_model, small_faces):
    card = convert(tiny_keras_model, tmp_path / "m.tflite", ConvertOptions(quant="int8", io_type="uint8"),
                   calibration=small_faces)
    assert (card.input.dtype, card.output.dtype) == ("uint8", "uint8")


def test_calibration_from_a_folder_of_images(tmp_path, tiny_keras_model, small_faces):
    from PIL import Image

    folder = tmp_path / "calib" / "nested"
    folder.mkdir(parents=True)
    with np.load(small_faces) as data:
        for i, img in enumerate(data["x"][:20]):
            Image.fromarray(img).convert("RGB").resize((96, 96)).save(folder / f"{i}.jpg")
    card = convert(tiny_keras_model, tmp_path / "m.tflite", ConvertOptions(quant="int8"), calibration=tmp_path / "calib")
    assert card.converter["calibration"].endswith("calib")


def test_h5_and_saved_model_inputs(tmp_path, tiny_keras_model, small_faces):
    import tensorflow as tf
    import tf_keras

    reference = load_model(tiny_keras_model)
    x = faces(small_faces, 8)

    legacy = tf_keras.Sequential([
        tf_keras.Input((48, 48, 1)),
        tf_keras.layers.Conv2D(4, 3, activation="relu"),
        tf_keras.layers.GlobalAveragePooling2D(),
        tf_keras.layers.Dense(7, activation="softmax"),
    ])
    legacy.save(tmp_path / "legacy.h5")
    convert(tmp_path / "legacy.h5", tmp_path / "legacy.tflite", ConvertOptions(quant="float32"))
    np.testing.assert_allclose(tflite_outputs(tmp_path / "legacy.tflite", x), legacy.predict(x, verbose=0), atol=1e-5)

    module = tf.Module()
    module.model = reference.keras_model  # tracked, so its variables are saved
    module.fn = tf.function(lambda x: module.model(x, training=False), input_signature=[tf.TensorSpec([None, 48, 48, 1], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures={"serving_default": module.fn})
    convert(tmp_path / "saved", tmp_path / "saved.tflite", ConvertOptions(quant="float32"))
    np.testing.assert_allclose(tflite_outputs(tmp_path / "saved.tflite", x), np.asarray(reference.fn(x)), atol=1e-5)


def test_free_spatial_dimensions_need_an_input_shape(tmp_path, small_faces):
    import keras

    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(7, activation="softmax")])
    model.save(tmp_path / "free.keras")
    with pytest.raises(ValueError, match="--input-shape"):
        convert(tmp_path / "free.keras", tmp_path / "free.tflite", ConvertOptions(quant="float32"))
    card = convert(tmp_path / "free.keras", tmp_path / "free.tflite",
                   ConvertOptions(quant="float32", input_shape=(40, 40, 1)))
    assert card.input.shape == [1, 40, 40, 1]


# -- bad input: a clear error and no output files -----------------------------------------------

def assert_nothing_written(folder):
    assert sorted(p.name for p in folder.iterdir() if p.suffix in {".tflite", ".json", ".md", ".tmp"}) == []


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(ModelLoadError, match="broken.keras: cannot load the model"):
        convert(bad, tmp_path / "out.tflite", ConvertOptions(quant="float32"))
    assert_nothing_written(tmp_path)


def test_calibration_that_does_not_match_the_input(tmp_path, tiny_keras_model):
    rgb = tmp_path / "rgb.npz"
    np.savez(rgb, x=np.zeros((10, 48, 48, 3), np.uint8))
    with pytest.raises(DataError, match="3 channel"):
        convert(tiny_keras_model, tmp_path / "out.tflite", ConvertOptions(quant="int8"), calibration=rgb)
    floats = tmp_path / "floats.npz"
    np.savez(floats, x=np.zeros((10, 48, 48), np.float32))
    with pytest.raises(DataError, match="must be uint8"):
        convert(tiny_keras_model, tmp_path / "out.tflite", ConvertOptions(quant="int8"), calibration=floats)
    assert_nothing_written(tmp_path)


def test_int8_without_calibration(tmp_path, tiny_keras_model):
    with pytest.raises(ValueError, match="needs calibration data"):
        convert(tiny_keras_model, tmp_path / "out.tflite", ConvertOptions(quant="int8"))
    assert_nothing_written(tmp_path)


def test_labels_must_match_the_outputs(tmp_path, tiny_keras_model):
    with pytest.raises(ValueError, match="3 labels given"):
        convert(tiny_keras_model, tmp_path / "out.tflite", ConvertOptions(quant="float32", labels=["a", "b", "c"]))
    assert_nothing_written(tmp_path)


def test_corrupt_card_is_reported(tmp_path):
    card = tmp_path / "m.json"
    card.write_text(json.dumps({"name": "m"}))
    with pytest.raises(ValueError, match="missing or has unknown fields"):
        ModelCard.load(card)


def test_tf_keras_lstm_becomes_one_fused_int8_op(tmp_path):
    """An LSTM from tf_keras converts to UNIDIRECTIONAL_SEQUENCE_LSTM with int8 input and output."""
    import tf_keras

    from affectlite_convert.edgetpu.check import check_model

    steps, features = 12, 24
    inputs = tf_keras.Input((steps, features))                  # free batch: rebuilt at batch 1
    x = tf_keras.layers.LSTM(16)(inputs)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(7, activation="softmax")(x))
    model.save(tmp_path / "lstm.h5")
    calibration = tmp_path / "steps.npz"
    np.savez(calibration, x=np.random.default_rng(0).random((100, steps, features), dtype=np.float32))
    out = tmp_path / "lstm.tflite"
    card = convert(tmp_path / "lstm.h5", out, ConvertOptions(quant="int8", input_kind="features", task="fusion"),
                   calibration=calibration)
    assert card.input.shape == [1, steps, features] and card.input.dtype == "int8" and card.input.color == "features"
    report = check_model(out)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in [op.op for op in report.ops]
    assert "WHILE" not in [op.op for op in report.ops] and not report.model_problems

    x = np.random.default_rng(1).random((20, steps, features), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    got = tflite_outputs(out, x)
    assert np.abs(got - expected).max() < 0.05


def test_a_model_that_scales_its_own_pixels_needs_input_range_0_255(tmp_path, small_faces):
    """A Rescaling layer at the input means the model wants raw pixels: the default --input-range
    0,1 would feed it values 255 times too small, so conversion refuses and names the flag."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(7, activation="softmax")])
    path = tmp_path / "rescaling.keras"
    model.save(path)
    out = tmp_path / "rescaling_int8.tflite"
    with pytest.raises(ValueError, match=r"starts with a Rescaling layer.*--input-range 0,255"):
        convert(path, out, ConvertOptions(quant="int8"), calibration=small_faces)
    assert not out.exists()
    card = convert(path, out, ConvertOptions(quant="int8", value_range=(0.0, 255.0)), calibration=small_faces)
    assert card.input.value_range == [0.0, 255.0]
    check = card.converter["agreement"]
    # An untrained head answers near-uniformly: every input is a near tie, so the top-class share
    # is "n/a" (None), not "100 % of 0"; the outputs themselves still agree.
    assert check["clear_inputs"] == 0 and check["same_top_class"] is None
    assert check["largest_output_difference"] < 0.05
