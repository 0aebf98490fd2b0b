"""The fleet's history in a real database: SQLite by default (one file, nothing to set up),
PostgreSQL when given a ``postgresql://`` URL (the same schema, created on first use; needs the
``fleet`` extra, psycopg).

Each event is stored once, keyed by its id, however often QoS 1 delivers it. A device's state is
stored when something a person acts on changes (people, dominant emotion, valence, alert), its
stats and availability as they come. Rows are written in batches (one transaction per flush).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectlite.fleet.checks import MAX_PAYLOAD_BYTES, problem
from affectlite.fleet.topics import Route

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, site TEXT NOT NULL, device TEXT NOT NULL, "
    "type TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, track_id INTEGER, alert TEXT, payload TEXT NOT NULL, "
    "run TEXT, seq BIGINT)",
    "CREATE TABLE IF NOT EXISTS states (site TEXT NOT NULL, device TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, "
    "people INTEGER, dominant_emotion TEXT, valence TEXT, alert_active BOOLEAN, payload TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stats (site TEXT NOT NULL, device TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, "
    "payload TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS availability (site TEXT NOT NULL, device TEXT NOT NULL, "
    "time DOUBLE PRECISION NOT NULL, online BOOLEAN NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audience (site TEXT NOT NULL, device TEXT NOT NULL, "
    "window_start DOUBLE PRECISION NOT NULL, window_end DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL, "
    "PRIMARY KEY (site, device, window_start))",
    "CREATE INDEX IF NOT EXISTS events_device_time ON events (site, device, time)",
    "CREATE INDEX IF NOT EXISTS states_device_time ON states (site, device, time)",
)
#: Columns added since the first schema, for stores created before them.
ADDED_COLUMNS = (("events", "run", "TEXT"), ("events", "seq", "BIGINT"))
INDEXES_ON_ADDED = ("CREATE INDEX IF NOT EXISTS events_device_run ON events (site, device, run, seq)",)


@dataclass
class FleetStore:
    """Open with :func:`open_store`; ``add`` buffers, ``flush`` writes the buffer in one transaction."""

    connection: Any
    placeholder: str = "?"
    pending: list[tuple[str, tuple]] = field(default_factory=list)
    _last_state: dict[tuple[str, str], str] = field(default_factory=dict)
    stored_events: int = 0

    def add(self, route: Route, payload: bytes, received: float) -> str | None:
        """One message as it arrived; returns why it was not stored (:mod:`affectlite.fleet.checks`),
        or None when it was buffered (or is an event stored already)."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            return f"{len(payload)} bytes, over the {MAX_PAYLOAD_BYTES // 1024} KiB a message may have"
        if route.kind == "availability":
            online = payload.decode(errors="replace").strip() == "online"
            self.pending.append(("availability", (route.site, route.device, received, online)))
            return None
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            return f"not JSON ({type(exc).__name__})"
        reason = problem(route.kind, data)
        if reason:
            return reason
        text = json.dumps(data, separators=(",", ":"))
        when = float(data.get("time") or received)
        if route.kind == "events":
            self.pending.append(("events", (data["id"], route.site, route.device, data["type"], when,
                                            data.get("track_id"), data.get("alert"), text, data.get("run"),
                                            data.get("seq"))))
        elif route.kind == "state":
            signature = json.dumps([data.get("people"), data.get("dominant_emotion"), data.get("valence"),
                                    data.get("alert_active")])
            if self._last_state.get((route.site, route.device)) != signature:
                self._last_state[(route.site, route.device)] = signature
                self.pending.append(("states", (route.site, route.device, when, data.get("people"),
                                                data.get("dominant_emotion"), data.get("valence"),
                                                bool(data.get("alert_active")), text)))
        elif route.kind == "stats":
            self.pending.append(("stats", (route.site, route.device, when, text)))
        elif route.kind == "audience":           # one row a window, however often it is delivered
            self.pending.append(("audience", (route.site, route.device, float(data["window_start"]),
                                              float(data["window_end"]), text)))
        return None

    def flush(self) -> int:
        """Write what is buffered in one transaction; returns the number of rows offered."""
        if not self.pending:
            return 0
        p = self.placeholder
        statements = {
            "events": f"INSERT INTO events (id, site, device, type, time, track_id, alert, payload, run, seq) "
                      f"VALUES ({', '.join([p] * 10)}) ON CONFLICT (id) DO NOTHING",
            "states": f"INSERT INTO states VALUES ({', '.join([p] * 8)})",
            "stats": f"INSERT INTO stats VALUES ({', '.join([p] * 4)})",
            "availability": f"INSERT INTO availability VALUES ({', '.join([p] * 4)})",
            "audience": f"INSERT INTO audience VALUES ({', '.join([p] * 5)}) "
                        "ON CONFLICT (site, device, window_start) DO NOTHING",
        }
        rows, self.pending = self.pending, []
        cursor = self.connection.cursor()
        for table, statement in statements.items():
            batch = [values for name, values in rows if name == table]
            if batch:
                cursor.executemany(statement, batch)
        self.connection.commit()
        self.stored_events = self.count("events")
        return len(rows)

    def gaps(self) -> list[tuple[str, str, str, int, int, int, int]]:
        """Per device and run: (site, device, run, first seq, last seq, stored, missing). Derived from
        the stored rows each time (a redelivery or a late event changes nothing or fills a gap),
        never from a running count. Missing = numbers between the first and the last stored that
        never arrived: events a broker dropped (a queue limit) or a device lost."""
        rows = self.query("SELECT site, device, run, MIN(seq), MAX(seq), COUNT(DISTINCT seq) FROM events "
                          "WHERE run IS NOT NULL AND seq IS NOT NULL GROUP BY site, device, run ORDER BY site, device, run")
        return [(site, device, run, int(first), int(last), int(stored), int(last) - int(first) + 1 - int(stored))
                for site, device, run, first, last, stored in rows]

    def missing(self, site: str, device: str) -> int:
        """Events of one device that never arrived, over all its runs (see :meth:`gaps`)."""
        rows = self.query("SELECT MIN(seq), MAX(seq), COUNT(DISTINCT seq) FROM events WHERE site = ? AND device = ? "
                          "AND run IS NOT NULL AND seq IS NOT NULL GROUP BY run", (site, device))
        return sum(int(last) - int(first) + 1 - int(stored) for first, last, stored in rows)

    def count(self, table: str) -> int:
        cursor = self.connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cursor.fetchone()[0])

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        cursor = self.connection.cursor()
        cursor.execute(sql.replace("?", self.placeholder), args)
        return list(cursor.fetchall())

    def close(self) -> None:
        self.flush()
        self.connection.close()


def open_store(target: str | Path) -> FleetStore:
    """A path (SQLite) or a ``postgresql://`` URL; the tables are created if missing."""
    target = str(target)
    if target.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg
        except ImportError as exc:
            raise ValueError("a PostgreSQL store needs psycopg: pip install 'affectlite[fleet]'") from exc
        try:
            connection = psycopg.connect(target)
        except psycopg.Error as exc:
            raise ValueError(f"cannot connect to {target.split('@')[-1]}: {str(exc).strip().splitlines()[0]}") from exc
        store = FleetStore(connection, placeholder="%s")
    else:
        path = Path(target).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        store = FleetStore(connection)
    cursor = store.connection.cursor()
    for statement in SCHEMA:
        cursor.execute(statement)
    store.connection.commit()
    for table, column, kind in ADDED_COLUMNS:
        cursor = store.connection.cursor()
        try:
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            store.connection.commit()
        except Exception:                     # it is there already (each database words it its own way)
            store.connection.rollback()
    cursor = store.connection.cursor()
    for statement in INDEXES_ON_ADDED:
        cursor.execute(statement)
    store.connection.commit()
    return store
