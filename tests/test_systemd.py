"""The service under systemd: READY once the camera is open, watchdog pings while frames come."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from affectlite import config as configuration
from affectlite.service import Service
from affectlite.sources.memory import MemorySource
from affectlite.systemd import SystemdNotifier
from broker import wait_for

UNIT = Path(__file__).parents[1] / "firmware_configs" / "affectlite.service"


class NotifySocket:
    """What systemd listens on: a Unix datagram socket, collected on a thread."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self):
        while not self._stop.is_set():
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except socket.timeout:
                pass

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


class StallingSource(MemorySource):
    """A camera that delivers its frames and then hangs, as a wedged driver does."""

    def read(self):
        frame = super().read()
        if frame is None:
            time.sleep(2.5)            # hangs, then the driver gives up
        return frame


def quiet_config():
    return configuration.validate({"mqtt": {"enabled": False, "stats_interval_s": 0.3},
                                   "recognizer": {"max_fps": 30}}, environ={})


@pytest.fixture
def notify_socket(tmp_path):
    listener = NotifySocket(tmp_path / "notify")
    yield listener
    listener.close()


def test_ready_watchdog_status_and_stopping(notify_socket, tmp_path, frame):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"})
    assert notifier.watchdog_s == 0.4
    service = Service(quiet_config(), source=MemorySource([frame] * 60, fps=30), notifier=notifier)
    service.run()
    assert wait_for(lambda: notify_socket.messages and notify_socket.messages[-1][1] == "STOPPING=1", timeout=5)
    kinds = [m.split("\n")[0].split("=")[0] for _, m in notify_socket.messages]
    assert kinds[0] == "READY" and "memory open" in notify_socket.messages[0][1]
    assert kinds[-1] == "STOPPING"
    assert kinds.count("WATCHDOG") >= 10                    # 2 s of frames, a ping every 0.1 s
    assert any(m.startswith("STATUS=") and "frames/s analysed" in m for _, m in notify_socket.messages)


def test_a_stalled_camera_stops_the_watchdog(notify_socket, tmp_path, frame):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"})
    service = Service(quiet_config(), source=StallingSource([frame] * 15, fps=30), notifier=notifier)
    runner = threading.Thread(target=service.run, kwargs={"duration": 3.0})
    runner.start()
    runner.join()
    assert wait_for(lambda: notify_socket.messages and notify_socket.messages[-1][1] == "STOPPING=1", timeout=5)
    stopped_at = notify_socket.messages[-1][0]
    pings = [t for t, m in notify_socket.messages if m == "WATCHDOG=1"]
    # Frames end after 0.5 s; pings follow for at most half the watchdog period, then stop
    # while the service keeps running (until 3 s), so systemd would restart it.
    assert pings and stopped_at - max(pings) > 1.0


def test_outside_systemd_nothing_is_sent():
    notifier = SystemdNotifier({})
    assert not notifier.enabled and notifier.watchdog_s is None
    assert notifier.ready() is False


def test_watchdog_meant_for_another_process_is_ignored():
    assert SystemdNotifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None


def test_abstract_socket_address(frame):
    name = f"affectlite-test-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(100) == b"READY=1"


def test_unit_file_is_valid_for_systemd(tmp_path):
    """systemd-analyze verify, with ExecStart pointed at this machine's affectlite."""
    analyze, affectlite = shutil.which("systemd-analyze"), shutil.which("affectlite")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "NotifyAccess=main", "User=affectlite", "Restart=on-failure"):
        assert line in text
    unit = tmp_path / "affectlite.service"
    unit.write_text(text.replace("/opt/affectlite/venv/bin/affectlite", affectlite))
    verify = lambda: subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True)
    result = verify()
    assert result.returncode == 0 and "affectlite.service" not in result.stderr, result.stderr
    unit.write_text(text.replace("Type=notify", "Type=notify-ish"))      # the check does find mistakes
    assert "Failed to parse service type" in verify().stderr
