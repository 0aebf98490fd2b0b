"""The fleet: every device on a broker followed into a real database, killed and restarted
without losing or doubling an event, and history questions answered as CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from affectlite import config as configuration
from affectlite.fleet.reports import alerts_per_day, offline_periods, time_shares
from affectlite.fleet.store import open_store
from affectlite.fleet.topics import Route, parse
from affectlite.sinks.mqtt import MqttSink
from broker import wait_for


def test_topics_of_a_site_broker_and_of_a_central_one():
    assert parse("affectlite/lobby-1/events") == Route("", "lobby-1", "events")
    assert parse("sites/shop-7/affectlite/till/state") == Route("shop-7", "till", "state")
    assert parse("affectlite/lobby-1/set/privacy") is None and parse("homeassistant/status") is None


def event(n: int, kind: str = "face_appeared", **extra) -> dict:
    return {"v": 1, "id": f"{n:032x}", "type": kind, "time": 1_790_000_000.0 + n, "track_id": n, **extra}


def test_the_store_keeps_each_event_once_and_state_changes_only(tmp_path):
    store = open_store(tmp_path / "fleet.sqlite3")
    route = Route("", "hall", "events")
    for n in (1, 2, 2, 3, 1):                                   # QoS 1 redelivery
        store.add(route, json.dumps(event(n)).encode(), 0.0)
    store.flush()
    assert store.count("events") == 3
    state = {"v": 1, "time": 1_790_000_000.0, "people": 1, "dominant_emotion": "happy", "valence": "positive",
             "alert_active": False, "persons": []}
    for t, emotion in ((0, "happy"), (5, "happy"), (10, "sad"), (40, "sad")):   # refreshes are not changes
        store.add(Route("", "hall", "state"), json.dumps(state | {"time": 1_790_000_000.0 + t,
                                                                  "dominant_emotion": emotion,
                                                                  "valence": "positive" if emotion == "happy" else "negative"}).encode(), 0.0)
    store.add(Route("", "hall", "state"), b"not json", 0.0)
    store.flush()
    assert store.count("states") == 2
    shares = time_shares(store, until=1_790_000_000.0 + 40)
    assert ["", "hall", "emotion", "happy", 0.25] in shares and ["", "hall", "valence", "negative", 0.75] in shares
    store.close()


def start_fleet(command: list[str]) -> subprocess.Popen:
    """The fleet process, returned once it says it is listening (its subscription confirmed)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    assert "listening on" in line, line + process.stderr.read()
    return process


def test_a_killed_fleet_loses_nothing_and_doubles_nothing(broker, tmp_path):
    """`affectlite fleet watch` as a child process with a persistent session: events keep coming
    from a device while the fleet is killed (SIGKILL) and restarted; every event is stored once."""
    db = tmp_path / "fleet.sqlite3"
    command = [sys.executable, "-m", "affectlite.cli", "fleet", "watch", "--port", str(broker.port), "--db", str(db),
               "--client-id", "fleet-test"]
    device = MqttSink(configuration.validate({"mqtt": {"port": broker.port, "device_id": "hall",
                                                       "queue_path": str(tmp_path / "q.sqlite3")}}, environ={})["mqtt"])
    device.start()
    fleet = start_fleet(command)
    try:
        assert wait_for(lambda: device.connected)
        store = open_store(db)
        for n in range(1, 51):
            device.publish_event(event(n))
        assert wait_for(lambda: device.pump() or store.count("events") == 50, timeout=30)
        fleet.send_signal(signal.SIGKILL)
        fleet.wait()
        for n in range(51, 101):                                  # while the fleet is down
            device.publish_event(event(n, "alert", alert="negative_valence") if n % 10 == 0 else event(n))
        assert wait_for(lambda: device.pump() or device.pending == 0, timeout=20)
        fleet = start_fleet(command)
        assert wait_for(lambda: store.count("events") == 100, timeout=30), store.count("events")
        ids = [row[0] for row in store.query("SELECT track_id FROM events ORDER BY time")]
        assert ids == list(range(1, 101))
        rows = alerts_per_day(store)
        assert rows[0] == ["site", "device", "day", "alert", "count"] and rows[1][1:] == ["hall", rows[1][2],
                                                                                          "negative_valence", 5]
        store.close()
    finally:
        fleet.send_signal(signal.SIGTERM)
        fleet.wait(timeout=20)
        device.close()


def test_one_bad_message_does_not_stop_the_history(broker, tmp_path, caplog):
    """Malformed events between good ones, as any device allowed to write its topics can send: each
    is counted, logged (once a minute per device) and acknowledged; every good event is stored
    exactly once, and a restarted watcher gets none of the bad ones again."""
    import math

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from affectlite.fleet.watch import BrokerOptions, FleetWatcher

    bad = [
        event(900) | {"time": "abc"}, event(901) | {"time": math.nan}, event(902) | {"time": None},
        event(903) | {"id": "not-an-id"}, event(904) | {"track_id": "x"}, event(905, "explosion"),
        event(906) | {"alert": "x" * 1000}, [1, 2, 3], "a string", {"deep": [[[[[[[[1]]]]]]]]},
    ]
    device = paho.Client(CallbackAPIVersion.VERSION2)
    device.connect("127.0.0.1", broker.port)
    device.loop_start()
    store = open_store(tmp_path / "fleet.sqlite3")
    options = BrokerOptions(port=broker.port, client_id="fleet-bad")
    watcher = FleetWatcher(options, store, out=io.StringIO(), live_table=False, flush_every_s=0.1)
    runner = threading.Thread(target=watcher.run, kwargs={"duration": 30})
    runner.start()
    try:
        assert watcher.connected.wait(10)
        wait_for(lambda: False, timeout=0.5)                       # subscribed
        good = 0
        for n, payload in enumerate(bad):
            for _ in range(2):
                good += 1
                device.publish("affectlite/lobby/events", json.dumps(event(good)), qos=1).wait_for_publish(5)
            device.publish("affectlite/lobby/events", json.dumps(payload), qos=1).wait_for_publish(5)
        device.publish("affectlite/lobby/events", b"\xff\xfe not json", qos=1).wait_for_publish(5)
        device.publish("affectlite/lobby/events", b"{" * 100_000, qos=1).wait_for_publish(5)
        device.publish("affectlite/lobby/state", json.dumps({"v": 1, "time": 1_790_000_000.0, "people": "many"}),
                       qos=1).wait_for_publish(5)
        device.publish("affectlite/lobby/events", json.dumps(event(good + 1)), qos=1).wait_for_publish(5)
        good += 1
        assert wait_for(lambda: store.count("events") == good, timeout=20), store.count("events")
        assert wait_for(lambda: watcher.view.devices[("", "lobby")].rejected == len(bad) + 3, timeout=10)
        assert runner.is_alive()                                   # the watcher goes on
    finally:
        watcher.stop()
        runner.join(timeout=20)
    ids = [row[0] for row in store.query("SELECT track_id FROM events ORDER BY time")]
    assert ids == list(range(1, good + 1))                         # each good one once, in order
    assert caplog.text.count("malformed") == 1 and "from lobby ignored" in caplog.text   # once a minute

    again = FleetWatcher(options, store, out=io.StringIO(), live_table=False, flush_every_s=0.1)
    rerun = threading.Thread(target=again.run, kwargs={"duration": 3})
    rerun.start()
    rerun.join(timeout=20)
    assert ("", "lobby") not in again.view.devices or again.view.devices[("", "lobby")].rejected == 0
    assert store.count("events") == good
    store.close()
    device.loop_stop()
    device.disconnect()


def test_audience_windows_are_stored_once_and_reported_per_device_content_and_hour(tmp_path, capsys):
    from affectlite.cli import main

    store = open_store(tmp_path / "fleet.sqlite3")
    route = parse("sites/museum/affectlite/hall/audience")
    assert route == Route("museum", "hall", "audience")
    start = 1_790_000_000.0 - 1_790_000_000.0 % 3600              # on the hour
    windows = [
        {"v": 1, "window_start": start, "window_end": start + 900, "ots": 10, "viewers": 4, "glances": 6, "left": 8,
         "dwell_mean_s": 12.0, "attention_s": 60.0, "attention_rate": 0.5, "viewer_valence": 0.5,
         "content": {"welcome": {"ots": 6, "viewers": 3, "left": 4, "dwell_mean_s": 10.0, "attention_s": 40.0,
                                 "viewer_valence": 1.0}}},
        {"v": 1, "window_start": start + 900, "window_end": start + 1800, "ots": 2, "viewers": 0, "glances": 0,
         "left": 2, "dwell_mean_s": 3.0, "attention_s": 0.0, "attention_rate": 0.0, "viewer_valence": None},
    ]
    for window in windows + windows[:1]:                          # a QoS 1 redelivery changes nothing
        assert store.add(route, json.dumps(window).encode(), 0.0) is None
    assert store.add(route, json.dumps({"v": 1, "window_start": "x"}).encode(), 0.0) is not None
    store.flush()
    assert store.count("audience") == 2
    store.close()
    assert main(["fleet", "report", "audience", "--db", str(tmp_path / "fleet.sqlite3")]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    hour = rows[1][2]
    assert rows[0] == ["site", "device", "hour", "content", "windows", "ots", "viewers", "attention_s", "dwell_mean_s",
                       "viewer_valence"]
    assert rows[1:] == [["museum", "hall", hour, "", "2", "12", "4", "60.0", "10.2", "0.5"],
                        ["museum", "hall", hour, "welcome", "1", "6", "3", "40.0", "10.0", "1.0"]]


def test_report_command_and_offline_periods(tmp_path, capsys):
    from affectlite.cli import main

    db = tmp_path / "fleet.sqlite3"
    store = open_store(db)
    for t, what in ((100.0, b"online"), (200.0, b"offline"), (260.0, b"online"), (300.0, b"offline")):
        store.add(Route("shop", "till", "availability"), what, t)
    store.close()
    assert main(["fleet", "report", "offline", "--db", str(db)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["site", "device", "offline_at", "back_at", "offline_s"]
    assert rows[1][:2] == ["shop", "till"] and rows[1][4] == "60.0"
    assert rows[2][3] == ""                                      # still offline
    assert offline_periods(open_store(db))[1:] == [[r[0], r[1], r[2], r[3], float(r[4]) if r[4] else ""] for r in rows[1:]]


def test_the_live_view_lists_every_device_and_prints_json_lines_when_not_a_terminal(broker, tmp_path):
    from affectlite.fleet.watch import BrokerOptions, FleetWatcher

    out = io.StringIO()
    watcher = FleetWatcher(BrokerOptions(port=broker.port, client_id="fleet-view"), open_store(tmp_path / "f.sqlite3"),
                           out=out)
    runner = threading.Thread(target=watcher.run, kwargs={"duration": 20})
    runner.start()
    devices = []
    try:
        assert watcher.connected.wait(10)
        for name in ("hall", "door"):
            sink = MqttSink(configuration.validate({"mqtt": {"port": broker.port, "device_id": name,
                                                             "queue_path": str(tmp_path / f"{name}.sqlite3")}},
                                                   environ={})["mqtt"])
            sink.start()
            devices.append(sink)
        assert wait_for(lambda: all(d.connected for d in devices))
        devices[0].publish_state({"v": 1, "time": 1.0, "people": 2, "dominant_emotion": "happy", "valence": "positive",
                                  "alert_active": True, "persons": [{"track_id": 4, "state": "happy"}]})
        devices[0].publish_stats({"v": 1, "inference_fps": 14.9, "latency_ms": {"p95": 8.5}, "queued_messages": 0,
                                  "cpu_temp_c": 51.0})
        assert wait_for(lambda: ("hall" in out.getvalue() and "door" in out.getvalue()
                                 and '"fps": 14.9' in out.getvalue()), timeout=10)
        hall = watcher.view.devices[("", "hall")]
        assert hall.online and hall.people == 2 and hall.alert and hall.states == "#4 happy" and hall.p95_ms == 8.5
        table = watcher.view.table(hall.last_seen)
        assert "hall" in table and "door" in table and "#4 happy" in table
        for line in out.getvalue().splitlines():
            json.loads(line)                                      # JSON Lines, one object per line
    finally:
        watcher.stop()
        runner.join(timeout=10)
        for sink in devices:
            sink.close()


def _postgres_binaries():
    import glob
    import shutil

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        return folder
    return str(__import__("pathlib").Path(shutil.which("initdb")).parent) if shutil.which("initdb") else None


@pytest.fixture
def postgres(tmp_path):
    """A real PostgreSQL server on a free loopback port with its own data directory (run as the
    'postgres' user when the tests run as root, since the server refuses root)."""
    import getpass
    import shutil

    from broker import free_port

    binaries = _postgres_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries missing (apt-get install postgresql)")
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    import tempfile
    from pathlib import Path

    home = Path(tempfile.mkdtemp(prefix="affectlite-pg-"))      # outside pytest's root-only tmp tree
    data = home / "pgdata"
    data.mkdir()
    as_user = []
    if getpass.getuser() == "root":
        shutil.chown(home, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(as_user + [f"{binaries}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)
    subprocess.run(as_user + [f"{binaries}/pg_ctl", "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                              f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [f"{binaries}/pg_ctl", "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_the_same_store_in_postgresql(postgres):
    store = open_store(postgres)
    route = Route("shop", "till", "events")
    for n in (1, 2, 2, 3, 1):
        store.add(route, json.dumps(event(n, "alert", alert="negative_share") if n == 3 else event(n)).encode(), 0.0)
    store.flush()
    assert store.count("events") == 3
    assert alerts_per_day(store)[1][1:] == ["till", alerts_per_day(store)[1][2], "negative_share", 1]
    assert store.gaps() == [] and store.missing("shop", "till") == 0     # these events carry no numbers
    window = {"v": 1, "window_start": 1_790_000_000.0, "window_end": 1_790_000_900.0, "ots": 4, "viewers": 2,
              "left": 4, "dwell_mean_s": 6.0, "attention_s": 9.5, "viewer_valence": 0.5,
              "content": {"offer": {"ots": 4, "viewers": 2, "attention_s": 9.5, "left": 4, "dwell_mean_s": 6.0}}}
    for _ in range(2):                                            # a redelivery is stored once
        assert store.add(Route("shop", "till", "audience"), json.dumps(window).encode(), 0.0) is None
    store.flush()
    from affectlite.fleet.reports import audience

    assert store.count("audience") == 1
    assert [row[3:8] for row in audience(store, per="day")[1:]] == [["", 1, 4, 2, 9.5], ["offer", 1, 4, 2, 9.5]]
    store.close()
    again = open_store(postgres)                                  # the schema exists: created once
    assert again.count("events") == 3
    again.close()
