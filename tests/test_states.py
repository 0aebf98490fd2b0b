"""From noisy per-frame probabilities to stable states, events and alerts (a simulated clock)."""

from __future__ import annotations

import numpy as np
import pytest

from affectlite.labels import EMOTIONS
from affectlite.states import UNCERTAIN, AlertOptions, StateOptions, StateTracker


def probs(**values) -> np.ndarray:
    p = np.full(len(EMOTIONS), 0.0)
    for name, v in values.items():
        p[EMOTIONS.index(name)] = v
    rest = (1 - p.sum()) / (p == 0).sum() if (p == 0).any() else 0
    p[p == 0] = rest
    return p


def feed(tracker, start, seconds, fps, faces):
    events = []
    for i in range(int(seconds * fps)):
        events += tracker.update(start + i / fps, faces)
    return events


def test_a_face_appears_settles_and_leaves():
    tracker = StateTracker(StateOptions(min_duration_s=0.5), AlertOptions(negative_valence_s=0))
    events = feed(tracker, 0.0, 2.0, 10, [(1, probs(happy=0.8))])
    assert [e.type for e in events] == ["face_appeared", "state_changed"]
    change = events[1]
    assert change.data["previous"] == UNCERTAIN and change.data["state"] == "happy" and change.data["valence"] == "positive"
    assert change.data["evidence"]["happy"] == pytest.approx(0.8, abs=0.01)
    assert 0.4 <= tracker.people[1].state_since <= 0.7          # taken after the minimum duration
    left = feed(tracker, 2.0, 2.0, 10, [])
    assert [e.type for e in left] == ["face_left"] and left[0].data["last_state"] == "happy"
    assert tracker.people == {}


def test_flicker_does_not_change_the_state():
    tracker = StateTracker(StateOptions(min_duration_s=1.0, hysteresis=0.1), AlertOptions(negative_valence_s=0))
    feed(tracker, 0.0, 3.0, 10, [(1, probs(neutral=0.7))])
    assert tracker.people[1].state == "neutral"
    events = []
    for i in range(40):                                            # every other frame looks sad
        p = probs(sad=0.7) if i % 2 else probs(neutral=0.7)
        events += tracker.update(3.0 + i / 10, [(1, p)])
    assert not [e for e in events if e.type == "state_changed"]
    assert tracker.people[1].state == "neutral"


def test_low_confidence_is_uncertain():
    tracker = StateTracker(StateOptions(min_confidence=0.5, min_duration_s=0), AlertOptions(negative_valence_s=0))
    feed(tracker, 0.0, 1.0, 10, [(1, probs(happy=0.3, surprise=0.3))])
    assert tracker.people[1].state == UNCERTAIN


def test_negative_valence_alert_once_per_spell():
    tracker = StateTracker(StateOptions(min_duration_s=0.2), AlertOptions(negative_valence_s=3.0, cooldown_s=0))
    events = feed(tracker, 0.0, 6.0, 10, [(7, probs(angry=0.8))])
    alerts = [e for e in events if e.type == "alert"]
    assert len(alerts) == 1
    assert alerts[0].track_id == 7 and alerts[0].data["alert"] == "negative_valence"
    assert alerts[0].data["held_s"] >= 3.0
    assert alerts[0].payload()["evidence"]["angry"] == pytest.approx(0.8, abs=0.01)


def test_share_alert_needs_enough_people():
    tracker = StateTracker(StateOptions(min_duration_s=0.2),
                           AlertOptions(negative_valence_s=0, negative_share=0.5, min_people=2, cooldown_s=60))
    alone = feed(tracker, 0.0, 2.0, 10, [(1, probs(sad=0.8))])
    assert not [e for e in alone if e.type == "alert"]
    crowd = feed(tracker, 2.0, 3.0, 10, [(1, probs(sad=0.8)), (2, probs(fear=0.8)), (3, probs(happy=0.8))])
    alerts = [e for e in crowd if e.type == "alert"]
    assert len(alerts) == 1                                      # then quiet for the cooldown
    assert alerts[0].data["alert"] == "negative_share" and alerts[0].data["track_ids"] == [1, 2]
    assert alerts[0].data["share"] == pytest.approx(2 / 3, abs=1e-3)


def test_event_payloads_carry_id_time_and_version():
    tracker = StateTracker(wall_clock=lambda: 1_700_000_000.0)
    event = tracker.update(5.0, [(3, probs(happy=0.9))])[0]
    payload = event.payload()
    assert payload["v"] == 1 and payload["track_id"] == 3 and len(payload["id"]) == 32
    assert payload["time"] == pytest.approx(1_700_000_000.0)


def test_valence_agrees_with_the_state_and_does_not_flicker_while_uncertain():
    tracker = StateTracker(StateOptions(min_confidence=0.5, min_duration_s=0.5, hysteresis=0.1),
                           AlertOptions(negative_valence_s=0))
    feed(tracker, 0.0, 2.0, 10, [(1, probs(happy=0.8))])
    person = tracker.people[1]
    assert person.state == "happy" and person.valence == "positive"
    # Uncertain, with the mass going back and forth between negative emotions and neutral (as a
    # neutral face does under a model that spreads it over angry, sad and fear).
    valences = []
    for i in range(60):
        p = probs(neutral=0.36, sad=0.16, angry=0.14, fear=0.12) if i % 2 else probs(neutral=0.42, sad=0.1, happy=0.1)
        tracker.update(2.0 + i / 10, [(1, p)])
        valences.append(person.valence)
    assert person.state == UNCERTAIN
    flips = sum(a != b for a, b in zip(valences, valences[1:]))
    assert flips <= 1, valences


def test_an_uncertain_face_never_raises_a_negative_alert():
    tracker = StateTracker(StateOptions(min_confidence=0.6, min_duration_s=0.2),
                           AlertOptions(negative_valence_s=1.0, cooldown_s=0))
    # Mostly negative mass, but no emotion sure enough to be a state: uncertain for 10 s.
    events = feed(tracker, 0.0, 10.0, 10, [(1, probs(sad=0.3, angry=0.3, fear=0.2))])
    assert tracker.people[1].state == UNCERTAIN and tracker.people[1].valence == "negative"
    assert not [e for e in events if e.type == "alert"]
    events = feed(tracker, 10.0, 5.0, 10, [(1, probs(sad=0.8))])         # now clearly sad: the alert comes
    assert [e.data["alert"] for e in events if e.type == "alert"] == ["negative_valence"]
