"""From per-frame probabilities to each person's emotional state, and the events worth sending.

A single frame's prediction flickers; people do not. Each tracked face keeps an exponential
average of its probabilities; a new state is taken only when it leads the current one by a
margin (hysteresis) for a minimum time, and a face whose best probability is too low is
"uncertain" rather than given a guess. Events are the changes: a face appears or leaves, a state
changes, an alert condition starts. Times are seconds on any monotonic clock the caller uses.

A person's valence, one definition everywhere (state, events, alerts):
- with an emotion as their state, the valence of that emotion (so it always agrees with it);
- while uncertain, the valence group (positive, neutral, negative) with the most probability,
  taken with the same hysteresis and minimum duration as states, so it does not flicker.
Only a person whose state is a negative emotion counts toward the negative-valence alerts: an
uncertain face never raises one.
"""

from __future__ import annotations

import collections
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from affectlite.labels import DEFAULT_LABELS, LabelSet

UNCERTAIN = "uncertain"


@dataclass
class StateOptions:
    smoothing: float = 0.3
    window_s: float = 2.0
    min_confidence: float = 0.4
    hysteresis: float = 0.1
    min_duration_s: float = 1.0
    face_timeout_s: float = 1.5


#: The longest negative-valence delay a command may set (a day): the command's bound and Home
#: Assistant's number entity use this one value.
NEGATIVE_VALENCE_MAX_S = 86400


@dataclass
class AlertOptions:
    negative_valence_s: float = 5.0     # 0 disables
    negative_share: float = 0.0         # 0 disables
    min_people: int = 2
    cooldown_s: float = 30.0


@dataclass
class Event:
    type: str                           # face_appeared, face_left, state_changed, alert
    time: float                         # wall-clock seconds since the epoch
    track_id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def payload(self) -> dict[str, Any]:
        return {"v": 1, "id": self.id, "type": self.type, "time": round(self.time, 3),
                "track_id": self.track_id, **self.data}


@dataclass
class Person:
    track_id: int
    first_seen: float
    last_seen: float
    smoothed: np.ndarray
    state: str = UNCERTAIN
    state_since: float = 0.0
    candidate: str | None = None
    candidate_since: float = 0.0
    valence: str = "neutral"
    valence_candidate: str | None = None
    valence_candidate_since: float = 0.0
    negative_since: float | None = None
    negative_alerted: bool = False           # this negative spell has had its alert
    last_alert: float = float("-inf")
    history: collections.deque = field(default_factory=collections.deque)   # (time, probs)
    labels: LabelSet = DEFAULT_LABELS

    @property
    def negative(self) -> bool:
        """Counts toward the negative-valence alerts: a negative emotion, not an uncertain face."""
        return self.state != UNCERTAIN and self.labels.valence[self.state] == "negative"

    def evidence(self) -> dict[str, float]:
        mean = np.mean([p for _, p in self.history], axis=0) if self.history else self.smoothed
        return self.labels.as_dict(mean, 4)

    def summary(self, now: float) -> dict[str, Any]:
        return {"track_id": self.track_id, "state": self.state, "valence": self.valence,
                "since_s": round(now - self.state_since, 2), "in_view_s": round(now - self.first_seen, 2),
                "probabilities": self.labels.as_dict(self.smoothed, 4)}


class StateTracker:
    """Feed it each analysed frame's faces; it returns the events that frame caused."""

    def __init__(self, states: StateOptions | None = None, alerts: AlertOptions | None = None,
                 wall_clock=time.time, labels: LabelSet = DEFAULT_LABELS):
        """``labels``: the classes the face model answers in (its card's), with their valence."""
        self.labels = labels
        self.options = states or StateOptions()
        self.alerts = alerts or AlertOptions()
        self.people: dict[int, Person] = {}
        self._wall = wall_clock
        self._offset: float | None = None
        self._share_alerted_until = -1.0

    def _event(self, now: float, type_: str, track_id: int | None, **data) -> Event:
        if self._offset is None:
            self._offset = self._wall() - now
        return Event(type_, now + self._offset, track_id, data)

    def update(self, now: float, faces: list[tuple[int, np.ndarray]]) -> list[Event]:
        """``faces``: (track id, probabilities in ``labels`` order) for every face in this frame."""
        o = self.options
        events: list[Event] = []
        for track_id, probs in faces:
            probs = np.asarray(probs, dtype=np.float64)
            person = self.people.get(track_id)
            if person is None:
                person = Person(track_id, now, now, probs.copy(), state_since=now, labels=self.labels)
                self.people[track_id] = person
                events.append(self._event(now, "face_appeared", track_id))
            else:
                person.smoothed = o.smoothing * probs + (1 - o.smoothing) * person.smoothed
                person.last_seen = now
            person.history.append((now, probs))
            while person.history and person.history[0][0] < now - o.window_s:
                person.history.popleft()
            events += self._decide(person, now)

        for track_id in [t for t, p in self.people.items() if now - p.last_seen > o.face_timeout_s]:
            events.append(self._left(now, track_id, self.people.pop(track_id)))
        return events + self._alerts(now)

    def _decide(self, person: Person, now: float) -> list[Event]:
        o = self.options
        best = int(np.argmax(person.smoothed))
        candidate = self.labels.names[best] if person.smoothed[best] >= o.min_confidence else UNCERTAIN
        if candidate == person.state:
            person.candidate = None
            self._decide_valence(person, now)
            return []
        if person.state != UNCERTAIN and candidate != UNCERTAIN:
            lead = person.smoothed[best] - person.smoothed[self.labels.names.index(person.state)]
            if lead < o.hysteresis:
                person.candidate = None
                return []
        if person.candidate != candidate:
            person.candidate, person.candidate_since = candidate, now
        if now - person.candidate_since < o.min_duration_s:
            self._decide_valence(person, now)
            return []
        previous = person.state
        person.state, person.state_since, person.candidate = candidate, now, None
        self._decide_valence(person, now)
        return [self._event(now, "state_changed", person.track_id, previous=previous, state=candidate,
                            valence=person.valence, evidence=person.evidence())]

    def _decide_valence(self, person: Person, now: float) -> None:
        o = self.options
        if person.state != UNCERTAIN:
            person.valence, person.valence_candidate = self.labels.valence[person.state], None
            return
        scores = self.labels.valence_scores(person.smoothed)
        candidate = max(scores, key=scores.get)
        if candidate == person.valence or scores[candidate] - scores[person.valence] < o.hysteresis:
            person.valence_candidate = None
            return
        if person.valence_candidate != candidate:
            person.valence_candidate, person.valence_candidate_since = candidate, now
        if now - person.valence_candidate_since >= o.min_duration_s:
            person.valence, person.valence_candidate = candidate, None

    def _alerts(self, now: float) -> list[Event]:
        a = self.alerts
        events = []
        negative = [p for p in self.people.values() if p.negative]
        for person in self.people.values():
            if not person.negative:
                person.negative_since, person.negative_alerted = None, False
                continue
            if person.negative_since is None:
                person.negative_since = now
            held = now - person.negative_since
            if (a.negative_valence_s > 0 and held >= a.negative_valence_s and not person.negative_alerted
                    and now - person.last_alert >= a.cooldown_s):
                person.negative_alerted, person.last_alert = True, now
                events.append(self._event(now, "alert", person.track_id, alert="negative_valence",
                                          held_s=round(held, 2), evidence=person.evidence()))
        in_view = len(self.people)
        if (a.negative_share > 0 and in_view >= a.min_people and len(negative) / in_view >= a.negative_share
                and now >= self._share_alerted_until):
            self._share_alerted_until = now + a.cooldown_s
            mean = np.mean([p.smoothed for p in negative], axis=0)
            events.append(self._event(now, "alert", None, alert="negative_share",
                                      share=round(len(negative) / in_view, 3), people=in_view,
                                      track_ids=sorted(p.track_id for p in negative),
                                      evidence=self.labels.as_dict(mean, 4)))
        return events

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        return [p.summary(now) for p in sorted(self.people.values(), key=lambda p: p.track_id)]

    def everyone_leaves(self, now: float) -> list[Event]:
        """Everyone in view leaves now (privacy mode turned on): each gets its face_left, so that
        a consumer pairing face_appeared with face_left never keeps a ghost in the room."""
        events = [self._left(now, track_id, person) for track_id, person in sorted(self.people.items())]
        self.people.clear()
        return events

    def _left(self, now: float, track_id: int, person: Person) -> Event:
        return self._event(now, "face_left", track_id, in_view_s=round(person.last_seen - person.first_seen, 2),
                           last_state=person.state)

