"""The live service's configuration: one TOML file, validated here and nowhere else.

Every key is declared once below with its type, default, allowed values and a description;
unknown keys are errors (a typo must not silently fall back to a default). String values may
use ``${VAR}`` or ``${VAR:-default}`` to take secrets from the environment. Errors name the key,
the value and what is allowed.
"""

from __future__ import annotations

import math
import os
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from affectlite.classifiers.speech import DEFAULT_MIN_CONFIDENCE as DEFAULT_VOICE_MIN_CONFIDENCE
from affectlite.sinks.connection_check import check_pem


DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def safe_device_id(name: str) -> str:
    """A device id from a host name: its first label ("lobby-pi" from "Lobby Pi.local"), lower case,
    every other character as '-'. The default when ``mqtt.device_id`` is empty."""
    label = name.split(".", 1)[0].strip().lower()
    return re.sub(r"[^a-z0-9_-]+", "-", label).strip("-")[:64] or "affectlite"


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Key:
    type: type | tuple[type, ...]
    default: Any
    help: str
    choices: tuple | None = None
    check: Callable[[Any], bool] | None = None
    allowed: str = ""               # words for the check, shown in errors


def _positive(v) -> bool:
    return v > 0


def _non_negative(v) -> bool:
    return v >= 0


def _unit(v) -> bool:
    return 0 <= v <= 1


def _port(v) -> bool:
    return 1 <= v <= 65535


SCHEMA: dict[str, dict[str, Key]] = {
    "source": {
        "kind": Key(str, "file", "where frames come from", choices=("file", "webcam", "picamera")),
        "path": Key(str, "", "video file or stream URL for kind = file (empty: the bundled sample clip)"),
        "realtime": Key(bool, True, "replay a file at its own frame rate, as a camera would deliver it"),
        "loop": Key(bool, True, "start a file again when it ends"),
        "device": Key(str, "/dev/video0", "V4L2 device for kind = webcam"),
        "width": Key(int, 640, "capture width (webcam, picamera)", check=lambda v: 16 <= v <= 8192, allowed="16..8192"),
        "height": Key(int, 480, "capture height (webcam, picamera)", check=lambda v: 16 <= v <= 8192, allowed="16..8192"),
        "fps": Key((int, float), 30, "capture frame rate (webcam, picamera)", check=lambda v: 0 < v <= 240, allowed="0 < x <= 240"),
    },
    "recognizer": {
        "model": Key(str, "", "expression model .tflite (empty: the bundled int8 model)"),
        "detector": Key(str, "short", "BlazeFace range", choices=("short", "full")),
        "min_face_score": Key(float, 0.5, "face detection threshold", check=lambda v: 0 < v < 1, allowed="0 < x < 1"),
        "min_face_size": Key(int, 24, "smallest face side in pixels", check=lambda v: 1 <= v <= 8192, allowed="1..8192"),
        "max_faces": Key(int, 10, "most faces analysed per frame", check=lambda v: 1 <= v <= 100, allowed="1..100"),
        "detect_every": Key(int, 4, "run the face detector on every N-th analysed frame and follow the faces in "
                                    "between (a face that changes a lot is detected again at once)",
                            check=lambda v: 1 <= v <= 30, allowed="1..30"),
        "classify_every": Key(int, 4, "classify each tracked face on about every N-th analysed frame and repeat its "
                                      "last result in between (a new face is classified at once)",
                              check=lambda v: 1 <= v <= 30, allowed="1..30"),
        "threads": Key(int, 1, "interpreter threads", check=lambda v: 1 <= v <= 64, allowed="1..64"),
        "edgetpu": Key(str, "off", "use a Coral Edge TPU", choices=("off", "auto", "required")),
        "edgetpu_device": Key(str, "", "usb, usb:N, pci, pci:N (empty: the first found)"),
        "max_fps": Key((int, float), 15, "most frames analysed per second; newer frames replace older ones",
                       check=lambda v: 0 < v <= 240, allowed="0 < x <= 240"),
    },
    "states": {
        "smoothing": Key(float, 0.3, "weight of a new frame in the exponential average of probabilities",
                         check=lambda v: 0 < v <= 1, allowed="0 < x <= 1"),
        "window_s": Key((int, float), 2.0, "seconds of history averaged as an event's evidence", check=_positive, allowed="> 0"),
        "min_confidence": Key(float, 0.4, "below this smoothed probability a person is 'uncertain'", check=_unit, allowed="0..1"),
        "hysteresis": Key(float, 0.1, "a new state must lead the current one by this much", check=_unit, allowed="0..1"),
        "min_duration_s": Key((int, float), 1.0, "a new state must lead this long before it is taken", check=_non_negative, allowed=">= 0"),
        "face_timeout_s": Key((int, float), 1.5, "a face unseen this long has left", check=_positive, allowed="> 0"),
    },
    "alerts": {
        "negative_valence_s": Key((int, float), 5.0, "alert when anyone's valence stays negative this long (0: off)",
                                  check=_non_negative, allowed=">= 0"),
        "negative_share": Key(float, 0.0, "alert when this share of the people in view is negative (0: off)",
                              check=_unit, allowed="0..1"),
        "min_people": Key(int, 2, "people in view needed for the share alert", check=_positive, allowed="> 0"),
        "cooldown_s": Key((int, float), 30.0, "quiet time after an alert before the same alert again",
                          check=_non_negative, allowed=">= 0"),
    },
    "fusion": {
        "model": Key(str, "", "learned fusion over the last 2 s: \"bundled\" (the LSTM that ships) or a .tflite "
                              "from `affectlite-convert train fusion` (empty: the weighted average of face and voice)"),
    },
    "text": {
        "enabled": Key(bool, False, "accept captions or transcript lines (MQTT set/text, Service.add_text) and "
                                    "combine their valence with the faces' (needs the text extra)"),
        "weight": Key(float, 0.25, "weight of the text in the combined valence", check=_unit, allowed="0..1"),
        "ttl_s": Key((int, float), 15.0, "how long a line of text counts after it arrives", check=_positive,
                     allowed="> 0"),
    },
    "audience": {
        "enabled": Key(bool, False, "count the audience (who was in view, who looked, for how long, viewers' "
                                    "expressions) and publish it every window_s on P/audience (docs/audience.md)"),
        "window_s": Key((int, float), 900, "seconds a window of audience figures covers",
                        check=lambda v: 10 <= v <= 86400, allowed="10..86400"),
        "only": Key(bool, False, "publish the audience windows and nothing per person: no events, no per-person "
                                 "states, no faces (for sites that may publish aggregates only)"),
        "max_yaw_deg": Key((int, float), 40.0, "a head turned at most this far left or right counts as looking",
                           check=lambda v: 0 < v <= 90, allowed="0 < x <= 90"),
        "max_pitch_deg": Key((int, float), 40.0, "a head tilted at most this far up or down counts as looking",
                             check=lambda v: 0 < v <= 90, allowed="0 < x <= 90"),
    },
    "explain": {
        "enabled": Key(bool, False, "add to states and events what each decision rests on: each modality's "
                                    "emotion, its share of the fused result, and the margin between the top two classes"),
    },
    "audio": {
        "enabled": Key(bool, False, "listen with a microphone and add the voice to states (needs the audio extra)"),
        "device": Key(int, -1, "PortAudio input device index (-1: the default input)", check=lambda v: v >= -1,
                      allowed=">= -1"),
        "model": Key(str, "", "speech-emotion model .tflite (empty: the bundled int8 model)"),
        "min_confidence": Key(float, DEFAULT_VOICE_MIN_CONFIDENCE, "a voice less sure than this (top probability of the utterance) counts "
                                          "as no voice, like silence", check=_unit, allowed="0..1"),
        "interval_s": Key((int, float), 0.5, "how often the last 2 s of audio are classified", check=_positive,
                          allowed="> 0"),
    },
    "mqtt": {
        "enabled": Key(bool, True, "publish to an MQTT broker"),
        "host": Key(str, "localhost", "broker host name or address"),
        "port": Key(int, 1883, "broker port", check=_port, allowed="1..65535"),
        "prefix": Key(str, "affectlite", "first topic level"),
        "device_id": Key(str, "", "second topic level and Home Assistant node id: letters, digits, _ and - "
                                   "(empty: this machine's host name, e.g. lobby-pi for 'Lobby Pi.local')"),
        "client_id": Key(str, "", "MQTT client id (empty: affectlite-<device_id>)"),
        "username": Key(str, "", "user name (empty: anonymous)"),
        "password": Key(str, "", "password; use ${VAR} to read it from the environment"),
        "keepalive_s": Key(int, 30, "MQTT keep-alive", check=lambda v: 5 <= v <= 3600, allowed="5..3600"),
        "protocol": Key(str, "3.1.1", "MQTT version: 3.1.1, or 5 where the broker speaks it (Mosquitto 2 does): "
                                      "the retained state then expires state_expiry_s after the service stops "
                                      "refreshing it, and an event the broker refuses (ACL) is seen at once",
                        choices=("3.1.1", "5")),
        "state_expiry_s": Key(int, 60, "with protocol 5: how long a retained state (and stats) outlives its last "
                                       "refresh (the state is refreshed at least every 5 s while the service runs)",
                              check=lambda v: 1 <= v <= 86400, allowed="1..86400"),
        "tls": Key(bool, False, "connect with TLS"),
        "ca_file": Key(str, "", "CA certificate (PEM) that signed the broker's certificate"),
        "cert_file": Key(str, "", "client certificate (PEM) for mutual TLS"),
        "key_file": Key(str, "", "client key (PEM) for mutual TLS"),
        "queue_path": Key(str, "~/.local/state/affectlite/outbox.sqlite3",
                          "on-disk queue for QoS 1 messages while the broker is away"),
        "queue_max_messages": Key(int, 10000, "queue bound; the oldest messages go first when it is full",
                                  check=lambda v: 1 <= v <= 10_000_000, allowed="1..10000000"),
        "faces": Key(bool, False, "publish per-frame face detail on .../faces"),
        "faces_max_hz": Key((int, float), 2.0, "most .../faces messages per second", check=_positive, allowed="> 0"),
        "stats_interval_s": Key((int, float), 30.0, "seconds between .../stats messages", check=_positive, allowed="> 0"),
        "homeassistant": Key(bool, True, "publish Home Assistant MQTT discovery"),
        "discovery_prefix": Key(str, "homeassistant", "Home Assistant's discovery prefix"),
        "discovery": Key(str, "device", "Home Assistant discovery as one device message (Home Assistant 2024.12 "
                                        "and later) or one message per entity (any version, e.g. 2024.3 on "
                                        "Python 3.11)", choices=("device", "entities")),
    },
}

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(value: str, key: str, environ: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{key}: environment variable {name} is not set (write ${{{name}:-default}} for a fallback)")

    return _ENV.sub(replace, value)


def _type_name(t) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return " or ".join(names[x] for x in (t if isinstance(t, tuple) else (t,)))


def _check(key: str, spec: Key, value: Any) -> Any:
    expected = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    if float in expected and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if expected == (float,) else value
    ok = isinstance(value, expected) and not (isinstance(value, bool) and bool not in expected)
    if not ok:
        raise ConfigError(f"{key}: {value!r} is not {_type_name(spec.type)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: {value!r} is not a finite number")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(repr, spec.choices))}")
    if spec.check is not None and not spec.check(value):
        raise ConfigError(f"{key}: {value!r} is out of range (allowed: {spec.allowed})")
    return value


def validate(raw: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Defaults filled in, environment substituted, every value checked; returns a new dict."""
    environ = dict(os.environ if environ is None else environ)
    unknown = set(raw) - set(SCHEMA)
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; allowed: {sorted(SCHEMA)}")
    config: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{section}: must be a table ([{section}])")
        unknown = set(given) - set(keys)
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(f"{section}.{name}: unknown key; allowed in [{section}]: {', '.join(keys)}")
        config[section] = {}
        for name, spec in keys.items():
            value = given.get(name, spec.default)
            if isinstance(value, str):
                value = _substitute(value, f"{section}.{name}", environ)
            config[section][name] = _check(f"{section}.{name}", spec, value)

    mqtt = config["mqtt"]
    if mqtt["password"] and not mqtt["username"]:
        raise ConfigError("mqtt.password: a password needs mqtt.username")
    if bool(mqtt["cert_file"]) != bool(mqtt["key_file"]):
        raise ConfigError("mqtt.cert_file / mqtt.key_file: give both for a client certificate, or neither")
    if (mqtt["ca_file"] or mqtt["cert_file"]) and not mqtt["tls"]:
        raise ConfigError("mqtt.ca_file: certificates are given but mqtt.tls is false")
    for name in ("ca_file", "cert_file", "key_file"):
        if mqtt[name] and not Path(mqtt[name]).expanduser().is_file():
            raise ConfigError(f"mqtt.{name}: {mqtt[name]!r} is not a file")
        problem = check_pem(mqtt[name], f"mqtt.{name}") if mqtt[name] else ""
        if problem:
            raise ConfigError(f"mqtt.{name}: {problem}")
    if not mqtt["device_id"]:
        mqtt["device_id"] = safe_device_id(socket.gethostname())
    if not DEVICE_ID.fullmatch(mqtt["device_id"]):
        # Home Assistant ignores discovery topics with other characters: the device would silently
        # never appear there, so refuse rather than guess.
        raise ConfigError(f"mqtt.device_id: {mqtt['device_id']!r} may hold only letters, digits, '_' and '-' "
                          f"(it is a topic level and Home Assistant's node id); e.g. "
                          f"{safe_device_id(mqtt['device_id'])!r}")
    if any(c in mqtt["prefix"] for c in "+#/") or not mqtt["prefix"]:
        raise ConfigError("mqtt.prefix: must be non-empty and free of '+', '#' and '/'")
    if not mqtt["client_id"]:
        mqtt["client_id"] = f"affectlite-{mqtt['device_id']}"
    if config["source"]["kind"] == "file" and config["source"]["path"]:
        path = config["source"]["path"]
        if "://" not in path and not Path(path).expanduser().exists():
            raise ConfigError(f"source.path: {path!r} does not exist")
    return config


def load(path: str | Path | None = None, environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Read and validate a TOML file; no file gives the defaults (the bundled sample clip)."""
    if path is None:
        return validate({}, environ)
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return validate(raw, environ)


def to_toml(config: dict[str, dict[str, Any]], hide_secrets: bool = True) -> str:
    """The effective configuration as TOML, secrets masked (``affectlite run --print-config``)."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        for name, value in values.items():
            if hide_secrets and name == "password" and value:
                value = "********"
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = repr(value)
            lines.append(f"{name} = {text}  # {SCHEMA[section][name].help}")
        lines.append("")
    return "\n".join(lines)
