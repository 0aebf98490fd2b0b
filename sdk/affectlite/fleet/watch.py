"""Following every device on a broker: a persistent MQTT session, the store, the live table.

Messages are acknowledged to the broker only after the transaction that stores them has been
committed (paho's manual acknowledgement), so a fleet process killed at any moment loses nothing:
the broker redelivers what was not acknowledged, and the event ids make a redelivery a no-op.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from affectlite.fleet.store import FleetStore
from affectlite.fleet.topics import Route, parse, subscriptions

log = logging.getLogger(__name__)
#: A device that keeps sending malformed messages is logged at most this often.
REJECT_LOG_EVERY_S = 60.0
#: How often a device's count of lost events is read from the store (a query over its history).
LOST_CHECK_EVERY_S = 10.0


@dataclass
class BrokerOptions:
    host: str = "localhost"
    port: int = 1883
    username: str = ""
    password: str = ""
    ca_file: str = ""
    client_id: str = "affectlite-fleet"


@dataclass
class Device:
    site: str
    device: str
    online: bool | None = None
    people: int | None = None
    states: str = ""
    alert: bool = False
    fps: float | None = None
    p95_ms: float | None = None
    queued: int | None = None
    cpu_temp_c: float | None = None
    last_seen: float = 0.0
    #: Messages from this device that failed the store's checks (acknowledged, not stored).
    rejected: int = 0
    #: Its events that never arrived: gaps in their numbers (FleetStore.missing), refreshed as they come.
    lost: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class FleetView:
    """The newest of each device, from the messages as they come."""

    devices: dict[tuple[str, str], Device] = field(default_factory=dict)

    def update(self, route: Route, payload: bytes, received: float) -> Device:
        device = self.devices.setdefault((route.site, route.device), Device(route.site, route.device))
        device.last_seen = received
        if route.kind == "availability":
            device.online = payload.decode(errors="replace").strip() == "online"
            return device
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            return device
        if not isinstance(data, dict):
            return device
        if route.kind == "state":
            device.online = True if device.online is None else device.online
            device.people = data.get("people")
            device.alert = bool(data.get("alert_active"))
            device.states = ", ".join(f"#{p.get('track_id')} {p.get('state')}" for p in data.get("persons") or [])
        elif route.kind == "stats":
            device.fps = data.get("inference_fps")
            device.p95_ms = (data.get("latency_ms") or {}).get("p95")
            device.queued = data.get("queued_messages")
            device.cpu_temp_c = data.get("cpu_temp_c")
        return device

    def table(self, now: float) -> str:
        header = f"{'site':<10} {'device':<16} {'online':<7} {'people':>6}  {'states':<28} {'alert':<5} " \
                 f"{'fps':>5} {'p95 ms':>7} {'queued':>7} {'°C':>5} {'last seen':>9} {'bad':>5} {'lost':>5}"
        lines = [header, "-" * len(header)]
        for (site, name), d in sorted(self.devices.items()):
            online = "?" if d.online is None else ("yes" if d.online else "NO")
            lines.append(f"{site or '-':<10} {name:<16} {online:<7} {_fmt(d.people):>6}  {d.states[:28]:<28} "
                         f"{'YES' if d.alert else '-':<5} {_fmt(d.fps):>5} {_fmt(d.p95_ms):>7} {_fmt(d.queued):>7} "
                         f"{_fmt(d.cpu_temp_c):>5} {now - d.last_seen:>8.0f}s {d.rejected or '-':>5} {d.lost or '-':>5}")
        return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


class FleetWatcher:
    def __init__(self, broker: BrokerOptions, store: FleetStore, out: TextIO | None = None,
                 live_table: bool | None = None, flush_every_s: float = 0.3,
                 lost_check_every_s: float = LOST_CHECK_EVERY_S):
        self.store = store
        self.view = FleetView()
        self.out = out or sys.stdout
        self.live_table = self.out.isatty() if live_table is None else live_table
        self.flush_every_s = flush_every_s
        self.lost_check_every_s = lost_check_every_s
        self._inbox: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._reject_logged: dict[tuple[str, str], tuple[float, int]] = {}   # device -> (logged at, since)
        self._lost_checked: dict[tuple[str, str], float] = {}                # device -> when last read
        self.connected = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=broker.client_id, clean_session=False,
                             protocol=paho.MQTTv311, manual_ack=True)
        if broker.username:
            client.username_pw_set(broker.username, broker.password or None)
        if broker.ca_file:
            client.tls_set(ca_certs=broker.ca_file)
        client.reconnect_delay_set(1, 5)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = lambda c, u, message: self._inbox.append((message, time.time()))
        self.client = client
        self.broker = broker

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            print(f"affectlite fleet: broker refused the connection: {reason_code}", file=sys.stderr)
            return
        client.subscribe([(topic, 1) for topic in subscriptions()])
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        print(f"affectlite fleet: listening on {self.broker.host}:{self.broker.port} (session {self.broker.client_id})",
              file=sys.stderr, flush=True)

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        started = last_draw = time.monotonic()
        try:
            while not self._stop.is_set() and (duration is None or time.monotonic() - started < duration):
                self._stop.wait(self.flush_every_s)
                self.drain()
                if self.live_table and time.monotonic() - last_draw >= 1.0:
                    self.out.write("\x1b[H\x1b[2J" + self.view.table(time.time()) + "\n")
                    self.out.flush()
                    last_draw = time.monotonic()
            self.drain()
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def _rejected(self, route: Route, reason: str, received: float) -> None:
        """Count a message the store refused; log it, once per device per minute at most."""
        device = self.view.devices.setdefault((route.site, route.device), Device(route.site, route.device))
        device.rejected += 1
        key = (route.site, route.device)
        logged_at, since = self._reject_logged.get(key, (float("-inf"), 0))
        if received - logged_at >= REJECT_LOG_EVERY_S:
            where = f"{route.site}/{route.device}" if route.site else route.device
            log.warning("fleet: %d malformed %s message(s) from %s ignored (acknowledged, not stored); this one: %s",
                        since + 1, route.kind, where, reason)
            self._reject_logged[key] = (received, 0)
        else:
            self._reject_logged[key] = (logged_at, since + 1)

    def drain(self) -> int:
        """Store what arrived (one transaction), then acknowledge it to the broker."""
        taken, routes_with_events = [], []
        while self._inbox:
            taken.append(self._inbox.popleft())
        for message, received in taken:
            route = parse(message.topic)
            if route is None:
                continue
            reason = self.store.add(route, message.payload, received)
            if reason is not None:
                self._rejected(route, reason, received)
                continue
            device = self.view.update(route, message.payload, received)
            if route.kind == "events":
                routes_with_events.append(route)
            if not self.live_table and route.kind != "events":
                self.out.write(json.dumps({"kind": route.kind, **device.as_dict()}) + "\n")
        self.store.flush()
        now = time.monotonic()
        for key in {(r.site, r.device) for r in routes_with_events}:
            if now - self._lost_checked.get(key, float("-inf")) >= self.lost_check_every_s:
                self._lost_checked[key] = now
                self.view.devices[key].lost = self.store.missing(*key)
        for message, _ in taken:
            if message.qos > 0:
                self.client.ack(message.mid, message.qos)
        if taken and not self.live_table:
            self.out.flush()
        return len(taken)
