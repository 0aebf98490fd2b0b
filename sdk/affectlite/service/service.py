"""The loop of ``affectlite run``, and the payloads it publishes.

Capture runs on its own thread and keeps only the newest frame (old frames are dropped, never
queued); this loop analyses that frame at most ``recognizer.max_fps`` times a second, updates
each person's state and publishes. Everything else it does is one call to a stage of its own
(see the package's modules).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import numpy as np

from affectlite.audience import Seen
from affectlite.capture import LatestFrame
from affectlite.fusion.late import reliability_from_cards
from affectlite.fusion.valence import combine_valence
from affectlite.labels import LabelSet, describe
from affectlite.recognizer import EmotionRecognizer, RecognizerOptions
from affectlite.service import commands
from affectlite.service.audience_stage import AudienceStage
from affectlite.service.clocks import Every, FramePacer
from affectlite.service.fusing import PersonFusion
from affectlite.service.stats import Counters, stats_payload
from affectlite.service.stdout_sink import StdoutSink
from affectlite.service.watchdog import FrameWatchdog
from affectlite.sources.base import FrameSource
from affectlite.sources.configured import make_source
from affectlite.states import AlertOptions, StateOptions, StateTracker
from affectlite.systemd import SystemdNotifier

log = logging.getLogger(__name__)

STATE_REFRESH_S = 5.0


class Service:
    def __init__(self, config: dict[str, dict[str, Any]], source: FrameSource | None = None, sink=None,
                 notifier: SystemdNotifier | None = None):
        self.config = config
        self.notifier = notifier or SystemdNotifier()
        self.explain = config["explain"]["enabled"]
        r = config["recognizer"]
        self.recognizer = EmotionRecognizer(RecognizerOptions(
            expression_model=r["model"] or None, detector=r["detector"], min_face_score=r["min_face_score"],
            min_face_size=r["min_face_size"], max_faces=r["max_faces"], num_threads=r["threads"],
            edgetpu=r["edgetpu"], edgetpu_device=r["edgetpu_device"] or None, detect_every=r["detect_every"],
            classify_every=r["classify_every"],
        ))
        self.labels = self.recognizer.labels
        try:
            _check_labels(self.labels, config)
        except ValueError:
            self.recognizer.close()
            raise
        self.stream = self.recognizer.stream()
        self.states = StateTracker(StateOptions(**config["states"]), AlertOptions(**config["alerts"]), labels=self.labels)
        self.listener = None
        if config["audio"]["enabled"]:
            from affectlite.service.listening import VoiceListener

            self.listener = VoiceListener(config["audio"], r["threads"])
        self.fusion_stage = PersonFusion(config["fusion"]["model"], r["threads"], reliability_from_cards(
            self.recognizer.classifier.card, self.listener.card if self.listener else None))
        self.text = None
        if config["text"]["enabled"]:
            from affectlite.service.text_stream import TextStream

            self.text = TextStream(config["text"]["ttl_s"])
        self.audience = AudienceStage(config["audience"], config["states"]["face_timeout_s"]) \
            if config["audience"]["enabled"] else None
        self.per_person = not config["audience"]["only"]
        self.source = source or make_source(config["source"])
        self.paused = False
        self.privacy = False
        if sink is None and config["mqtt"]["enabled"]:
            from affectlite.sinks.mqtt import MqttSink

            sink = MqttSink(config["mqtt"], self.commands(), settings=self.settings, labels=self.labels.names)
        self.sink = sink or StdoutSink()
        self.counters = Counters()
        self._stop = threading.Event()
        self._capture: LatestFrame | None = None
        self._alert_until = 0.0
        self._state_signature: str | None = None
        self._state_sent_at = float("-inf")

    # -- what can be set from outside ----------------------------------------------------------
    def commands(self) -> dict[str, Any]:
        return commands.handlers(self)

    def settings(self) -> dict[str, Any]:
        """What can be set from outside, as it is now: kept retained on MQTT (``P/<name>/state``)."""
        return commands.settings(self)

    def set_privacy(self, on: bool) -> None:
        """Privacy ON: nothing is analysed; the people in view leave (their face_left goes out from
        the loop, on its next frame) and the retained state shows nobody."""
        self.privacy = on

    def set_content(self, content_id: str | None, duration_s: float | None = None) -> None:
        """What the screen shows from now on (``[audience] enabled``): every audience figure from
        now is attributed to it, until the next call or for ``duration_s``; None: nothing in particular."""
        if self.audience is None:
            raise ValueError("audience measurement is off: set [audience] enabled = true")
        self.audience.set_content(content_id, time.monotonic(), duration_s)

    def add_text(self, text: str, now: float | None = None):
        """A caption or transcript line (``[text] enabled``); see :class:`TextStream`."""
        if self.text is None:
            raise ValueError("the text stream is off: set [text] enabled = true")
        return self.text.add(text, now)

    def current_text(self, now: float):
        return None if self.text is None else self.text.current(now, self.privacy)

    # -- the learned fusion, for callers that inspect it --------------------------------------
    @property
    def fusion(self):
        return self.fusion_stage.model

    @property
    def history(self):
        return self.fusion_stage.history

    @property
    def voice(self) -> np.ndarray | None:
        return None if self.listener is None or self.privacy else self.listener.voice

    # -- the loop ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None) -> Counters:
        # Devices first: a missing camera or microphone stops here, with its hint, before the
        # service announces itself online.
        self._capture = LatestFrame(self.source)
        if self.listener is not None:
            self.listener.open()
        try:
            self._capture.start()
        except BaseException:
            if self.listener is not None:
                self.listener.close()
            raise
        self.sink.start()
        self.notifier.ready(f"{self.source.name} open, publishing")
        # This run's first figures at once: they replace the previous run's retained stats as soon
        # as the broker is reached (a dashboard would show those as current meanwhile).
        self._publish_stats(0.0)
        started = time.monotonic()
        pacer = FramePacer(self.config["recognizer"]["max_fps"], started)
        watchdog = FrameWatchdog(self.notifier, started)
        stats_clock, last_stats = Every(self.config["mqtt"]["stats_interval_s"], started), started
        stats_clock.due(started)
        try:
            while not self._stop.is_set() and (duration is None or time.monotonic() - started < duration):
                frame = self._capture.get(timeout=0.25)
                now = time.monotonic()
                self.sink.pump()
                watchdog.tick(now, frame is not None)
                if self.listener is not None:
                    self.listener.update(now, self.privacy)
                if frame is None:
                    if self._capture.ended:
                        break
                    if self.audience is not None:
                        self.audience.quiet(now, "no_frames")
                    self._publish(self.states.update(now, []), now)
                elif self.paused or self.privacy or not pacer.due(now):
                    self._skip(now)
                else:
                    pacer.taken(now)
                    self._analyse(frame)
                self.fusion_stage.step(now, [p.track_id for p in self.states.people.values()], self.voice,
                                       self.explain)
                if stats_clock.due(now):
                    self._publish_stats(now - last_stats)
                    last_stats = now
                self._publish_audience(now)
            if self._capture.error is not None:
                raise RuntimeError(f"capture failed: {self._capture.error}")
            self._publish_audience(time.monotonic(), final=True)
        finally:
            self.notifier.stopping()
            if self.listener is not None:
                self.listener.close()
            self._capture.stop()
            self.counters.undelivered = self.sink.pending
            self.sink.close()
            self.recognizer.close()
            self.notifier.close()
        return self.counters

    def _skip(self, now: float) -> None:
        """A frame taken from capture but not analysed (rate cap, pause, privacy)."""
        self.counters.skipped += 1
        if self.audience is not None and (self.privacy or self.paused):
            self.audience.quiet(now, "privacy" if self.privacy else "paused")
        self._publish(self.states.everyone_leaves(now) if self.privacy else self.states.update(now, []), now)

    def _analyse(self, frame) -> None:
        faces = self.recognizer.analyze_image(frame.rgb, self.stream)
        done = time.monotonic()
        self.counters.analysed += 1
        self.counters.latencies_ms.append((done - frame.captured_at) * 1000)
        self.fusion_stage.saw(faces)
        events = self.states.update(done, [(f.track_id, self.labels.vector(f.probabilities)) for f in faces])
        if self.audience is not None:
            self.audience.frame(done, [Seen(f.track_id, f.head, f.emotion, f.valence) for f in faces])
        self._publish(events, done)
        if not self.per_person:
            return
        self.sink.publish_faces({
            "v": 1, "time": round(time.time(), 3), "captured_at": round(self._wall(frame.captured_at), 3),
            "frame": frame.number, "faces": [f.as_dict() for f in faces],
        })

    def _publish_audience(self, now: float, final: bool = False) -> None:
        """A window's audience figures once it is over (and, when the service stops, the part of
        the window it saw: nothing counted is left unsent)."""
        if self.audience is None:
            return
        dropped = self._capture.dropped if self._capture else 0
        payload = self.audience.due(now, self._wall(now), dropped, final=final)
        if payload is not None:
            self.sink.publish_audience(payload)

    def _publish_stats(self, window_s: float) -> None:
        stats = stats_payload(self.counters, self._capture, self.sink, window_s)
        self.sink.publish_stats(stats)
        self.notifier.status(f"{stats['inference_fps']} frames/s analysed, {stats['queued_messages']} messages queued")
        self.counters.latencies_ms.clear()

    # -- payloads ----------------------------------------------------------------------------------
    def _wall(self, monotonic: float) -> float:
        return time.time() - (time.monotonic() - monotonic)

    def state_payload(self, now: float) -> dict[str, Any]:
        persons = [] if self.privacy else self.states.snapshot(now)
        probs = np.mean([self.labels.vector(p["probabilities"]) for p in persons], axis=0) if persons else None
        dominant = self.labels.top(probs) if probs is not None else None
        valences = [p["valence"] for p in persons]
        valence = max(set(valences), key=valences.count) if valences else None
        payload = {"v": 1, "time": round(self._wall(now), 3), "people": len(persons), "paused": self.paused, "privacy": self.privacy,
                   "dominant_emotion": dominant, "valence": valence, "alert_active": now < self._alert_until,
                   # [audience] only: the room as a whole (people, dominant emotion, valence), no one in it
                   "persons": persons if self.per_person else [], "warnings": self.sink.warnings()}
        voice = self.voice
        if self.listener is not None:
            payload["voice"] = None if voice is None else describe(voice)
        for person in persons:
            face = self.labels.vector(person["probabilities"])
            if self.listener is not None or self.fusion is not None:
                person["fused"] = describe(self.fusion_stage.fused(face, voice, person["track_id"]))
            if self.explain:
                person["explain"] = self.fusion_stage.explanation(face, voice, person["track_id"])
        if self.text is not None:
            text = self.current_text(now)
            payload["text"] = None if text is None else text.as_dict()
            room = np.mean([self.labels.vector(p.get("fused", p)["probabilities"]) for p in persons], axis=0) \
                if persons else None
            payload["combined_valence"] = combine_valence(room, None if text is None else text.probabilities,
                                                          self.config["text"]["weight"], self.labels)
        return payload

    def _publish(self, events, now: float) -> None:
        for event in events:
            if event.type == "alert":
                self._alert_until = now + max(self.states.alerts.cooldown_s, 5.0)
            elif not self.per_person:
                continue                          # [audience] only: no per-person events
            payload = event.payload()
            evidence = self.labels.vector(payload["evidence"]) if "evidence" in payload else None
            if self.listener is not None and evidence is not None:
                # Each modality's own and the fused result, as in the state.
                payload["voice"] = None if self.voice is None else describe(self.voice)
                payload["fused"] = describe(self.fusion_stage.fused(evidence, self.voice, payload.get("track_id")))
            if self.explain and evidence is not None:
                payload["explain"] = self.fusion_stage.explanation(evidence, self.voice, payload.get("track_id"))
            if not self.per_person:
                payload["track_id"] = None        # a room's alert, nobody's
            self.sink.publish_event(payload)
            self.counters.events += 1
        payload = self.state_payload(now)
        # Retained state goes out when something a subscriber acts on changes (people, their
        # states and valences, the voice's emotion, pause, privacy, alert), and otherwise at most
        # every STATE_REFRESH_S so that durations and probabilities stay fresh without a message
        # per frame.
        signature = json.dumps([payload["people"], payload["paused"], payload["privacy"], payload["alert_active"],
                                payload["warnings"],
                                [(p["track_id"], p["state"], p["valence"]) for p in payload["persons"]],
                                (payload.get("voice") or {}).get("emotion"),
                                (payload.get("combined_valence") or {}).get("valence"),
                                (payload.get("text") or {}).get("compound")])
        if signature != self._state_signature or now - self._state_sent_at >= STATE_REFRESH_S:
            self._state_signature, self._state_sent_at = signature, now
            self.sink.publish_state(payload)


def _check_labels(labels: LabelSet, config: dict[str, dict[str, Any]]) -> None:
    """A face model with its own classes runs states, alerts, MQTT and text valence; face and voice
    are fused (and explained) over the seven emotions only, so those need a seven-emotion model."""
    if labels.is_emotions:
        return
    wanted = [name for name, on in (("[audio] enabled", config["audio"]["enabled"]),
                                    ("[fusion] model", bool(config["fusion"]["model"])),
                                    ("[explain] enabled", config["explain"]["enabled"])) if on]
    if wanted:
        raise ValueError(f"{' and '.join(wanted)}: face and voice are fused over the seven emotions, but the expression "
                         f"model answers in {list(labels.names)}; turn {' and '.join(wanted)} off, or use a "
                         "seven-emotion model")
