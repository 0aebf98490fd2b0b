"""Keras / SavedModel -> TFLite (float32, dynamic-range or full-integer int8) with a model card.

Full-integer output is what the Edge TPU compiler accepts: every tensor int8 (or uint8 at the
model's edges), static shapes with batch 1, weights calibrated per channel on real inputs.
Nothing is written until the converted model has been loaded back by the interpreter, and the
``.tflite`` and its card appear together or not at all.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from affectlite.labels import EMOTIONS, LabelSet
from affectlite.models.card import InputSpec, ModelCard, OutputSpec
from affectlite.runtime import adapters
from affectlite.runtime.interpreter import make_interpreter
from affectlite_convert.data.faces import DataError
from affectlite_convert.data.images import load_images_resized, to_model_input
from affectlite_convert.keras_io import LoadedModel, load_model
from affectlite_convert.portable import portable_path
from affectlite_convert.scope import scope_for
from affectlite_convert.tflite_metadata import add_metadata

Quantization = Literal["float32", "dynamic", "int8"]


@dataclass
class ConvertOptions:
    quant: Quantization = "int8"
    #: Type of the model's input and output tensors for ``int8``: ``uint8`` suits older Coral
    #: code paths that feed camera pixels directly.
    io_type: Literal["int8", "uint8"] = "int8"
    #: (H, W, C) when the model leaves spatial dimensions free; otherwise taken from the model.
    input_shape: tuple[int, int, int] | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    labels: list[str] = field(default_factory=lambda: list(EMOTIONS))
    #: Valence of labels that are not among the seven emotions (or should differ): label -> positive,
    #: negative or neutral. Written to the card; the device's states and alerts use it.
    valence: dict[str, str] = field(default_factory=dict)
    calibration_samples: int = 500
    #: "image" (pixels prepared from uint8 images) or "features" (float tensors, e.g. log-mel
    #: windows, calibrated from an .npz whose 'x' already has the model's input shape).
    input_kind: Literal["image", "features"] = "image"
    name: str | None = None
    task: str = "facial-expression"
    training_data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Feature models trained on clamped windows (``train speech --dynamic-range-db``): written
    #: to the card, from which the device computes the same windows.
    dynamic_range_db: float | None = None
    #: What the model is for (default: the task's text in :mod:`affectlite_convert.scope`), and
    #: limitations to add to the task's own.
    intended_use: str = ""
    limitations: list[str] = field(default_factory=list)


#: Layers that mean "give me raw pixels": the model scales or normalises them itself.
SCALING_LAYERS = ("Rescaling", "Normalization")


def input_scaling_layer(model: LoadedModel) -> str | None:
    """The class name of a Rescaling/Normalization layer among the first layers after the input
    (possibly after a Resizing or an InputLayer), or None. Such a model expects pixels 0..255, and
    converting it with the default --input-range 0,1 would feed it values 255 times too small."""
    keras_model = model.keras_model
    if keras_model is None:
        return None
    for layer in keras_model.layers[:4]:
        name = type(layer).__name__
        if name in SCALING_LAYERS:
            return name
        if name not in ("InputLayer", "Resizing", "CenterCrop"):
            return None
    return None


def static_input_shape(model: LoadedModel, override: tuple[int, int, int] | None) -> tuple[int, ...]:
    """Batch-1 static shape; free dimensions must be given by ``override``."""
    declared = list(model.input_shape)
    if override is not None:
        if len(declared) != 4:
            raise ValueError(f"--input-shape applies to image models (rank 4); this model's input is {model.input_shape}")
        for i, (have, want) in enumerate(zip(declared[1:], override), start=1):
            if have is not None and have != want:
                raise ValueError(f"--input-shape {override} conflicts with the model's input {model.input_shape}")
        declared[1:] = list(override)
    if any(d is None for d in declared[1:]):
        raise ValueError(
            f"the model's input {model.input_shape} has free dimensions; give them with --input-shape, e.g. 48x48x1"
        )
    return (1, *declared[1:])


def load_calibration(source: str | Path, shape: tuple[int, ...], value_range: tuple[float, float], limit: int,
                     features: bool = False) -> np.ndarray:
    """Calibration inputs as float32 (N, *shape[1:]) from an ``.npz`` or a folder of images."""
    source = Path(source)
    if len(shape) != 4 or features:
        if source.suffix != ".npz":
            raise DataError(f"{source}: a model with input {shape} needs calibration tensors in an .npz ('x')")
        with np.load(source, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise DataError(f"{source}: no array 'x' of calibration inputs")
            x = archive["x"][:limit].astype(np.float32)
        if x.shape[1:] != tuple(shape[1:]) and x.shape[1:] + (1,) != tuple(shape[1:]):
            raise DataError(f"{source}: calibration inputs have shape {x.shape[1:]}, the model takes {tuple(shape[1:])}")
        return x.reshape((len(x),) + tuple(shape[1:]))
    _, height, width, channels = shape
    if source.is_dir():
        images = load_images_resized(source, (height, width), channels, limit)
    elif source.suffix == ".npz":
        if not source.is_file():
            raise DataError(f"{source}: no such calibration file")
        with np.load(source, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise DataError(f"{source}: no array 'x' of calibration images")
            images = archive["x"]
        if images.dtype != np.uint8:
            raise DataError(f"{source}: calibration images must be uint8 pixels, got {images.dtype}")
        stored = images.shape[1:3] + ((images.shape[3],) if images.ndim == 4 else (1,))
        if images.ndim not in (3, 4) or stored[2] != channels:
            raise DataError(
                f"{source}: calibration images are {images.shape[1:]} ({stored[2]} channel(s)), the model takes "
                f"{(height, width, channels)}; give images with {channels} channel(s)"
            )
        rng = np.random.default_rng(0)
        images = images[rng.permutation(len(images))[:limit]]
    else:
        raise DataError(f"{source}: calibration data must be an .npz file or a folder of images")
    return to_model_input(images, (height, width), channels, value_range)


def _freeze(model: LoadedModel, shape: tuple[int, ...]):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = tf.function(model.fn).get_concrete_function(tf.TensorSpec(shape, tf.float32, name="input"))
    return convert_variables_to_constants_v2(concrete)


def _batch_one_tf_keras(model: LoadedModel, shape: tuple[int, ...]):
    """The tf_keras model rebuilt on a static batch-1 input, weights copied."""
    import tf_keras

    keras_model = model.keras_model
    if tuple(keras_model.inputs[0].shape) == tuple(shape):
        return keras_model
    clone = tf_keras.models.clone_model(keras_model, input_tensors=tf_keras.Input(batch_shape=shape))
    clone.set_weights(keras_model.get_weights())
    return clone


def to_tflite(model: LoadedModel, shape: tuple[int, ...], options: ConvertOptions, calibration: np.ndarray | None) -> bytes:
    import tensorflow as tf

    if model.library == "tf_keras":
        # tf_keras models go through the Keras converter path, which turns an LSTM layer into one
        # fused UNIDIRECTIONAL_SEQUENCE_LSTM op that quantizes to int8 (calibrating the unfused
        # loop of a frozen graph crashes the converter).
        converter = tf.lite.TFLiteConverter.from_keras_model(_batch_one_tf_keras(model, shape))
    else:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([_freeze(model, shape)])
    if options.quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif options.quant == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 quantization needs calibration data (--calibration NPZ or image folder)")

        def representative():
            for sample in calibration:
                yield [sample[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = tf.int8 if options.io_type == "int8" else tf.uint8
        converter.inference_input_type = io
        converter.inference_output_type = io
    elif options.quant != "float32":
        raise ValueError(f"unknown quantization '{options.quant}'; choose float32, dynamic or int8")
    try:
        return converter.convert()
    except Exception as exc:
        raise RuntimeError(f"TFLite conversion failed: {str(exc).strip().splitlines()[-1]}") from exc


def agreement(model: LoadedModel, content: bytes, samples: np.ndarray, limit: int = 100) -> dict[str, float]:
    """How closely the .tflite answers like its source on real inputs, one at a time as on the
    device: a conversion that changes a model's answers (a layer the converter mishandles, a
    quantization that does not suit the model's activations) shows here, at conversion time,
    rather than on the device. Both models get the same inputs, so a wrong --input-range does not
    show here: `evaluate` on labelled data catches that."""
    x = samples[:limit].astype(np.float32)
    interpreter = make_interpreter(content)
    if model.input_shape and model.input_shape[0] == 1:      # a source fixed at batch 1
        expected = np.concatenate([np.asarray(model.fn(sample[None])) for sample in x])
    else:
        expected = np.asarray(model.fn(x))
    got = np.stack([adapters.run_from_blank_state(interpreter, sample[None])[0] for sample in x])
    expected = expected.reshape(got.shape)
    top2 = np.sort(expected, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]).reshape(len(x), -1).min(axis=1) > 0.05    # near ties may flip
    same = (expected.argmax(-1) == got.argmax(-1)).reshape(len(x), -1).all(axis=1)
    return {
        "inputs": int(len(x)),
        "clear_inputs": int(clear.sum()),          # the source's top two at least 0.05 apart
        "same_top_class": round(float(same[clear].mean()), 4) if clear.any() else None,
        "largest_output_difference": round(float(np.abs(expected - got).max()), 4),
    }


def _card(content: bytes, out: Path, model: LoadedModel, options: ConvertOptions, calibration_source,
          value_range: tuple[float, float] | None = None) -> ModelCard:
    interpreter = make_interpreter(content)
    inp = interpreter.get_input_details()[0]
    outp = interpreter.get_output_details()[0]
    channels = int(inp["shape"][-1]) if len(inp["shape"]) == 4 and options.input_kind == "image" else 0
    n_out = int(outp["shape"][-1])
    if len(options.labels) != n_out:
        raise ValueError(f"{len(options.labels)} labels given ({options.labels}) but the model has {n_out} outputs")
    LabelSet.of(options.labels, options.valence)          # distinct names, valence of known labels only

    def quant(details):
        scale, zero_point = details["quantization"]
        return (float(scale), int(zero_point)) if scale else (None, None)

    in_scale, in_zero = quant(inp)
    out_scale, out_zero = quant(outp)
    intended_use, out_of_scope, limitations = scope_for(options.task)
    return ModelCard(
        name=options.name or out.stem,
        task=options.task,
        labels=list(options.labels),
        valence=dict(options.valence),
        input=InputSpec(
            shape=[int(d) for d in inp["shape"]], dtype=np.dtype(inp["dtype"]).name,
            color={1: "grayscale", 3: "rgb"}.get(channels, "features"),
            value_range=[float(v) for v in (options.value_range if value_range is None else value_range)],
            scale=in_scale, zero_point=in_zero, dynamic_range_db=options.dynamic_range_db,
        ),
        output=OutputSpec(
            shape=[int(d) for d in outp["shape"]], dtype=np.dtype(outp["dtype"]).name,
            scale=out_scale, zero_point=out_zero,
        ),
        quantization=options.quant,
        file=out.name,
        sha256=hashlib.sha256(content).hexdigest(),
        training_data=dict(options.training_data),
        source_model=model.path.name,
        converter={
            "tensorflow": __import__("tensorflow").__version__,
            "loaded_with": model.library,
            "calibration": portable_path(calibration_source) if calibration_source else None,
        },
        notes=list(options.notes),
        intended_use=options.intended_use or intended_use,
        out_of_scope=out_of_scope,
        limitations=limitations + list(options.limitations),
    )


def convert(model_path: str | Path, out: str | Path, options: ConvertOptions = ConvertOptions(),
            calibration: str | Path | None = None) -> ModelCard:
    """Convert and write ``out`` (.tflite) with ``out``.json/.md beside it; returns the card."""
    out = Path(out)
    if out.suffix != ".tflite":
        raise ValueError(f"{out}: the output file must end in .tflite")
    if not out.parent.is_dir():
        raise ValueError(f"{out.parent}: output folder does not exist")
    model = load_model(model_path)
    scaling = input_scaling_layer(model) if options.input_kind == "image" else None
    if scaling and tuple(options.value_range) != (0.0, 255.0):
        raise ValueError(f"{model_path}: the model starts with a {scaling} layer, so it takes raw pixels: convert it "
                         f"with --input-range 0,255 (given: {options.value_range[0]:g},{options.value_range[1]:g}), "
                         "or remove the layer and scale pixels with --input-range")
    shape = static_input_shape(model, options.input_shape)
    samples = None
    if options.quant == "int8" and calibration is None:
        raise ValueError("int8 quantization needs calibration data (--calibration NPZ or image folder)")
    if calibration is not None:
        samples = load_calibration(calibration, shape, options.value_range, options.calibration_samples,
                                   features=options.input_kind == "features")
    content = to_tflite(model, shape, options, samples)
    feature_range = None
    if options.input_kind == "features" and samples is not None:
        feature_range = (round(float(samples.min()), 4), round(float(samples.max()), 4))
    card = _card(content, out, model, options, calibration, feature_range)
    content = add_metadata(content, card)           # labels and normalisation for other tools too
    card.sha256 = hashlib.sha256(content).hexdigest()
    if samples is not None:
        card.converter["agreement"] = agreement(model, content, samples)

    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_bytes(content)
        card.write(out.with_suffix(".json"))
        os.replace(tmp, out)
    except BaseException:
        for leftover in (tmp, out.with_suffix(".json"), out.with_suffix(".md")):
            leftover.unlink(missing_ok=True)
        raise
    return card
