"""What the fleet store accepts from a device, checked field by field before anything is stored.

Any device allowed to write its own topics can send anything there (a bug, an old version, a
hostile script). One message with ``"time": "abc"`` once stopped the watcher for good: it was
never acknowledged, so the broker redelivered it on every start and nothing after it was ever
stored. Now a message that fails these checks is counted, logged and acknowledged, and the rest
go on. The rules follow the published schemas (``affectlite/schemas/mqtt-*.v1.json``) for what
the store's columns need; fields the store only keeps as text are not second-guessed.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Larger messages are refused unread (a device's events are a few hundred bytes).
MAX_PAYLOAD_BYTES = 64 * 1024
EVENT_TYPES = ("face_appeared", "face_left", "state_changed", "alert")
_EVENT_ID = re.compile(r"^[0-9a-f]{32}$")


def problem(kind: str, data: Any) -> str | None:
    """Why a decoded message of ``kind`` cannot be stored, or None when it can."""
    if not isinstance(data, dict):
        return f"not a JSON object ({type(data).__name__})"
    if "time" in data or kind == "events":
        reason = _time_problem(data.get("time"))
        if reason:
            return reason
    if kind == "events":
        if not isinstance(data.get("id"), str) or not _EVENT_ID.match(data["id"]):
            return "id: not 32 hexadecimal digits"
        if data.get("type") not in EVENT_TYPES:
            return f"type: {str(data.get('type'))[:40]!r} is not one of {', '.join(EVENT_TYPES)}"
        if not _optional_count(data.get("track_id")):
            return "track_id: not a whole number >= 0 or null"
        for key in ("alert", "state", "previous", "valence"):
            if not _optional_text(data.get(key)):
                return f"{key}: not a short text or null"
        if not _optional_count(data.get("seq")):
            return "seq: not a whole number >= 0"
        if data.get("run") is not None and (not isinstance(data["run"], str) or len(data["run"]) > 64):
            return "run: not a short text"
    elif kind == "audience":
        for key in ("window_start", "window_end"):
            if _time_problem(data.get(key)):
                return f"{key}: not a number of seconds"
        for key in ("ots", "viewers"):
            if not isinstance(data.get(key), int) or isinstance(data.get(key), bool) or data[key] < 0:
                return f"{key}: not a whole number >= 0"
        if not isinstance(data.get("attention_s"), (int, float)) or not math.isfinite(data["attention_s"]):
            return "attention_s: not a number"
        if not isinstance(data.get("content", {}), dict):
            return "content: not an object"
    elif kind == "state":
        if not _optional_count(data.get("people")):
            return "people: not a whole number >= 0 or null"
        for key in ("dominant_emotion", "valence"):
            if not _optional_text(data.get(key)):
                return f"{key}: not a short text or null"
        if data.get("alert_active") not in (None, True, False):
            return "alert_active: not true, false or null"
    return None


def _time_problem(value: Any) -> str | None:
    # Any finite number: a device without a clock source (offline, no RTC) may be decades off, and
    # its events are still events.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"time: {str(value)[:40]!r} is not a number of seconds"
    return None


def _optional_count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 63)


def _optional_text(value: Any) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= 64)
