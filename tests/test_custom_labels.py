"""A user's own face model with its own classes ("engaged", "bored", "neutral"), from conversion to
the device: the card carries the labels and their valence, and states, alerts, MQTT payloads, the
JSON Schemas, Home Assistant and the analyze output all speak them."""

from __future__ import annotations

import csv
import io
import json
import threading

import jsonschema
import numpy as np
import pytest

from affectlite import EmotionRecognizer, config as configuration
from affectlite.labels import EMOTIONS, LabelSet
from affectlite.recognizer import RecognizerOptions
from affectlite.schemas import schema
from affectlite.service import Service
from affectlite.sources.memory import MemorySource
from affectlite.states import AlertOptions, StateOptions, StateTracker
from broker import wait_for
from conftest import read_frames, tiny_cnn
from test_mqtt import Subscriber

LABELS = ["engaged", "bored", "neutral"]
ENGAGEMENT = LabelSet.of(LABELS, {"engaged": "positive", "bored": "negative"})


@pytest.fixture(scope="module")
def engagement_model(tmp_path_factory, small_faces):
    """A three-class CNN fitted for a few steps on real faces (happy -> engaged, neutral ->
    neutral, the rest -> bored), converted to int8 with its labels and their valence."""
    from affectlite_convert.cli import main as convert

    with np.load(small_faces) as data:
        model = tiny_cnn(data["x"], np.select([data["y"] == 3, data["y"] == 4], [0, 2], 1), 3)
    folder = tmp_path_factory.mktemp("engagement")
    model.save(folder / "engagement.keras")
    out = folder / "engagement_int8.tflite"
    assert convert(["convert", str(folder / "engagement.keras"), "--labels", ",".join(LABELS),
                    "--valence", "engaged=positive,bored=negative", "--calibration", str(small_faces),
                    "--out", str(out)]) == 0
    return out


def test_the_card_carries_the_labels_and_their_valence(engagement_model):
    card = json.loads(engagement_model.with_suffix(".json").read_text())
    assert card["labels"] == LABELS
    assert card["valence"] == {"engaged": "positive", "bored": "negative"}
    assert "- Valence: engaged positive, bored negative" in engagement_model.with_suffix(".md").read_text()


def test_convert_checks_labels_and_valence_against_the_model(tmp_path, engagement_model, small_faces, capsys):
    from affectlite_convert.cli import main as convert

    keras_model = engagement_model.with_name("engagement.keras")
    assert convert(["convert", str(keras_model), "--labels", "a,b,c,d", "--calibration", str(small_faces),
                    "--out", str(tmp_path / "x.tflite")]) == 2
    assert "4 labels given" in capsys.readouterr().err
    assert convert(["convert", str(keras_model), "--labels", ",".join(LABELS), "--valence", "sleepy=negative",
                    "--calibration", str(small_faces), "--out", str(tmp_path / "y.tflite")]) == 2
    assert "valence given for ['sleepy']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        convert(["convert", str(keras_model), "--labels", ",".join(LABELS), "--valence", "bored=grumpy",
                 "--out", str(tmp_path / "z.tflite")])
    assert not list(tmp_path.glob("*.tflite"))


def test_the_recognizer_answers_in_the_models_labels(engagement_model, frame):
    with EmotionRecognizer(RecognizerOptions(expression_model=str(engagement_model))) as recognizer:
        assert recognizer.labels == ENGAGEMENT
        faces = recognizer.analyze_image(frame)
        with pytest.raises(ValueError, match="fuses face and voice over the seven emotions"):
            next(recognizer.analyze_video(engagement_model, listen=True))
    assert len(faces) == 1
    face = faces[0]
    assert list(face.probabilities) == LABELS and sum(face.probabilities.values()) == pytest.approx(1, abs=0.02)
    assert face.emotion == max(face.probabilities, key=face.probabilities.get)
    assert face.valence == ENGAGEMENT.valence[face.emotion]


def test_analyze_writes_the_models_columns_and_valid_records(engagement_model, happy_clip, capsys):
    from affectlite.cli import main

    assert main(["analyze", str(happy_clip), "--model", str(engagement_model), "--every", "10"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows
    record_schema = schema("analyze-record", ENGAGEMENT)
    for row in rows:
        jsonschema.validate(row, record_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rows[0], schema("analyze-record"))          # the seven-emotion schema refuses it

    assert main(["analyze", str(happy_clip), "--model", str(engagement_model), "--every", "10", "--format", "csv"]) == 0
    header = next(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [c for c in header if c.startswith("p_")] == ["p_engaged", "p_bored", "p_neutral"]


def test_states_and_alerts_follow_the_cards_valence():
    """A bored person (negative in this card) held for 1 s raises the negative-valence alert; an
    engaged one never does."""
    tracker = StateTracker(StateOptions(min_duration_s=0.2, min_confidence=0.5),
                           AlertOptions(negative_valence_s=1.0), wall_clock=lambda: 1000.0, labels=ENGAGEMENT)
    events = []
    for step in range(40):
        now = step * 0.1
        events += tracker.update(now, [(1, [0.05, 0.9, 0.05]), (2, [0.9, 0.05, 0.05])])
    changed = {e.track_id: e.data["state"] for e in events if e.type == "state_changed"}
    assert changed == {1: "bored", 2: "engaged"}
    alerts = [e for e in events if e.type == "alert"]
    assert [(a.track_id, a.data["alert"]) for a in alerts] == [(1, "negative_valence")]
    assert set(alerts[0].data["evidence"]) == set(LABELS)
    person = tracker.snapshot(4.0)[0]
    assert person["valence"] == "negative" and list(person["probabilities"]) == LABELS


def test_the_service_publishes_the_models_labels(broker, tmp_path, engagement_model, happy_clip):
    config = configuration.validate({
        "mqtt": {"port": broker.port, "device_id": "lobby", "queue_path": str(tmp_path / "q.sqlite3")},
        "recognizer": {"model": str(engagement_model), "max_fps": 30},
        "states": {"min_duration_s": 0.3, "min_confidence": 0.34},
    }, environ={})
    watcher = Subscriber(broker.port, ["affectlite/lobby/#", "homeassistant/device/lobby/config"])
    service = Service(config, source=MemorySource(read_frames(happy_clip) * 3, fps=30))
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        def states():
            return [json.loads(p) for p in watcher.on("affectlite/lobby/state")]

        assert wait_for(lambda: any(s["people"] == 1 and s["persons"][0]["state"] != "uncertain" for s in states()),
                        timeout=30)
        assert wait_for(lambda: watcher.on("homeassistant/device/lobby/config"))
    finally:
        service.stop()
        runner.join(timeout=20)
    state_schema, event_schema = schema("mqtt-state", ENGAGEMENT), schema("mqtt-event", ENGAGEMENT)
    for state in states():
        jsonschema.validate(state, state_schema)
    settled = next(s for s in states() if s["people"] == 1 and s["persons"][0]["state"] != "uncertain")
    assert settled["dominant_emotion"] in LABELS and settled["persons"][0]["state"] in LABELS
    events = [json.loads(p) for p in watcher.on("affectlite/lobby/events")]
    assert any(e["type"] == "state_changed" for e in events)
    for event in events:
        jsonschema.validate(event, event_schema)
    discovery = json.loads(watcher.on("homeassistant/device/lobby/config")[-1])
    assert discovery["cmps"]["emotion"]["ops"] == [*LABELS, "none"]


def test_fusing_a_voice_needs_a_seven_emotion_face_model(engagement_model):
    config = configuration.validate({"recognizer": {"model": str(engagement_model)}, "audio": {"enabled": True},
                                     "mqtt": {"enabled": False}}, environ={})
    with pytest.raises(ValueError, match=r"\[audio\] enabled: face and voice are fused over the seven emotions"):
        Service(config, source=MemorySource([]))


def test_the_seven_emotions_in_another_order_are_put_in_affectlites(tmp_path, tiny_keras_model, small_faces, frame):
    """A seven-emotion model in FER2013's csv order is the default label set after reordering."""
    from affectlite.labels import FER_PACKAGE_ORDER
    from affectlite_convert.cli import main as convert

    out = tmp_path / "fer_order.tflite"
    assert convert(["convert", str(tiny_keras_model), "--labels", ",".join(FER_PACKAGE_ORDER),
                    "--calibration", str(small_faces), "--out", str(out)]) == 0
    with EmotionRecognizer(RecognizerOptions(expression_model=str(out))) as recognizer:
        assert recognizer.labels.is_emotions
        face = recognizer.analyze_image(frame)[0]
        raw = recognizer.classifier.card.labels
    assert raw == list(FER_PACKAGE_ORDER) and list(face.probabilities) == list(EMOTIONS)
    with pytest.raises(ValueError, match="distinct"):
        LabelSet.of(["a", "a"])
