"""The device's CPU temperature, for the stats and for whether Home Assistant gets a sensor for it."""

from __future__ import annotations

from pathlib import Path


def cpu_temperature() -> float | None:
    """°C from the first thermal zone (a Raspberry Pi's SoC), None where unreadable."""
    try:
        return round(int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0, 1)
    except (OSError, ValueError):
        return None
