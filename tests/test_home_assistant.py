"""What Home Assistant sees: the discovery message checked against its rules, and every entity
given a value from a retained message after the service restarts, rendered with the entity's own
template (Jinja, as Home Assistant renders it)."""

from __future__ import annotations

import json
import re

import jinja2
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from affectlite import config as configuration
from affectlite.service import Service
from affectlite.sources.memory import MemorySource
from broker import wait_for
from conftest import read_frames
from test_mqtt import Subscriber

#: Home Assistant's device discovery topic and, per platform, the keys it requires (abbreviated).
DISCOVERY_TOPIC = re.compile(r"^homeassistant/device/[a-zA-Z0-9_-]+/config$")
REQUIRED = {"sensor": {"stat_t"}, "binary_sensor": {"stat_t"}, "switch": {"cmd_t"}, "number": {"cmd_t"},
            "event": {"stat_t", "evt_typ"}, "text": {"cmd_t"}}


def render(template: str, payload: str) -> str:
    """A value template rendered as Home Assistant does for MQTT (value and value_json)."""
    environment = jinja2.Environment()
    environment.filters["to_json"] = json.dumps
    return environment.from_string(template).render(value=payload, value_json=json.loads(payload))


def check_discovery(topic: str, payload: dict) -> dict:
    assert DISCOVERY_TOPIC.match(topic), topic
    assert payload["dev"]["ids"] and payload["o"]["name"] and payload["avty_t"]
    for key, component in payload["cmps"].items():
        assert component["p"] in REQUIRED, key
        if set(component) == {"p"}:                    # removes an entity an earlier configuration had
            continue
        assert REQUIRED[component["p"]] <= set(component), (key, component)
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", component["uniq_id"])
        if component.get("dev_cla") == "enum":
            assert component["ops"], key
    return payload["cmps"]


@pytest.fixture(scope="module")
def happy_frames(happy_clip):
    return read_frames(happy_clip)


def config(broker, tmp_path):
    return configuration.validate({
        "mqtt": {"port": broker.port, "device_id": "hall", "queue_path": str(tmp_path / "q.sqlite3"),
                 "stats_interval_s": 0.3},
        "states": {"min_duration_s": 0.3}, "recognizer": {"max_fps": 30},
    }, environ={})


def test_every_entity_has_a_retained_value_after_a_restart(broker, tmp_path, happy_frames):
    import threading

    # First run: someone turns privacy on, then the service stops (a restart, a power cut).
    first = Service(config(broker, tmp_path), source=MemorySource(happy_frames * 3, fps=30))
    runner = threading.Thread(target=first.run)
    runner.start()
    watcher = Subscriber(broker.port, ["affectlite/hall/privacy/state"])
    assert wait_for(lambda: watcher.on("affectlite/hall/privacy/state"), timeout=20)
    commander = paho.Client(CallbackAPIVersion.VERSION2)
    commander.connect("127.0.0.1", broker.port)
    commander.loop_start()
    commander.publish("affectlite/hall/set/privacy", "ON", qos=1).wait_for_publish()
    assert wait_for(lambda: watcher.on("affectlite/hall/privacy/state")[-1:] == ['{"v":1,"value":"ON"}'])
    first.stop()
    runner.join(timeout=20)
    commander.loop_stop()
    commander.disconnect()
    watcher.close()

    # Second run: analysing faces again, so the retained Privacy switch must say OFF.
    Service(config(broker, tmp_path), source=MemorySource(happy_frames, fps=30)).run()

    home_assistant = Subscriber(broker.port, ["homeassistant/device/+/config"])
    assert wait_for(lambda: home_assistant.messages)
    topic, payload, retained = home_assistant.messages[0]
    assert retained
    components = check_discovery(topic, json.loads(payload))
    home_assistant.close()

    components = {key: c for key, c in components.items() if set(c) != {"p"}}
    topics = sorted({c["stat_t"] for c in components.values() if "stat_t" in c and c["p"] != "event"})
    fresh = Subscriber(broker.port, topics)                        # subscribes after the restart
    assert wait_for(lambda: all(fresh.on(t) for t in topics), timeout=10), \
        [t for t in topics if not fresh.on(t)]
    assert all(retained for _, _, retained in fresh.messages)
    for key, component in components.items():
        if "stat_t" not in component or component["p"] == "event":
            continue
        value = render(component["val_tpl"], fresh.on(component["stat_t"])[-1])
        if component["p"] == "switch":
            assert value in (component["stat_on"], component["stat_off"]), key
        elif component["p"] == "binary_sensor":
            assert value in ("ON", "OFF"), key
        elif component["p"] == "number":
            assert component["min"] <= float(value) <= component["max"], key
        elif component.get("dev_cla") == "enum":
            assert value in component["ops"], (key, value)
        elif "unit_of_meas" in component or "stat_cla" in component:
            float(value)                                           # a number, not "None"
    privacy = components["privacy"]
    assert render(privacy["val_tpl"], fresh.on(privacy["stat_t"])[-1]) == "OFF"
    assert render(components["valence"]["val_tpl"], fresh.on(components["valence"]["stat_t"])[-1]) in (
        "positive", "neutral", "negative", "none")
    fresh.close()

    # The event entity: each event the device sends renders to an event type Home Assistant knows.
    events = components["events"]
    alert = {"v": 1, "id": "x", "type": "alert", "time": 1.0, "alert": "negative_share", "track_id": None}
    rendered = json.loads(render(events["val_tpl"], json.dumps(alert)))
    assert rendered == {"event_type": "alert", "kind": "negative_share", "track_id": None}
    rendered = json.loads(render(events["val_tpl"], json.dumps(
        {"v": 1, "id": "y", "type": "face_appeared", "time": 1.0, "track_id": 3})))
    assert rendered["event_type"] in events["evt_typ"] and rendered["track_id"] == 3


def test_entities_a_configuration_does_not_have_are_removed_not_left_behind():
    """Home Assistant keeps an entity until a discovery message names its platform alone."""
    from affectlite.sinks.home_assistant import discovery_payload
    from affectlite.states import NEGATIVE_VALENCE_MAX_S

    def topic(name):
        return f"affectlite/hall/{name}"

    without = check_discovery("homeassistant/device/hall/config",
                              discovery_payload(topic, "hall", text_on=False, has_temperature=False))
    assert without["caption"] == {"p": "text"} and without["combined_valence"] == {"p": "sensor"}
    assert without["cpu_temperature"] == {"p": "sensor"}              # no sensor: no "unknown" entity
    with_text = check_discovery("homeassistant/device/hall/config",
                                discovery_payload(topic, "hall", text_on=True, has_temperature=True))
    assert with_text["caption"]["cmd_t"] == "affectlite/hall/set/text"
    assert with_text["cpu_temperature"]["unit_of_meas"] == "°C"
    template = with_text["combined_valence"]["val_tpl"]
    assert render(template, json.dumps({"people": 0})) == "none"      # an optional key missing is no error
    assert render(template, json.dumps({"combined_valence": {"valence": "positive"}})) == "positive"
    assert with_text["negative_valence_s"]["max"] == NEGATIVE_VALENCE_MAX_S == 86400   # what the command accepts
    assert without["audience_viewers"] == {"p": "sensor"}                  # audience off: no such entities
    audience = check_discovery("homeassistant/device/hall/config",
                               discovery_payload(topic, "hall", audience_on=True, has_temperature=False))
    assert audience["audience_viewers"]["stat_t"] == "affectlite/hall/audience"
    rate = audience["audience_attention_rate"]
    assert render(rate["val_tpl"], json.dumps({"viewers": 3, "attention_rate": 0.4567})) == "45.7"
    assert render(rate["val_tpl"], json.dumps({"viewers": 0, "attention_rate": None})) == "None"


def test_per_entity_discovery_carries_the_device_in_every_message():
    """``mqtt.discovery = "entities"`` (Home Assistant before 2024.12): one retained message per
    entity on <prefix>/<platform>/<device>/<key>/config, each naming the device, origin and
    availability; a removed entity's message is empty, which removes it."""
    from affectlite.sinks.home_assistant import discovery_payload, entity_messages

    topic = lambda name: f"affectlite/hall/{name}"  # noqa: E731
    payload = discovery_payload(topic, "hall", has_temperature=False)
    messages = dict(entity_messages(payload, "homeassistant", "hall"))
    assert len(messages) == len(payload["cmps"])
    for key, component in payload["cmps"].items():
        body = messages[f"homeassistant/{component['p']}/hall/{key}/config"]
        if set(component) == {"p"}:
            assert body == ""
            continue
        entity = json.loads(body)
        assert entity["dev"] == payload["dev"] and entity["avty_t"] == "affectlite/hall/availability"
        assert entity["uniq_id"] == f"affectlite_hall_{key}" and "p" not in entity
        assert REQUIRED[component["p"]] <= set(entity)
    assert messages["homeassistant/text/hall/caption/config"] == ""          # [text] off


def test_device_ids_that_home_assistant_would_ignore_are_refused():
    with pytest.raises(configuration.ConfigError, match=r"mqtt.device_id: 'Lobby Pi.local' may hold only .* 'lobby-pi'"):
        configuration.validate({"mqtt": {"device_id": "Lobby Pi.local"}}, environ={})
    assert configuration.safe_device_id("Lobby Pi.local") == "lobby-pi"
    assert configuration.validate({"mqtt": {"device_id": "lobby-pi_2"}}, environ={})["mqtt"]["device_id"] == "lobby-pi_2"


def test_the_walkthrough_automation_is_current_syntax_and_handles_both_alerts():
    """The YAML in examples/alerts/home_assistant.md: today's triggers:/actions: syntax, and its
    message rendered for a person's alert and for a room's (no track id, no held_s)."""
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[1] / "examples" / "alerts" / "home_assistant.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    automation = yaml.safe_load("\n".join(line[3:] for line in block.splitlines()))["automation"][0]
    assert set(automation) == {"alias", "triggers", "actions"}
    trigger, action = automation["triggers"][0], automation["actions"][0]
    assert trigger["trigger"] == "mqtt" and trigger["payload"] == "alert" and action["action"].startswith("notify.")
    environment = jinja2.Environment()
    message = environment.from_string(action["data"]["message"])
    person = {"type": "alert", "alert": "negative_valence", "track_id": 3, "held_s": 6.4}
    room = {"type": "alert", "alert": "negative_share", "share": 0.667, "people": 3, "track_ids": [1, 2]}
    assert " ".join(message.render(trigger={"payload_json": person}).split()) == "person 3 has looked upset for 6 s"
    assert " ".join(message.render(trigger={"payload_json": room}).split()) == \
        "67 % of the 3 people in view look upset"
    assert render(trigger["value_template"], json.dumps(room)) == "alert"


def test_doctor_names_the_home_assistant_that_reads_device_discovery(tmp_path):
    """Home Assistant before 2024.12 ignores homeassistant/device/... and creates nothing: say so."""
    from affectlite.doctor import configuration_lines

    config = tmp_path / "c.toml"
    config.write_text(f'[mqtt]\nport = 1\nqueue_path = "{tmp_path / "q.sqlite3"}"\n')
    lines, _ = configuration_lines(config)
    assert any("Home Assistant 2024.12 or later" in line for line in lines), lines
    config.write_text(f'[mqtt]\nport = 1\ndiscovery = "entities"\nqueue_path = "{tmp_path / "q.sqlite3"}"\n')
    assert any("every Home Assistant version reads" in line for line in configuration_lines(config)[0])
    config.write_text(f'[mqtt]\nport = 1\nhomeassistant = false\nqueue_path = "{tmp_path / "q.sqlite3"}"\n')
    assert not any("Home Assistant" in line for line in configuration_lines(config)[0])


def test_a_restart_replaces_the_previous_runs_retained_stats_at_once(broker, tmp_path, happy_frames):
    """Home Assistant showed the last run's diagnostic figures as current until the first stats of
    the new run, a stats interval later: the new run's first figures go out on connect."""
    import threading
    import time

    old = paho.Client(CallbackAPIVersion.VERSION2)
    old.connect("127.0.0.1", broker.port)
    old.loop_start()
    old.publish("affectlite/hall/stats", json.dumps({"v": 1, "time": 1.0, "inference_fps": 99.0}), qos=1,
                retain=True).wait_for_publish()
    old.loop_stop()
    old.disconnect()
    settings = config(broker, tmp_path)
    settings["mqtt"]["stats_interval_s"] = 60.0
    service = Service(settings, source=MemorySource(happy_frames * 3, fps=30))
    runner = threading.Thread(target=service.run)
    started = time.time()
    runner.start()
    try:
        assert wait_for(lambda: service.sink.connected, timeout=10)
        fresh = Subscriber(broker.port, ["affectlite/hall/stats"])
        assert wait_for(lambda: fresh.on("affectlite/hall/stats"), timeout=5)
        assert json.loads(fresh.on("affectlite/hall/stats")[0])["time"] >= started    # this run's, long before 60 s
        fresh.close()
    finally:
        service.stop()
        runner.join(timeout=20)
