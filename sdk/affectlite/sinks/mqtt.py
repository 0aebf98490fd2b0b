"""MQTT publishing in the manner of Frigate; the service's only module that imports paho-mqtt.

Topics (``P`` = ``<prefix>/<device_id>``, built in :meth:`MqttSink.topic` and nowhere else):

- ``P/availability``  ``online`` (retained) on every connect, ``offline`` as the retained last will
- ``P/state``         retained JSON summary of who is in view and their states
- ``P/events``        QoS 1 events, through the on-disk outbox: nothing is lost while the broker is away
- ``P/faces``         optional per-frame detail, rate-limited, QoS 0
- ``P/stats``         periodic figures, QoS 0, retained
- ``P/audience``      a window of audience figures (``[audience] enabled``), QoS 1 through the outbox, retained
- ``P/set/<name>``    commands in
- ``P/<name>/state``  retained: each setting's current value (``privacy``, ``paused``, thresholds),
                      published on every connect and on every change, whatever changed it; other
                      commands (``text``) answer here
- ``P/errors``        a command that could not be carried out: which, and why (never a state topic)

Delivery is verified after every connect: MQTT 3.1.1 brokers acknowledge and then silently
drop a publish their ACL denies (the shipped configuration allows a device to write only under
its own id, as its user name), so the sink sends a token to ``P/set/_roundtrip`` and expects it
back on its command subscription. Until it comes back events stay queued (nothing handed to a
broker that would drop it); if it does not come back within a few seconds the log, the stats and
the state's ``warnings`` say so, naming the user and the device id, and the check is retried.

Home Assistant discovery (:mod:`affectlite.sinks.home_assistant`) goes to
``<discovery_prefix>/device/<device_id>/config`` (one retained device message with all its
components), or with ``discovery = "entities"`` one message per entity, and is sent again whenever
Home Assistant announces itself with ``<discovery_prefix>/status = online``. No image or crop is
ever published.
"""

from __future__ import annotations

import collections
import json
import logging
import time
import uuid
from typing import Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from affectlite.sinks.home_assistant import discovery_payload, entity_messages
from affectlite.sinks.outbox import Outbox

log = logging.getLogger(__name__)

#: How long the delivery check waits for its token, and how often it tries again after that.
ROUNDTRIP_WAIT_S = 5.0
ROUNDTRIP_RETRY_S = 30.0
#: Between ``migrate_discovery`` on the other mode's topics and this mode's messages: Home Assistant
#: unloads the entities first (asynchronously), or it refuses the new messages as a conflict.
MIGRATE_WAIT_S = 2.0
MIGRATE_DISCOVERY = '{"migrate_discovery":true}'

CommandHandler = Callable[[str], Any]     # raw payload text -> new value (raises ValueError when bad)
#: Commands that change a setting under another name (``set/pause`` turns ``paused`` on).
SETTING_OF_COMMAND = {"pause": "paused", "resume": "paused"}
#: The log limiter's one key for every command name the device does not know.
UNKNOWN_COMMAND = "(unknown)"


def make_client(config: dict[str, Any], client_id: str) -> paho.Client:
    """A client logging in as the configuration says (credentials, TLS): the service's and
    doctor's connections are made the same way."""
    v5 = config["protocol"] == "5"
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                         clean_session=None if v5 else True)
    if config["username"]:
        client.username_pw_set(config["username"], config["password"] or None)
    if config["tls"]:
        client.tls_set(ca_certs=config["ca_file"] or None, certfile=config["cert_file"] or None,
                       keyfile=config["key_file"] or None)
    return client


class MqttSink:
    """Publishes the service's output; call :meth:`pump` often (it sends queued events)."""

    def __init__(self, config: dict[str, Any], commands: dict[str, CommandHandler] | None = None,
                 outbox: Outbox | None = None, settings: Callable[[], dict[str, Any]] | None = None,
                 labels: tuple[str, ...] | None = None):
        """``settings``: returns the service's current settings (name -> value); each is kept
        retained on ``P/<name>/state`` so that a dashboard shows the truth after any restart.
        ``labels``: the face model's classes, for Home Assistant's options (the seven emotions by default)."""
        self.config = config
        self.labels = labels
        self.commands = dict(commands or {})
        self.settings = settings or dict
        self._settings_sent: dict[str, Any] = {}
        self._resend_settings = False
        # command -> (last logged, not logged since); known commands and one key for all unknown ones
        self._error_log: dict[str, tuple[float, int]] = {}
        self._retained_warned: set[str] = set()          # known command names and UNKNOWN_COMMAND
        # Discovery waits for the delivery check after a connect: by then the broker has sent the
        # other discovery mode's retained messages (subscribed first), which are migrated away.
        self._discovery_due = False
        prefix, device = config["discovery_prefix"], config["device_id"]
        # The topic filter of the discovery mode not configured, whose retained messages an earlier
        # configuration may have left.
        self._other_discovery = (f"{prefix}/device/{device}/config" if config["discovery"] == "entities"
                                 else f"{prefix}/+/{device}/+/config")
        self._stale_discovery: set[str] = set()
        self._migrating: list[str] = []                  # old topics to clear once announced
        self._announce_at: float | None = None           # when pump() announces (a migration waits)
        # Delivery check: None until the token comes back (or not) after a connect.
        self.delivery_verified: bool | None = None
        self._token = ""
        self._token_sent_at = 0.0
        self.outbox = outbox or Outbox(config["queue_path"], config["queue_max_messages"])
        self.connected = False
        self.last_error: str | None = None
        self.connects = 0
        self.refusals = 0
        self._refused = False                    # the last attempt got a CONNACK refusal
        self.unreachable = 0
        self._connected_at = 0.0
        # Only the thread that calls pump() touches these; paho's network thread just appends the
        # acknowledged message ids to _acks (deque appends are atomic), so no lock is ever held while
        # calling into paho, which holds its own lock while it runs our callbacks.
        self._inflight: dict[int, int] = {}      # paho mid -> outbox row id
        self._handed: set[int] = set()           # outbox rows given to paho and not yet acknowledged
        self._acks: collections.deque[int] = collections.deque()
        self._refusals: collections.deque[tuple[int, str]] = collections.deque()   # MQTT 5: (mid, reason)
        self._refusal_logged = False
        self._state: bytes | None = None
        self._stats: bytes | None = None
        self._last_faces = 0.0
        #: This service run's id; events are numbered from 1 within it.
        self.run_id = uuid.uuid4().hex[:12]
        self._seq = 0

        client = make_client(config, config["client_id"])
        client.will_set(self.topic("availability"), "offline", qos=1, retain=True)
        # Short backoff: events wait on disk, and a broker back after an outage should get them
        # within seconds, not half a minute.
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.max_inflight_messages_set(20)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client

    # -- topics --------------------------------------------------------------------------------
    def topic(self, name: str) -> str:
        return f"{self.config['prefix']}/{self.config['device_id']}/{name}"

    @property
    def discovery_topic(self) -> str:
        return f"{self.config['discovery_prefix']}/device/{self.config['device_id']}/config"

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; an unreachable broker is retried with backoff, never fatal."""
        self.client.connect_async(self.config["host"], self.config["port"], self.config["keepalive_s"])
        self.client.loop_start()

    def close(self, timeout: float = 5.0) -> None:
        if self.connected:
            self.pump()
            info = self.client.publish(self.topic("availability"), "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
            deadline = time.monotonic() + timeout
            while self._inflight and self.connected and time.monotonic() < deadline:
                time.sleep(0.02)
                self.pump()
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()

    # -- publishing ----------------------------------------------------------------------------
    def publish_event(self, payload: dict[str, Any]) -> None:
        """QoS 1, stored on disk first; delivered in order once the broker acknowledges it. Each
        event gets this run's id and its number in the run (``run``, ``seq``), so that whoever
        stores them can count what a broker dropped on the way: a gap in the numbers."""
        self._seq += 1
        self.outbox.put(self.topic("events"), _encode(payload | {"run": self.run_id, "seq": self._seq}), qos=1)
        self.pump()

    def publish_audience(self, payload: dict[str, Any]) -> None:
        """A window of audience figures: QoS 1 through the on-disk queue (nothing lost while the
        broker is away), retained so that a dashboard shows the last window after any restart."""
        self.outbox.put(self.topic("audience"), _encode(payload), qos=1, retain=True)
        self.pump()

    def publish_state(self, payload: dict[str, Any]) -> None:
        data = _encode(payload)
        if data == self._state:
            return
        self._state = data
        if self.connected:
            self._send_state(self.client)

    def _send_state(self, client: paho.Client) -> None:
        client.publish(self.topic("state"), self._state, qos=1, retain=True,
                       properties=self._expiring(self.config["state_expiry_s"]))

    def publish_faces(self, payload: dict[str, Any], now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if not self.config["faces"] or not self.connected or now - self._last_faces < 1.0 / self.config["faces_max_hz"]:
            return False
        self._last_faces = now
        self.client.publish(self.topic("faces"), _encode(payload), qos=0)
        return True

    def publish_stats(self, payload: dict[str, Any]) -> None:
        """Retained, so that a dashboard (Home Assistant's diagnostic sensors) has figures at once.
        The newest is kept and sent again on every connect: the first figures of a run replace the
        previous run's retained ones as soon as the broker is reached, not a stats interval later."""
        self._stats = _encode(payload)
        if self.connected:
            self._send_stats(self.client)

    def _send_stats(self, client: paho.Client) -> None:
        expiry = max(self.config["state_expiry_s"], 3 * self.config["stats_interval_s"])
        client.publish(self.topic("stats"), self._stats, qos=0, retain=True, properties=self._expiring(expiry))

    def _expiring(self, seconds: float):
        """MQTT 5: a retained message that the broker drops ``seconds`` after it was sent, so that a
        device that died while the broker was away leaves no state that looks current."""
        if self.config["protocol"] != "5":
            return None
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.PUBLISH)
        properties.MessageExpiryInterval = int(seconds)
        return properties

    def pump(self, window: int = 100) -> None:
        """Retire acknowledged events and hand queued ones to the client, oldest first, keeping at
        most ``window`` in flight. Call it from one thread (the service loop).

        Waits a moment after a (re)connect so that messages paho still held from before the
        outage go out first and the order is kept.
        """
        while self._acks:
            row = self._inflight.pop(self._acks.popleft(), None)
            if row is not None:                  # acks of state, replies etc. are not in the outbox
                self._handed.discard(row)
                self.outbox.remove(row)
                self._refusal_logged = False
        while self._refusals:                    # MQTT 5: the broker said no; the event stays queued
            mid, reason = self._refusals.popleft()
            row = self._inflight.pop(mid, None)
            if row is None:
                continue
            self._handed.discard(row)
            self.delivery_verified = False
            if not self._refusal_logged:
                self._refusal_logged = True
                log.error("MQTT %s:%s refused this device's event (%s): its ACL denies user %s writing %s; events "
                          "stay queued (%d) and are tried again every %g s", self.config["host"], self.config["port"],
                          reason, self.config["username"] or "(anonymous)", self.topic("events"), len(self.outbox),
                          ROUNDTRIP_RETRY_S)
        if not self.connected or time.monotonic() - self._connected_at < 0.2:
            return
        if self._announce_at is not None and time.monotonic() >= self._announce_at:
            self._announce_at = None
            self._announce()
        self._publish_settings()
        if not self._check_delivery():
            return
        room = window - len(self._handed)
        if room <= 0:
            return
        for message in self.outbox.pending(room, exclude=self._handed):
            info = self.client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                break
            self._inflight[info.mid] = message.id
            self._handed.add(message.id)

    def _check_delivery(self) -> bool:
        """True once the broker has been seen to deliver this device's own publish back."""
        if self.delivery_verified:
            return True
        now = time.monotonic()
        waited = now - self._token_sent_at
        if self.delivery_verified is None and waited > ROUNDTRIP_WAIT_S:
            self.delivery_verified = False
            user = self.config["username"] or "(anonymous)"
            log.error("MQTT %s:%s accepted the connection but does not deliver this device's messages (a "
                      "round trip on %s never came back): the broker's ACL probably denies user %s writing under "
                      "%s/ (the shipped ACL needs mqtt.username = device_id = %r); events stay queued (%d)",
                      self.config["host"], self.config["port"], self.topic("set/_roundtrip"), user,
                      self.topic("").rstrip("/"), self.config["device_id"], len(self.outbox))
            if self._discovery_due:                  # announced anyway: discovery may be allowed
                self._publish_discovery()
        if self.delivery_verified is False and waited > ROUNDTRIP_RETRY_S:
            self._send_token()
        return False

    def _send_token(self) -> None:
        self._token = uuid.uuid4().hex
        self._token_sent_at = time.monotonic()
        self.client.publish(self.topic("set/_roundtrip"), self._token, qos=1)

    def _publish_settings(self) -> None:
        """Each setting whose value changed since it was last sent (all of them after a connect)."""
        if self._resend_settings:
            self._resend_settings, self._settings_sent = False, {}
        for name, value in self.settings().items():
            if name not in self._settings_sent or self._settings_sent[name] != value:
                self.client.publish(self.topic(f"{name}/state"), _encode({"v": 1, "value": value}), qos=1, retain=True)
                self._settings_sent[name] = value

    @property
    def pending(self) -> int:
        return len(self.outbox)

    def warnings(self) -> list[str]:
        """What a person should know about delivery now (the state's ``warnings``)."""
        found = self.outbox.warnings()
        if self.delivery_verified is False:
            found.append(f"MQTT: the broker refuses or drops this device's messages (ACL?): user "
                         f"{self.config['username'] or '(anonymous)'}, device id {self.config['device_id']}; "
                         "events are kept queued")
        return found

    # -- paho callbacks (network thread) -------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refusals += 1
            self._refused = True
            self.last_error = f"broker refused the connection: {reason_code}"
            hint = " (check mqtt.username / mqtt.password)" if "authori" in str(reason_code).lower() else ""
            log.error("MQTT %s:%s %s%s; retrying", self.config["host"], self.config["port"], self.last_error, hint)
            return
        self.connects += 1
        self.unreachable = 0
        self.last_error = None
        client.publish(self.topic("availability"), "online", qos=1, retain=True)
        client.subscribe([(self.topic("set/+"), 1), (f"{self.config['discovery_prefix']}/status", 1),
                          *([(self._other_discovery, 1)] if self.config["homeassistant"] else [])])
        self._discovery_due = self.config["homeassistant"]
        if self._state is not None:
            self._send_state(client)
        if self._stats is not None:
            self._send_stats(client)
        self._resend_settings = True            # the loop thread sends them (no lock held into paho)
        self.delivery_verified = None
        self._send_token()
        self._connected_at = time.monotonic()
        self.connected = True
        log.info("MQTT connected to %s:%s", self.config["host"], self.config["port"])

    def _on_connect_fail(self, client, userdata) -> None:
        self._unreachable()

    def _unreachable(self) -> None:
        """A connection attempt that got no CONNACK: say why (diagnosed once, then every 20th try,
        not once a second for hours). The count goes up only once ``last_error`` says why, so that
        a reader who sees the count sees the reason too."""
        attempt = self.unreachable + 1
        if attempt == 1 or attempt % 20 == 0:
            from affectlite.sinks.connection_check import why_unreachable

            cause = why_unreachable(self.config) or "no answer"
            self.last_error = f"broker {self.config['host']}:{self.config['port']} unreachable: {cause}"
            log.warning("MQTT %s; retrying with backoff, events wait in %s (%d queued)",
                        self.last_error, self.outbox.path, len(self.outbox))
        self.unreachable = attempt

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected, self.connected = self.connected, False
        if was_connected and reason_code != 0:       # after a refusal, keep the refusal's reason
            self.last_error = f"disconnected: {reason_code}"
            log.warning("MQTT %s; reconnecting", self.last_error)
        elif not was_connected and not self._refused:
            # Closed before any CONNACK (e.g. a plain client on a TLS port): paho reports nothing else.
            self._unreachable()
        self._refused = False

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:               # MQTT 5 only: 3.1.1 acknowledges what it drops
            self._refusals.append((mid, str(reason_code)))
        else:
            self._acks.append(mid)

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == f"{self.config['discovery_prefix']}/status":
            # Right after a connect (a retained "online") the round trip announces, once the other
            # mode's retained messages are in.
            if message.payload.decode(errors="replace").strip().lower() == "online" and self.config["homeassistant"] \
                    and not self._discovery_due:
                self._publish_discovery()
            return
        if self.config["homeassistant"] and paho.topic_matches_sub(self._other_discovery, message.topic):
            if message.retain and message.payload:
                self._stale_discovery.add(message.topic)
            return
        name = message.topic.rsplit("/", 1)[-1]
        if name == "_roundtrip":
            if message.payload.decode(errors="replace") == self._token and not self.delivery_verified:
                if self.delivery_verified is False:
                    log.warning("MQTT delivery works again: queued events go out")
                self.delivery_verified = True
                if self._discovery_due:
                    self._publish_discovery()
            return
        if message.retain:
            # Commands are one-shot: a retained `set/paused ON` would pause the device after every
            # power cut. The retained P/<name>/state says what a setting is now.
            key = name if name in self.commands else UNKNOWN_COMMAND
            if key not in self._retained_warned:
                self._retained_warned.add(key)
                log.warning("MQTT: ignored a retained command on %s (commands are one-shot; clear it with: "
                            "mosquitto_pub -r -n -t '%s')", message.topic, message.topic)
            return
        handler = self.commands.get(name)
        if handler is None:
            # Unknown names share one entry in the log limiter: 5,000 made-up names are one line a second.
            self._error(UNKNOWN_COMMAND, f"unknown command {name[:40]!r}; known: {', '.join(sorted(self.commands))}",
                        shown=name)
            return
        try:
            text = message.payload.decode("utf-8")
            value = handler(text)
        except (ValueError, UnicodeDecodeError) as exc:
            self._error(name, str(exc))
            return
        except Exception as exc:  # a handler bug must not stop the network thread
            log.exception("command %s failed", name)
            self._error(name, f"internal error: {exc}")
            return
        if SETTING_OF_COMMAND.get(name, name) not in self.settings():
            # Not a setting (e.g. text): the answer itself is what the sender wants.
            self.client.publish(self.topic(f"{name}/state"),
                                _encode({"v": 1, "ok": True, "command": name, "value": value}), qos=1)

    def _error(self, command: str, error: str, shown: str | None = None) -> None:
        """Answer on P/errors and log one line; a flood of bad commands logs at most one line a
        second per command (every unknown name counting as one command), with the count of the
        ones not logged. ``shown``: the name to answer with, when ``command`` is the limiter's key."""
        self.client.publish(self.topic("errors"),
                            _encode({"v": 1, "ok": False, "command": shown or command, "error": error}), qos=1)
        now = time.monotonic()
        last, quiet = self._error_log.get(command, (float("-inf"), 0))
        if now - last >= 1.0:
            more = f" ({quiet} more not logged)" if quiet else ""
            log.warning("MQTT command %s refused: %s%s", command[:40], error, more)
            self._error_log[command] = (now, 0)
        else:
            self._error_log[command] = (last, quiet + 1)

    def _publish_discovery(self) -> None:
        """This mode's messages. Where the other mode's were found (a configuration switched), they
        are migrated as Home Assistant prescribes, so that every entity keeps its id and history:
        ``migrate_discovery`` on the old topics, a moment later the new messages (:meth:`pump`),
        then the old topics cleared."""
        self._discovery_due = False
        if not self._stale_discovery:
            self._announce()
            return
        self._migrating, self._stale_discovery = sorted(self._stale_discovery), set()
        log.info("Home Assistant discovery: moving %d message(s) of the other mode to mqtt.discovery = %r",
                 len(self._migrating), self.config["discovery"])
        for topic in self._migrating:
            self.client.publish(topic, MIGRATE_DISCOVERY, qos=1, retain=True)
        self._announce_at = time.monotonic() + MIGRATE_WAIT_S

    def _announce(self) -> None:
        payload = discovery_payload(self.topic, self.config["device_id"], text_on="text" in self.commands,
                                    labels=self.labels, audience_on="content" in self.commands)
        if self.config["discovery"] == "entities":
            messages = entity_messages(payload, self.config["discovery_prefix"], self.config["device_id"])
        else:
            messages = [(self.discovery_topic, _encode(payload))]
        old, self._migrating = self._migrating, []
        for topic, body in [*((topic, "") for topic in old), *messages]:
            self.client.publish(topic, body, qos=1, retain=True)


def probe_broker(config: dict[str, Any], timeout: float = 5.0) -> tuple[str, str]:
    """Connect once as the service would (credentials, TLS), send a token round the device's own
    command topic, and disconnect: ("delivers", ""), ("drops", why) when the broker accepts but
    does not deliver (an ACL), ("refused", reason) or ("unreachable", reason). For ``doctor``."""
    import threading

    answer: dict[str, tuple[str, str]] = {}
    connected, echoed = threading.Event(), threading.Event()
    token = uuid.uuid4().hex
    topic = f"{config['prefix']}/{config['device_id']}/set/_roundtrip"

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            answer["result"] = ("refused", str(reason_code))
        else:
            client.subscribe(topic, qos=1)
        connected.set()

    from affectlite.sinks.connection_check import why_unreachable

    try:
        client = make_client(config, f"{config['client_id']}-doctor")
        client.on_connect = on_connect
        client.on_subscribe = lambda client, userdata, mid, codes, properties: client.publish(topic, token, qos=1)
        client.on_message = lambda client, userdata, message: message.payload == token.encode() and echoed.set()
        client.connect(config["host"], config["port"], keepalive=10)
    except (OSError, ValueError):
        return "unreachable", why_unreachable(config) or "no answer"
    client.loop_start()
    try:
        if not connected.wait(timeout):
            return "unreachable", why_unreachable(config) or f"no answer to CONNECT within {timeout:g} s"
        if "result" in answer:
            return answer["result"]
        if echoed.wait(timeout):
            return "delivers", ""
        return "drops", (f"a message sent to {topic} never came back: the broker's ACL probably denies user "
                         f"{config['username'] or '(anonymous)'} under {config['prefix']}/{config['device_id']}/")
    finally:
        client.disconnect()
        client.loop_stop()


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
