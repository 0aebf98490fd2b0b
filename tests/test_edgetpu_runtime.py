"""Edge TPU placement: off / auto / required, compiled twins, device strings.

No Coral can be attached here, so the delegate loader is the one piece replaced, through the
`load_delegate` parameter that follows the interpreter packages' `load_delegate(library, options)`.
What stays untested here: a real delegate on a real USB or PCIe Edge TPU.
"""

from __future__ import annotations

import logging

import pytest

from affectlite.runtime import edgetpu
from affectlite.runtime.edgetpu import edgetpu_twin, parse_device, place_model


@pytest.fixture
def models(tmp_path):
    cpu = tmp_path / "face_int8.tflite"
    cpu.write_bytes(b"cpu")
    return cpu


@pytest.fixture
def library_present(monkeypatch):
    """Point the runtime-library name at a library every Linux has, so CDLL succeeds."""
    monkeypatch.setitem(edgetpu.LIBRARY, "Linux", "libc.so.6")


def test_off_uses_the_cpu_model(models):
    placement = place_model(models, "off")
    assert placement.model == models and placement.delegates == [] and not placement.on_edgetpu


def test_auto_without_the_runtime_library_falls_back_with_one_warning(models, caplog):
    with caplog.at_level(logging.WARNING):
        placement = place_model(models, "auto")
    assert placement.model == models and not placement.on_edgetpu
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "libedgetpu" in warnings[0].getMessage()


def test_required_without_the_runtime_library_stops(models):
    with pytest.raises(RuntimeError, match="edgetpu = required, but libedgetpu.so.1 not found"):
        place_model(models, "required")


def test_library_present_but_no_device(models, library_present):
    def no_device(library, options):
        raise ValueError("Failed to load delegate from libc.so.6")

    with pytest.raises(ValueError, match="no Edge TPU answered at usb:0"):
        edgetpu.load_edgetpu_delegate("usb:0", load_delegate=no_device)
    assert place_model(models, "auto", "usb:0", load_delegate=no_device).model == models
    with pytest.raises(RuntimeError, match="no Edge TPU answered"):
        place_model(models, "required", "usb:0", load_delegate=no_device)


def test_delegate_loaded_picks_the_compiled_twin(models, library_present):
    calls = []

    def loaded(library, options):
        calls.append((library, options))
        return "delegate"

    twin = edgetpu_twin(models)
    twin.write_bytes(b"tpu")
    placement = place_model(models, "required", "pci:1", load_delegate=loaded)
    assert placement.model == twin and placement.delegates == ["delegate"] and placement.on_edgetpu
    assert calls == [("libc.so.6", {"device": "pci:1"})]
    # given the twin's name, the CPU twin is chosen when the Edge TPU is off
    assert place_model(twin, "off").model == models


def test_delegate_loaded_but_no_compiled_twin(models, library_present):
    placement = place_model(models, "auto", load_delegate=lambda library, options: "delegate")
    assert placement.model == models and not placement.on_edgetpu and "edgetpu_compiler" in placement.reason
    with pytest.raises(RuntimeError, match="face_int8_edgetpu.tflite not found"):
        place_model(models, "required", load_delegate=lambda library, options: "delegate")


@pytest.mark.parametrize("device, options", [(None, {}), ("usb", {"device": "usb"}), ("usb:0", {"device": "usb:0"}),
                                             ("pci", {"device": "pci"}), (":1", {"device": ":1"})])
def test_device_strings(device, options):
    assert parse_device(device) == options


@pytest.mark.parametrize("device", ["usb0", "tpu:0", "usb:x", ":"])
def test_bad_device_strings(device):
    with pytest.raises(ValueError, match="Edge TPU device must be"):
        parse_device(device)


def test_library_names_per_system():
    assert edgetpu.library_name("Linux") == "libedgetpu.so.1"
    assert edgetpu.library_name("Darwin") == "libedgetpu.1.dylib"
    assert edgetpu.library_name("Windows") == "edgetpu.dll"
    with pytest.raises(OSError):
        edgetpu.library_name("Plan9")
