"""The live service end to end: real CREMA-D frames in, a real Mosquitto out."""

from __future__ import annotations

import json
import threading

import jsonschema
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from affectlite import config as configuration
from affectlite.service import Service, StdoutSink
from affectlite.sources.memory import MemorySource
from broker import wait_for
from conftest import read_frames
from test_mqtt import Subscriber, schema


@pytest.fixture(scope="module")
def happy_frames(happy_clip):
    return read_frames(happy_clip)


def service_config(broker, tmp_path, **mqtt):
    return configuration.validate({
        "mqtt": {"port": broker.port, "device_id": "lobby", "queue_path": str(tmp_path / "q.sqlite3"),
                 "stats_interval_s": 0.5, "faces": True, "faces_max_hz": 5} | mqtt,
        "states": {"min_duration_s": 0.3},
        "recognizer": {"max_fps": 30},
    }, environ={})


def test_frames_to_events_state_stats_and_commands(broker, tmp_path, happy_frames):
    watcher = Subscriber(broker.port, ["affectlite/lobby/#"])
    frames = happy_frames * 4                                     # about 7.5 s at 30 fps
    service = Service(service_config(broker, tmp_path), source=MemorySource(frames, fps=30))
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        assert wait_for(lambda: watcher.on("affectlite/lobby/state") and
                        json.loads(watcher.on("affectlite/lobby/state")[-1])["people"] == 1, timeout=20)
        events = lambda: [json.loads(p) for p in watcher.on("affectlite/lobby/events")]
        assert wait_for(lambda: any(e["type"] == "state_changed" for e in events()), timeout=20)
        assert events()[0]["type"] == "face_appeared" and events()[0]["track_id"] == 1
        assert wait_for(lambda: len(watcher.on("affectlite/lobby/stats")) >= 1, timeout=10)

        commander = paho.Client(CallbackAPIVersion.VERSION2)
        commander.connect("127.0.0.1", broker.port)
        commander.loop_start()
        # Settings are retained from the start, from the service's own state (no command needed).
        assert wait_for(lambda: watcher.on("affectlite/lobby/privacy/state") == ['{"v":1,"value":"OFF"}'])
        assert watcher.on("affectlite/lobby/paused/state") == ['{"v":1,"value":"OFF"}']
        assert json.loads(watcher.on("affectlite/lobby/negative_valence_s/state")[0])["value"] == 5.0
        commander.publish("affectlite/lobby/set/negative_share", "lots", qos=1)
        commander.publish("affectlite/lobby/set/selfdestruct", "now", qos=1)
        commander.publish("affectlite/lobby/set/privacy", "ON", qos=1)
        commander.publish("affectlite/lobby/set/pause", "", qos=1)
        assert wait_for(lambda: watcher.on("affectlite/lobby/privacy/state")[-1:] == ['{"v":1,"value":"ON"}'], timeout=10)
        # set/pause answers on the Paused switch's own topic
        assert wait_for(lambda: watcher.on("affectlite/lobby/paused/state")[-1:] == ['{"v":1,"value":"ON"}'], timeout=10)
        assert wait_for(lambda: json.loads(watcher.on("affectlite/lobby/state")[-1])["privacy"] is True, timeout=10)
        assert all("explain" not in p for s in watcher.on("affectlite/lobby/state") for p in json.loads(s)["persons"])
        privacy_state = json.loads(watcher.on("affectlite/lobby/state")[-1])
        assert privacy_state["persons"] == [] and privacy_state["people"] == 0
        # and the person in view left, with an event saying so (no ghost for whoever pairs them)
        assert wait_for(lambda: [e["track_id"] for e in events() if e["type"] == "face_left"] == [1], timeout=10)
        # Errors go to a topic of their own, never to a state topic.
        assert wait_for(lambda: len(watcher.on("affectlite/lobby/errors")) == 2, timeout=10)
        share, unknown = (json.loads(p) for p in watcher.on("affectlite/lobby/errors"))
        assert share["command"] == "negative_share" and "must be a number from 0 to 1" in share["error"]
        assert unknown["ok"] is False and "unknown command" in unknown["error"]
        assert len(watcher.on("affectlite/lobby/negative_share/state")) == 1     # only its value
        assert not watcher.on("affectlite/lobby/selfdestruct/state")
        stats_before = len(watcher.on("affectlite/lobby/stats"))
        assert wait_for(lambda: len(watcher.on("affectlite/lobby/stats")) > stats_before, timeout=10)  # still running
        commander.loop_stop()
        commander.disconnect()
    finally:
        service.stop()
        runner.join(timeout=20)
    assert not runner.is_alive()
    assert wait_for(lambda: watcher.on("affectlite/lobby/availability")[-1:] == ["offline"])

    for name, topic in [("mqtt-state", "state"), ("mqtt-event", "events"), ("mqtt-stats", "stats"),
                        ("mqtt-faces", "faces"), ("mqtt-setting", "privacy/state"), ("mqtt-setting", "paused/state"),
                        ("mqtt-command-reply", "errors")]:
        payloads = watcher.on(f"affectlite/lobby/{topic}")
        assert payloads, topic
        for payload in payloads:
            jsonschema.validate(json.loads(payload), schema(name))
    faces = [json.loads(p) for p in watcher.on("affectlite/lobby/faces")]
    assert all(len(f["faces"]) == 1 for f in faces)
    changed = [e for e in (json.loads(p) for p in watcher.on("affectlite/lobby/events")) if e["type"] == "state_changed"]
    assert changed[0]["state"] == "happy"
    watcher.close()


def test_unreachable_broker_does_not_stop_the_service(tmp_path, happy_frames):
    from broker import free_port

    config = configuration.validate({"mqtt": {"port": free_port(), "device_id": "lobby",
                                              "queue_path": str(tmp_path / "q.sqlite3")},
                                     "states": {"min_duration_s": 0.2}, "recognizer": {"max_fps": 30}}, environ={})
    service = Service(config, source=MemorySource(happy_frames, fps=60))
    counters = service.run()
    assert counters.analysed > 10 and counters.events >= 2
    assert service.sink.outbox.path.exists()


def test_without_mqtt_events_go_to_stdout(tmp_path, happy_frames, capsys):
    config = configuration.validate({"mqtt": {"enabled": False, "stats_interval_s": 0.2},
                                     "states": {"min_duration_s": 0.2}, "recognizer": {"max_fps": 60}}, environ={})
    service = Service(config, source=MemorySource(happy_frames, fps=60))
    assert isinstance(service.sink, StdoutSink)
    service.run()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(line["topic"] == "events" and line["type"] == "face_appeared" for line in lines)


def speaking_microphone(monkeypatch) -> None:
    """A stand-in pyaudio whose microphone hears a RAVDESS actor speak (real speech)."""
    import sys

    import numpy as np
    import soundfile

    from conftest import SHARED
    from test_audio_sources import FakeStream, fake_pyaudio

    speech, _ = soundfile.read(SHARED / "data/speech/ravdess/Actor_19/03-01-03-02-02-01-19.flac", dtype="float32")

    def start_stream(self):
        pcm = (speech[-4 * 16000:] * 32767).astype(np.int16)
        for i in range(0, len(pcm), self.chunk):
            self.callback(pcm[i:i + self.chunk].tobytes(), self.chunk, {}, 0)

    monkeypatch.setattr(FakeStream, "start_stream", start_stream)
    device = {"index": 0, "name": "USB mic", "maxInputChannels": 1, "defaultSampleRate": 16000, "rates": {16000}}
    monkeypatch.setitem(sys.modules, "pyaudio", fake_pyaudio([device]))


def test_microphone_adds_voice_and_fused_states(broker, tmp_path, happy_frames, monkeypatch):
    """Audio enabled: a stand-in pyaudio delivers real RAVDESS speech; the retained state carries
    the voice and each person's fused result beside the face's own probabilities."""
    speaking_microphone(monkeypatch)
    config = service_config(broker, tmp_path)
    config["audio"]["enabled"] = True
    config["explain"]["enabled"] = True
    watcher = Subscriber(broker.port, ["affectlite/lobby/state", "affectlite/lobby/events"])
    service = Service(config, source=MemorySource(happy_frames, fps=30))
    service.run()
    states = [json.loads(p) for p in watcher.on("affectlite/lobby/state")]
    with_people = [s for s in states if s["people"] == 1]
    assert with_people and all(s["voice"] is not None for s in with_people)
    for state in states:
        jsonschema.validate(state, schema("mqtt-state"))
    person = with_people[-1]["persons"][0]
    assert set(person["fused"]["probabilities"]) == set(person["probabilities"])
    # explain.enabled: what the fused result rests on, e.g. "face: happy 0.62, voice: angry 0.71"
    explained = person["explain"]
    assert explained["emotion"] == person["fused"]["emotion"]
    assert explained["summary"] == (f"face: {explained['modalities']['face']['emotion']} "
                                    f"{explained['modalities']['face']['p']:.2f}, voice: "
                                    f"{with_people[-1]['voice']['emotion']} {explained['modalities']['voice']['p']:.2f}")
    shares = [m["share"] for m in explained["modalities"].values()]
    assert sum(shares) == pytest.approx(1.0, abs=2e-3)
    events = [json.loads(p) for p in watcher.on("affectlite/lobby/events")]
    changes = [e for e in events if e["type"] == "state_changed"]
    assert changes and all("voice" in e["explain"]["modalities"] for e in changes)
    assert all(e["voice"] is not None and e["fused"]["emotion"] == e["explain"]["emotion"] for e in changes)
    for event in events:
        jsonschema.validate(event, schema("mqtt-event"))
    watcher.close()


def test_an_unsure_voice_counts_as_no_voice(broker, tmp_path, happy_frames, monkeypatch):
    """[audio] min_confidence: the same speech, but a threshold above anything the voice is sure
    of; the states say "no voice" and each person's fused result is the face's own."""
    speaking_microphone(monkeypatch)
    config = service_config(broker, tmp_path)
    config["audio"]["enabled"] = True
    config["audio"]["min_confidence"] = 0.999
    watcher = Subscriber(broker.port, ["affectlite/lobby/state"])
    Service(config, source=MemorySource(happy_frames, fps=30)).run()
    states = [json.loads(p) for p in watcher.on("affectlite/lobby/state")]
    with_people = [s for s in states if s["people"] == 1]
    assert with_people and all(s["voice"] is None for s in with_people)
    for state in with_people:
        person = state["persons"][0]
        assert person["fused"]["probabilities"] == pytest.approx(person["probabilities"], abs=1e-4)
    watcher.close()


def test_missing_microphone_stops_with_a_hint(tmp_path, monkeypatch, happy_frames):
    import sys

    from affectlite.sources.base import SourceError
    from test_audio_sources import fake_pyaudio

    monkeypatch.setitem(sys.modules, "pyaudio", fake_pyaudio([]))
    config = configuration.validate({"audio": {"enabled": True}, "mqtt": {"enabled": False}}, environ={})
    service = Service(config, source=MemorySource(happy_frames[:3]))
    with pytest.raises(SourceError, match="no microphone found"):
        service.run()


def test_missing_camera_stops_before_going_online(broker, tmp_path):
    from affectlite.sources.base import SourceError
    from affectlite.sources.webcam import WebcamSource

    watcher = Subscriber(broker.port, ["affectlite/lobby/availability"])
    service = Service(service_config(broker, tmp_path), source=WebcamSource("/dev/video97"))
    with pytest.raises(SourceError, match="no such camera"):
        service.run()
    assert not wait_for(lambda: watcher.on("affectlite/lobby/availability"), timeout=1.0)
    watcher.close()
