"""What can be set from outside (MQTT ``set/<name>``) and what it is now.

Handlers run on the MQTT client's thread; each parses its payload strictly and raises
ValueError with a message for the sender (answered on ``P/errors``). The settings' current
values are kept retained by the sink, whatever changed them.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

from affectlite.states import NEGATIVE_VALENCE_MAX_S


def on_off(text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"expected ON or OFF, got {text.strip()[:40]!r}")


def number(text: str, low: float, high: float, name: str) -> float:
    """A JSON number (not a string, not true/false), finite and within [low, high]."""
    value = None
    if len(text) <= 64:                       # a number never needs more; deep or huge input is refused unread
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            try:
                value = float(parsed)
            except OverflowError:
                value = None
    if value is None or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {text.strip()[:40]!r}")
    return value


def settings(service) -> dict[str, Any]:
    found = {"privacy": "ON" if service.privacy else "OFF", "paused": "ON" if service.paused else "OFF",
             "negative_valence_s": service.states.alerts.negative_valence_s,
             "negative_share": service.states.alerts.negative_share}
    if service.audience is not None:
        found["content"] = service.audience.content or ""
    return found


def content(text: str) -> tuple[str | None, float | None]:
    """``set/content``: an id (``summer-sale``), empty for nothing in particular, or JSON
    ``{"id": "summer-sale", "duration_s": 30}`` for an item shown for a known time."""
    text = text.strip()
    if len(text) > 512:
        raise ValueError("content: at most 512 characters")
    if not text.startswith("{"):
        return (text or None), None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("content: not valid JSON; send an id, or {\"id\": ..., \"duration_s\": ...}") from None
    if not isinstance(data, dict) or set(data) - {"id", "duration_s"} or not isinstance(data.get("id"), (str, type(None))):
        raise ValueError('content: expected {"id": "<id>" or null, "duration_s": <seconds>}')
    duration = data.get("duration_s")
    if duration is not None:
        duration = number(json.dumps(duration), 0.1, 86400, "duration_s")
    return data.get("id") or None, duration


def handlers(service) -> dict[str, Callable[[str], Any]]:
    alerts = service.states.alerts

    def set_paused(text):
        service.paused = on_off(text)
        return "ON" if service.paused else "OFF"

    def set_privacy(text):
        service.set_privacy(on_off(text))
        return "ON" if service.privacy else "OFF"

    def pause(text):
        service.paused = True
        return "ON"

    def resume(text):
        service.paused = False
        return "OFF"

    def negative_valence_s(text):
        alerts.negative_valence_s = number(text, 0, NEGATIVE_VALENCE_MAX_S, "negative_valence_s")
        return alerts.negative_valence_s

    def negative_share(text):
        alerts.negative_share = number(text, 0, 1, "negative_share")
        return alerts.negative_share

    def set_content(text):
        content_id, duration = content(text)
        service.set_content(content_id, duration)
        return content_id or ""

    found = {"pause": pause, "resume": resume, "paused": set_paused, "privacy": set_privacy,
             "negative_valence_s": negative_valence_s, "negative_share": negative_share}
    if service.audience is not None:
        found["content"] = set_content
    if service.text is not None:
        found["text"] = lambda text: service.add_text(text).as_dict()
    return found
