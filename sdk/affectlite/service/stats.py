"""What the service counts, and the periodic ``stats`` message made from it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from affectlite.thermal import cpu_temperature


@dataclass
class Counters:
    analysed: int = 0
    skipped: int = 0               # taken from capture but not analysed (rate cap, pause, privacy)
    events: int = 0
    #: Set when the service stops: messages still waiting for the broker (they go out on the next run).
    undelivered: int = 0
    latencies_ms: list[float] = field(default_factory=list)   # capture -> results, last stats window


def stats_payload(counters: Counters, capture, sink, window_s: float) -> dict[str, Any]:
    """``capture``: the LatestFrame (or None before it started); ``window_s``: since the last stats."""
    lat = np.array(counters.latencies_ms) if counters.latencies_ms else None
    outbox = getattr(sink, "outbox", None)
    return {
        "v": 1, "time": round(time.time(), 3),
        "capture_fps": round(capture.capture_fps, 2) if capture else 0.0,
        "inference_fps": round(len(counters.latencies_ms) / window_s, 2) if window_s > 0 else 0.0,
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2), "p95": round(float(np.percentile(lat, 95)), 2)}
        if lat is not None else None,
        "captured_frames": capture.captured if capture else 0,
        "dropped_frames": (capture.dropped if capture else 0) + counters.skipped,
        "analysed_frames": counters.analysed,
        "events": counters.events,
        "queued_messages": sink.pending,
        "queue_dropped": outbox.dropped if outbox else 0,
        "queue_in_memory": outbox.in_memory if outbox else 0,
        "cpu_temp_c": cpu_temperature(),
        "connected": bool(sink.connected),
        "delivering": getattr(sink, "delivery_verified", True) is not False,
    }
