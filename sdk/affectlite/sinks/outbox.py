"""A bounded, on-disk, first-in-first-out queue of MQTT messages that must not be lost.

Events are written here before they are handed to the MQTT client and removed only when the
broker acknowledges them (QoS 1 PUBACK), so a broker outage or a restart of the service loses
nothing. The bound (``max_messages``, 10,000 by default: at a few hundred bytes each, a few MB
of disk) protects a device's SD card during a long outage; when it is reached the oldest
messages are dropped first and counted.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Message:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    def __init__(self, path: str | Path, max_messages: int = 10000):
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.dropped = 0
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                             "topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise RuntimeError(f"{self.path}: cannot open the message queue ({exc}); move the file aside to start "
                               "a new one") from exc

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        with self._lock:
            cursor = self._db.execute("INSERT INTO outbox (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                                      (topic, payload, qos, int(retain)))
            excess = self._count() - self.max_messages
            if excess > 0:
                self._db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
                self.dropped += excess
            return int(cursor.lastrowid)

    def pending(self, limit: int = 1000, exclude: set[int] | frozenset = frozenset()) -> list[Message]:
        """Oldest first, skipping ids already handed to the client."""
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload, qos, retain FROM outbox ORDER BY id LIMIT ?",
                                    (limit + len(exclude),)).fetchall()
        return [Message(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows if r[0] not in exclude][:limit]

    def remove(self, message_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def close(self) -> None:
        with self._lock:
            self._db.close()
