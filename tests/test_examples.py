"""The examples run as written (they double as smoke tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "examples"


def run(script, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_analyze_video():
    result = run("python_api/analyze_video.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= 8 and all("face #1" in line for line in lines)


def test_analyze_photo(tmp_path, frame):
    from PIL import Image

    Image.fromarray(frame).save(tmp_path / "photo.png")
    result = run("python_api/analyze_photo.py", tmp_path / "photo.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{tmp_path / 'photo.png'}: 1 face(s)")


def test_analyze_photo_without_an_argument_reads_the_sample_photo():
    result = run("python_api/analyze_photo.py")
    assert result.returncode == 0, result.stderr
    assert "1001_DFA_HAP_XX.jpg: 1 face(s)" in result.stdout and "happy" in result.stdout


def test_photos_and_video(tmp_path, frame):
    from PIL import Image

    Image.fromarray(frame).save(tmp_path / "one.png")
    Image.fromarray(frame[:, ::-1]).save(tmp_path / "two.jpg")
    (tmp_path / "notes.txt").write_text("not a photo")
    result = run("python_api/photos_and_video.py", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["one.png", "two.jpg"]
    video = [line for line in lines if line.startswith("video")]
    assert len(video) >= 3 and all("#1 " in line for line in video)


class Webhook:
    """A local HTTP endpoint standing in for Home Assistant's webhook: records what is posted."""

    def __init__(self):
        import http.server
        import json
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/webhook/affectlite"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_alerts_reach_the_webhook_also_those_sent_while_it_was_away(broker):
    import json

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from broker import wait_for

    alert = {"v": 1, "id": "a" * 32, "type": "alert", "time": 1.0, "track_id": 2, "alert": "negative_valence",
             "held_s": 6.2, "evidence": {"angry": 0.62, "disgust": 0.02, "fear": 0.05, "happy": 0.01,
                                         "neutral": 0.2, "sad": 0.08, "surprise": 0.02}}
    device = mqtt.Client(CallbackAPIVersion.VERSION2)
    device.connect("127.0.0.1", broker.port)
    device.loop_start()
    send = lambda topic, payload: device.publish(topic, payload, qos=1).wait_for_publish(5)
    hook = Webhook()
    command = [sys.executable, str(EXAMPLES / "alerts" / "alerts.py"), "--host", "127.0.0.1", "--port", str(broker.port),
               "--webhook", hook.url, "--client-id", "alerts-test"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("listening on 127.0.0.1")
        send("affectlite/lobby/availability", "online")
        assert wait_for(lambda: any(p["text"] == "lobby: online" for p in hook.received)), hook.received
        send("affectlite/lobby/events", json.dumps({**alert, "type": "face_appeared"}))   # not an alert
        send("affectlite/lobby/events", "{not json")                                       # malformed
        send("affectlite/lobby/events", json.dumps(alert))
        assert wait_for(lambda: len(hook.received) == 2)
        assert hook.received[1]["text"] == "lobby: ALERT negative valence (held 6 s by person 2; mostly angry 62%)"
        assert hook.received[1]["event"]["id"] == alert["id"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # While the subscriber is down an alert is raised; its persistent session gets it on return.
    send("affectlite/hall/events", json.dumps({**alert, "id": "b" * 32, "alert": "negative_share", "share": 0.67,
                                              "people": 3}))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: any(p["event"] and p["event"]["id"] == "b" * 32 for p in hook.received), timeout=15)
        assert hook.received[-1]["text"] == "hall: ALERT negative share (67% of 3 people; mostly angry 62%)"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        hook.close()
        device.loop_stop()


def test_custom_model_end_to_end(tmp_path, publictest_path):
    """Train, convert with another input contract and label order, check, configure, analyse."""
    import json

    result = subprocess.run([sys.executable, str(EXAMPLES / "custom_model" / "custom_model.py"), "--out", str(tmp_path),
                             "--data", str(publictest_path), "--samples", "1500", "--epochs", "1"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "summary: 6 of 6 ops on the Edge TPU, 0 on the CPU -> every op mappable" in result.stdout
    card = json.loads((tmp_path / "my_model_int8.json").read_text())
    assert card["labels"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert card["input"]["shape"] == [1, 64, 64, 1] and card["input"]["value_range"] == [-1.0, 1.0]
    assert "faces analysed by my model in the sample clip" in result.stdout
    assert int(result.stdout.split(" faces analysed")[0].split()[-1]) >= 4
