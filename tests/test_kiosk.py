"""The kiosk page in a real headless Chromium, fed by the real service through Mosquitto's WebSocket listener.

frames -> Service -> Mosquitto -> MQTT over WebSocket -> examples/kiosk -> what the screen shows.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affectlite import config as configuration
from affectlite.service import Service
from affectlite.sources.memory import MemorySource
from broker import Broker, free_port, listening, wait_for
from conftest import read_frames

KIOSK = Path(__file__).parents[1] / "examples" / "kiosk"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
POSITIVE = (0x1B, 0x9E, 0x5A)          # --positive in index.html

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")


@pytest.fixture
def ws_broker(tmp_path):
    ws_port = free_port()
    broker = Broker(tmp_path, extra=f"listener {ws_port}\nprotocol websockets\nallow_anonymous true\n").start()
    assert wait_for(lambda: listening(ws_port))
    broker.ws_port = ws_port
    yield broker
    broker.stop()


@pytest.fixture
def kiosk_server():
    """The page served as a kiosk would: a static folder over HTTP."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(KIOSK))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1024,600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def text(browser, element_id: str) -> str:
    """The element's text as written (the page capitalises some of it for display)."""
    return browser.find_element("id", element_id).get_attribute("textContent")


def test_kiosk_shows_the_mood_of_the_people_in_view(ws_broker, kiosk_server, browser, happy_clip, tmp_path):
    browser.get(f"{kiosk_server}?broker=ws://127.0.0.1:{ws_broker.ws_port}&device=lobby")
    assert wait_for(lambda: text(browser, "status") == "connected", timeout=15)
    assert text(browser, "mood") == "—"                             # nothing published yet

    config = configuration.validate({
        "mqtt": {"port": ws_broker.port, "device_id": "lobby", "queue_path": str(tmp_path / "q.sqlite3")},
        "states": {"min_duration_s": 0.3}, "recognizer": {"max_fps": 30}}, environ={})
    service = Service(config, source=MemorySource(read_frames(happy_clip) * 6, fps=30))
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        assert wait_for(lambda: text(browser, "mood") == "happy", timeout=30), text(browser, "mood")
        assert text(browser, "people") == "1 person"
        person = browser.find_element("css selector", "#persons li")
        assert person.get_attribute("textContent") == "#1 happy" and person.get_attribute("data-valence") == "positive"

        shot = tmp_path / "kiosk.png"
        body_class = lambda: browser.find_element("tag name", "body").get_attribute("class")
        for _ in range(5):             # a screenshot taken while the valence stayed positive
            before = body_class()
            browser.save_screenshot(str(shot))
            if before == body_class() == "valence-positive":
                break
        pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
        background = np.mean(np.all(np.abs(pixels.astype(int) - POSITIVE) <= 3, axis=1))
        assert background > 0.5                                      # the screen is mostly the positive colour
        assert pixels.std() > 10                                     # and has writing on it
    finally:
        service.stop()
        runner.join(timeout=30)
    # A clean stop publishes 'offline': the screen says so rather than showing a stale mood.
    assert wait_for(lambda: text(browser, "mood") == "offline", timeout=15)
    assert browser.find_element("tag name", "body").get_attribute("class") == "valence-none"


def test_a_stale_retained_state_is_not_shown_as_current(ws_broker, kiosk_server, browser):
    """A device that died while the broker was down leaves 'online' and its last state retained;
    the state's time tells the screen it is stale."""
    import json
    import time

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    publisher = paho.Client(CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", ws_broker.port)
    publisher.loop_start()
    state = {"v": 1, "people": 1, "paused": False, "privacy": False, "dominant_emotion": "happy", "valence": "positive",
             "alert_active": False, "warnings": [],
             "persons": [{"track_id": 1, "state": "happy", "valence": "positive", "since_s": 3.0, "in_view_s": 9.0,
                          "probabilities": {}}]}
    publisher.publish("affectlite/hall/availability", "online", qos=1, retain=True).wait_for_publish(5)
    publisher.publish("affectlite/hall/state", json.dumps(state | {"time": time.time() - 3600}), qos=1,
                      retain=True).wait_for_publish(5)
    browser.get(f"{kiosk_server}?broker=ws://127.0.0.1:{ws_broker.ws_port}&device=hall")
    assert wait_for(lambda: text(browser, "status") == "connected", timeout=15)
    wait_for(lambda: False, timeout=1.0)
    assert text(browser, "mood") == "offline"                     # an hour old: not the mood of now
    publisher.publish("affectlite/hall/state", json.dumps(state | {"time": time.time()}), qos=1,
                      retain=True).wait_for_publish(5)
    assert wait_for(lambda: text(browser, "mood") == "happy", timeout=10)
    publisher.loop_stop()
    publisher.disconnect()


def test_a_whole_site_and_a_whole_fleet_on_one_screen(ws_broker, kiosk_server, browser):
    """device=+ shows every device under the prefix, each named on its people's badges and listed
    with its count; prefix=sites/+/affectlite does the same for every site at a central broker."""
    import json
    import time

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    publisher = paho.Client(CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", ws_broker.port)
    publisher.loop_start()

    def person(track, state, valence):
        return {"track_id": track, "state": state, "valence": valence, "since_s": 3.0, "in_view_s": 9.0,
                "probabilities": {}}

    def device(topic_prefix, online, persons, privacy=False):
        state = {"v": 1, "time": time.time(), "people": len(persons), "paused": False, "privacy": privacy,
                 "dominant_emotion": None, "valence": None, "alert_active": False, "warnings": [], "persons": persons}
        publisher.publish(f"{topic_prefix}/availability", "online" if online else "offline", qos=1,
                          retain=True).wait_for_publish(5)
        publisher.publish(f"{topic_prefix}/state", json.dumps(state), qos=1, retain=True).wait_for_publish(5)

    device("affectlite/lobby", True, [person(1, "happy", "positive")])
    device("affectlite/hall", True, [person(1, "happy", "positive"), person(2, "sad", "negative")])
    device("affectlite/cafe", False, [person(4, "angry", "negative")])       # offline: not counted
    device("affectlite/office", True, [person(1, "neutral", "neutral")], privacy=True)
    browser.get(f"{kiosk_server}?broker=ws://127.0.0.1:{ws_broker.ws_port}&device=%2B")
    assert wait_for(lambda: text(browser, "people") == "3 people", timeout=15), text(browser, "people")
    listed = lambda: [li.get_attribute("textContent") for li in browser.find_elements("css selector", "#devices li")]
    assert wait_for(lambda: listed() == ["cafe: offline", "hall: 2 people", "lobby: 1 person",
                                         "office: privacy mode"]), listed()
    badges = [li.get_attribute("textContent") for li in browser.find_elements("css selector", "#persons li")]
    assert sorted(badges) == ["hall #1 happy", "hall #2 sad", "lobby #1 happy"]
    assert text(browser, "mood") == "happy"                                   # two of three people positive
    assert text(browser, "device") == "affectlite (3 online)"

    device("sites/shop-1/affectlite/till", True, [person(1, "surprise", "positive")])
    device("sites/shop-2/affectlite/till", True, [person(3, "sad", "negative"), person(5, "fear", "negative")])
    browser.get(f"{kiosk_server}?broker=ws://127.0.0.1:{ws_broker.ws_port}&prefix=sites/+/affectlite")   # + as typed
    assert wait_for(lambda: listed() == ["shop-1/till: 1 person", "shop-2/till: 2 people"], timeout=15), listed()
    assert text(browser, "mood") == "sad" and text(browser, "people") == "3 people"
    publisher.loop_stop()
    publisher.disconnect()


def test_the_audience_of_the_last_hours_as_a_chart(ws_broker, kiosk_server, browser, happy_clip, tmp_path):
    """The page keeps the windows it receives (the broker retains only the newest): one published
    earlier and the real service's own (the part of a window it saw when it stopped) become two
    bars, oldest first; each content item's mix of viewers' expressions a stacked bar."""
    import json
    import time

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    browser.get(f"{kiosk_server}?broker=ws://127.0.0.1:{ws_broker.ws_port}&device=lobby")
    assert wait_for(lambda: text(browser, "status") == "connected", timeout=15)
    assert not browser.find_element("id", "audience").is_displayed()      # no windows yet: no chart
    publisher = paho.Client(CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", ws_broker.port)
    publisher.loop_start()
    earlier = {"v": 1, "window_start": time.time() - 1800, "window_end": time.time() - 900, "ots": 9, "viewers": 5,
               "glances": 7, "left": 9, "dwell_mean_s": 8.0, "dwell_buckets": {}, "attention_s": 50.0,
               "attention_rate": 0.4, "viewer_expressions": {"neutral": 1.0}, "viewer_valence": 0.0,
               "content": {"offer": {"ots": 9, "viewers": 5, "attention_s": 50.0, "viewer_expressions": {"neutral": 1.0}}},
               "quality": {}}
    publisher.publish("affectlite/lobby/audience", json.dumps(earlier), qos=1).wait_for_publish(5)
    publisher.loop_stop()
    publisher.disconnect()

    config = configuration.validate({
        "mqtt": {"port": ws_broker.port, "device_id": "lobby", "queue_path": str(tmp_path / "q.sqlite3")},
        "audience": {"enabled": True}, "recognizer": {"max_fps": 30}}, environ={})
    service = Service(config, source=MemorySource(read_frames(happy_clip) * 2, fps=30))
    service.set_content("welcome")
    service.run()

    bars = lambda: browser.find_elements("css selector", "#audience-chart rect[data-window]")
    assert wait_for(lambda: len(bars()) == 2, timeout=15)
    assert browser.find_element("id", "audience").is_displayed()
    assert [b.get_attribute("data-viewers") for b in bars()] == ["5", "1"]        # oldest first
    items = browser.find_elements("css selector", "#content-mix li")
    assert [i.get_attribute("data-content") for i in items] == ["offer", "welcome"]
    offer = items[0].find_elements("css selector", "rect")
    assert [(r.get_attribute("data-emotion"), r.get_attribute("data-share")) for r in offer] == [("neutral", "1.000")]
    welcome_shares = [float(r.get_attribute("data-share")) for r in items[1].find_elements("css selector", "rect")]
    assert welcome_shares and abs(sum(welcome_shares) - 1) < 0.01


def test_the_notice_banner_can_be_switched_on(ws_broker, kiosk_server, browser):
    """People in view must be told (EU AI Act Art. 50(3)): ?notice=1 shows the standard words,
    ?notice=TEXT the deployer's own; without it no banner."""
    browser.get(f"{kiosk_server}?broker=ws://127.0.0.1:{ws_broker.ws_port}&device=lobby")
    assert not browser.find_element("id", "privacy-notice").is_displayed()
    browser.get(f"{kiosk_server}?broker=ws://127.0.0.1:{ws_broker.ws_port}&device=lobby&notice=1")
    banner = browser.find_element("id", "privacy-notice")
    assert banner.is_displayed() and "No images are stored or sent" in banner.get_attribute("textContent")
    browser.get(f"{kiosk_server}?broker=ws://127.0.0.1:{ws_broker.ws_port}&device=lobby&notice=Counts%20only%20here")
    assert browser.find_element("id", "privacy-notice").get_attribute("textContent") == "Counts only here"
