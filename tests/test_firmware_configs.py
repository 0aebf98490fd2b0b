"""Every ready configuration in firmware_configs/ loads and validates as shipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectlite.config import load

CONFIGS = sorted((Path(__file__).parents[1] / "firmware_configs").glob("*.toml"))


def test_there_is_one_per_target():
    assert {p.stem for p in CONFIGS} == {"raspberry-pi-4", "raspberry-pi-5", "coral-usb", "coral-dev-board", "linux-webcam"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates(path):
    config = load(path, environ={"AFFECTLITE_MQTT_USER": "kiosk", "AFFECTLITE_MQTT_PASSWORD": "secret"})
    assert config["mqtt"]["password"] == "secret"
    if path.stem.startswith("coral"):
        assert config["recognizer"]["edgetpu"] == "required"
    assert load(path, environ={})["mqtt"]["username"] == ""       # secrets are optional


def test_the_service_unit_runs_the_service():
    unit = (CONFIGS[0].parent / "affectlite.service").read_text()
    assert "ExecStart=/opt/affectlite/venv/bin/affectlite run --config /etc/affectlite/config.toml" in unit
    assert "StateDirectory=affectlite" in unit
