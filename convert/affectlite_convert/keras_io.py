"""Loading a user's model: ``.keras``, ``.h5`` or a SavedModel folder, as one callable.

Models arrive from Keras 3, from tf_keras (Keras 2) and from plain TensorFlow. Each format is
tried with the library that wrote it first and the other one second, and any failure becomes a
:class:`ModelLoadError` that names the file and what was wrong with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


class ModelLoadError(ValueError):
    """The model file is missing, corrupt or of a kind the toolchain cannot read."""


@dataclass
class LoadedModel:
    """A model reduced to what conversion and evaluation need."""

    path: Path
    fn: Callable[[Any], Any]          # float batch -> float batch (inference mode)
    input_shape: tuple                 # as declared; None for free dimensions
    output_shape: tuple
    library: str                       # "keras", "tf_keras" or "saved_model"
    keras_model: Any = None            # the Keras object when there is one


def load_model(path: str | Path) -> LoadedModel:
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file or folder")
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise ModelLoadError(f"{path}: a folder, but not a SavedModel (no saved_model.pb)")
        return _load_saved_model(path)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        order = ("keras", "tf_keras")
    elif suffix in (".h5", ".hdf5"):
        order = ("tf_keras", "keras")
    else:
        raise ModelLoadError(f"{path}: unknown model format '{suffix}'; expected .keras, .h5 or a SavedModel folder")
    errors = []
    for library in order:
        try:
            module = __import__(library)
            model = module.models.load_model(path, compile=False)
        except Exception as exc:  # each library raises its own types for a bad file
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            errors.append(f"{library}: {type(exc).__name__}: {first_line[:300]}")
            continue
        return LoadedModel(
            path=path,
            fn=lambda x, m=model: m(x, training=False),
            input_shape=tuple(model.inputs[0].shape),
            output_shape=tuple(model.outputs[0].shape),
            library=library,
            keras_model=model,
        )
    raise ModelLoadError(f"{path}: cannot load the model ({'; '.join(errors)})")


def _load_saved_model(path: Path) -> LoadedModel:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
    except Exception as exc:
        raise ModelLoadError(f"{path}: cannot load the SavedModel ({exc})") from exc
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise ModelLoadError(f"{path}: the serving signature has {len(inputs)} inputs; only single-input models are supported")
    (input_name, spec), = inputs.items()
    outputs = signature.structured_outputs
    output_name = sorted(outputs)[0]

    def fn(x):
        # Referencing `loaded` keeps the SavedModel's variables alive as long as `fn` is.
        return loaded.signatures["serving_default"](**{input_name: x})[output_name]

    return LoadedModel(
        path=path, fn=fn, input_shape=tuple(spec.shape.as_list()),
        output_shape=tuple(outputs[output_name].shape.as_list()), library="saved_model", keras_model=None,
    )
