"""The README's kiosk screenshot, taken from what the default demo shows.

`affectlite run` with the default configuration (the bundled clip replayed as a camera) publishes
to a throwaway Mosquitto with a WebSocket listener; examples/kiosk is opened in headless Chromium
and photographed once the screen shows the demo's settled mood.

    python scripts/kiosk_screenshot.py                    # writes docs/reports/kiosk.png
    python scripts/kiosk_screenshot.py --out /tmp/k.png --width 1024 --height 600

Needs mosquitto, chromium, chromium-driver and selenium (the test extras).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "reports" / "kiosk.png")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--settle-s", type=float, default=4.0, help="seconds after the first mood, to let the state settle")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path and shutil.which("mosquitto")):
        print("needs mosquitto, chromium and chromium-driver (apt-get install mosquitto chromium chromium-driver)",
              file=sys.stderr)
        return 2

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    from affectlite import config as configuration
    from affectlite.service import Service

    with tempfile.TemporaryDirectory() as work:
        mqtt_port, ws_port = free_port(), free_port()
        conf = Path(work) / "mosquitto.conf"
        conf.write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n"
                        f"listener {ws_port}\nprotocol websockets\nallow_anonymous true\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(
            REPO / "examples" / "kiosk")))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={args.width},{args.height}"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=DriverService(executable_path=driver_path), options=options)
        service = None
        try:
            assert wait(lambda: socket.create_connection(("127.0.0.1", ws_port), timeout=0.2).close() or True, 10)
            # The default configuration, only pointed at this broker: what `affectlite run` shows.
            config = configuration.validate({"mqtt": {"port": mqtt_port, "queue_path": f"{work}/q.sqlite3"}}, environ={})
            device = config["mqtt"]["device_id"]
            browser.get(f"http://127.0.0.1:{server.server_address[1]}/index.html"
                        f"?broker=ws://127.0.0.1:{ws_port}&device={device}")
            service = Service(config)
            runner = threading.Thread(target=service.run, daemon=True)
            runner.start()
            mood = lambda: browser.find_element("id", "mood").get_attribute("textContent")
            if not wait(lambda: mood() not in ("—", "", "offline", "uncertain"), 60):
                print(f"the screen never showed a mood (last: {mood()!r})", file=sys.stderr)
                return 1
            time.sleep(args.settle_s)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(args.out))
            print(f"wrote {args.out}: the default demo ({config['source']['kind']} source, device {device}) "
                  f"showing {mood()!r}")
        finally:
            if service is not None:
                service.stop()
            browser.quit()
            server.shutdown()
            broker.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
