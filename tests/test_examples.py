"""The examples run as written (they double as smoke tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "examples"


def run(script, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_analyze_video():
    result = run("analyze_video.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= 8 and all("face #1" in line for line in lines)


def test_analyze_photo(tmp_path, frame):
    from PIL import Image

    Image.fromarray(frame).save(tmp_path / "photo.png")
    result = run("analyze_photo.py", tmp_path / "photo.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 face(s)")


def test_watch_events(broker):
    """Runs against a real broker, receives the retained availability, and is stopped."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    device = mqtt.Client(CallbackAPIVersion.VERSION2)
    device.connect("127.0.0.1", broker.port)
    device.loop_start()
    device.publish("affectlite/lobby/availability", "online", qos=1, retain=True).wait_for_publish(5)
    device.loop_stop()
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "watch_events.py"), "127.0.0.1", str(broker.port)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": ""})
    try:
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert line.strip() == "affectlite/lobby/availability online"
