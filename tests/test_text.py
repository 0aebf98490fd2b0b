"""The text stream: captions scored for valence with VADER, combined with faces at the valence level."""

from __future__ import annotations

import json
import threading

import jsonschema
import numpy as np
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from affectlite import config as configuration
from affectlite.fusion.valence import combine_valence
from affectlite.labels import EMOTIONS
from affectlite.service import Service
from affectlite.sources.memory import MemorySource
from affectlite.text import TextScorer
from broker import wait_for
from test_mqtt import Subscriber, schema


@pytest.fixture(scope="module")
def scorer():
    return TextScorer()


@pytest.mark.parametrize("line, valence", [
    ("Thank you, this is wonderful!", "positive"),
    ("This is terrible, I am so angry.", "negative"),
    ("The next train leaves at five.", "neutral"),
    ("not good at all", "negative"),                 # VADER's rules handle negation
])
def test_lines_get_their_valence(scorer, line, valence):
    scored = scorer.score(line)
    assert scored.valence == valence
    assert sum(scored.probabilities.values()) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("line, message", [("   ", "empty text"), ("a" * 2001, "longer than 2000")])
def test_bad_lines_are_refused(scorer, line, message):
    with pytest.raises(ValueError, match=message):
        scorer.score(line)


def test_valence_level_combination():
    happy_faces = np.array([0.0, 0.0, 0.0, 0.8, 0.2, 0.0, 0.0])
    angry_text = {"positive": 0.0, "neutral": 0.4, "negative": 0.6}
    combined = combine_valence(happy_faces, angry_text, text_weight=0.25)
    assert combined["probabilities"] == {"positive": 0.6, "neutral": 0.25, "negative": 0.15}
    assert combined["valence"] == "positive"                       # text counts for a quarter
    assert combine_valence(happy_faces, angry_text, text_weight=0.9)["valence"] == "negative"
    assert combine_valence(None, angry_text)["valence"] == "negative"
    assert combine_valence(None, None) is None
    with pytest.raises(ValueError):
        combine_valence(happy_faces, None, text_weight=2)


def test_text_over_mqtt_reaches_the_state(broker, tmp_path, frame):
    config = configuration.validate({
        "mqtt": {"port": broker.port, "device_id": "desk", "queue_path": str(tmp_path / "q.sqlite3")},
        "states": {"min_duration_s": 0.2}, "recognizer": {"max_fps": 30}, "text": {"enabled": True, "weight": 0.5},
    }, environ={})
    watcher = Subscriber(broker.port, ["affectlite/desk/#"])
    service = Service(config, source=MemorySource([frame] * 150, fps=30))
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        assert wait_for(lambda: any(json.loads(s)["people"] == 1 for s in watcher.on("affectlite/desk/state")), timeout=20)
        caption = paho.Client(CallbackAPIVersion.VERSION2)
        caption.connect("127.0.0.1", broker.port)
        caption.loop_start()
        caption.publish("affectlite/desk/set/text", "", qos=1)
        caption.publish("affectlite/desk/set/text", "This is awful, I hate waiting here.", qos=1)
        assert wait_for(lambda: watcher.on("affectlite/desk/text/state") and watcher.on("affectlite/desk/errors"))
        refused = json.loads(watcher.on("affectlite/desk/errors")[0])
        accepted = json.loads(watcher.on("affectlite/desk/text/state")[0])
        assert refused["ok"] is False and refused["command"] == "text" and "empty text" in refused["error"]
        assert accepted["ok"] is True and accepted["value"]["valence"] == "negative"
        assert "hate" not in json.dumps(accepted)                  # the words are not published
        states = lambda: [json.loads(p) for p in watcher.on("affectlite/desk/state")]
        assert wait_for(lambda: states()[-1]["text"] is not None, timeout=10)
        state = states()[-1]
        assert state["text"]["valence"] == "negative" and state["people"] == 1
        faces = np.mean([[p["probabilities"][e] for e in EMOTIONS] for p in state["persons"]], axis=0)
        expected = combine_valence(faces, state["text"]["probabilities"], 0.5)
        assert state["combined_valence"]["probabilities"]["negative"] == pytest.approx(
            expected["probabilities"]["negative"], abs=1e-3)
        for payload in states():
            jsonschema.validate(payload, schema("mqtt-state"))
        caption.loop_stop()
    finally:
        service.stop()
        runner.join(timeout=30)
        watcher.close()


def test_text_counts_for_its_ttl_and_not_in_privacy_mode(frame):
    config = configuration.validate({"mqtt": {"enabled": False}, "text": {"enabled": True, "ttl_s": 10}}, environ={})
    service = Service(config, source=MemorySource([frame]))
    service.add_text("What a lovely day!", now=100.0)
    assert service.current_text(105.0).valence == "positive"
    assert service.current_text(111.0) is None
    service.privacy = True
    assert service.current_text(105.0) is None


def test_text_is_refused_when_the_stream_is_off(frame):
    service = Service(configuration.validate({"mqtt": {"enabled": False}}, environ={}), source=MemorySource([frame]))
    assert "text" not in service.commands()
    with pytest.raises(ValueError, match=r"\[text\] enabled = true"):
        service.add_text("hello")
