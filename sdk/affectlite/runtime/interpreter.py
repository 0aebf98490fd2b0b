"""Loading a TFLite interpreter, in exactly one place.

Devices differ in what they have: ai-edge-litert is the current package, older Raspberry Pi
images carry tflite-runtime, a workstation has TensorFlow. The first one importable wins, and
:func:`interpreter_backend` says which one that was (``affectlite doctor`` and model cards
report it).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from affectlite.runtime.quiet import native_stderr_quiet

_BACKENDS = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite"),
)


def _interpreter_module() -> tuple[str, Any]:
    errors = []
    for name, module in _BACKENDS:
        try:
            return name, importlib.import_module(module)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise RuntimeError(
        "no TFLite interpreter is installed; install one with `pip install ai-edge-litert` "
        "(or tflite-runtime on older Raspberry Pi OS images). Tried: " + "; ".join(errors)
    )


def interpreter_backend() -> tuple[str, str]:
    """(package name, version) of the interpreter that :func:`make_interpreter` uses."""
    from importlib import metadata

    name, _ = _interpreter_module()
    try:
        return name, metadata.version(name)
    except metadata.PackageNotFoundError:
        return name, "unknown"


def make_interpreter(model: str | Path | bytes, num_threads: int = 1, delegates: list | None = None):
    """Build and allocate an interpreter for a model file or its bytes.

    A missing, empty or corrupt file raises ``ValueError`` naming the file, instead of the
    interpreter's bare flatbuffer error.
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    _, module = _interpreter_module()
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if delegates:
        kwargs["experimental_delegates"] = delegates
    if isinstance(model, (bytes, bytearray)):
        kwargs["model_content"] = bytes(model)
        label = "<model bytes>"
    else:
        path = Path(model)
        if not path.is_file():
            raise ValueError(f"{path}: model file not found")
        if path.stat().st_size < 16:
            raise ValueError(f"{path}: model file is empty or truncated ({path.stat().st_size} bytes)")
        kwargs["model_path"] = str(path)
        label = str(path)
    try:
        with native_stderr_quiet():
            interpreter = module.Interpreter(**kwargs)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{label}: not a valid TFLite model ({str(exc).strip().splitlines()[0]})") from exc
    return interpreter
