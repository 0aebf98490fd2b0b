"""The Coral Edge TPU delegate: loading it, and choosing between a model and its compiled twin.

Two failures differ and are reported apart: the runtime library missing (``OSError``: install
``libedgetpu1-std``) and the library present but no accelerator answering (``ValueError``: plug
the USB stick in, check ``lsusb`` / permissions). ``auto`` falls back to the CPU with one warning;
``required`` stops with the reason.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

log = logging.getLogger(__name__)

EdgeTpuMode = Literal["off", "auto", "required"]
MODES = ("off", "auto", "required")

#: The runtime library's name per operating system, as in pycoral.
LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}


def library_name(system: str | None = None) -> str:
    system = system or platform.system()
    if system not in LIBRARY:
        raise OSError(f"the Edge TPU runtime has no build for {system}")
    return LIBRARY[system]


def parse_device(device: str | None) -> dict[str, str]:
    """``usb``, ``usb:0``, ``pci``, ``pci:1`` or ``:0`` (the n-th of any kind) -> delegate options."""
    if device is None or device == "":
        return {}
    kind, _, index = device.partition(":")
    if kind not in ("", "usb", "pci") or (index and not index.isdigit()) or (not kind and not index):
        raise ValueError(f"Edge TPU device must be usb, usb:N, pci, pci:N or :N, got {device!r}")
    return {"device": device}


def _load_delegate_function() -> Callable[..., Any]:
    for module in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite.experimental"):
        try:
            return importlib.import_module(module).load_delegate
        except (ImportError, AttributeError):
            continue
    raise OSError("no TFLite interpreter package with load_delegate is installed")


def load_edgetpu_delegate(device: str | None = None, load_delegate: Callable[..., Any] | None = None):
    """Load the delegate; ``OSError`` when the library is absent, ``ValueError`` when no device answers."""
    options = parse_device(device)
    name = library_name()
    try:
        ctypes.CDLL(name)
    except OSError as exc:
        raise OSError(f"{name} not found: install the Edge TPU runtime (libedgetpu1-std built for current TensorFlow Lite; README, Coral) ({exc})") from exc
    load = load_delegate or _load_delegate_function()
    try:
        return load(name, options)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"no Edge TPU answered{' at ' + device if device else ''}: {exc}") from exc


def edgetpu_twin(model: str | Path) -> Path:
    """``face_int8.tflite`` -> ``face_int8_edgetpu.tflite`` (the compiler's naming)."""
    model = Path(model)
    return model if model.stem.endswith("_edgetpu") else model.with_name(model.stem + "_edgetpu.tflite")


def cpu_twin(model: str | Path) -> Path:
    model = Path(model)
    return model.with_name(model.stem.removesuffix("_edgetpu") + ".tflite")


@dataclass
class Placement:
    """Which file to load and with which delegates, and why (for logs and ``affectlite doctor``)."""

    model: Path
    delegates: list
    on_edgetpu: bool
    reason: str


def place_model(model: str | Path, mode: EdgeTpuMode = "off", device: str | None = None,
                load_delegate: Callable[..., Any] | None = None) -> Placement:
    """Decide where ``model`` runs. A compiled twin is used only with a loaded delegate."""
    if mode not in MODES:
        raise ValueError(f"edgetpu must be one of {MODES}, got {mode!r}")
    model = Path(model)
    cpu_model, tpu_model = cpu_twin(model), edgetpu_twin(model)
    if mode == "off":
        return Placement(cpu_model if cpu_model.exists() else model, [], False, "edgetpu = off")
    try:
        delegate = load_edgetpu_delegate(device, load_delegate)
    except (OSError, ValueError) as exc:
        if mode == "required":
            raise RuntimeError(f"edgetpu = required, but {exc}") from exc
        log.warning("Edge TPU not used, running %s on the CPU: %s", cpu_model.name, exc)
        return Placement(cpu_model, [], False, str(exc))
    if not tpu_model.exists():
        message = f"{tpu_model.name} not found (compile {cpu_model.name} with edgetpu_compiler)"
        if mode == "required":
            raise RuntimeError(f"edgetpu = required, but {message}")
        log.warning("Edge TPU found but %s; running on the CPU", message)
        return Placement(cpu_model, [], False, message)
    return Placement(tpu_model, [delegate], True, f"Edge TPU {device or '(first found)'}")
