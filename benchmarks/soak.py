"""A soak: `affectlite run` for minutes against a real Mosquitto, with a broker outage and a full
disk under the queue in the middle, overlapping; then every event is accounted for.

The device replays the bundled clip followed by 1.5 s without anyone, looped, at 10 frames/s, so
that it keeps making events whether or not the broker is there (each loop: the face appears, its
state settles, it leaves). A subscriber with a persistent session records every event. Timeline, as shares
of --minutes: the broker is down from 30 % to 50 %, the disk under the queue (a tmpfs the script
mounts) is full from 40 % to 60 % (events then wait in memory, up to 1,000). At the end the
service's own count of events is compared with what arrived:

    lost = events made - events received - events the queue reported dropping (its documented bound)

and the service's memory (RSS) is sampled throughout. Needs root (mount) and mosquitto.

    sudo python benchmarks/soak.py --minutes 10
    sudo python benchmarks/soak.py --minutes 10 --queue-max 50     # a bound that is hit: drops counted
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {workdir}/\nautosave_interval 1\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Recorder:
    """Every event and stats message, over a persistent QoS 1 session that outlives outages."""

    def __init__(self, port: int, device: str):
        self.events: list[dict] = []
        self.stats: list[dict] = []
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="soak-recorder", clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(f"affectlite/{device}/events", 1), (f"affectlite/{device}/stats", 1)])
        self.client.on_message = self._message
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, client, userdata, message) -> None:
        payload = json.loads(message.payload)
        (self.events if message.topic.endswith("/events") else self.stats).append(payload)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--queue-max", type=int, default=10000, help="[mqtt] queue_max_messages")
    parser.add_argument("--disk-mb", type=int, default=4, help="size of the tmpfs holding the queue")
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("mosquitto"):
        print("soak: needs root (it mounts a small tmpfs for the queue) and mosquitto", file=sys.stderr)
        return 2
    total = args.minutes * 60
    with tempfile.TemporaryDirectory() as work_name:
        work = Path(work_name)
        disk = work / "disk"
        disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs", str(disk)], check=True)
        broker = BrokerProcess(work)
        broker.start()
        device = "soak"
        config = work / "soak.toml"
        clip = soak_clip(work / "soak.mp4")
        config.write_text(f'[source]\npath = "{clip}"\n[mqtt]\nport = {broker.port}\ndevice_id = "{device}"\nqueue_path = "{disk}/queue.sqlite3"\n'
                          f'queue_max_messages = {args.queue_max}\nstats_interval_s = 2.0\n'
                          '[recognizer]\nmax_fps = 10\nthreads = 1\n[states]\nmin_duration_s = 0.3\nface_timeout_s = 1.0\n')
        service = subprocess.Popen([sys.executable, "-m", "affectlite.cli", "run", "--config", str(config)],
                                   stdout=subprocess.DEVNULL, stderr=open(work / "service.log", "w"))
        recorder = Recorder(broker.port, device)
        memory: list[tuple[float, float]] = []
        filler = disk / "filler.bin"
        phases = [(0.3, "broker down", broker.stop), (0.4, "disk full", lambda: fill(filler)),
                  (0.5, "broker back", broker.start), (0.6, "disk free", lambda: filler.unlink())]
        started = time.monotonic()
        try:
            while time.monotonic() - started < total:
                elapsed = time.monotonic() - started
                while phases and elapsed >= phases[0][0] * total:
                    _, name, action = phases.pop(0)
                    action()
                    print(f"{elapsed:6.0f} s  {name}", flush=True)
                if service.poll() is not None:
                    print(f"the service exited ({service.returncode}):\n{(work / 'service.log').read_text()[-2000:]}")
                    return 1
                if not memory or elapsed - memory[-1][0] >= 5:
                    memory.append((elapsed, rss_mb(service.pid)))
                time.sleep(1)
            # The end: pause (the face leaves, its last event), then wait until all is delivered.
            operator = paho.Client(CallbackAPIVersion.VERSION2, client_id="soak-operator")
            operator.connect("127.0.0.1", broker.port)
            operator.loop_start()
            operator.publish(f"affectlite/{device}/set/pause", "", qos=1).wait_for_publish(5)
            operator.loop_stop()
            operator.disconnect()
            # Settled: two stats messages with the same event count and nothing queued.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                last = recorder.stats[-2:]
                if len(last) == 2 and last[0]["events"] == last[1]["events"] and last[1]["queued_messages"] == 0 \
                        and last[1]["time"] > time.time() - 5:
                    break
                time.sleep(1)
            final = recorder.stats[-1]
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
            recorder.close()
            broker.stop()
            subprocess.run(["umount", "-l", str(disk)], check=False)
        received = len({e["id"] for e in recorder.events})
        duplicates = len(recorder.events) - received
        made, dropped = final["events"], final["queue_dropped"]
        rss = [m for at, m in memory if at >= 30] or [m for _, m in memory]      # after start-up
        print(f"\n{args.minutes:g} min, broker down {0.2 * total:.0f} s, disk full {0.2 * total:.0f} s "
              f"(overlapping {0.1 * total:.0f} s), queue_max_messages {args.queue_max}")
        print(f"events made {made}, received {received} (+{duplicates} QoS 1 repeats, told apart by id), "
              f"dropped by the queue's bound {dropped}: lost beyond the bound {made - received - dropped}")
        print(f"service memory (RSS, from 30 s): first {rss[0]:.0f} MB, median {sorted(rss)[len(rss) // 2]:.0f} MB, "
              f"largest {max(rss):.0f} MB, last {rss[-1]:.0f} MB")
        print(f"stats messages that reached the broker: largest queue {max(s['queued_messages'] for s in recorder.stats)}, "
              f"largest in memory {max(s['queue_in_memory'] for s in recorder.stats)}")
        return 0 if made - received - dropped == 0 else 1


def fill(path: Path) -> None:
    """Fill the filesystem until it refuses (ENOSPC)."""
    out = open(path, "wb", buffering=0)
    try:
        while True:
            out.write(b"\0" * 65536)
    except OSError:
        pass
    finally:
        try:
            out.close()
        except OSError:
            pass


def soak_clip(path: Path) -> Path:
    """The bundled clip, then 1.5 s of an empty grey scene: looped, a face comes and goes."""
    import av
    import numpy as np

    from affectlite import SAMPLE_CLIP
    from affectlite.sources.video_file import read_video

    frames = [frame.rgb for frame in read_video(SAMPLE_CLIP)]
    empty = np.full_like(frames[0], 110)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for rgb in frames + [empty] * 45:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


if __name__ == "__main__":
    sys.exit(main())
