"""History questions over the fleet store, answered as CSV rows (header first)."""

from __future__ import annotations

import datetime
from collections import defaultdict

from affectlite.fleet.store import FleetStore


def _day(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d")


def alerts_per_day(store: FleetStore) -> list[list]:
    """Alerts per device per day (UTC), by kind of alert."""
    counts: dict[tuple, int] = defaultdict(int)
    for site, device, time, alert in store.query("SELECT site, device, time, alert FROM events WHERE type = 'alert'"):
        counts[(site, device, _day(time), alert or "")] += 1
    return [["site", "device", "day", "alert", "count"]] + [[*key, n] for key, n in sorted(counts.items())]


def time_shares(store: FleetStore, until: float | None = None) -> list[list]:
    """Per device, the share of observed time each dominant emotion and each valence was shown:
    every stored state lasts until the device's next one (the last until ``until``, default the
    last state's own time)."""
    rows = store.query("SELECT site, device, time, dominant_emotion, valence FROM states ORDER BY site, device, time")
    spans: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for i, (site, device, time, emotion, valence) in enumerate(rows):
        following = rows[i + 1] if i + 1 < len(rows) else None
        same_device = following is not None and following[:2] == (site, device)
        end = following[2] if same_device else (until if until is not None else time)
        duration = max(end - time, 0.0)
        spans[(site, device)][f"emotion:{emotion or 'nobody'}"] += duration
        spans[(site, device)][f"valence:{valence or 'nobody'}"] += duration
    out = [["site", "device", "what", "value", "share"]]
    for (site, device), seen in sorted(spans.items()):
        for kind in ("emotion", "valence"):
            total = sum(v for k, v in seen.items() if k.startswith(kind + ":"))
            for key, value in sorted(seen.items()):
                if key.startswith(kind + ":") and total > 0:
                    out.append([site, device, kind, key.split(":", 1)[1], round(value / total, 4)])
    return out


def gaps(store: FleetStore) -> list[list]:
    """Events that never arrived, per device and service run (from the gaps in their numbers)."""
    return [["site", "device", "run", "first_seq", "last_seq", "stored", "missing"]] + [list(row) for row in store.gaps()]


def offline_periods(store: FleetStore) -> list[list]:
    """When each device went offline and when it came back (empty 'back' while it still is)."""
    rows = store.query("SELECT site, device, time, online FROM availability ORDER BY site, device, time")
    out = [["site", "device", "offline_at", "back_at", "offline_s"]]
    open_since: dict[tuple, float] = {}
    for site, device, time, online in rows:
        key = (site, device)
        if not online and key not in open_since:
            open_since[key] = time
        elif online and key in open_since:
            start = open_since.pop(key)
            out.append([site, device, _iso(start), _iso(time), round(time - start, 1)])
    for (site, device), start in sorted(open_since.items()):
        out.append([site, device, _iso(start), "", ""])
    return out


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="seconds")


def audience(store: FleetStore, per: str = "hour") -> list[list]:
    """Audience figures per device, per content item (\"\" = the whole screen time) and per hour
    (UTC) of the window's start: people in view, viewers, attention seconds, dwell of those who
    left (mean over the windows, weighted by how many left), and the viewers' mean valence."""
    import json

    sums: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for site, device, start, payload in store.query("SELECT site, device, window_start, payload FROM audience "
                                                    "ORDER BY site, device, window_start"):
        data = json.loads(payload)
        when = datetime.datetime.fromtimestamp(start, datetime.timezone.utc)
        bucket = when.strftime("%Y-%m-%d %H:00" if per == "hour" else "%Y-%m-%d")
        for content, figures in [("", data)] + sorted((data.get("content") or {}).items()):
            row = sums[(site, device, bucket, content)]
            row["windows"] += 1
            row["ots"] += figures.get("ots") or 0
            row["viewers"] += figures.get("viewers") or 0
            row["attention_s"] += figures.get("attention_s") or 0.0
            left = figures.get("left") or 0
            row["left"] += left
            row["dwell_s"] += (figures.get("dwell_mean_s") or 0.0) * left
            looked = figures.get("viewers") or 0
            if figures.get("viewer_valence") is not None:
                row["valence_weight"] += looked
                row["valence_sum"] += figures["viewer_valence"] * looked
    out = [["site", "device", per, "content", "windows", "ots", "viewers", "attention_s", "dwell_mean_s",
            "viewer_valence"]]
    for (site, device, bucket, content), row in sorted(sums.items()):
        out.append([site, device, bucket, content, int(row["windows"]), int(row["ots"]), int(row["viewers"]),
                    round(row["attention_s"], 1), round(row["dwell_s"] / row["left"], 2) if row["left"] else "",
                    round(row["valence_sum"] / row["valence_weight"], 3) if row["valence_weight"] else ""])
    return out


REPORTS = {"alerts": alerts_per_day, "emotions": time_shares, "offline": offline_periods, "gaps": gaps, "audience": audience}
