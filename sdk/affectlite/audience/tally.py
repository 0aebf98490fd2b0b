"""Counting an audience from tracked faces: opportunity to see, dwell, attention, viewers, and the
expressions of viewers while they looked, overall and per content item.

Fed once per analysed frame with each face's track id, head pose and emotion; time between two
frames is credited to what each face did in the later one (capped, so that a stalled camera does
not credit minutes). Definitions (docs/audience.md):

- opportunity to see (OTS): people whose face was in view during the window, those still in
  view when it began included;
- dwell: a person's first detection to their last (reported when they have left), as a mean and
  in the industry's buckets 0-5, 5-15, 15-30, 30-60 and 60+ s;
- attention: the seconds a person's head was turned towards the camera (AttentionOptions); a
  glance is a run of at least ``glance_s``; a viewer looked ``viewer_s`` or more in all;
- attention rate: attention seconds over dwell seconds;
- expressions: the share of viewers' looking time per emotion, and their mean valence then
  (+1 positive, 0 neutral, -1 negative).

Nothing identifying is kept: per person only counters, under a track id that is dropped once the
window that saw them leave has been summarised.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Iterable

from affectlite.audience.head_pose import AttentionOptions, HeadPose

#: Dwell buckets in seconds, [low, high).
DWELL_BUCKETS = ((0.0, 5.0), (5.0, 15.0), (15.0, 30.0), (30.0, 60.0), (60.0, math.inf))
VALENCE_VALUE = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}
#: The longest gap between two frames that is credited in full.
MAX_STEP_S = 1.0


ALL = "*"          # the key of a person's counters over every content item


@dataclass
class _Person:
    """Counters only, per content item and over all (``ALL``)."""

    first: float
    last: float
    run_s: float = 0.0                     # the current run of looking
    glances: int = 0
    looking_s: collections.Counter = field(default_factory=collections.Counter)
    dwell_s: collections.Counter = field(default_factory=collections.Counter)
    valence_s: collections.Counter = field(default_factory=collections.Counter)   # valence x looking seconds
    expressions: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    contents: set = field(default_factory=set)


@dataclass(frozen=True)
class Seen:
    """One face in one frame, as the tally needs it."""

    track_id: int
    pose: HeadPose | None
    emotion: str
    valence: str


class AudienceTally:
    def __init__(self, options: AttentionOptions = AttentionOptions(), face_timeout_s: float = 1.5):
        self.options = options
        self.face_timeout_s = face_timeout_s
        self._present: dict[int, _Person] = {}
        self._left: list[_Person] = []
        self._seen_in_window: set[int] = set()
        self._last_frame: float | None = None
        self._content: str | None = None
        self.window_start: float | None = None

    @property
    def content(self) -> str | None:
        return self._content

    def set_content(self, content_id: str | None) -> None:
        """What the screen shows from now on (None: nothing in particular)."""
        self._content = content_id or None

    def update(self, now: float, faces: Iterable[Seen]) -> None:
        if self.window_start is None:
            self.window_start = now
        step = 0.0 if self._last_frame is None else min(max(now - self._last_frame, 0.0), MAX_STEP_S)
        self._last_frame = now
        keys = (ALL,) if self._content is None else (ALL, self._content)
        for face in faces:
            person = self._present.get(face.track_id)
            credited = step
            if person is None:
                person = self._present[face.track_id] = _Person(first=now, last=now)
                credited = 0.0
            person.last = now
            self._seen_in_window.add(face.track_id)
            if self._content is not None:
                person.contents.add(self._content)
            looking = self.options.looking(face.pose)
            before = person.run_s
            person.run_s = before + credited if looking else 0.0
            if looking and before < self.options.glance_s <= person.run_s:
                person.glances += 1
            for key in keys:
                person.dwell_s[key] += credited
                if looking:
                    person.looking_s[key] += credited
                    person.expressions[key][face.emotion] += credited
                    person.valence_s[key] += VALENCE_VALUE.get(face.valence, 0.0) * credited
        for track_id in [t for t, p in self._present.items() if now - p.last > self.face_timeout_s]:
            self._left.append(self._present.pop(track_id))

    def everyone_left(self) -> None:
        """The end of a recording: whoever is still in view has left, at their last sighting."""
        self._left += self._present.values()
        self._present = {}

    def summary(self, now: float, reset: bool = False) -> dict:
        """The window so far: everyone seen in it (OTS), and the dwell of those who have left.
        With ``reset`` a new window starts: who has left is forgotten, who is present is kept
        (their dwell goes on) with fresh counters."""
        everyone = self._left + [p for t, p in self._present.items() if t in self._seen_in_window]
        result = {"window_start": self.window_start, "window_end": now} | _figures(everyone, self._left, self.options, ALL)
        contents = sorted({c for p in everyone for c in p.contents})
        if contents:
            result["content"] = {c: _figures([p for p in everyone if c in p.contents],
                                             [p for p in self._left if c in p.contents], self.options, c)
                                 for c in contents}
        if reset:
            self._left = []
            self._seen_in_window = set(self._present)
            showing = {self._content} if self._content else set()
            self._present = {track_id: _Person(first=p.first, last=p.last, run_s=p.run_s, contents=set(showing))
                             for track_id, p in self._present.items()}
            self.window_start = now
        return result


def _figures(everyone: list[_Person], left: list[_Person], options: AttentionOptions, key: str) -> dict:
    viewers = [p for p in everyone if p.looking_s[key] >= options.viewer_s]
    dwell = [p.last - p.first for p in left]
    buckets = {f"{low:g}-{high:g}" if high != math.inf else f"{low:g}+": sum(low <= d < high for d in dwell)
               for low, high in DWELL_BUCKETS}
    attention_s = sum(p.looking_s[key] for p in everyone)
    dwell_s = sum(p.dwell_s[key] for p in everyone)
    looking = collections.Counter()
    for p in viewers:
        looking.update(p.expressions[key])
    total = sum(looking.values())
    return {
        "ots": len(everyone),
        "viewers": len(viewers),
        "glances": sum(p.glances for p in everyone),
        "left": len(left),
        "dwell_mean_s": round(sum(dwell) / len(dwell), 2) if dwell else None,
        "dwell_buckets": buckets,
        "attention_s": round(attention_s, 2),
        "attention_rate": round(attention_s / dwell_s, 4) if dwell_s > 0 else None,
        "viewer_expressions": {k: round(v / total, 4) for k, v in sorted(looking.items())} if total else {},
        "viewer_valence": round(sum(p.valence_s[key] for p in viewers) / total, 4) if total else None,
    }
