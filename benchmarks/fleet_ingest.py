"""Events per second the fleet store takes, in batches as `affectlite fleet watch` writes them.

Stores --events real-shaped events (about 400 bytes of JSON each, from 50 devices) through
FleetStore.add/flush in batches of --batch, into SQLite (a file in a temporary folder) and, when
--postgres URL is given, into PostgreSQL; prints events per second for each (median of 3 runs).

    python benchmarks/fleet_ingest.py
    python benchmarks/fleet_ingest.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from affectlite.fleet.store import open_store
from affectlite.fleet.topics import Route


def events(count: int) -> list[tuple[Route, bytes]]:
    found = []
    for n in range(count):
        payload = {"v": 1, "id": uuid.uuid4().hex, "type": "state_changed", "time": 1_790_000_000.0 + n,
                   "track_id": n % 7, "previous": "neutral", "state": "happy", "valence": "positive",
                   "evidence": {"angry": 0.02, "disgust": 0.01, "fear": 0.03, "happy": 0.71, "neutral": 0.15,
                                "sad": 0.04, "surprise": 0.04}}
        found.append((Route("site-1", f"device-{n % 50:02d}", "events"), json.dumps(payload).encode()))
    return found


def rate(target: str, batch: int, messages: list[tuple[Route, bytes]]) -> float:
    store = open_store(target)
    start = time.perf_counter()
    for i in range(0, len(messages), batch):
        for route, payload in messages[i:i + batch]:
            store.add(route, payload, 0.0)
        store.flush()
    elapsed = time.perf_counter() - start
    store.close()
    return len(messages) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", help="a postgresql:// URL to measure too")
    args = parser.parse_args()
    targets = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets["SQLite"] = [rate(str(Path(tmp) / f"fleet{i}.sqlite3"), args.batch, events(args.events)) for i in range(3)]
        if args.postgres:
            targets["PostgreSQL"] = [rate(args.postgres, args.batch, events(args.events)) for _ in range(3)]
    print(f"{args.events} events in batches of {args.batch}, median of 3 runs")
    for name, rates in targets.items():
        print(f"  {name:<11} {np.median(rates):>10,.0f} events/s")


if __name__ == "__main__":
    main()
