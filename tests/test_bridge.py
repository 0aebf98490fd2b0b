"""Many devices: the shipped site-to-central bridge configuration, run in two real Mosquitto
instances on loopback ports, with the uplink cut and restored."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from affectlite import config as configuration
from affectlite.sinks.mqtt import MqttSink
from broker import Broker, wait_for

SHIPPED = Path(__file__).parents[1] / "firmware_configs" / "mosquitto"


def central_broker(workdir: Path) -> Broker:
    workdir.mkdir()
    passwd, acl = workdir / "central.passwd", workdir / "central.acl"
    passwd.touch()
    for user, password in (("lobby", "pw-site"), ("fleet", "pw-fleet"), ("museum", "pw-museum")):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    acl.write_text((SHIPPED / "central.acl").read_text())
    return Broker(workdir, extra=f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n")


def site_broker(workdir: Path, central_port: int) -> Broker:
    """The shipped bridge file with the test's address, the site name 'lobby' and no TLS."""
    workdir.mkdir()
    conf = (SHIPPED / "site-bridge.conf").read_text()
    conf = (conf.replace("SITE", "lobby").replace("central.example.org:8883", f"127.0.0.1:{central_port}")
                .replace("CHANGE-ME", "pw-site")
                .replace("persistence_location /var/lib/mosquitto/\n", "")          # the test broker sets its own
                .replace("bridge_cafile /etc/mosquitto/certs/central-ca.pem\n", "")
                .replace("bridge_insecure false\n", "")
                .replace("persistence true\n", "").replace("autosave_interval 60\n", "autosave_interval 1\n"))
    return Broker(workdir, extra=conf)


class Fleet:
    """A store's subscription at the centre: a persistent session as user fleet, QoS 1."""

    def __init__(self, port: int):
        self.events: list[dict] = []
        self.ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fleet-store", clean_session=False)
        self.client.username_pw_set("fleet", "pw-fleet")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("sites/+/affectlite/+/events", qos=1)
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.on_message = lambda c, u, m: self.events.append({"topic": m.topic, **json.loads(m.payload)})
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def event(n: int) -> dict:
    return {"v": 1, "id": f"{n:032x}", "type": "face_appeared", "time": 1.0 + n, "track_id": n}


def test_events_cross_the_bridge_in_order_when_the_uplink_is_cut(tmp_path):
    central = central_broker(tmp_path / "central").start()
    site = site_broker(tmp_path / "site", central.port).start()
    fleet = Fleet(central.port)
    device = MqttSink(configuration.validate({"mqtt": {"port": site.port, "device_id": "kiosk-1",
                                                       "queue_path": str(tmp_path / "q.sqlite3")}}, environ={})["mqtt"])
    device.start()
    try:
        assert fleet.ready.wait(10) and wait_for(lambda: device.connected)
        for n in range(1, 11):
            device.publish_event(event(n))
        assert wait_for(lambda: device.pump() or len(fleet.events) == 10, timeout=20)
        assert fleet.events[0]["topic"] == "sites/lobby/affectlite/kiosk-1/events"

        central.stop()                                           # the uplink is down
        for n in range(11, 41):
            device.publish_event(event(n))                       # the site broker takes them and queues them
        assert wait_for(lambda: device.pump() or device.pending == 0, timeout=20)
        wait_for(lambda: False, timeout=3)
        central.start()                                          # back: the bridge reconnects by itself
        assert wait_for(lambda: len({e["id"] for e in fleet.events}) == 40, timeout=60), len(fleet.events)
        ids = [e["track_id"] for e in fleet.events]
        unique = list(dict.fromkeys(ids))
        assert unique == list(range(1, 41))                      # every event, in order per device
        # QoS 1 may repeat what was in flight when the uplink went (Mosquitto keeps at most
        # max_inflight_messages, 20 by default, unacknowledged per hop), never the whole queue;
        # the ids tell the repeats apart.
        assert len(ids) - len(unique) <= 20
    finally:
        device.close()
        fleet.close()
        site.stop()
        central.stop()


def test_a_site_cannot_write_under_another_site(tmp_path):
    central = central_broker(tmp_path / "central").start()
    fleet = Fleet(central.port)
    try:
        assert fleet.ready.wait(10)
        museum = paho.Client(CallbackAPIVersion.VERSION2)
        museum.username_pw_set("museum", "pw-museum")
        museum.connect("127.0.0.1", central.port)
        museum.loop_start()
        museum.publish("sites/lobby/affectlite/kiosk-1/events", json.dumps(event(99)), qos=1).wait_for_publish(5)
        museum.publish("sites/museum/affectlite/hall/events", json.dumps(event(7)), qos=1).wait_for_publish(5)
        assert wait_for(lambda: len(fleet.events) >= 1)
        wait_for(lambda: False, timeout=0.5)
        assert [e["topic"] for e in fleet.events] == ["sites/museum/affectlite/hall/events"]
        museum.loop_stop()
        museum.disconnect()
    finally:
        fleet.close()
        central.stop()


def device_config(path: Path, device_id: str, site_port: int, queue: Path) -> Path:
    """A device as deployed, on the bundled clip (looped) at 10 frames/s, publishing to the site."""
    path.write_text(f'[mqtt]\nport = {site_port}\ndevice_id = "{device_id}"\nqueue_path = "{queue}"\n'
                    'stats_interval_s = 2.0\n[recognizer]\nmax_fps = 10\nthreads = 1\n'
                    '[states]\nmin_duration_s = 0.3\nface_timeout_s = 1.0\n')
    return path


def test_real_devices_through_a_cut_uplink_and_a_killed_fleet(tmp_path):
    """Two `affectlite run` processes on the sample clip publish to the site broker; the fleet
    store (`affectlite fleet watch`, a persistent session at the centre) records them. The uplink
    is cut for 30 s while the devices keep producing events (paused and resumed by command: each
    pause makes the face leave, each resume makes it appear again), then the fleet process is
    killed and restarted. Every event a device published reaches the database once, in order."""
    import os
    import signal
    import sys
    import time

    from affectlite.fleet.store import open_store
    from test_fleet import start_fleet

    central = central_broker(tmp_path / "central").start()
    site = site_broker(tmp_path / "site", central.port).start()
    db = tmp_path / "fleet.sqlite3"
    fleet_command = [sys.executable, "-m", "affectlite.cli", "fleet", "watch", "--host", "127.0.0.1", "--port",
                     str(central.port), "--user", "fleet", "--db", str(db), "--client-id", "fleet-store"]
    os.environ["AFFECTLITE_FLEET_PASSWORD"] = "pw-fleet"
    fleet = start_fleet(fleet_command)
    # What the devices really published, as the site broker saw it: the truth to compare with.
    published: dict[str, list[str]] = {"shop-1": [], "shop-2": []}
    witness = paho.Client(CallbackAPIVersion.VERSION2, client_id="witness", clean_session=False)
    witness.on_connect = lambda c, u, f, rc, p: c.subscribe("affectlite/+/events", qos=1)
    witness.on_message = lambda c, u, m: published[m.topic.split("/")[1]].append(json.loads(m.payload)["id"])
    witness.connect("127.0.0.1", site.port)
    witness.loop_start()
    devices = [subprocess.Popen([sys.executable, "-m", "affectlite.cli", "run", "--config",
                                 str(device_config(tmp_path / f"{name}.toml", name, site.port, tmp_path / f"{name}.q"))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for name in published]
    commands = paho.Client(CallbackAPIVersion.VERSION2, client_id="operator")
    commands.connect("127.0.0.1", site.port)
    commands.loop_start()
    store = open_store(db)

    def stored(device: str) -> list[str]:
        return [row[0] for row in store.query("SELECT id FROM events WHERE device = ? ORDER BY time, rowid", (device,))]

    try:
        assert wait_for(lambda: all(published.values()) and all(stored(d) for d in published), timeout=90), published
        central.stop()                                             # the uplink is down for 30 s
        cut_at, before_cut = time.monotonic(), {name: len(ids) for name, ids in published.items()}
        while time.monotonic() - cut_at < 30:
            for name in published:
                commands.publish(f"affectlite/{name}/set/pause", "", qos=1)
            time.sleep(3)                                          # the face times out: face_left
            for name in published:
                commands.publish(f"affectlite/{name}/set/resume", "", qos=1)
            time.sleep(4)                                          # face_appeared, then its state
        during_cut = {name: len(ids) - before_cut[name] for name, ids in published.items()}
        central.start()
        assert wait_for(lambda: all(len(stored(d)) == len(published[d]) for d in published), timeout=60)
        fleet.send_signal(signal.SIGKILL)
        fleet.wait()
        for name in published:                                     # more events while the fleet is dead
            commands.publish(f"affectlite/{name}/set/pause", "", qos=1)
        time.sleep(3)
        for name in published:
            commands.publish(f"affectlite/{name}/set/resume", "", qos=1)
        time.sleep(3)
        fleet = start_fleet(fleet_command)
        for device in devices:
            device.send_signal(signal.SIGTERM)
        for device in devices:
            assert device.wait(timeout=30) == 0
        final = {name: list(ids) for name, ids in published.items()}
        assert wait_for(lambda: all(stored(d) == final[d] for d in final), timeout=60), \
            {d: (len(stored(d)), len(final[d])) for d in final}
        for name in final:
            assert during_cut[name] >= 4                              # events were made while the uplink was down
            assert len(set(final[name])) == len(final[name])         # once each
    finally:
        for device in devices:
            if device.poll() is None:
                device.kill()
        fleet.send_signal(signal.SIGTERM)
        fleet.wait(timeout=20)
        store.close()
        for client in (witness, commands):
            client.loop_stop()
            client.disconnect()
        site.stop()
        central.stop()
        os.environ.pop("AFFECTLITE_FLEET_PASSWORD", None)


def test_the_central_broker_holds_an_hour_for_the_watcher_and_what_it_drops_anyway_is_counted(tmp_path):
    """The shipped central.conf's queue for an offline fleet watcher, at a size the test can fill:
    the same settings with max_queued_messages 30. Events past it are dropped by Mosquitto (the
    newest), and the fleet store counts them from the gap in the device's numbers."""
    import io

    from affectlite.fleet.reports import gaps
    from affectlite.fleet.store import open_store
    from affectlite.fleet.watch import BrokerOptions, FleetWatcher

    shipped = (SHIPPED / "central.conf").read_text()
    assert "max_queued_messages 300000" in shipped and "persistence true" in shipped
    queueing = "\n".join(line for line in shipped.splitlines()
                         if line.startswith(("max_queued", "max_inflight"))).replace("300000", "30")
    broker = Broker(tmp_path / "b", extra=queueing + "\n") if (tmp_path / "b").mkdir() is None else None
    broker.start()
    store = open_store(tmp_path / "fleet.sqlite3")
    options = BrokerOptions(port=broker.port, client_id="fleet-central")
    device = MqttSink(configuration.validate({"mqtt": {"port": broker.port, "device_id": "hall",
                                                       "queue_path": str(tmp_path / "q.sqlite3")}}, environ={})["mqtt"])
    try:
        first = FleetWatcher(options, store, out=io.StringIO(), live_table=False, flush_every_s=0.1)
        first.run(duration=2)                                   # the session exists, then the watcher is down
        device.start()
        assert wait_for(lambda: device.connected)
        for n in range(1, 101):                                 # 100 events while nobody reads them
            device.publish_event(event(n))
        assert wait_for(lambda: device.pump() or device.pending == 0, timeout=20)
        second = FleetWatcher(options, store, out=io.StringIO(), live_table=False, flush_every_s=0.1,
                              lost_check_every_s=0.0)
        runner = threading.Thread(target=second.run, kwargs={"duration": 15})
        runner.start()
        assert second.connected.wait(10)
        assert wait_for(lambda: store.count("events") >= 25, timeout=10)
        for n in range(101, 106):                               # the device goes on: the gap shows
            device.publish_event(event(n))
        assert wait_for(lambda: device.pump() or store.query("SELECT MAX(seq) FROM events")[0][0] == 105, timeout=15)
        second.stop()
        runner.join(timeout=20)
        stored = store.count("events")
        rows = gaps(store)
        assert rows[0] == ["site", "device", "run", "first_seq", "last_seq", "stored", "missing"]
        (site, name, run, first_seq, last_seq, count, missing), = rows[1:]
        assert (name, run, first_seq, last_seq) == ("hall", device.run_id, 1, 105)
        assert count == stored < 105 and missing == 105 - stored          # every drop counted
        assert second.view.devices[("", "hall")].lost == missing
    finally:
        device.close()
        store.close()
        broker.stop()
