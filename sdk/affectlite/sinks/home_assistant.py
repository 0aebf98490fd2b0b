"""Home Assistant MQTT discovery: the device and its entities, as retained messages.

Device-based discovery (``<discovery_prefix>/device/<device_id>/config``, Home Assistant 2024.12
and later) describes every entity of the device at once. An entity that this configuration does
not have (captions with the text stream off, the CPU temperature where there is no sensor) is
sent as ``{"p": "<platform>"}`` alone, which is how Home Assistant removes a component that an
earlier configuration had created; templates read optional keys with ``.get`` so that a state
without them renders as ``none``, not as a template error in Home Assistant's log.

Older Home Assistant versions ignore device discovery and create nothing. Home Assistant Core on
Python 3.11 (Raspberry Pi OS Bookworm's) stops at 2024.3, so ``mqtt.discovery = "entities"`` sends
the same entities the way every version reads: one message per entity
(``<discovery_prefix>/<platform>/<device_id>/<key>/config``), an empty one removing an entity.
A switch of modes is migrated by the sink (:class:`affectlite.sinks.mqtt.MqttSink`), so that no
duplicate is left behind.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from affectlite import __version__
from affectlite.labels import EMOTIONS
from affectlite.states import NEGATIVE_VALENCE_MAX_S
from affectlite.thermal import cpu_temperature

EVENT_TYPES = ("face_appeared", "face_left", "state_changed", "alert")


def discovery_payload(topic: Callable[[str], str], device: str, text_on: bool = False,
                      labels: tuple[str, ...] | None = None, has_temperature: bool | None = None,
                      audience_on: bool = False) -> dict[str, Any]:
    """One device and its entities. ``topic``: the device's topic for a name (``MqttSink.topic``);
    ``text_on``: the text stream is on (captions from a dashboard); ``has_temperature``: the device
    reads a CPU temperature (default: tried now).

    Every state topic referenced here receives a retained value from the service (state and the
    settings) or a periodic one (stats), so no entity stays ``unknown`` after a restart."""
    labels = labels or EMOTIONS
    if has_temperature is None:
        has_temperature = cpu_temperature() is not None
    uid = f"affectlite_{device}"
    state, stats = topic("state"), topic("stats")

    def sensor(name, template, topic=state, **extra):
        return {"p": "sensor", "name": name, "stat_t": topic, "val_tpl": template, **extra}

    def switch(name, setting, icon):
        return {"p": "switch", "name": name, "cmd_t": topic(f"set/{setting}"), "stat_t": topic(f"{setting}/state"),
                "val_tpl": "{{ value_json.value }}", "pl_on": "ON", "pl_off": "OFF", "stat_on": "ON", "stat_off": "OFF",
                "ic": icon}

    def number(name, setting, maximum, step, unit=None):
        return {"p": "number", "name": name, "cmd_t": topic(f"set/{setting}"), "stat_t": topic(f"{setting}/state"),
                "val_tpl": "{{ value_json.value }}", "min": 0, "max": maximum, "step": step, "mode": "box",
                "ent_cat": "config", **({"unit_of_meas": unit} if unit else {})}

    diagnostic = {"ent_cat": "diagnostic"}
    components = {
        "people": sensor("People in view", "{{ value_json.people }}", stat_cla="measurement"),
        "emotion": sensor("Dominant emotion", "{{ value_json.dominant_emotion or 'none' }}", dev_cla="enum",
                          ops=[*labels, "none"], ic="mdi:emoticon-outline"),
        "valence": sensor("Valence", "{{ value_json.valence or 'none' }}", dev_cla="enum",
                          ops=["positive", "neutral", "negative", "none"], ic="mdi:emoticon-neutral-outline"),
        "alert": {"p": "binary_sensor", "name": "Alert", "stat_t": state,
                  "val_tpl": "{{ 'ON' if value_json.alert_active else 'OFF' }}", "dev_cla": "problem"},
        # an alert event names its kind in "alert" (negative_valence, negative_share)
        "events": {"p": "event", "name": "Events", "stat_t": topic("events"), "evt_typ": list(EVENT_TYPES),
                   "val_tpl": "{{ {'event_type': value_json.type, 'kind': value_json.get('alert'), "
                              "'track_id': value_json.get('track_id')} | to_json }}", "ic": "mdi:bell-ring-outline"},
        "privacy": switch("Privacy mode", "privacy", "mdi:eye-off"),
        "paused": switch("Paused", "paused", "mdi:pause"),
        "negative_valence_s": number("Negative valence alert after", "negative_valence_s", NEGATIVE_VALENCE_MAX_S, 1,
                                     "s"),
        "negative_share": number("Negative share alert at", "negative_share", 1, 0.05),
        "fps": sensor("Analysed frames per second", "{{ value_json.inference_fps }}", topic=stats,
                      unit_of_meas="fps", stat_cla="measurement", **diagnostic),
        "latency_p95": sensor("Latency p95", "{{ value_json.latency_ms.p95 if value_json.latency_ms else none }}",
                              topic=stats, unit_of_meas="ms", dev_cla="duration", stat_cla="measurement", **diagnostic),
        "dropped_frames": sensor("Dropped frames", "{{ value_json.dropped_frames }}", topic=stats,
                                 stat_cla="total_increasing", **diagnostic),
        "queued_messages": sensor("Queued messages", "{{ value_json.queued_messages }}", topic=stats,
                                  stat_cla="measurement", **diagnostic),
        "cpu_temperature": sensor("CPU temperature", "{{ value_json.cpu_temp_c }}", topic=stats, unit_of_meas="°C",
                                  dev_cla="temperature", stat_cla="measurement", **diagnostic)
        if has_temperature else {"p": "sensor"},
        "connected": {"p": "binary_sensor", "name": "Broker connection", "stat_t": stats,
                      "val_tpl": "{{ 'ON' if value_json.connected else 'OFF' }}", "dev_cla": "connectivity",
                      **diagnostic},
        "caption": {"p": "text", "name": "Caption", "cmd_t": topic("set/text"), "max": 255,
                    "ic": "mdi:closed-caption-outline"} if text_on else {"p": "text"},
        "combined_valence": sensor(
            "Valence with captions",
            "{{ value_json.combined_valence.valence if value_json.get('combined_valence') else 'none' }}",
            dev_cla="enum", ops=["positive", "neutral", "negative", "none"], ic="mdi:scale-balance")
        if text_on else {"p": "sensor"},
    }
    audience = topic("audience")
    components["audience_viewers"] = sensor(
        "Viewers (last window)", "{{ value_json.viewers }}", topic=audience, stat_cla="measurement",
        ic="mdi:account-eye") if audience_on else {"p": "sensor"}
    components["audience_attention_rate"] = sensor(
        "Attention rate (last window)",
        "{{ (value_json.attention_rate * 100) | round(1) if value_json.get('attention_rate') is not none else none }}",
        topic=audience, unit_of_meas="%", stat_cla="measurement", ic="mdi:eye-check") \
        if audience_on else {"p": "sensor"}
    for key, component in components.items():
        if len(component) > 1:                         # {"p": ...} alone removes the entity: no id
            component["uniq_id"] = f"{uid}_{key}"
    return {
        "dev": {"ids": [uid], "name": f"affectlite {device}", "mf": "affectlite", "mdl": "affectlite", "sw": __version__},
        "o": {"name": "affectlite", "sw": __version__},
        "avty_t": topic("availability"),
        "qos": 1,
        "cmps": components,
    }


def entity_messages(payload: dict[str, Any], discovery_prefix: str, device: str) -> list[tuple[str, str]]:
    """The device of :func:`discovery_payload` as (topic, retained payload) per entity, for Home
    Assistant versions before device discovery: each entity carries the device, origin and
    availability itself; an entity this configuration lacks gets an empty payload (removed)."""
    shared = {key: payload[key] for key in ("dev", "o", "avty_t", "qos")}
    messages = []
    for key, component in payload["cmps"].items():
        body = {name: value for name, value in component.items() if name != "p"}
        messages.append((f"{discovery_prefix}/{component['p']}/{device}/{key}/config",
                         json.dumps(shared | body, separators=(",", ":")) if body else ""))
    return messages
