"""The shipped Mosquitto configuration, run for real: passwords, per-device ACLs, WebSocket listener."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from affectlite import config as configuration
from affectlite.sinks.mqtt import MqttSink
from broker import Broker, free_port, listening, wait_for

SHIPPED = Path(__file__).parents[1] / "firmware_configs" / "mosquitto"
USERS = {"lobby": "pw-lobby", "hall": "pw-hall", "kiosk": "pw-kiosk", "homeassistant": "pw-ha"}


class Client:
    """A user of the broker: records what it receives and whether it was let in."""

    def __init__(self, port: int, user: str, password: str, topics=(), websockets: bool = False):
        self.messages: list[tuple[str, str]] = []
        self.refused: str | None = None
        self.connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, transport="websockets" if websockets else "tcp")
        self.client.username_pw_set(user, password)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload.decode()))

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                self.refused = str(reason_code)
                return
            if topics:
                client.subscribe([(t, 1) for t in topics])     # ready once the broker confirms it
            else:
                self.connected.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda client, userdata, mid, codes, properties: self.connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def topics(self) -> list[str]:
        return [t for t, _ in self.messages]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured_broker(tmp_path):
    passwd, acl = tmp_path / "affectlite.passwd", tmp_path / "affectlite.acl"
    passwd.touch()
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    acl.write_text((SHIPPED / "affectlite.acl").read_text())
    ws_port = free_port()
    conf = (SHIPPED / "affectlite.conf").read_text()
    conf = (conf.replace("/etc/mosquitto/affectlite.passwd", str(passwd))
                .replace("/etc/mosquitto/affectlite.acl", str(acl))
                .replace("listener 1883\n", "")
                .replace("listener 9001", f"listener {ws_port} 127.0.0.1"))
    broker = Broker(tmp_path, extra=conf).start()
    broker.ws_port = ws_port
    assert wait_for(lambda: listening(ws_port)), "the WebSocket listener did not open"   # opens after TCP
    yield broker
    broker.stop()


def test_device_kiosk_and_home_automation_rights(secured_broker, tmp_path):
    port = secured_broker.port
    ha = Client(port, "homeassistant", USERS["homeassistant"], topics=["affectlite/#"])
    kiosk = Client(secured_broker.ws_port, "kiosk", USERS["kiosk"], topics=["affectlite/+/state", "affectlite/+/events"],
                   websockets=True)
    assert ha.connected.wait(5) and kiosk.connected.wait(5)

    # The real service sink, logged in as its device id, publishes its state and an event.
    device = MqttSink(configuration.validate({"mqtt": {
        "port": port, "device_id": "lobby", "username": "lobby", "password": USERS["lobby"],
        "queue_path": str(tmp_path / "q.sqlite3")}}, environ={})["mqtt"], commands={"privacy": str.strip})
    device.start()
    try:
        device.publish_state({"v": 1, "people": 1})
        device.publish_event({"v": 1, "type": "face_appeared"})
        assert wait_for(lambda: device.pump() or (device.pending == 0 and "affectlite/lobby/events" in ha.topics()))
        assert wait_for(lambda: "affectlite/lobby/state" in kiosk.topics())   # over WebSocket
        assert "affectlite/lobby/events" not in kiosk.topics()                 # not in the kiosk's ACL

        # A device cannot write under another device's prefix; a kiosk cannot send commands.
        intruder = Client(port, "lobby", USERS["lobby"])
        assert intruder.connected.wait(5)
        intruder.publish("affectlite/hall/state", json.dumps({"v": 1, "people": 99}))
        kiosk_cmd = Client(port, "kiosk", USERS["kiosk"])
        assert kiosk_cmd.connected.wait(5)
        kiosk_cmd.publish("affectlite/lobby/set/pause", "")
        ha.publish("affectlite/lobby/set/privacy", "ON")                       # home automation may
        assert wait_for(lambda: "affectlite/lobby/privacy/state" in ha.topics())
        assert json.loads(dict(ha.messages)["affectlite/lobby/privacy/state"])["value"] == "ON"
        assert "affectlite/hall/state" not in ha.topics()
        assert "affectlite/lobby/pause/state" not in ha.topics()
        intruder.close()
        kiosk_cmd.close()
    finally:
        device.close()
        ha.close()
        kiosk.close()


def test_wrong_password_and_anonymous_are_refused(secured_broker):
    wrong = Client(secured_broker.port, "lobby", "guess")
    assert wait_for(lambda: wrong.refused is not None, timeout=5)
    assert "not authorized" in wrong.refused.lower() or "bad user name or password" in wrong.refused.lower()
    wrong.close()
    anonymous = paho.Client(CallbackAPIVersion.VERSION2)
    codes = []
    anonymous.on_connect = lambda c, u, f, rc, p: codes.append(rc)
    anonymous.connect("127.0.0.1", secured_broker.port)
    anonymous.loop_start()
    assert wait_for(lambda: codes, timeout=5) and codes[0].is_failure
    anonymous.loop_stop()


def test_a_user_the_acl_silently_denies_is_detected_and_nothing_is_lost(secured_broker, tmp_path, caplog):
    """User 'hall' publishing as device 'lobby': Mosquitto acknowledges every publish and drops
    it (MQTT 3.1.1 has no denial). The sink finds out by its round trip, says so in the log and the
    state's warnings, and keeps the events queued instead of handing them to the broker."""
    import affectlite.sinks.mqtt as mqtt

    ha = Client(secured_broker.port, "homeassistant", USERS["homeassistant"], topics=["affectlite/#"])
    assert ha.connected.wait(5)
    caplog.set_level("ERROR")
    config = configuration.validate({"mqtt": {
        "port": secured_broker.port, "device_id": "lobby", "username": "hall", "password": USERS["hall"],
        "queue_path": str(tmp_path / "q.sqlite3")}}, environ={})["mqtt"]
    original_wait = mqtt.ROUNDTRIP_WAIT_S
    mqtt.ROUNDTRIP_WAIT_S = 1.0
    device = MqttSink(config)
    device.start()
    try:
        assert wait_for(lambda: device.connected)
        for n in range(40):
            device.publish_event({"v": 1, "type": "face_appeared", "track_id": n})
        assert wait_for(lambda: device.pump() or device.delivery_verified is False, timeout=10)
        assert device.pending == 40                             # kept, not handed to a broker that drops them
        assert "does not deliver this device's messages" in caplog.text and "user hall" in caplog.text
        assert any("ACL" in w for w in device.warnings())
        assert "affectlite/lobby/events" not in ha.topics()
    finally:
        mqtt.ROUNDTRIP_WAIT_S = original_wait
        device.close()
        ha.close()
    doctor_config = tmp_path / "hall-as-lobby.toml"
    doctor_config.write_text(f'[mqtt]\nport = {secured_broker.port}\ndevice_id = "lobby"\nusername = "hall"\n'
                             f'password = "{USERS["hall"]}"\nqueue_path = "{tmp_path / "q2.sqlite3"}"\n')
    from affectlite.doctor import configuration_lines

    lines, ok = configuration_lines(doctor_config)
    assert not ok and any(line.startswith("PROBLEM: MQTT broker") and "drops this device's messages" in line
                          for line in lines)

    # The same events with the right user: all 40 delivered, in order.
    ha = Client(secured_broker.port, "homeassistant", USERS["homeassistant"], topics=["affectlite/lobby/events"])
    assert ha.connected.wait(5)
    fixed = MqttSink(configuration.validate({"mqtt": {
        "port": secured_broker.port, "device_id": "lobby", "username": "lobby", "password": USERS["lobby"],
        "queue_path": str(tmp_path / "q.sqlite3")}}, environ={})["mqtt"])
    fixed.start()
    try:
        assert wait_for(lambda: fixed.pump() or fixed.pending == 0, timeout=15)
        assert wait_for(lambda: len(ha.messages) == 40)
        assert [json.loads(p)["track_id"] for _, p in ha.messages] == list(range(40))
        assert fixed.delivery_verified is True
    finally:
        fixed.close()
        ha.close()
