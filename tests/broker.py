"""A real Mosquitto broker for the tests: started on a free loopback port, stoppable, restartable."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, workdir: Path, extra: str = "", port: int | None = None, tls: dict | None = None,
                 listener: bool = True):
        """``listener=False``: ``extra`` declares every listener (per-listener settings), and
        ``port`` is the one :meth:`start` waits for."""
        assert Path(MOSQUITTO).exists(), "mosquitto is not installed (apt-get install mosquitto)"
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        lines = [
            # run as whoever runs the tests: mosquitto started as root otherwise drops to user
            # 'mosquitto', which cannot read the test's private temporary files
            f"user {getpass.getuser()}",
            "persistence true",
            f"persistence_location {workdir}/",
            "autosave_interval 1",
        ]
        if listener:
            lines.insert(1, f"listener {self.port} 127.0.0.1")
        if tls:
            lines += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
        if "password_file" not in extra and listener:
            lines.append("allow_anonymous true")
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n" + extra)
        self.log = workdir / "mosquitto.log"

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf), "-v"], stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def listening(port: int) -> bool:
    """Whether something accepts connections on this loopback port (e.g. a WebSocket listener,
    which Mosquitto opens a moment after its TCP listener)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def wait_for(condition, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
