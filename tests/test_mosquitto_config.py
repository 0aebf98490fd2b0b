"""The shipped Mosquitto configuration, run for real: passwords, per-device ACLs, WebSocket listener."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from affectlite import config as configuration
from affectlite.sinks.mqtt import MqttSink
from broker import MOSQUITTO, Broker, free_port, listening, wait_for

SHIPPED = Path(__file__).parents[1] / "firmware_configs" / "mosquitto"
USERS = {"lobby": "pw-lobby", "hall": "pw-hall", "homeassistant": "pw-ha"}
KIOSKS = {"kiosk.lobby": "pw-kiosk", "kiosk.hall": "pw-kiosk-hall"}


class Client:
    """A user of the broker: records what it receives, whether it was let in and, over MQTT 5,
    the broker's answer to each publish and subscription (0x87: not authorised)."""

    def __init__(self, port: int, user: str, password: str, topics=(), websockets: bool = False,
                 client_id: str = "", ca: Path | None = None, mqtt5: bool = False):
        self.messages: list[tuple[str, str]] = []
        self.refused: str | None = None
        self.disconnects = 0
        self.granted: list[int] = []
        self.puback: dict[int, int] = {}
        self.connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  transport="websockets" if websockets else "tcp",
                                  protocol=paho.MQTTv5 if mqtt5 else paho.MQTTv311)
        self.client.username_pw_set(user, password)
        if ca:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload.decode()))

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                self.refused = str(reason_code)
                return
            if topics:
                client.subscribe([(t, 1) for t in topics])     # ready once the broker confirms it
            else:
                self.connected.set()

        def on_subscribe(client, userdata, mid, codes, properties):
            self.granted = [code.value for code in codes]
            self.connected.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_publish = lambda c, u, mid, code, p: self.puback.__setitem__(mid, code.value)
        self.client.on_disconnect = lambda *args: setattr(self, "disconnects", self.disconnects + 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def topics(self) -> list[str]:
        return [t for t, _ in self.messages]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def may_publish(self, topic: str) -> bool:
        """MQTT 5 only: whether the broker accepted the publish (a PUBACK reason code below 0x80:
        0 or 0x10, "no matching subscribers") or refused it (0x87, "not authorised")."""
        info = self.client.publish(topic, "probe", qos=1)
        info.wait_for_publish(5)
        assert wait_for(lambda: info.mid in self.puback, timeout=5)
        return self.puback[info.mid] < 0x80

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def shipped_broker(workdir: Path) -> Broker:
    """The shipped affectlite.conf with its files in ``workdir``, certificates made by the shipped
    make-certs.sh and free ports; bind addresses stay as shipped (plain ones on loopback only)."""
    certs = workdir / "certs"
    subprocess.run([str(SHIPPED / "make-certs.sh"), "--out", str(certs), "lobby-pi"], check=True,
                   capture_output=True)
    for name, users in (("affectlite.passwd", USERS), ("kiosk.passwd", KIOSKS)):
        (workdir / name).touch()
        for user, password in users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(workdir / name), user, password], check=True)
    for acl in ("affectlite.acl", "kiosk.acl"):
        (workdir / acl).write_text((SHIPPED / acl).read_text())
    ports = {shipped: free_port() for shipped in (1883, 8883, 9001, 9443)}
    conf = (SHIPPED / "affectlite.conf").read_text()
    for shipped, port in ports.items():
        conf = re.sub(rf"^listener {shipped}\b", f"listener {port}", conf, flags=re.M)
    conf = conf.replace("/etc/mosquitto/certs/", f"{certs}/").replace("/etc/mosquitto/", f"{workdir}/")
    broker = Broker(workdir, extra=conf, port=ports[1883], listener=False).start()
    broker.tls_port, broker.ws_port, broker.wss_port = ports[8883], ports[9001], ports[9443]
    broker.ca = certs / "ca.crt"
    for port in ports.values():
        assert wait_for(lambda: listening(port)), f"listener {port} did not open"   # WebSocket ones open later
    return broker


@pytest.fixture
def secured_broker(tmp_path):
    broker = shipped_broker(tmp_path)
    yield broker
    broker.stop()


def test_device_kiosk_and_home_automation_rights(secured_broker, tmp_path):
    port = secured_broker.port
    ha = Client(port, "homeassistant", USERS["homeassistant"], topics=["affectlite/#"])
    kiosk = Client(secured_broker.ws_port, "kiosk.lobby", KIOSKS["kiosk.lobby"],
                   topics=["affectlite/+/state", "affectlite/+/events"], websockets=True)
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
        intruder = Client(port, "hall", USERS["hall"])
        assert intruder.connected.wait(5)
        intruder.publish("affectlite/lobby/state", json.dumps({"v": 1, "people": 99}))
        kiosk_cmd = Client(secured_broker.ws_port, "kiosk.hall", KIOSKS["kiosk.hall"], websockets=True)
        assert kiosk_cmd.connected.wait(5)
        kiosk_cmd.publish("affectlite/lobby/set/pause", "")
        ha.publish("affectlite/lobby/set/privacy", "ON")                       # home automation may
        assert wait_for(lambda: "affectlite/lobby/privacy/state" in ha.topics())
        assert json.loads(dict(ha.messages)["affectlite/lobby/privacy/state"])["value"] == "ON"
        assert json.loads(dict(ha.messages)["affectlite/lobby/state"])["people"] == 1
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


#: What each user of the MQTT listeners may publish (MQTT 5: the broker answers "not authorised").
PUBLISH_RIGHTS = {
    "lobby": {"affectlite/lobby/state": True, "affectlite/lobby/events": True,
              "homeassistant/device/lobby/config": True, "affectlite/hall/state": False,
              "affectlite/hall/set/pause": False, "homeassistant/device/hall/config": False,
              "homeassistant/status": False},
    "homeassistant": {"affectlite/lobby/set/pause": True, "homeassistant/status": True,
                      "affectlite/lobby/state": False, "affectlite/homeassistant/state": False,
                      "affectlite/homeassistant/availability": False,
                      "homeassistant/device/homeassistant/config": False, "homeassistant/device/lobby/config": False},
}


def test_each_user_publishes_only_what_its_role_needs(secured_broker):
    seen = {}
    for user, rights in PUBLISH_RIGHTS.items():
        client = Client(secured_broker.port, user, USERS[user], mqtt5=True)
        assert client.connected.wait(5)
        seen[user] = {topic: client.may_publish(topic) for topic in rights}
        client.close()
    assert seen == PUBLISH_RIGHTS

    # A kiosk screen publishes nothing, not even under its own name (Home Assistant would create
    # whatever device a retained discovery entry describes; a screen would show a forged state).
    kiosk = Client(secured_broker.ws_port, "kiosk.lobby", KIOSKS["kiosk.lobby"], websockets=True, mqtt5=True,
                   topics=["affectlite/#", "homeassistant/#"])
    device = Client(secured_broker.port, "lobby", USERS["lobby"], mqtt5=True, topics=["affectlite/#", "homeassistant/#"])
    ha = Client(secured_broker.port, "homeassistant", USERS["homeassistant"], mqtt5=True)
    assert kiosk.connected.wait(5) and device.connected.wait(5) and ha.connected.wait(5)
    for topic in ("affectlite/kiosk.lobby/state", "affectlite/lobby/state", "homeassistant/device/kiosk/config",
                  "affectlite/lobby/set/pause", "homeassistant/status"):
        assert not kiosk.may_publish(topic), topic

    # What each one reads: Mosquitto grants any subscription and filters each message by the ACL.
    for topic in ("state", "availability", "events", "stats", "faces"):
        assert device.may_publish(f"affectlite/lobby/{topic}")
    for command in ("affectlite/lobby/set/pause", "affectlite/hall/set/pause", "homeassistant/status"):
        assert ha.may_publish(command)
    assert wait_for(lambda: "homeassistant/status" in device.topics() and "affectlite/lobby/state" in kiosk.topics())
    assert sorted(kiosk.topics()) == ["affectlite/lobby/availability", "affectlite/lobby/state"]
    assert sorted(device.topics()) == ["affectlite/lobby/set/pause", "homeassistant/status"]    # its commands only
    for client in (kiosk, device, ha):
        client.close()


def test_kiosk_logins_work_only_on_the_websocket_listeners_and_device_logins_only_on_mqtt(secured_broker):
    kiosk_on_mqtt = Client(secured_broker.port, "kiosk.lobby", KIOSKS["kiosk.lobby"])
    device_on_ws = Client(secured_broker.ws_port, "lobby", USERS["lobby"], websockets=True)
    assert wait_for(lambda: kiosk_on_mqtt.refused and device_on_ws.refused, timeout=5)
    kiosk_on_mqtt.close()
    device_on_ws.close()


def test_no_login_takes_over_another_clients_session(secured_broker):
    """MQTT lets a second connection with the same client id throw the first one out. Every
    shipped listener replaces the client id with the user name, so a kiosk or Home Assistant
    that claims to be "lobby" stays itself and the device keeps its session."""
    device = Client(secured_broker.port, "lobby", USERS["lobby"], client_id="lobby", topics=["affectlite/lobby/set/#"])
    assert device.connected.wait(5)
    impostors = [Client(secured_broker.port, "homeassistant", USERS["homeassistant"], client_id="lobby"),
                 Client(secured_broker.tls_port, "hall", USERS["hall"], client_id="lobby", ca=secured_broker.ca),
                 Client(secured_broker.ws_port, "kiosk.lobby", KIOSKS["kiosk.lobby"], client_id="lobby", websockets=True),
                 Client(secured_broker.wss_port, "kiosk.hall", KIOSKS["kiosk.hall"], client_id="lobby", websockets=True,
                        ca=secured_broker.ca)]
    assert all(impostor.connected.wait(5) for impostor in impostors)
    impostors[0].publish("affectlite/lobby/set/privacy", "ON")       # through the broker after every CONNECT
    assert wait_for(lambda: ("affectlite/lobby/set/privacy", "ON") in device.messages)
    assert device.disconnects == 0
    assert all(impostor.disconnects == 0 for impostor in impostors)
    for client in (device, *impostors):
        client.close()


def host_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None with loopback only."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_plain_listeners_answer_on_loopback_only_and_tls_ones_on_the_network(secured_broker, tmp_path):
    address = host_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")

    def accepts(port: int) -> bool:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return True
        except OSError:
            return False

    assert not accepts(secured_broker.port)
    assert accepts(secured_broker.tls_port) and accepts(secured_broker.wss_port)
    if mosquitto_version() >= (2, 0, 12):
        assert not accepts(secured_broker.ws_port)
    else:   # Mosquitto 2.0.11 (Debian Bookworm) binds WebSocket listeners to every interface (upstream #3045)
        assert accepts(secured_broker.ws_port), "2.0.11 binds this WebSocket listener: update the documentation"


def mosquitto_version() -> tuple[int, ...]:
    out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout
    return tuple(int(n) for n in re.search(r"version (\d+)\.(\d+)\.(\d+)", out).groups())


def test_a_device_and_a_kiosk_over_tls_with_the_certificates_of_make_certs(secured_broker, tmp_path):
    kiosk = Client(secured_broker.wss_port, "kiosk.lobby", KIOSKS["kiosk.lobby"], websockets=True,
                   ca=secured_broker.ca, topics=["affectlite/+/state"])
    assert kiosk.connected.wait(5)
    device = MqttSink(configuration.validate({"mqtt": {
        "port": secured_broker.tls_port, "device_id": "lobby", "username": "lobby", "password": USERS["lobby"],
        "tls": True, "ca_file": str(secured_broker.ca), "queue_path": str(tmp_path / "q.sqlite3")}}, environ={})["mqtt"])
    device.start()
    try:
        device.publish_state({"v": 1, "people": 2})
        assert wait_for(lambda: device.pump() or "affectlite/lobby/state" in kiosk.topics())
        assert device.delivery_verified in (None, True)
    finally:
        device.close()
        kiosk.close()
    untrusting = Client(secured_broker.tls_port, "lobby", USERS["lobby"])      # plain MQTT to the TLS port
    assert not untrusting.connected.wait(2)
    untrusting.close()


def test_make_certs_certificates_pass_a_strict_verifier(secured_broker):
    """A client on Python 3.13's default TLS context verifies with strict X.509 checks, which refuse
    a certificate without key identifiers; the shipped script's certificates must pass them on any
    Python, whatever the OpenSSL's defaults."""
    import ssl

    strict = ssl.create_default_context(cafile=str(secured_broker.ca))
    strict.verify_flags |= ssl.VERIFY_X509_STRICT
    with socket.create_connection(("127.0.0.1", secured_broker.tls_port), timeout=5) as raw:
        with strict.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.getpeercert()["subject"] == ((("commonName", "lobby-pi"),),)


def test_doctor_beside_the_running_service_costs_it_one_reconnect_and_no_event(secured_broker, tmp_path):
    """doctor logs in as the device; on this broker the client id is the user name, so its probe
    takes the service's session for a moment. The service reconnects within seconds (1-5 s
    backoff) and what it published meanwhile waits in its queue."""
    from affectlite.doctor import configuration_lines

    ha = Client(secured_broker.port, "homeassistant", USERS["homeassistant"], topics=["affectlite/lobby/events"])
    assert ha.connected.wait(5)
    config = {"port": secured_broker.port, "device_id": "lobby", "username": "lobby", "password": USERS["lobby"],
              "queue_path": str(tmp_path / "q.sqlite3")}
    device = MqttSink(configuration.validate({"mqtt": config}, environ={})["mqtt"])
    device.start()
    try:
        assert wait_for(lambda: device.pump() or device.connected)
        toml = tmp_path / "device.toml"
        toml.write_text("[mqtt]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()
                                             if k != "queue_path") + f'queue_path = "{tmp_path / "q2.sqlite3"}"\n')
        lines, ok = configuration_lines(toml)
        assert any(line.startswith("MQTT broker") and "delivers" in line for line in lines), lines
        for n in range(5):
            device.publish_event({"v": 1, "type": "face_appeared", "track_id": n})
        assert wait_for(lambda: device.pump() or len(ha.messages) == 5, timeout=20)
        assert [json.loads(p)["track_id"] for _, p in ha.messages] == list(range(5))
        assert device.connects == 2                       # the probe's takeover, then back
    finally:
        device.close()
        ha.close()


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


def test_over_mqtt5_a_refused_event_is_seen_at_once_and_stays_queued(secured_broker, tmp_path, caplog):
    """[mqtt] protocol = "5": the shipped ACL's refusal comes back as a reason code on each
    PUBACK (3.1.1 acknowledges and drops), so the sink keeps the events and says why."""
    caplog.set_level("ERROR")
    config = configuration.validate({"mqtt": {
        "port": secured_broker.port, "device_id": "lobby", "username": "hall", "password": USERS["hall"],
        "protocol": "5", "queue_path": str(tmp_path / "q.sqlite3")}}, environ={})["mqtt"]
    device = MqttSink(config)
    device.start()
    try:
        assert wait_for(lambda: device.connected)
        device.delivery_verified = True          # as if the round trip had passed: the PUBACK alone must tell
        for n in range(10):
            device.publish_event({"v": 1, "type": "face_appeared", "track_id": n})
        assert wait_for(lambda: device.pump() or device.delivery_verified is False, timeout=10)
        wait_for(lambda: device.pump() or False, timeout=1.0)
        assert device.pending == 10
        assert "refused this device's event (Not authorized)" in caplog.text and "user hall" in caplog.text
        assert caplog.text.count("refused this device's event") == 1      # one line, not one per event
    finally:
        device.close()


def test_over_mqtt5_the_retained_state_expires_once_the_device_is_gone(broker, tmp_path):
    """A device that dies without a word (no DISCONNECT: the broker cannot tell) leaves its
    retained state; with protocol 5 the broker drops it state_expiry_s after its last refresh,
    so that a screen that connects later is not shown a mood that is no longer true."""
    def retained_state() -> list[str]:
        reader = Client(broker.port, "", "", topics=["affectlite/+/state"], client_id="reader")
        assert reader.connected.wait(5)
        wait_for(lambda: False, timeout=0.5)                 # retained messages arrive with the subscription
        reader.close()
        return reader.topics()

    for protocol, device_id in (("3.1.1", "old"), ("5", "new")):
        device = MqttSink(configuration.validate({"mqtt": {
            "port": broker.port, "device_id": device_id, "protocol": protocol, "state_expiry_s": 2,
            "queue_path": str(tmp_path / f"{device_id}.sqlite3")}}, environ={})["mqtt"])
        device.start()
        assert wait_for(lambda: device.connected)
        device.publish_state({"v": 1, "time": 1.0, "people": 1})
        assert wait_for(lambda: f"affectlite/{device_id}/state" in retained_state())
        device.client.loop_stop()                            # dead: no DISCONNECT, no further refresh
        device.client.socket().close()
    wait_for(lambda: False, timeout=3.5)
    assert retained_state() == ["affectlite/old/state"]     # 3.1.1: kept for ever; 5: expired


def test_broker_users_are_named_so_that_no_two_logins_collide(tmp_path, capsys):
    """A kiosk named like a device (lobby) threw the device out on every connect (client id = user
    name): the tool refuses such names, and each user it adds logs in on the shipped broker."""
    from affectlite.cli import main

    assert main(["broker-user", "device", "lobby", "--dir", str(tmp_path)]) == 0
    password = capsys.readouterr().out.split("(shown once): ")[1].split(";")[0]
    assert main(["broker-user", "kiosk", "lobby", "--dir", str(tmp_path)]) == 2          # no dot: a device's name
    assert "has a dot in it" in capsys.readouterr().err
    assert main(["broker-user", "automation", "lobby", "--dir", str(tmp_path)]) == 2     # taken
    assert "already a user in affectlite.passwd" in capsys.readouterr().err
    assert main(["broker-user", "device", "kiosk.lobby", "--dir", str(tmp_path)]) == 2   # a dot: a kiosk's name
    assert main(["broker-user", "kiosk", "kiosk.lobby", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "kiosk.passwd").read_text().startswith("kiosk.lobby:")
    assert (tmp_path / "affectlite.passwd").read_text().startswith("lobby:")

    from broker import Broker

    broker = Broker(tmp_path / "b", extra=f"allow_anonymous false\npassword_file {tmp_path / 'affectlite.passwd'}\n") \
        if (tmp_path / "b").mkdir() is None else None
    broker.start()
    try:
        client = paho.Client(CallbackAPIVersion.VERSION2)
        client.username_pw_set("lobby", password)
        assert client.connect("127.0.0.1", broker.port) == 0
        client.loop_start()
        assert wait_for(lambda: client.is_connected())
        client.loop_stop()
        client.disconnect()
    finally:
        broker.stop()
