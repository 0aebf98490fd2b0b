"""Installing on a device: the install script's steps (dry run) and `affectlite doctor --config`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from affectlite.cli import main
from broker import free_port

REPO = Path(__file__).parents[1]
SCRIPT = REPO / "scripts" / "install-pi.sh"


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "--dry-run", *args], capture_output=True, text=True, timeout=60)


def commands(result: subprocess.CompletedProcess) -> list[str]:
    return [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]


def test_raspberry_pi_steps_in_order():
    result = dry_run("--target", "raspberry-pi-4")
    assert result.returncode == 0, result.stderr
    steps = commands(result)
    apt = next(c for c in steps if c.startswith("apt-get install"))
    assert {"python3-picamera2", "libportaudio2", "python3-pyaudio", "python3-venv"} <= set(apt.split())
    venv = steps.index("python3 -m venv --system-site-packages /opt/affectlite/venv")
    pip = next(i for i, c in enumerate(steps) if c.startswith("/opt/affectlite/venv/bin/pip install") and "[pi,audio]" in c)
    config = steps.index(f"install -D -m 0644 {REPO}/firmware_configs/raspberry-pi-4.toml /etc/affectlite/config.toml")
    unit = steps.index(f"install -m 0644 {REPO}/firmware_configs/affectlite.service /etc/systemd/system/affectlite.service")
    doctor = steps.index("runuser -u affectlite -- /opt/affectlite/venv/bin/affectlite doctor --config /etc/affectlite/config.toml")
    assert steps.index(apt) < venv < pip < config < unit < doctor < steps.index("systemctl enable --now affectlite")
    assert any("--groups video,audio affectlite" in c for c in steps)
    # apt's picamera2 is built against the system's numpy: the venv keeps it (python3 is the system's here)
    system_numpy = subprocess.run(["python3", "-c", "import numpy; print(numpy.__version__)"], capture_output=True,
                                  text=True, check=True).stdout.strip()
    assert steps[pip].endswith(f"[pi,audio] numpy=={system_numpy}")
    assert not any("mosquitto" in c for c in steps)                  # no broker unless asked


def test_broker_option_installs_the_shipped_mosquitto_files():
    steps = commands(dry_run("--target", "raspberry-pi-5", "--broker"))
    assert f"install -m 0644 {REPO}/firmware_configs/mosquitto/affectlite.conf /etc/mosquitto/conf.d/affectlite.conf" in steps
    assert any(c.startswith("mosquitto_passwd -c -b /etc/mosquitto/affectlite.passwd") and c.endswith("<generated>")
               for c in steps)
    for acl in ("affectlite.acl", "kiosk.acl"):
        assert f"install -m 0640 -g mosquitto {REPO}/firmware_configs/mosquitto/{acl} /etc/mosquitto/{acl}" in steps
    certs = next(c for c in steps if "make-certs.sh" in c)     # the TLS listeners' certificate, for this host's names
    assert certs.startswith(f"{REPO}/firmware_configs/mosquitto/make-certs.sh --out /etc/mosquitto/certs ")
    assert steps.index(certs) < steps.index("systemctl restart mosquitto")


def test_coral_needs_the_compiled_model_and_copies_it_with_its_twin(tmp_path):
    result = dry_run("--target", "coral-usb")
    assert result.returncode == 2 and "needs --edgetpu-model" in result.stderr
    compiled = tmp_path / "face_expression_int8_edgetpu.tflite"
    compiled.write_bytes(b"x")
    result = dry_run("--target", "coral-usb", "--edgetpu-model", str(compiled))
    assert result.returncode == 2 and "face_expression_int8.json must sit beside it" in result.stderr
    (tmp_path / "face_expression_int8.tflite").write_bytes(b"x")
    (tmp_path / "face_expression_int8.json").write_text("{}")
    result = dry_run("--target", "coral-dev-board", "--edgetpu-model", str(compiled))
    assert result.returncode == 0, result.stderr
    steps = commands(result)
    assert any(c.startswith("install -m 0644") and c.endswith("/var/lib/affectlite/models/") and str(compiled) in c
               for c in steps)
    assert any("plugdev" in c for c in steps) and any("apex" in c for c in steps)
    assert "Edge TPU runtime must already be installed" in result.stdout


@pytest.mark.parametrize("host", ["Lobby Pi.local", "raspberrypi", "KIOSK_2.lan", "--weird--"])
def test_broker_user_is_the_device_id_the_service_derives(tmp_path, host):
    """The install script names the device's MQTT user after the host as the service names the
    device (mqtt.device_id empty): the ACL matches the user name to the topic level, so a
    mismatch would make the broker drop every message silently."""
    import os

    from affectlite.config import safe_device_id

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "hostname").write_text(f"#!/bin/sh\necho '{host}'\n")
    (fake / "hostname").chmod(0o755)
    result = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--target", "raspberry-pi-4", "--broker"],
                            capture_output=True, text=True, timeout=60,
                            env=os.environ | {"PATH": f"{fake}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    line = next(c for c in commands(result) if c.startswith("mosquitto_passwd -c -b"))
    assert line.split()[-2] == safe_device_id(host)


@pytest.mark.parametrize("args, message", [
    ((), "--target is required"),
    (("--target", "toaster"), "unknown target 'toaster'"),
    (("--target", "raspberry-pi-4", "--fast"), "unknown option '--fast'"),
])
def test_bad_arguments(args, message):
    result = dry_run(*args)
    assert result.returncode == 2 and message in result.stderr


def test_doctor_confirms_a_configuration(tmp_path, capsys, broker):
    config = tmp_path / "device.toml"
    config.write_text(f"[recognizer]\nthreads = 2\n[mqtt]\nport = {broker.port}\ndevice_id = \"hall\"\n"
                      "[fusion]\nmodel = \"bundled\"\n")
    assert main(["doctor", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "expression model: face_expression_int8.tflite on the CPU (edgetpu = off)" in out
    assert "fusion model: fusion_lstm_int8, 8 steps of 0.25 s" in out
    assert f"MQTT broker localhost:{broker.port}: reachable, connection accepted, delivers under affectlite/hall/" in out
    assert "opened, first frame 480x360" in out                     # the bundled clip, as run would replay it
    assert "message queue: " in out and "MB free on that file system" in out


def test_doctor_says_when_run_would_fail(tmp_path, capsys, monkeypatch):
    """The shipped webcam configuration on a machine without that camera or a microphone: doctor
    exits 1 naming both, as `run` would fail on them."""
    import sys

    from test_audio_sources import fake_pyaudio

    monkeypatch.setitem(sys.modules, "pyaudio", fake_pyaudio([]))
    config = tmp_path / "webcam.toml"
    config.write_text((REPO / "firmware_configs" / "linux-webcam.toml").read_text()
                      .replace('"/dev/video0"', f'"{tmp_path / "video9"}"')
                      .replace('queue_path = "~/.local/state/affectlite/outbox.sqlite3"',
                               f'queue_path = "{tmp_path / "q.sqlite3"}"\nport = {free_port()}'))
    assert main(["doctor", "--config", str(config), "--json"]) == 1
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    problems = " | ".join(report["problems"])
    assert "PROBLEM: source (webcam): " in problems and "video9" in problems
    assert "PROBLEM: microphone: no microphone found" in problems
    assert any("not reachable" in line for line in report["sections"]["configuration"])   # queued, not a problem


def test_doctor_names_refused_credentials(tmp_path, capsys):
    """A broker that wants a password the configuration does not give: run would never deliver."""
    from broker import Broker

    import subprocess

    passwords = tmp_path / "passwd"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "device", "secret"], check=True)
    broker = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {passwords}\n")
    broker.start()
    try:
        config = tmp_path / "c.toml"
        config.write_text(f"[mqtt]\nport = {broker.port}\nusername = \"device\"\npassword = \"wrong\"\n")
        assert main(["doctor", "--config", str(config)]) == 1
        out = capsys.readouterr().out
        assert "refused the connection" in out and "check mqtt.username and mqtt.password" in out
    finally:
        broker.stop()


def test_doctor_names_what_stops_a_coral_configuration(capsys):
    assert main(["doctor", "--config", str(REPO / "firmware_configs" / "coral-usb.toml")]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM: expression model:" in out and "face_expression_int8_edgetpu.tflite" in out


def test_doctor_with_a_broken_configuration_or_absent_broker(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[recognizer]\nthread = 2\n")
    assert main(["doctor", "--config", str(bad)]) == 1
    assert "PROBLEM:" in capsys.readouterr().out
    missing = tmp_path / "missing-fusion.toml"
    missing.write_text(f"[mqtt]\nenabled = false\n[fusion]\nmodel = \"{tmp_path / 'fusion.tflite'}\"\n")
    assert main(["doctor", "--config", str(missing)]) == 1
    assert "PROBLEM: fusion model:" in capsys.readouterr().out
    away = tmp_path / "away.toml"
    away.write_text(f"[mqtt]\nport = {free_port()}\n")
    assert main(["doctor", "--config", str(away)]) == 0          # the service would start and queue
    assert "not reachable" in capsys.readouterr().out
