"""MQTT against a real Mosquitto: availability, retained state, QoS 1 events through outages and
restarts, TLS, credentials, commands and Home Assistant discovery. Payloads are validated
against the JSON Schemas shipped in affectlite/schemas."""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import threading
from pathlib import Path

import jsonschema
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from affectlite import config as configuration
from affectlite.sinks.mqtt import MqttSink
from broker import Broker, wait_for

SCHEMAS = Path(configuration.__file__).parent / "schemas"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.v1.json").read_text())


def mqtt_config(broker: Broker, tmp_path: Path, **overrides) -> dict:
    values = {"port": broker.port, "device_id": "kiosk1", "queue_path": str(tmp_path / "outbox.sqlite3"),
              "stats_interval_s": 1.0} | overrides
    return configuration.validate({"mqtt": values}, environ={})["mqtt"]


class Subscriber:
    """A plain paho client that records what arrives (topic, payload text, retain flag). It is
    subscribed when the constructor returns (the broker has acknowledged), so that what is
    published next reaches it however busy the machine is."""

    def __init__(self, port: int, topics=("#",), client_id: str | None = None, clean: bool = True, tls_ca=None):
        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or "", clean_session=clean)
        if tls_ca:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        subscribed = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            self.close()
            raise TimeoutError(f"the broker on port {port} did not acknowledge the subscription to {list(topics)}")

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def on(self, topic: str) -> list[str]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def sink(broker, tmp_path):
    instance = MqttSink(mqtt_config(broker, tmp_path), commands={"echo": lambda text: text})
    instance.start()
    assert wait_for(lambda: instance.connected)
    yield instance
    instance.close()


def test_availability_with_last_will(broker, sink):
    watcher = Subscriber(broker.port, ["affectlite/kiosk1/availability"])
    assert wait_for(lambda: watcher.on("affectlite/kiosk1/availability") == ["online"])
    sink.client.socket().shutdown(socket.SHUT_RDWR)          # the connection dies without a DISCONNECT
    assert wait_for(lambda: watcher.on("affectlite/kiosk1/availability")[:2] == ["online", "offline"])
    assert wait_for(lambda: watcher.on("affectlite/kiosk1/availability") == ["online", "offline", "online"])
    assert sink.connects == 2
    watcher.close()


def test_retained_state_reaches_late_subscribers(broker, sink):
    state = {"v": 1, "time": 1795938000.0, "people": 0, "paused": False, "privacy": False, "dominant_emotion": None,
             "valence": None, "alert_active": False, "persons": [], "warnings": []}
    jsonschema.validate(state, schema("mqtt-state"))
    early = Subscriber(broker.port, ["affectlite/kiosk1/state"])
    sink.publish_state(state)
    assert wait_for(lambda: early.on("affectlite/kiosk1/state"))   # the broker has it now
    early.close()
    late = Subscriber(broker.port, ["affectlite/kiosk1/state"])
    assert wait_for(lambda: late.on("affectlite/kiosk1/state"))
    topic, payload, retained = late.messages[0]
    assert retained and json.loads(payload) == state
    late.close()


def event(n: int) -> dict:
    return {"v": 1, "id": f"{n:032x}", "type": "face_appeared", "time": 1.0 + n, "track_id": n}


def test_events_are_delivered_in_order_with_qos1(broker, sink):
    watcher = Subscriber(broker.port, ["affectlite/kiosk1/events"])
    for n in range(1, 51):
        sink.publish_event(event(n))
    assert wait_for(lambda: (sink.pump(), len(watcher.on("affectlite/kiosk1/events")) == 50 and sink.pending == 0)[1])
    received = [json.loads(p) for p in watcher.on("affectlite/kiosk1/events")]
    assert [e["track_id"] for e in received] == list(range(1, 51))
    for e in received:
        jsonschema.validate(e, schema("mqtt-event"))
    watcher.close()


def test_broker_outage_loses_nothing(tmp_path, broker, sink):
    # a persistent subscriber session, so the broker keeps its subscription across its restart
    watcher = Subscriber(broker.port, ["affectlite/kiosk1/events"], client_id="watcher", clean=False)
    sink.publish_event(event(1))
    assert wait_for(lambda: (sink.pump(), len(watcher.on("affectlite/kiosk1/events")))[1] == 1)
    broker.stop()
    assert wait_for(lambda: not sink.connected)
    for n in range(2, 31):
        sink.publish_event(event(n))                          # queued on disk while the broker is down
    assert sink.pending == 29
    wait_for(lambda: False, timeout=1.5)
    broker.start()
    assert wait_for(lambda: sink.connected, timeout=40)
    assert wait_for(lambda: (sink.pump(), sink.pending)[1] == 0, timeout=20)
    assert wait_for(lambda: (sink.pump(), len(set(watcher.on("affectlite/kiosk1/events"))))[1] == 30, timeout=20)
    ids = [json.loads(p)["track_id"] for p in watcher.on("affectlite/kiosk1/events")]
    assert sorted(set(ids)) == list(range(1, 31))             # nothing lost
    assert ids == sorted(ids)                                  # in order
    assert len(ids) - len(set(ids)) <= 1                       # at most QoS 1's own redelivery
    watcher.close()


def test_queued_events_survive_a_service_restart(tmp_path):
    from broker import free_port

    port = free_port()                                         # nothing listens yet
    queue = tmp_path / "outbox.sqlite3"
    config = configuration.validate({"mqtt": {"port": port, "device_id": "kiosk1", "queue_path": str(queue)}}, {})["mqtt"]
    first = MqttSink(config)
    first.start()
    for n in range(1, 6):
        first.publish_event(event(n))
    assert not first.connected and first.pending == 5
    assert wait_for(lambda: first.unreachable >= 1) and "unreachable" in first.last_error
    first.close()                                              # the service stops with the broker unreachable

    broker = Broker(tmp_path / "b", port=port) if (tmp_path / "b").mkdir() is None else None
    broker.start()
    try:
        watcher = Subscriber(port, ["affectlite/kiosk1/events"])
        second = MqttSink(config)
        second.start()
        assert wait_for(lambda: (second.pump(), second.pending)[1] == 0, timeout=20)
        assert wait_for(lambda: (second.pump(), len(watcher.on("affectlite/kiosk1/events")))[1] == 5)
        assert [json.loads(p)["track_id"] for p in watcher.on("affectlite/kiosk1/events")] == [1, 2, 3, 4, 5]
        second.close()
        watcher.close()
    finally:
        broker.stop()


def test_queue_bound_drops_the_oldest(tmp_path):
    from affectlite.sinks.outbox import Outbox

    box = Outbox(tmp_path / "q.sqlite3", max_messages=3)
    for n in range(5):
        box.put("t", str(n).encode())
    assert [m.payload for m in box.pending()] == [b"2", b"3", b"4"] and box.dropped == 2
    box.close()


def _make_tls(tmp_path: Path) -> dict:
    """A CA and a server certificate, minimal on purpose: without the key identifiers that strict
    verifiers want (as older OpenSSLs and many appliances make them), which the connection accepts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def write_key(key, path):
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "affectlite test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "server.pem", "key": tmp_path / "server.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_key(key, files["key"])
    return files


def test_the_connection_check_verifies_certificates_as_the_connection_does(tmp_path):
    """doctor and the sink's log explain a failed connection by repeating it: with other checks than
    paho's (Python 3.13's default context adds strict X.509 ones), they would blame a certificate
    the service accepts."""
    from affectlite.sinks.connection_check import _tls_context

    tls = _make_tls(tmp_path)
    config = configuration.validate({"mqtt": {"tls": True, "ca_file": str(tls["ca"])}}, environ={})["mqtt"]
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.tls_set(ca_certs=config["ca_file"])
    ours, theirs = _tls_context(config), client._ssl_context
    assert (ours.verify_flags, ours.verify_mode, ours.check_hostname, ours.minimum_version) == \
        (theirs.verify_flags, theirs.verify_mode, theirs.check_hostname, theirs.minimum_version)
    assert ours.get_ca_certs() == theirs.get_ca_certs() != []


def test_tls_listener_with_a_test_ca(tmp_path):
    tls = _make_tls(tmp_path)
    broker = Broker(tmp_path, tls=tls).start()
    try:
        watcher = Subscriber(broker.port, ["affectlite/kiosk1/availability"], tls_ca=tls["ca"])
        config = mqtt_config(broker, tmp_path, host="127.0.0.1", tls=True, ca_file=str(tls["ca"]))
        secure = MqttSink(config)
        secure.start()
        assert wait_for(lambda: secure.connected)
        assert wait_for(lambda: watcher.on("affectlite/kiosk1/availability") == ["online"])
        secure.close()
        watcher.close()
    finally:
        broker.stop()


def test_wrong_credentials_are_reported_and_retried(tmp_path):
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "kiosk", "right"], check=True)
    broker = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {passwords}\n").start()
    try:
        given = {"port": broker.port, "device_id": "kiosk1", "queue_path": str(tmp_path / "q.sqlite3"),
                 "username": "kiosk", "password": "${KIOSK_PASSWORD}"}     # the secret comes from the environment
        wrong = MqttSink(configuration.validate({"mqtt": given}, environ={"KIOSK_PASSWORD": "wrong"})["mqtt"])
        wrong.start()
        assert wait_for(lambda: wrong.refusals >= 2, timeout=15)     # refused, and tried again
        assert not wrong.connected and "not authorized" in wrong.last_error.lower()
        wrong.close()
        right = MqttSink(configuration.validate({"mqtt": given}, environ={"KIOSK_PASSWORD": "right"})["mqtt"])
        right.start()
        assert wait_for(lambda: right.connected)
        right.close()
    finally:
        broker.stop()


def test_home_assistant_discovery_is_resent_on_birth(broker, sink):
    watcher = Subscriber(broker.port, ["homeassistant/device/kiosk1/config"])
    assert wait_for(lambda: len(watcher.on("homeassistant/device/kiosk1/config")) == 1)
    discovery = json.loads(watcher.on("homeassistant/device/kiosk1/config")[0])
    assert discovery["avty_t"] == "affectlite/kiosk1/availability"
    assert discovery["dev"]["ids"] == ["affectlite_kiosk1"]
    entities = {key: c for key, c in discovery["cmps"].items() if set(c) != {"p"}}
    assert {c["p"] for c in entities.values()} == {"sensor", "binary_sensor", "switch", "number", "event"}
    assert all(c["uniq_id"].startswith("affectlite_kiosk1_") for c in entities.values())
    assert discovery["cmps"]["privacy"]["cmd_t"] == "affectlite/kiosk1/set/privacy"
    assert discovery["cmps"]["caption"] == {"p": "text"}           # the text stream is off here: removed

    home_assistant = paho.Client(CallbackAPIVersion.VERSION2)
    home_assistant.connect("127.0.0.1", broker.port)
    home_assistant.loop_start()
    home_assistant.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
    assert wait_for(lambda: len(watcher.on("homeassistant/device/kiosk1/config")) == 2)
    home_assistant.disconnect()
    home_assistant.loop_stop()
    watcher.close()


def test_a_switch_of_discovery_mode_migrates_what_the_other_mode_left(broker, tmp_path):
    """An earlier ``discovery = "entities"`` left a retained per-entity message, and Home Assistant's
    birth is retained too: the device (now in device mode) finds the old message after it connects
    and moves it as Home Assistant prescribes: ``migrate_discovery`` on the old topic, then, a moment
    later, the old topic cleared and the device message sent."""
    old_topic = "homeassistant/sensor/kiosk1/people/config"
    left = paho.Client(CallbackAPIVersion.VERSION2)
    left.connect("127.0.0.1", broker.port)
    left.loop_start()
    left.publish(old_topic, json.dumps({"name": "People in view", "uniq_id": "affectlite_kiosk1_people"}), qos=1,
                 retain=True).wait_for_publish(5)
    left.publish("homeassistant/status", "online", qos=1, retain=True).wait_for_publish(5)
    left.loop_stop()
    left.disconnect()
    watcher = Subscriber(broker.port, ["homeassistant/#"])
    assert wait_for(lambda: watcher.on(old_topic))
    sink = MqttSink(mqtt_config(broker, tmp_path))
    sink.start()
    try:
        device_topic = "homeassistant/device/kiosk1/config"
        assert wait_for(lambda: (sink.pump() or True) and watcher.on(device_topic), timeout=15)
        assert watcher.on(old_topic)[1:] == ['{"migrate_discovery":true}', ""]
        order = [topic for topic, _, _ in watcher.messages if topic in (old_topic, device_topic)]
        assert order == [old_topic, old_topic, old_topic, device_topic]          # left, migrate, cleared, new
        assert len(watcher.on(device_topic)) == 1                                 # the retained birth: once
    finally:
        sink.close()
        watcher.close()


def test_discovery_offers_a_caption_box_when_text_is_on(broker, tmp_path):
    sink = MqttSink(mqtt_config(broker, tmp_path, device_id="desk"), commands={"text": str.strip})
    watcher = Subscriber(broker.port, ["homeassistant/device/desk/config"])
    sink.start()
    try:
        assert wait_for(lambda: watcher.on("homeassistant/device/desk/config"))
        components = json.loads(watcher.on("homeassistant/device/desk/config")[0])["cmps"]
        assert components["caption"]["p"] == "text" and components["caption"]["cmd_t"] == "affectlite/desk/set/text"
        assert "combined_valence" in components["combined_valence"]["val_tpl"]
    finally:
        sink.close()
        watcher.close()


def test_commands_known_unknown_and_failing(broker, tmp_path):
    """A setting's value is kept retained on its state topic whatever changed it; a command that is
    not a setting is answered on its own state topic; every failure goes to P/errors."""
    settings = {"share": 0.0}

    def threshold(text):
        value = float(text)
        if not 0 <= value <= 1:
            raise ValueError("must be from 0 to 1")
        settings["share"] = value
        return value

    sink = MqttSink(mqtt_config(broker, tmp_path), commands={"share": threshold, "echo": str.upper},
                    settings=lambda: dict(settings))
    sink.start()
    assert wait_for(lambda: sink.connected)
    watcher = Subscriber(broker.port, ["affectlite/kiosk1/+/state", "affectlite/kiosk1/errors"])
    commander = paho.Client(CallbackAPIVersion.VERSION2)
    commander.connect("127.0.0.1", broker.port)
    commander.loop_start()
    pumping = threading.Event()

    def pump():                                  # the service loop's part: sends changed settings
        while not pumping.is_set():
            sink.pump()
            pumping.wait(0.02)

    pumper = threading.Thread(target=pump)
    pumper.start()
    try:
        assert wait_for(lambda: watcher.on("affectlite/kiosk1/share/state") == ['{"v":1,"value":0.0}'])
        for topic, payload in [("set/share", "0.5"), ("set/share", "lots"), ("set/share", b"\xff\xfe"),
                               ("set/bogus", "1"), ("set/echo", "hi")]:
            commander.publish(f"affectlite/kiosk1/{topic}", payload, qos=1).wait_for_publish()
        assert wait_for(lambda: len(watcher.on("affectlite/kiosk1/errors")) == 3)
        assert wait_for(lambda: watcher.on("affectlite/kiosk1/share/state")[-1:] == ['{"v":1,"value":0.5}'])
        assert wait_for(lambda: watcher.on("affectlite/kiosk1/echo/state"))
        errors = [json.loads(p) for p in watcher.on("affectlite/kiosk1/errors")]
        for error in errors:
            jsonschema.validate(error, schema("mqtt-command-reply"))
        assert "could not convert" in errors[0]["error"] and errors[1]["command"] == "share"
        assert errors[2] == {"v": 1, "ok": False, "command": "bogus",
                             "error": "unknown command 'bogus'; known: echo, share"}
        assert json.loads(watcher.on("affectlite/kiosk1/echo/state")[0])["value"] == "HI"
        settings["share"] = 0.25                 # changed by another route (the Python API)
        assert wait_for(lambda: watcher.on("affectlite/kiosk1/share/state")[-1:] == ['{"v":1,"value":0.25}'])
        for payload in watcher.on("affectlite/kiosk1/share/state"):
            jsonschema.validate(json.loads(payload), schema("mqtt-setting"))
        assert sink.connected                    # still serving
    finally:
        pumping.set()
        pumper.join()
        commander.loop_stop()
        commander.disconnect()
        watcher.close()
        sink.close()
    late = Subscriber(broker.port, ["affectlite/kiosk1/share/state"])      # retained for whoever comes later
    assert wait_for(lambda: late.on("affectlite/kiosk1/share/state") == ['{"v":1,"value":0.25}'])
    late.close()


def test_retained_commands_are_ignored_and_a_flood_of_unknown_names_stays_bounded(broker, tmp_path, caplog):
    """A retained `set/paused ON` (Home Assistant's user may publish retained) would pause the
    device after every power cut: commands are one-shot, retained ones are ignored with one log
    line saying how to clear them. 5,000 made-up command names are answered each, but logged as
    one command and remembered as one."""
    import logging

    paused = {"on": False}

    def pause(text):
        paused["on"] = text == "ON"
        return text

    commander = paho.Client(CallbackAPIVersion.VERSION2)
    commander.connect("127.0.0.1", broker.port)
    commander.loop_start()
    commander.publish("affectlite/kiosk1/set/paused", "ON", qos=1, retain=True).wait_for_publish()
    caplog.set_level(logging.WARNING, logger="affectlite.sinks.mqtt")
    watcher = Subscriber(broker.port, ["affectlite/kiosk1/errors"])
    for restart in range(2):                                   # the device comes up twice: never paused
        sink = MqttSink(mqtt_config(broker, tmp_path), commands={"paused": pause})
        sink.start()
        assert wait_for(lambda: sink.connected)
        wait_for(lambda: False, timeout=1.0)                   # time for the retained message to arrive
        assert paused["on"] is False
        if restart == 0:
            commander.publish("affectlite/kiosk1/set/paused", "ON", qos=1).wait_for_publish()   # a live command
            assert wait_for(lambda: paused["on"] is True)
            paused["on"] = False
            for n in range(5000):
                commander.publish(f"affectlite/kiosk1/set/made_up_{n}", "1", qos=0)
            # each is answered (the watcher's broker queue keeps up to 1,000 of a burst for it)
            assert wait_for(lambda: len(watcher.on("affectlite/kiosk1/errors")) >= 1000, timeout=30)
            assert wait_for(lambda: sink.connected) and len(sink._error_log) == 1   # one limiter entry, not 5,000
        sink.close()
    assert caplog.text.count("ignored a retained command") == 2          # once per start
    assert "mosquitto_pub -r -n -t 'affectlite/kiosk1/set/paused'" in caplog.text
    assert caplog.text.count("refused: unknown command") < 40            # about one line a second
    errors = [json.loads(p) for p in watcher.on("affectlite/kiosk1/errors")[:3]]
    assert errors[0]["command"].startswith("made_up_") and "unknown command 'made_up_" in errors[0]["error"]
    commander.publish("affectlite/kiosk1/set/paused", b"", qos=1, retain=True).wait_for_publish()
    commander.loop_stop()
    commander.disconnect()
    watcher.close()


def test_tls_mistakes_get_a_one_line_cause(tmp_path, caplog):
    """Against a real TLS listener (certificates made by the test): a wrong CA, a wrong host
    name, a plain client on the TLS port and a TLS client on a plain port each get their cause,
    in the sink's log and in doctor's probe; a CA file that is not PEM is a configuration error."""
    from affectlite.sinks.connection_check import why_unreachable
    from affectlite.sinks.mqtt import probe_broker

    tls = _make_tls(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    stranger = _make_tls(other)                                  # a CA that did not sign the broker's certificate
    broker = Broker(tmp_path, tls=tls).start()
    plain = Broker(other).start()
    try:
        cases = {
            "unknown CA": dict(host="127.0.0.1", tls=True, ca_file=str(stranger["ca"])),
            "host name mismatch": dict(host="127.1", tls=True, ca_file=str(tls["ca"])),     # 127.0.0.1 by another name
            "TLS expected": dict(host="127.0.0.1", tls=False),
        }
        for expected, overrides in cases.items():
            config = mqtt_config(broker, tmp_path, **overrides)
            assert expected in why_unreachable(config), expected
            result, reason = probe_broker(config, timeout=3)
            assert result == "unreachable" and expected in reason, (expected, reason)
        config = mqtt_config(plain, tmp_path, host="127.0.0.1", tls=True, ca_file=str(tls["ca"]))
        assert "does not speak TLS" in why_unreachable(config)
        assert why_unreachable(mqtt_config(broker, tmp_path, host="127.0.0.1", tls=True, ca_file=str(tls["ca"]))) == ""

        caplog.set_level("WARNING")
        sink = MqttSink(mqtt_config(broker, tmp_path, host="127.0.0.1", tls=False))   # plain client, TLS port
        sink.start()
        assert wait_for(lambda: sink.unreachable >= 1, timeout=15)
        sink.close()
        assert "TLS expected" in caplog.text and "TLS expected" in sink.last_error
    finally:
        broker.stop()
        plain.stop()
    mutual = tmp_path / "mutual"
    mutual.mkdir()
    broker = Broker(mutual, tls=tls, extra="require_certificate true\n").start()
    try:
        config = mqtt_config(broker, tmp_path, host="127.0.0.1", tls=True, ca_file=str(tls["ca"]))
        assert "requires a client certificate" in why_unreachable(config)
    finally:
        broker.stop()
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a binary")
    with pytest.raises(configuration.ConfigError, match="mqtt.ca_file: .* is not a PEM file"):
        configuration.validate({"mqtt": {"tls": True, "ca_file": str(not_pem)}}, environ={})
