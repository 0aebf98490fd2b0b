"""A real Home Assistant core for the tests: started with ``hass`` from its own virtual environment
(``tests/home_assistant_venv.sh``), onboarded and given its MQTT entry through the REST API, as a
person would through the web page, and asked what it shows through its REST and WebSocket APIs.

Two pinned versions: :data:`CURRENT` (device discovery, the frontend for screenshots) and
:data:`OLD`, the last release Home Assistant Core gets on Python 3.11 (Raspberry Pi OS Bookworm),
which reads only per-entity discovery."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from broker import free_port, wait_for

CURRENT, OLD = "2025.4.4", "2024.3.3"
PYTHON = {CURRENT: "3.13", OLD: "3.11"}
VENV_SCRIPT = Path(__file__).parent / "home_assistant_venv.sh"
CONFIGURATION = """\
homeassistant:
  name: affectlite test
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
  language: en
http:
  server_host: 127.0.0.1
  server_port: {port}
automation: !include automations.yaml
logger:
  default: info
"""
FRONTEND = """\
frontend:
lovelace:
  dashboards:
    affectlite-dashboard:
      mode: yaml
      title: affectlite
      filename: dashboard.yaml
"""


def venv(version: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "affectlite" / f"homeassistant-{version}"


def find_python(want: str) -> str | None:
    """An interpreter of version ``want`` ("3.13"), looked for where tests/home_assistant_venv.sh looks."""
    candidates = [shutil.which(f"python{want}"), *sorted(map(str, Path.home().glob(f".pyenv/versions/{want}.*/bin/python3")))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.stdout.strip() == want:            # a pyenv shim answers to the name without the version
            return candidate
    return None


def missing_reason(version: str) -> str | None:
    """Why this core cannot run here, or None. Without its Python it cannot be installed at all;
    with it, a missing venv is a set-up step not taken (which CI must not skip)."""
    if (venv(version) / ".complete").exists():
        return None
    if find_python(PYTHON[version]) is None:
        return (f"Home Assistant {version} needs Python {PYTHON[version]}, and none is on this machine "
                f"(see tests/{VENV_SCRIPT.name})")
    return f"no Home Assistant {version} in {venv(version)}: run bash tests/{VENV_SCRIPT.name} first"


class HomeAssistant:
    """One core in ``config_dir``, on a free loopback port. :meth:`start` is reusable after :meth:`stop`
    (a restart keeps the onboarding, the MQTT entry and the registries, as on a real install)."""

    def __init__(self, config_dir: Path, version: str = CURRENT):
        self.dir, self.version = config_dir, version
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = self.url + "/"
        self.token = ""
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "home-assistant.log"
        self.dir.mkdir(parents=True, exist_ok=True)
        frontend = version == CURRENT                # the old core runs headless: no screenshots of it
        (self.dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port) + (FRONTEND if frontend else ""))
        for name in ("automations.yaml", "dashboard.yaml"):
            if not (self.dir / name).exists():
                (self.dir / name).write_text("[]\n" if name == "automations.yaml" else "views: []\n")

    # -- process ---------------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> "HomeAssistant":
        self.proc = subprocess.Popen([str(venv(self.version) / "bin" / "hass"), "-c", str(self.dir), "--skip-pip",
                                      "--log-file", str(self.log)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if not wait_for(self._running, timeout=timeout, interval=0.5):
            self.stop()
            raise RuntimeError(f"Home Assistant did not start in {timeout:.0f} s:\n{self.log_text()[-3000:]}")
        return self

    def _running(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"hass exited:\n{self.log_text()[-3000:]}"
        try:
            if not self.token:
                return urllib.request.urlopen(self.url + "/api/onboarding", timeout=2).status == 200
            return self.get("/api/config").get("state") == "RUNNING"
        except (OSError, urllib.error.URLError, json.JSONDecodeError):
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def problems(self) -> list[str]:
        """The log's WARNING and ERROR records (with their continuation lines)."""
        records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ )", self.log_text())
        return [r for r in records if re.match(r"\S+ \S+ (WARNING|ERROR|CRITICAL) ", r)]

    # -- onboarding and the MQTT entry ---------------------------------------------------------
    def onboard(self, username: str = "test", password: str = "affectlite-test", every_step: bool = True) -> str:
        """The four onboarding steps of a new install (``every_step=False``: the owner only, which is
        all the APIs need); returns the owner's access token."""
        code = self._post("/api/onboarding/users", {"client_id": self.client_id, "name": "Test", "username": username,
                                                    "password": password, "language": "en"})["auth_code"]
        self.tokens = self._post("/auth/token", {"grant_type": "authorization_code", "code": code,
                                                 "client_id": self.client_id}, form=True)
        self.token = self.tokens["access_token"]
        if not every_step:
            return self.token
        self.post("/api/onboarding/core_config", {})
        self.post("/api/onboarding/analytics", {})
        self.post("/api/onboarding/integration", {"client_id": self.client_id,
                                                  "redirect_uri": self.client_id + "?auth_callback=1"})
        return self.token

    def add_mqtt(self, port: int) -> dict:
        """Settings > Devices & services > Add integration > MQTT, through the config-flow API."""
        flow = self.post("/api/config/config_entries/flow", {"handler": "mqtt", "show_advanced_options": False})
        result = self.post(f"/api/config/config_entries/flow/{flow['flow_id']}", {"broker": "127.0.0.1", "port": port})
        assert result["type"] == "create_entry", result
        return result

    # -- REST ------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict, form: bool = False, token: str = "") -> dict:
        data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def post(self, path: str, body: dict) -> dict:
        return self._post(path, body, token=self.token)

    def get(self, path: str):
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def states(self) -> dict[str, dict]:
        return {s["entity_id"]: s for s in self.get("/api/states")}

    def state(self, entity_id: str) -> str | None:
        try:
            return self.get(f"/api/states/{entity_id}")["state"]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def call(self, domain: str, service: str, **data) -> None:
        self.post(f"/api/services/{domain}/{service}", data)

    # -- WebSocket (the registries are not in the REST API) ------------------------------------
    def ws(self, message_type: str, **fields):
        import websocket

        connection = websocket.create_connection(f"ws://127.0.0.1:{self.port}/api/websocket", timeout=30)
        try:
            assert json.loads(connection.recv())["type"] == "auth_required"
            connection.send(json.dumps({"type": "auth", "access_token": self.token}))
            assert json.loads(connection.recv())["type"] == "auth_ok"
            connection.send(json.dumps({"id": 1, "type": message_type, **fields}))
            answer = json.loads(connection.recv())
        finally:
            connection.close()
        assert answer.get("success"), answer
        return answer["result"]

    def check_config(self) -> subprocess.CompletedProcess:
        """``hass --script check_config``: what Home Assistant says about the configuration folder."""
        return subprocess.run([str(venv(self.version) / "bin" / "hass"), "--script", "check_config", "-c", str(self.dir)],
                              capture_output=True, text=True, timeout=300)
