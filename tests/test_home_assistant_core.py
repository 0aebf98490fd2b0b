"""What a Home Assistant user sees: a real Home Assistant core (tests/home_assistant_core.py), a real
Mosquitto and the real service (``affectlite run``) on a CREMA-D clip of a disgusted face, looped.

The core is onboarded and given its MQTT entry through the REST API, as a person would through the
web page; the entities are read from its registries and states, the settings changed through its
services. docs/mqtt.md's entity table is what this module compares against, so the documentation
says what Home Assistant really shows. A second, older core (2024.3, the last on Python 3.11) checks
per-entity discovery. Skipped, with the reason, where a core cannot be installed (no Python 3.13 or
3.11); under CI a core that could be installed but is missing is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from broker import Broker, wait_for
from conftest import CLIPS
from home_assistant_core import CURRENT, OLD, HomeAssistant, missing_reason

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "home_assistant"
DOCS = ROOT / "docs" / "mqtt.md"
DEVICE = "lobby"
CLIP = CLIPS / "1001_DFA_DIS_XX.flv"           # mostly negative: states change, and the alert comes on
#: Where the screenshots for the docs are written when set (docs/images); else the test's folder.
SCREENSHOTS = os.environ.get("AFFECTLITE_SCREENSHOTS")



def require(version: str) -> None:
    reason = missing_reason(version)
    if reason is None:
        return
    if os.environ.get("CI") and "needs Python" not in reason:
        pytest.fail(f"CI must run the real Home Assistant tests: {reason}")
    pytest.skip(reason)


def documented_entities(*features: str) -> dict[str, dict[str, str]]:
    """docs/mqtt.md's table of entities as Home Assistant shows them, by entity id: those always there,
    those of the ``features`` named (``"[text] enabled"``, ``"[audience] enabled"``), and the CPU
    temperature where this machine reads one."""
    from affectlite.thermal import cpu_temperature

    wanted = {"always", *features} | ({"the device reads a CPU temperature"} if cpu_temperature() is not None else set())
    section = DOCS.read_text().split("<!-- home-assistant-entities -->")[1]        # between the two marks
    rows = [line.strip().strip("|").split("|") for line in section.strip().splitlines() if line.startswith("| `")]
    columns = ("entity_id", "name", "device_class", "unit", "category", "when")
    table = {}
    for row in rows:
        entry = dict(zip(columns, (cell.strip().strip("`") for cell in row)))
        if entry["when"] in wanted:
            table[entry["entity_id"].replace("<device>", DEVICE)] = {k: ("" if v == "-" else v) for k, v in entry.items()}
    assert "always" not in wanted or len(table) >= 14, f"{DOCS}: the entity table was not found"
    return table


FEATURES = ("[text] enabled", "[audience] enabled")        # both on in the device below


class Device:
    """The service as a process, so that it can be stopped the ways a real device stops."""

    def __init__(self, folder: Path, broker_port: int, clip: Path):
        self.folder, self.broker_port, self.clip = folder, broker_port, clip
        self.proc: subprocess.Popen | None = None

    def start(self, text: bool = True, audience: bool = True, discovery: str = "device") -> "Device":
        config = self.folder / "device.toml"
        config.write_text(f"""
[source]
kind = "file"
path = "{self.clip}"
[recognizer]
max_fps = 15
[states]
min_duration_s = 0.3
[alerts]
negative_valence_s = 1
cooldown_s = 5
[text]
enabled = {str(text).lower()}
[audience]
enabled = {str(audience).lower()}
window_s = 10
[mqtt]
host = "127.0.0.1"
port = {self.broker_port}
device_id = "{DEVICE}"
queue_path = "{self.folder / 'outbox.sqlite3'}"
stats_interval_s = 2
discovery = "{discovery}"
""")
        self.log = (self.folder / "device.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "affectlite.cli", "run", "--config", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(how)
            self.proc.wait(timeout=30)
        self.proc = None
        self.log.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home-assistant")


@pytest.fixture(scope="module")
def mosquitto(folder):
    (folder / "broker").mkdir()
    broker = Broker(folder / "broker").start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def core(folder, mosquitto):
    """A fresh install: onboarded, the MQTT integration added, our blueprint used by an automation
    and our card on a YAML dashboard, as a user following examples/home_assistant/README.md would."""
    require(CURRENT)
    config = folder / "config"
    blueprint = config / "blueprints" / "automation" / "affectlite" / "alert_notification.yaml"
    blueprint.parent.mkdir(parents=True)
    shutil.copyfile(EXAMPLES / "blueprints" / "automation" / "affectlite" / "alert_notification.yaml", blueprint)
    (config / "automations.yaml").write_text(f"""\
- id: affectlite_lobby_alert
  alias: Lobby alert
  use_blueprint:
    path: affectlite/alert_notification.yaml
    input:
      alert: binary_sensor.affectlite_{DEVICE}_alert
      emotion: sensor.affectlite_{DEVICE}_dominant_emotion
      people: sensor.affectlite_{DEVICE}_people_in_view
""")
    card = yaml.safe_load((EXAMPLES / "card.yaml").read_text())
    (config / "dashboard.yaml").write_text(yaml.safe_dump({"views": [{"title": "Lobby", "cards": [card]}]}))
    ha = HomeAssistant(config)
    ha.start()
    ha.onboard()
    ha.add_mqtt(mosquitto.port)
    yield ha
    ha.stop()


@pytest.fixture(scope="module")
def device(folder, mosquitto, core):
    device = Device(folder, mosquitto.port, CLIP).start()
    yield device
    device.stop()


def entity_registry(core) -> dict[str, dict]:
    return {e["entity_id"]: e for e in core.ws("config/entity_registry/list") if e["platform"] == "mqtt"}


def our_device(core) -> dict:
    devices = [d for d in core.ws("config/device_registry/list") if d["manufacturer"] == "affectlite"]
    assert len(devices) == 1, devices
    return devices[0]


def test_the_examples_pass_home_assistants_configuration_check(core):
    """``hass --script check_config``: the blueprint's automation and the card's dashboard as Home
    Assistant itself reads them."""
    result = core.check_config()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration invalid" not in result.stdout and "Failed config" not in result.stdout, result.stdout


def test_every_documented_entity_appears_as_documented(core, device):
    documented = documented_entities(*FEATURES)
    assert wait_for(lambda: set(documented) <= set(entity_registry(core)), timeout=60), \
        set(documented) - set(entity_registry(core))
    check_entities(core, documented)


def check_entities(core, documented: dict[str, dict[str, str]]) -> None:
    """Our device's entities are the documented ones, each with its platform (the id's domain),
    device class, unit, category and name, and the device says what it is."""
    from affectlite import __version__

    registry, states = entity_registry(core), core.states()
    ours = {entity_id for entity_id, entry in registry.items() if entry["device_id"] == our_device(core)["id"]}
    assert ours == set(documented), {"undocumented": ours - set(documented), "missing": set(documented) - ours}
    for entity_id, doc in documented.items():
        entry, attributes = registry[entity_id], states[entity_id]["attributes"]
        assert entry["entity_category"] == (doc["category"] or None), entity_id
        assert attributes.get("device_class", "") == doc["device_class"], entity_id
        assert attributes.get("unit_of_measurement", "") == doc["unit"], entity_id
        assert attributes["friendly_name"] == f"affectlite {DEVICE} {doc['name']}", entity_id
    about = our_device(core)
    assert (about["name"], about["manufacturer"], about["model"], about["sw_version"]) == \
        (f"affectlite {DEVICE}", "affectlite", "affectlite", __version__)
    assert about["identifiers"] == [["mqtt", f"affectlite_{DEVICE}"]]


def test_the_states_follow_the_clip_and_the_blueprint_notifies(core, device):
    people, emotion = f"sensor.affectlite_{DEVICE}_people_in_view", f"sensor.affectlite_{DEVICE}_dominant_emotion"
    assert wait_for(lambda: core.state(people) == "1", timeout=60), core.state(people)
    seen: set[str | None] = set()

    def changed() -> bool:                                  # the state follows the clip: two values at least
        seen.add(core.state(emotion))
        return len(seen - {"unknown", None}) >= 2

    assert wait_for(changed, timeout=60, interval=0.2), seen
    assert core.state(f"sensor.affectlite_{DEVICE}_valence") in ("positive", "neutral", "negative")
    fps = f"sensor.affectlite_{DEVICE}_analysed_frames_per_second"        # the first stats, on connect, say 0
    assert wait_for(lambda: float(core.state(fps)) > 0, timeout=15), core.state(fps)
    assert core.state(f"binary_sensor.affectlite_{DEVICE}_broker_connection") == "on"
    events = f"event.affectlite_{DEVICE}_events"
    assert wait_for(lambda: core.get(f"/api/states/{events}")["attributes"].get("event_type") is not None, timeout=30)
    # The disgusted face held for a second raises the alert; the blueprint's automation notifies.
    assert wait_for(lambda: core.state(f"binary_sensor.affectlite_{DEVICE}_alert") == "on", timeout=60)
    notifications = lambda: core.ws("persistent_notification/get")  # noqa: E731
    assert wait_for(lambda: notifications(), timeout=15)
    note = notifications()[0]
    assert note["title"] == f"affectlite {DEVICE} Alert"
    assert re.fullmatch(r"1 person in view, mostly (angry|disgust|fear|sad)", note["message"]), note["message"]
    # The alert event carries its kind (the template once read a key alerts do not have).
    assert wait_for(lambda: core.get(f"/api/states/{events}")["attributes"].get("kind") == "negative_valence",
                    timeout=30), core.get(f"/api/states/{events}")["attributes"]


def test_every_switch_number_and_the_caption_round_trip(core, device, mosquitto):
    """Changed in Home Assistant, carried out by the service, and shown back from its retained state."""
    seen: dict[str, str] = {}
    watcher = paho.Client(CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda c, u, m: seen.__setitem__(m.topic, m.payload.decode())
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe(f"affectlite/{DEVICE}/#")
    watcher.loop_start()
    times = {}
    try:
        for entity, domain, service, data, shown, topic, value in [
            ("switch.affectlite_{d}_privacy_mode", "switch", "turn_on", {}, "on", "privacy/state", "ON"),
            ("switch.affectlite_{d}_privacy_mode", "switch", "turn_off", {}, "off", "privacy/state", "OFF"),
            ("switch.affectlite_{d}_paused", "switch", "turn_on", {}, "on", "paused/state", "ON"),
            ("switch.affectlite_{d}_paused", "switch", "turn_off", {}, "off", "paused/state", "OFF"),
            ("number.affectlite_{d}_negative_valence_alert_after", "number", "set_value", {"value": 86400}, "86400",
             "negative_valence_s/state", 86400),
            ("number.affectlite_{d}_negative_valence_alert_after", "number", "set_value", {"value": 1}, "1",
             "negative_valence_s/state", 1),
            ("number.affectlite_{d}_negative_share_alert_at", "number", "set_value", {"value": 0.5}, "0.5",
             "negative_share/state", 0.5),
        ]:
            entity_id = entity.format(d=DEVICE)
            started = time.monotonic()
            core.call(domain, service, entity_id=entity_id, **data)
            assert wait_for(lambda: json.loads(seen.get(f"affectlite/{DEVICE}/{topic}", "{}")).get("value") == value,
                            timeout=10), (entity_id, seen.get(f"affectlite/{DEVICE}/{topic}"))
            same = (lambda state: state == shown) if domain == "switch" else \
                (lambda state: state is not None and float(state) == float(shown))           # "1" or "1.0"
            assert wait_for(lambda: same(core.state(entity_id)), timeout=10), (entity_id, core.state(entity_id))
            times[f"{entity_id} {service} {data}"] = time.monotonic() - started
            if entity_id.endswith("privacy_mode") and service == "turn_on":    # privacy clears everyone
                events = f"event.affectlite_{DEVICE}_events"
                assert wait_for(lambda: core.get(f"/api/states/{events}")["attributes"].get("event_type")
                                == "face_left", timeout=10)
                assert core.state(f"sensor.affectlite_{DEVICE}_people_in_view") == "0"
        caption = f"text.affectlite_{DEVICE}_caption"
        core.call("text", "set_value", entity_id=caption, value="What a wonderful day, thank you!")
        assert wait_for(lambda: "text/state" in " ".join(seen), timeout=10)
        assert wait_for(lambda: core.state(f"sensor.affectlite_{DEVICE}_valence_with_captions")
                        in ("positive", "neutral", "negative"), timeout=15)
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    print("round trips (s):", json.dumps({k: round(v, 2) for k, v in times.items()}, indent=1))


def test_the_device_page_and_the_card_as_a_person_sees_them(core, device, tmp_path):
    """Screenshots from headless Chromium, logged in with the owner's tokens; the card's entities exist."""
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    from test_kiosk import CHROMEDRIVER, CHROMIUM

    card_entities = set(re.findall(r"entity: (\S+)", (EXAMPLES / "card.yaml").read_text()))
    states = core.states()
    assert card_entities and card_entities <= set(states), card_entities - set(states)
    dashboard = core.ws("lovelace/config", url_path="affectlite-dashboard")
    assert dashboard["views"][0]["cards"][0]["type"] == "vertical-stack"

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    out = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    try:
        browser.get(core.url + "/onboarding.html")          # the origin, to leave the tokens in its storage
        tokens = core.tokens | {"hassUrl": core.url, "clientId": core.client_id,
                                "expires": int(time.time() * 1000) + core.tokens["expires_in"] * 1000}
        browser.execute_script("localStorage.setItem('hassTokens', arguments[0]);", json.dumps(tokens))
        for page, name, height in [(f"/config/devices/device/{our_device(core)['id']}", "home-assistant-device.png", 1700),
                                   ("/affectlite-dashboard/0", "home-assistant-card.png", 640)]:
            browser.set_window_size(1000 if "card" in name else 1280, height)
            browser.get(core.url + page)
            time.sleep(6)                                     # the frontend renders in several passes
            browser.save_screenshot(str(out / name))
            pixels = np.asarray(Image.open(out / name).convert("L"))
            assert pixels.shape[1] == (1000 if "card" in name else 1280)
            assert len(np.unique(pixels)) > 20, name            # more than a blank page or a spinner
            assert "login" not in browser.current_url and "authorize" not in browser.current_url, browser.current_url
    finally:
        browser.quit()


def test_availability_follows_the_device_on_sigterm_and_sigkill(core, device, folder, mosquitto):
    people = f"sensor.affectlite_{DEVICE}_people_in_view"
    for how in (signal.SIGTERM, signal.SIGKILL):
        assert wait_for(lambda: core.state(people) not in ("unavailable", None), timeout=60)
        stopped = time.monotonic()
        device.stop(how)
        assert wait_for(lambda: core.state(people) == "unavailable", timeout=30), (how, core.state(people))
        print(f"{how.name}: unavailable after {time.monotonic() - stopped:.1f} s")
        device.start()
    assert wait_for(lambda: core.state(people) == "1", timeout=60)


def test_home_assistant_restarted_shows_the_retained_states_at_once(core, device):
    settle = f"sensor.affectlite_{DEVICE}_people_in_view"
    assert wait_for(lambda: core.state(settle) == "1", timeout=60)
    core.stop()
    core.start()
    registry = entity_registry(core)
    assert wait_for(lambda: all(core.state(e) not in ("unavailable", "unknown") for e in
                                (f"sensor.affectlite_{DEVICE}_people_in_view", f"switch.affectlite_{DEVICE}_paused",
                                 f"number.affectlite_{DEVICE}_negative_share_alert_at",
                                 f"sensor.affectlite_{DEVICE}_queued_messages")), timeout=30)
    assert set(registry) >= set(documented_entities(*FEATURES))


def test_a_feature_turned_off_removes_its_entities(core, device):
    with_text = set(documented_entities(FEATURES[0])) - set(documented_entities())
    with_audience = set(documented_entities(FEATURES[1])) - set(documented_entities())
    assert with_text and with_audience
    assert (with_text | with_audience) <= set(entity_registry(core))
    device.stop()
    device.start(text=False, audience=False)
    assert wait_for(lambda: not (with_text | with_audience) & set(entity_registry(core)), timeout=60), \
        (with_text | with_audience) & set(entity_registry(core))
    assert wait_for(lambda: core.state(f"sensor.affectlite_{DEVICE}_people_in_view") == "1", timeout=60)
    device.stop()
    device.start()                                          # back as documented, for what follows
    assert wait_for(lambda: (with_text | with_audience) <= set(entity_registry(core)), timeout=60)


def test_discovery_per_entity_gives_the_same_entities_and_switching_back_leaves_no_duplicate(core, device, mosquitto):
    """``mqtt.discovery = "entities"``, for Home Assistant before 2024.12: the same entities, ids and
    device, from one message per entity; the device message is cleared, and back again."""
    documented = set(documented_entities(*FEATURES))
    retained: dict[str, bytes] = {}
    watcher = paho.Client(CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda c, u, m: retained.__setitem__(m.topic, m.payload)
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe("homeassistant/#")
    watcher.loop_start()
    created = {e: entry["created_at"] for e, entry in entity_registry(core).items()}
    try:
        for mode in ("entities", "device"):
            device.stop()
            device.start(discovery=mode)
            assert wait_for(lambda: retained.get(f"homeassistant/device/{DEVICE}/config") == b""
                            if mode == "entities" else
                            all(v == b"" for t, v in retained.items() if t.count("/") == 4), timeout=30)
            assert wait_for(lambda: core.state(f"sensor.affectlite_{DEVICE}_people_in_view") == "1", timeout=60)
            registry = entity_registry(core)
            ours = {e for e, entry in registry.items() if entry["device_id"] == our_device(core)["id"]}
            assert ours == documented, (mode, ours ^ documented)
            assert all(registry[e]["created_at"] == created[e] for e in ours), mode     # the same entries
            per_entity = [t for t, v in retained.items() if t.count("/") == 4 and v]
            assert len(per_entity) == (len(documented) if mode == "entities" else 0), (mode, per_entity)
    finally:
        watcher.loop_stop()
        watcher.disconnect()


def test_home_assistants_log_has_nothing_about_our_payloads(core, device):
    """Every WARNING and ERROR Home Assistant logged during this module, less those that come from
    this bare test install itself (:data:`UNRELATED`), each named."""
    time.sleep(5)                                           # a few more state messages through every template
    unrelated = (*UNRELATED,
                 # the last step of Home Assistant's own rollback from device discovery (the device's
                 # topic cleared once its entities have moved), in the switch of modes above: once
                 f"No device components to cleanup for {DEVICE}, node_id 'None'")
    problems = [p for p in core.problems() if not any(u in p for u in unrelated)]
    assert sum("No device components to cleanup" in p for p in core.problems()) <= 1
    assert not problems, "\n".join(problems)
    assert core.get("/api/config")["version"] == CURRENT


#: What a bare test install logs whatever the device does: no pip, no libturbojpeg, no zlib-ng, and
#: what onboarding sets up on every new install (weather, radio, text-to-speech), whose libraries
#: --skip-pip leaves out (they would need the network anyway).
UNRELATED = ("Skipping pip installation", "zlib_ng and isal are not available", "Error loading libturbojpeg",
             "No module named 'radios'", "No module named 'metno'", "No module named 'gtts'")


def test_home_assistant_2024_3_reads_per_entity_discovery_and_nothing_else(folder):
    """Home Assistant Core on Python 3.11 stops at 2024.3. Device discovery gives it nothing (one
    warning in its log, as docs/mqtt.md says); ``discovery = "entities"`` gives it every entity."""
    require(OLD)
    (folder / "old" / "broker").mkdir(parents=True)
    broker = Broker(folder / "old" / "broker").start()
    old = HomeAssistant(folder / "old" / "config", OLD)
    device = Device(folder / "old", broker.port, CLIP)
    try:
        old.start()
        # 2024.3's core_config step waits for the weather and radio set-ups, which fail offline
        old.onboard(every_step=False)
        old.add_mqtt(broker.port)
        assert old.get("/api/config")["version"] == OLD
        device.start(discovery="device")
        ignored = "Integration device is not supported"         # its one warning about homeassistant/device/...
        assert wait_for(lambda: any(ignored in p for p in old.problems()), timeout=60), old.problems()
        assert not entity_registry(old)
        device.stop()
        device.start(discovery="entities")
        documented = documented_entities(*FEATURES)
        assert wait_for(lambda: set(documented) <= set(entity_registry(old)), timeout=60), \
            set(documented) - set(entity_registry(old))
        check_entities(old, documented)
        assert wait_for(lambda: old.state(f"sensor.affectlite_{DEVICE}_people_in_view") == "1", timeout=60)
        old.call("switch", "turn_on", entity_id=f"switch.affectlite_{DEVICE}_paused")
        assert wait_for(lambda: old.state(f"switch.affectlite_{DEVICE}_paused") == "on", timeout=10)
        device.stop(signal.SIGKILL)
        assert wait_for(lambda: old.state(f"sensor.affectlite_{DEVICE}_people_in_view") == "unavailable", timeout=30)
        device_discovery = [p for p in old.problems() if ignored in p]
        # once for the device message, twice as the switch moves it away (migrate_discovery, cleared)
        assert len(device_discovery) == 3, device_discovery
        # Its install is partial (libraries for what a bare configuration loads), so only what is
        # about MQTT, templates or this device counts here; the current core's log is checked whole.
        about_us = [p for p in old.problems() if p not in device_discovery and
                    any(k in p for k in ("[homeassistant.components.mqtt", "template", "affectlite"))]
        assert not about_us, "\n".join(about_us)
    finally:
        device.stop()
        old.stop()
        broker.stop()
