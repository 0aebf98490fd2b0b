"""End-to-end latency of an event: device -> site broker -> bridge -> central broker -> fleet store.

Starts two Mosquitto instances on free loopback ports (the site with the shipped bridge
configuration, TLS left out), --devices simulated devices (each the service's own MqttSink and
on-disk outbox) publishing one event a second each, and `affectlite fleet watch`'s FleetWatcher
storing into SQLite. The latency is the time from an event's creation to the commit of the
transaction that stored it; prints the median and p95.

    python benchmarks/fleet_latency.py --devices 50 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from affectlite import config as configuration
from affectlite.fleet.store import open_store
from affectlite.fleet.watch import BrokerOptions, FleetWatcher
from affectlite.sinks.mqtt import MqttSink

SHIPPED = Path(__file__).resolve().parents[1] / "firmware_configs" / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(folder: Path, port: int, extra: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{extra}")
    process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        central_port, site_port = free_port(), free_port()
        bridge = ((SHIPPED / "site-bridge.conf").read_text().replace("SITE", "site-1")
                  .replace("central.example.org:8883", f"127.0.0.1:{central_port}")
                  .replace("bridge_cafile /etc/mosquitto/certs/central-ca.pem\n", "").replace("bridge_insecure false\n", "")
                  .replace("remote_username site-1\nremote_password CHANGE-ME\n", "")
                  .replace("/var/lib/mosquitto/", f"{tmp}/site/"))
        brokers = [start_broker(tmp / "central", central_port, ""), start_broker(tmp / "site", site_port, bridge)]
        store = open_store(tmp / "fleet.sqlite3")
        latencies: list[float] = []
        flush = store.flush

        def timed_flush() -> int:
            pending = [json.loads(values[-1]) for table, values in store.pending if table == "events"]
            count = flush()
            now = time.time()
            latencies.extend(now - event["time"] for event in pending)
            return count

        store.flush = timed_flush
        watcher = FleetWatcher(BrokerOptions(port=central_port, client_id="fleet-bench"), store,
                               out=open("/dev/null", "w"), live_table=False, flush_every_s=0.05)
        runner = threading.Thread(target=watcher.run, kwargs={"duration": args.seconds + 15})
        runner.start()
        watcher.connected.wait(10)
        devices = [MqttSink(configuration.validate({"mqtt": {"port": site_port, "device_id": f"device-{i:02d}",
                                                             "queue_path": str(tmp / f"q{i}.sqlite3")}},
                                                   environ={})["mqtt"]) for i in range(args.devices)]
        for device in devices:
            device.start()
        time.sleep(3)
        sent = 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            for device in devices:
                device.publish_event({"v": 1, "id": uuid.uuid4().hex, "type": "face_appeared", "time": time.time(),
                                      "track_id": 1})
                sent += 1
            tick = time.monotonic() + 1.0
            while time.monotonic() < tick:
                for device in devices:
                    device.pump()
                time.sleep(0.01)
        deadline = time.monotonic() + 10
        while len(latencies) < sent and time.monotonic() < deadline:
            for device in devices:
                device.pump()
            time.sleep(0.05)
        watcher.stop()
        runner.join()
        for device in devices:
            device.close()
        for broker in brokers:
            broker.terminate()
        values = np.array(latencies) * 1000
        print(f"{args.devices} devices, one event a second each, {args.seconds:g} s: {len(values)} of {sent} events "
              f"stored; device -> site -> central -> SQLite latency median {np.median(values):.1f} ms, "
              f"p95 {np.percentile(values, 95):.1f} ms")


if __name__ == "__main__":
    main()
