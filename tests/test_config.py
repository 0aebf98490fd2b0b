"""Configuration: defaults, environment secrets, and errors that name the key, value and what is allowed."""

from __future__ import annotations

import pytest

from affectlite import config as configuration
from affectlite.config import ConfigError, load, to_toml, validate


def test_no_file_gives_working_defaults():
    config = load(None, environ={})
    assert config["source"]["kind"] == "file" and config["source"]["path"] == ""
    assert config["mqtt"]["device_id"] and config["mqtt"]["client_id"] == f"affectlite-{config['mqtt']['device_id']}"
    assert config["recognizer"]["edgetpu"] == "off"


def test_a_file_with_secrets_from_the_environment(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[mqtt]\nhost = "broker.lan"\nusername = "kiosk"\npassword = "${MQTT_PASSWORD}"\n'
                    'device_id = "${DEVICE:-lobby}"\n[alerts]\nnegative_valence_s = 8\n')
    config = load(path, environ={"MQTT_PASSWORD": "s3cret"})
    assert config["mqtt"]["password"] == "s3cret" and config["mqtt"]["device_id"] == "lobby"
    assert config["alerts"]["negative_valence_s"] == 8
    printed = to_toml(config)
    assert "s3cret" not in printed and 'password = "********"' in printed
    assert 'host = "broker.lan"' in printed


@pytest.mark.parametrize("raw, message", [
    ({"mqtt": {"prot": 1883}}, "mqtt.prot: unknown key; allowed in [mqtt]: enabled, host, port"),
    ({"camera": {}}, "unknown section(s) ['camera']"),
    ({"mqtt": {"port": "1883"}}, "mqtt.port: '1883' is not an integer"),
    ({"mqtt": {"port": 70000}}, "mqtt.port: 70000 is out of range (allowed: 1..65535)"),
    ({"source": {"kind": "usb"}}, "source.kind: 'usb' is not allowed; choose one of 'file', 'webcam', 'picamera'"),
    ({"mqtt": {"tls": "yes"}}, "mqtt.tls: 'yes' is not true or false"),
    ({"states": {"smoothing": 0}}, "states.smoothing: 0.0 is out of range (allowed: 0 < x <= 1)"),
    ({"mqtt": {"password": "x"}}, "mqtt.password: a password needs mqtt.username"),
    ({"mqtt": {"cert_file": "/etc/hostname"}}, "give both for a client certificate"),
    ({"mqtt": {"prefix": "a/b"}}, "free of '+', '#' and '/'"),
    ({"source": {"path": "/no/such/clip.mp4"}}, "source.path: '/no/such/clip.mp4' does not exist"),
    ({"mqtt": {"password": "${NOPE}", "username": "u"}}, "mqtt.password: environment variable NOPE is not set"),
    ({"mqtt": []}, "mqtt: must be a table"),
])
def test_errors_name_the_key_the_value_and_what_is_allowed(raw, message):
    with pytest.raises(ConfigError) as error:
        validate(raw, environ={})
    assert message in str(error.value)


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)
    with pytest.raises(ConfigError, match="configuration file not found"):
        load(tmp_path / "none.toml")


def test_every_key_is_documented():
    for section, keys in configuration.SCHEMA.items():
        for name, key in keys.items():
            assert key.help, f"{section}.{name} has no description"


def test_run_command_prints_the_config_and_rejects_bad_files(tmp_path, capsys):
    from affectlite.cli import main

    good = tmp_path / "kiosk.toml"
    good.write_text('[mqtt]\nhost = "broker.lan"\n')
    assert main(["run", "--config", str(good), "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert 'host = "broker.lan"' in printed and "[states]" in printed
    assert validate(__import__("tomllib").loads(printed.replace("********", "")), environ={})["mqtt"]["host"] == "broker.lan"

    bad = tmp_path / "bad.toml"
    bad.write_text("[recognizer]\nedgetpu = \"maybe\"\n")
    assert main(["run", "--config", str(bad)]) == 2
    assert "recognizer.edgetpu: 'maybe' is not allowed; choose one of 'off', 'auto', 'required'" in capsys.readouterr().err


@pytest.mark.parametrize("section, key, value, message", [
    ("recognizer", "max_fps", float("inf"), "is not a finite number"),
    ("states", "face_timeout_s", float("inf"), "is not a finite number"),
    ("states", "window_s", float("nan"), "is not a finite number"),
    ("recognizer", "threads", 100000, r"out of range \(allowed: 1..64\)"),
    ("source", "width", 10**9, r"out of range \(allowed: 16..8192\)"),
    ("mqtt", "queue_max_messages", 10**12, "out of range"),
])
def test_every_number_is_finite_and_bounded(section, key, value, message):
    """inf, nan and absurd sizes (100,000 interpreter threads exhaust the machine) are refused
    with the key named, before anything starts."""
    with pytest.raises(ConfigError, match=f"{section}.{key}: .*{message}"):
        validate({section: {key: value}}, environ={})


@pytest.mark.parametrize("payload", ['"0.5"', "true", "1" + "0" * 400, "[" * 100000, "NaN", "Infinity", "", "2"])
def test_threshold_commands_take_finite_json_numbers_only(payload):
    """A quoted number, a boolean, a 400-digit number and a 100,000-deep array each get one
    clear message (no traceback, nothing accepted)."""
    from affectlite.service.commands import number

    with pytest.raises(ValueError, match="negative_share must be a number from 0 to 1, got"):
        number(payload, 0, 1, "negative_share")
    assert number("0.25", 0, 1, "negative_share") == 0.25 and number("1", 0, 1, "negative_share") == 1.0


@pytest.mark.parametrize("content, message", [
    ("-----BEGIN CERTIFICATE-----\ngarbage inside\n-----END CERTIFICATE-----\n", "is not a usable CA certificate"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n", "holds a private key, not a CA certificate"),
])
def test_a_ca_file_that_is_pem_but_no_certificate_is_one_line_at_the_check(tmp_path, capsys, content, message):
    """Loaded with ssl when the configuration is checked: a one-line cause, not an ssl traceback at connect."""
    from affectlite.cli import main

    ca = tmp_path / "ca.pem"
    ca.write_text(content)
    with pytest.raises(configuration.ConfigError, match=message) as caught:
        configuration.validate({"mqtt": {"tls": True, "ca_file": str(ca)}}, environ={})
    assert "\n" not in str(caught.value) and "mqtt.ca_file" in str(caught.value)
    config = tmp_path / "c.toml"
    config.write_text(f'[mqtt]\ntls = true\nca_file = "{ca}"\n')
    assert main(["run", "--config", str(config), "--print-config"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and message in error
