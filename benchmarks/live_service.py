"""End-to-end figures of `affectlite run`: capture -> MQTT subscriber latency, sustained rate,
CPU use and memory over time, replaying the bundled clip in real time against a local Mosquitto.

    python benchmarks/live_service.py --minutes 60      # the memory-growth check over an hour
    python benchmarks/live_service.py --minutes 3       # a quick look

Latency is measured per analysed frame: the service stamps each .../faces message with the
wall-clock time its frame was captured, the subscriber subtracts that from its arrival time.
The service runs in a child process (as deployed); its CPU time and resident memory come from
/proc. Needs the `mosquitto` binary (apt-get install mosquitto).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_figures(pid: int) -> tuple[float, float]:
    """(CPU seconds used, resident MiB) of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[11]) + int(stat[12])) / ticks
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--max-fps", type=float, default=15.0, help="the service's analysis rate cap")
    args = parser.parse_args()

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    work = Path(tempfile.mkdtemp(prefix="affectlite-bench-"))
    port = free_port()
    (work / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(work / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    (work / "bench.toml").write_text(
        f'[source]\nkind = "file"\nrealtime = true\nloop = true\n'
        f'[recognizer]\nmax_fps = {args.max_fps}\n'
        f'[mqtt]\nport = {port}\ndevice_id = "bench"\nqueue_path = "{work}/q.sqlite3"\nfaces = true\n'
        f'faces_max_hz = 1000\nstats_interval_s = 10\nhomeassistant = false\n')

    latencies: list[float] = []
    lock = threading.Lock()

    def on_message(client, userdata, message):
        arrived = time.time()
        payload = json.loads(message.payload)
        with lock:
            latencies.append((arrived - payload["captured_at"]) * 1000)

    subscriber = paho.Client(CallbackAPIVersion.VERSION2)
    subscriber.on_message = on_message
    subscriber.on_connect = lambda c, u, f, rc, p: c.subscribe("affectlite/bench/faces", 0)
    subscriber.connect("127.0.0.1", port)
    subscriber.loop_start()

    service = subprocess.Popen([sys.executable, "-m", "affectlite.cli", "run", "--config", str(work / "bench.toml"),
                                "--log-level", "WARNING"])
    samples = []                      # (elapsed s, cpu s, rss MiB, frames received)
    start = time.monotonic()
    try:
        while time.monotonic() - start < args.minutes * 60:
            time.sleep(5)
            cpu, rss = proc_figures(service.pid)
            with lock:
                samples.append((time.monotonic() - start, cpu, rss, len(latencies)))
            if len(samples) % 12 == 0:                       # a progress line a minute
                print(f"  {samples[-1][0] / 60:5.1f} min: RSS {rss:.1f} MiB, {samples[-1][3]} frames received",
                      flush=True)
    finally:
        service.terminate()
        service.wait(timeout=30)
        subscriber.loop_stop()
        broker.terminate()
        shutil.rmtree(work, ignore_errors=True)

    with lock:
        lat = np.array(latencies[len(latencies) // 20:])          # skip the warm-up
    elapsed, cpu, rss_end, received = samples[-1]
    first_minute = min(samples, key=lambda s: abs(s[0] - 60))
    print(f"\naffectlite run, bundled clip replayed at 29.97 fps, max_fps {args.max_fps}, {elapsed / 60:.1f} min, "
          f"{os.cpu_count()} CPUs")
    print(f"  capture -> subscriber latency: median {np.median(lat):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms "
          f"({len(lat)} frames)")
    print(f"  sustained analysis rate: {received / elapsed:.1f} frames/s")
    print(f"  CPU: {100 * cpu / elapsed:.0f} % of one core on average")
    print(f"  resident memory: {first_minute[2]:.1f} MiB at {first_minute[0] / 60:.1f} min, {rss_end:.1f} MiB at "
          f"{elapsed / 60:.1f} min ({rss_end - first_minute[2]:+.1f} MiB)")


if __name__ == "__main__":
    main()
