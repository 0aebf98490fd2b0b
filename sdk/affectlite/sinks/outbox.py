"""A bounded, on-disk, first-in-first-out queue of MQTT messages that must not be lost.

Events are written here before they are handed to the MQTT client and removed only when the
broker acknowledges them (QoS 1 PUBACK), so a broker outage or a restart of the service loses
nothing. What bounds it, and what happens at each bound (each is counted, logged once per burst,
and reported in the stats and the state's ``warnings``):

- ``max_messages`` (10,000 by default: at a few hundred bytes each, a few MB of disk) protects a
  device's SD card during a long outage; beyond it the oldest messages are dropped first.
- A full disk: messages are held in memory instead (at most ``memory_max``, 1,000 by default,
  oldest dropped beyond that) and written to disk, in order, as soon as it takes them again;
  the service keeps running and publishing.
- The write-ahead log is checkpointed every 100 pages and truncated to at most 1 MiB
  (``journal_size_limit``), so the queue's files stay within the messages' own size plus ~1 MiB.
- A damaged file (a power cut mid-write on an SD card) is found at open (``PRAGMA
  quick_check``), moved aside as ``<name>.damaged-<time>`` for inspection, and a new queue starts.
  Only damage does that: a file that cannot be opened because the disk is full, it is locked or
  an I/O error occurs is left alone; the queue starts in memory, says so, and opens the file
  again every few seconds, after which its messages are sent as well (after the newer ones held
  in memory meanwhile: nothing is left behind, but those two groups arrive out of order).

The count of queued messages is read from the database (less the delivered rows whose deletion
the disk refused) plus what is held in memory: never a running tally that a half-failed
operation could skew.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

WAL_LIMIT_BYTES = 1 << 20
#: How often a queue file that could not be opened (full disk, locked) is tried again.
REOPEN_EVERY_S = 5.0


@dataclass(frozen=True)
class Message:
    id: int                  # > 0 on disk, < 0 while held in memory
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    def __init__(self, path: str | Path, max_messages: int = 10000, memory_max: int = 1000,
                 reopen_every_s: float = REOPEN_EVERY_S):
        if max_messages < 1 or memory_max < 1:
            raise ValueError(f"max_messages and memory_max must be >= 1, got {max_messages}, {memory_max}")
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.memory_max = memory_max
        self.reopen_every_s = reopen_every_s
        self.dropped = 0                     # evicted at max_messages, or from memory at memory_max
        self.disk_error: str | None = None   # why messages are held in memory now (None: all on disk)
        self.moved_aside: Path | None = None  # where a damaged queue file went at open
        self._memory: collections.OrderedDict[int, Message] = collections.OrderedDict()
        self._next_memory_id = -1
        self._last_id = 0
        # memory id -> disk id of messages written to disk after the client was handed them, so
        # that their acknowledgement still removes them.
        self._flushed: dict[int, int] = {}
        # Delivered messages whose row could not be deleted yet (a full disk refuses even that):
        # never handed out again, deleted at the next chance.
        self._gone: set[int] = set()
        self._dropped_logged_at = float("-inf")
        self._lock = threading.Lock()
        self._reopen_at = 0.0
        self._on_disk = 0                    # the last count read from the file
        self._db: sqlite3.Connection | None = self._open()

    # -- opening ------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection | None:
        """The database, or None while the file cannot be opened for a reason that is not damage."""
        try:
            db = self._connect()
        except sqlite3.OperationalError as exc:          # disk full, locked, I/O: the file may be fine
            self._cannot_open(exc)
            return None
        except sqlite3.DatabaseError as exc:             # not a database, malformed, failed integrity check
            self.moved_aside = self._move_aside()
            log.error("message queue %s was damaged (%s): moved aside to %s, starting a new one", self.path, exc,
                      self.moved_aside)
            try:
                db = self._connect()
            except sqlite3.OperationalError as again:
                self._cannot_open(again)
                return None
            except sqlite3.DatabaseError as again:
                raise RuntimeError(f"{self.path}: cannot open the message queue ({again})") from again
        if self.disk_error is not None and self.disk_error.startswith("cannot open"):
            log.warning("message queue %s: opened; its messages are queued again", self.path)
            self.disk_error = None
        self._on_disk = int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        return db

    def _cannot_open(self, exc: Exception) -> None:
        if self.disk_error is None or not self.disk_error.startswith("cannot open"):
            log.warning("message queue %s cannot be opened (%s): left as it is; holding up to %d new messages in "
                        "memory and trying the file again every %g s", self.path, exc, self.memory_max,
                        self.reopen_every_s)
        self.disk_error = f"cannot open {self.path.name}: {exc}"
        self._reopen_at = time.monotonic() + self.reopen_every_s

    def _ensure_db(self) -> None:
        if self._db is None and time.monotonic() >= self._reopen_at:
            self._db = self._open()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            status = db.execute("PRAGMA quick_check").fetchone()[0]
            if status != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {status}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            db.execute("PRAGMA wal_autocheckpoint=100")
            db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)")
            db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                source.replace(Path(str(target) + suffix))
        return target

    # -- the queue ----------------------------------------------------------------------------
    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        with self._lock:
            self._ensure_db()
            self._delete_gone()
            message = Message(self._next_memory_id, topic, payload, qos, retain)
            self._next_memory_id -= 1
            self._memory[message.id] = message
            self._flush_memory()
            if len(self._memory) > self.memory_max:
                excess = len(self._memory) - self.memory_max
                for _ in range(excess):
                    self._memory.popitem(last=False)
                self._count_dropped(excess, "the disk is full and the in-memory queue is full")
            if message.id in self._memory:
                return message.id
            self._flushed.pop(message.id, None)          # never handed out under its memory id
            return self._last_id

    def _flush_memory(self) -> None:
        """Move messages held in memory to disk, oldest first, while the disk takes them: the
        disk's rows always come before the memory's in delivery order."""
        if self._db is None:
            return
        while self._memory:
            first_id, message = next(iter(self._memory.items()))
            try:
                cursor = self._db.execute("INSERT INTO outbox (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                                          (message.topic, message.payload, message.qos, int(message.retain)))
                excess = self._count() - self.max_messages
                if excess > 0:
                    self._db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                                     (excess,))
                    self._count_dropped(excess, f"queue_max_messages ({self.max_messages}) reached")
            except (sqlite3.OperationalError, OSError) as exc:
                if self.disk_error is None:
                    log.warning("message queue %s: %s; holding up to %d messages in memory until the disk takes "
                                "them again", self.path, exc, self.memory_max)
                self.disk_error = str(exc)
                return
            self._last_id = int(cursor.lastrowid)
            self._flushed[first_id] = self._last_id
            del self._memory[first_id]
        if self.disk_error is not None:
            log.warning("message queue %s: the disk takes messages again; all queued on disk", self.path)
            self.disk_error = None

    def _count_dropped(self, count: int, why: str) -> None:
        self.dropped += count
        # One log line per burst: at the first drop, then at most once a minute while it goes on.
        now = time.monotonic()
        if now - self._dropped_logged_at >= 60.0:
            log.warning("message queue %s: %d oldest message(s) dropped so far (%s)", self.path, self.dropped, why)
            self._dropped_logged_at = now

    def pending(self, limit: int = 1000, exclude: set[int] | frozenset = frozenset()) -> list[Message]:
        """Oldest first (disk, then memory), skipping ids already handed to the client (also under
        the id they had in memory before the disk took them)."""
        with self._lock:
            self._ensure_db()
            self._flush_memory()
            exclude = set(exclude) | {self._flushed[i] for i in exclude if i in self._flushed} | self._gone
            rows = []
            try:
                if self._db is not None:
                    rows = self._db.execute("SELECT id, topic, payload, qos, retain FROM outbox ORDER BY id LIMIT ?",
                                            (limit + len(exclude),)).fetchall()
            except sqlite3.OperationalError as exc:
                log.warning("message queue %s: cannot read (%s)", self.path, exc)
            found = [Message(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows if r[0] not in exclude]
            found += [m for m in self._memory.values() if m.id not in exclude]
        return found[:limit]

    def remove(self, message_id: int) -> None:
        with self._lock:
            if message_id < 0:
                if self._memory.pop(message_id, None) is not None:
                    return
                message_id = self._flushed.pop(message_id, 0)
                if message_id == 0:                      # acknowledged twice: already gone
                    return
            self._gone.add(message_id)
            self._delete_gone()
            self._flush_memory()

    def _delete_gone(self) -> None:
        if not self._gone or self._db is None:
            return
        try:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in self._gone])
            self._gone.clear()
            if self._count() == 0:
                # Empty: give the log's space back (bounded anyway by journal_size_limit).
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            # A full disk can refuse the deletion too; try a checkpoint (it frees log space) and
            # keep the ids, which pending() never hands out again.
            with contextlib.suppress(sqlite3.OperationalError):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def __len__(self) -> int:
        """Messages not yet delivered: the file's rows (less those delivered whose deletion the
        disk refused, counted by the database itself) plus those held in memory."""
        with self._lock:
            if self._db is not None:
                try:
                    rows = self._count()
                    gone = list(self._gone)
                    if gone:
                        marks = ",".join("?" * len(gone))
                        rows -= int(self._db.execute(f"SELECT COUNT(*) FROM outbox WHERE id IN ({marks})",
                                                     gone).fetchone()[0])
                    self._on_disk = rows
                except sqlite3.OperationalError:
                    pass                                 # unreadable for now: the last count read
            return self._on_disk + len(self._memory)

    @property
    def in_memory(self) -> int:
        return len(self._memory)

    def warnings(self) -> list[str]:
        """What a person should know about delivery now (for the state's ``warnings``)."""
        found = []
        if self.disk_error is not None and self._db is None:
            found.append(f"message queue: {self.disk_error} (disk full, locked or unreadable; the file is kept and "
                         f"tried again every {self.reopen_every_s:g} s); {len(self._memory)} new message(s) held in memory "
                         f"(at most {self.memory_max})")
        elif self.disk_error is not None:
            found.append(f"message queue: disk full or unwritable under {self.path.parent} ({self.disk_error}); "
                         f"{len(self._memory)} message(s) held in memory (at most {self.memory_max})")
        if self.dropped:
            found.append(f"message queue: {self.dropped} oldest message(s) dropped since start "
                         f"(queue bound reached while the broker was away)")
        if self.moved_aside is not None:
            found.append(f"message queue: a damaged queue file was moved aside to {self.moved_aside}")
        return found

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
