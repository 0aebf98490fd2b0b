"""The live service: camera -> faces -> per-person states -> events -> MQTT.

``affectlite run`` builds one :class:`Service` from the validated configuration. Capture runs on
its own thread (old frames are dropped, never queued); this loop analyses the newest frame at
most ``recognizer.max_fps`` times a second, updates the states and publishes.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectlite.capture import LatestFrame
from affectlite.explain import contributions, margin
from affectlite.fusion.late import late_fusion, modality_weights, reliability_from_cards
from affectlite.fusion.sequence import STEP_SECONDS, FusedAnswer
from affectlite.fusion.valence import combine_valence
from affectlite.labels import EMOTIONS, describe
from affectlite.recognizer import EmotionRecognizer, RecognizerOptions
from affectlite.sources.base import FrameSource
from affectlite.sources.configured import make_source
from affectlite.states import AlertOptions, StateOptions, StateTracker
from affectlite.systemd import SystemdNotifier
from affectlite.tracker import IouTracker

log = logging.getLogger(__name__)

STATE_REFRESH_S = 5.0


def cpu_temperature() -> float | None:
    """°C from the first thermal zone (a Raspberry Pi's SoC), None where unreadable."""
    try:
        return round(int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


@dataclass
class Counters:
    analysed: int = 0
    skipped: int = 0               # taken from capture but not analysed (rate cap, pause, privacy)
    events: int = 0
    latencies_ms: list[float] = field(default_factory=list)   # capture -> results, last stats window


class StdoutSink:
    """Where results go with MQTT disabled: events and state changes as JSON lines."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.connected = True
        self._state = None

    def start(self) -> None:
        pass

    def publish_event(self, payload):
        self.stream.write(json.dumps({"topic": "events", **payload}) + "\n")
        self.stream.flush()

    def publish_state(self, payload):
        if payload.get("persons") != (self._state or {}).get("persons"):
            self._state = payload

    def publish_faces(self, payload, now=None):
        return False

    def publish_stats(self, payload):
        self.stream.write(json.dumps({"topic": "stats", **payload}) + "\n")
        self.stream.flush()

    def pump(self):
        pass

    @property
    def pending(self):
        return 0

    def close(self):
        pass


class Service:
    def __init__(self, config: dict[str, dict[str, Any]], source: FrameSource | None = None, sink=None,
                 notifier: SystemdNotifier | None = None):
        self.config = config
        self.notifier = notifier or SystemdNotifier()
        self.explain = config["explain"]["enabled"]
        self.fusion = self.history = None
        if config["fusion"]["model"]:
            from affectlite.fusion.sequence import SequenceFusion, StepHistory

            self.fusion = SequenceFusion(config["fusion"]["model"], config["recognizer"]["threads"])
            self.history = StepHistory(self.fusion.steps)
        self._last_faces: dict[int, np.ndarray] = {}      # track -> its face probabilities since the last step
        # track -> the learned fusion's answer on its latest steps: it changes only when a step is
        # pushed, so the model runs once a step, not once a frame.
        self._answers: dict[int, FusedAnswer] = {}
        self.text_scorer = None
        self._text: tuple[float, Any] | None = None      # (arrival, TextValence) of the latest line
        if config["text"]["enabled"]:
            from affectlite.text import TextScorer

            self.text_scorer = TextScorer()
        r = config["recognizer"]
        self.recognizer = EmotionRecognizer(RecognizerOptions(
            expression_model=r["model"] or None, detector=r["detector"], min_face_score=r["min_face_score"],
            min_face_size=r["min_face_size"], max_faces=r["max_faces"], num_threads=r["threads"],
            edgetpu=r["edgetpu"], edgetpu_device=r["edgetpu_device"] or None,
        ))
        self.states = StateTracker(StateOptions(**config["states"]), AlertOptions(**config["alerts"]))
        self.tracker = IouTracker()
        self.source = source or make_source(config["source"])
        if sink is None:
            if config["mqtt"]["enabled"]:
                from affectlite.sinks.mqtt import MqttSink

                sink = MqttSink(config["mqtt"], self.commands(), settings=self.settings)
            else:
                sink = StdoutSink()
        self.sink = sink
        self.microphone = self.speech = None
        self.voice: np.ndarray | None = None         # latest voice probabilities; None while nobody speaks
        if config["audio"]["enabled"]:
            from affectlite.classifiers.speech import SpeechClassifier
            from affectlite.sources.audio import Microphone

            device = config["audio"]["device"]
            self.microphone = Microphone(None if device < 0 else device)
            self.speech = SpeechClassifier(config["audio"]["model"] or None, r["threads"],
                                           config["audio"]["min_confidence"])
        self.reliability = reliability_from_cards(self.recognizer.classifier.card,
                                                  self.speech.card if self.speech is not None else None)
        self.paused = False
        self.privacy = False
        self.counters = Counters()
        self._stop = threading.Event()
        self._capture: LatestFrame | None = None
        self._alert_until = 0.0
        self._state_signature: str | None = None
        self._state_sent_at = float("-inf")

    # -- commands (called from the MQTT thread) --------------------------------------------------
    def commands(self) -> dict[str, Any]:
        def on_off(text: str) -> bool:
            value = text.strip().lower()
            if value in ("on", "true", "1", "yes"):
                return True
            if value in ("off", "false", "0", "no"):
                return False
            raise ValueError(f"expected ON or OFF, got {text.strip()[:40]!r}")

        def number(text: str, low: float, high: float, name: str) -> float:
            try:
                value = float(json.loads(text)) if text.strip() else None
            except (json.JSONDecodeError, TypeError, ValueError):
                value = None
            if value is None or not low <= value <= high:
                raise ValueError(f"{name} must be a number from {low} to {high}, got {text.strip()[:40]!r}")
            return value

        def set_paused(text):
            self.paused = on_off(text)
            return "ON" if self.paused else "OFF"

        def set_privacy(text):
            self.privacy = on_off(text)
            if self.privacy:
                self.states.clear()
            return "ON" if self.privacy else "OFF"

        def pause(text):
            self.paused = True
            return "ON"

        def resume(text):
            self.paused = False
            return "OFF"

        def negative_valence_s(text):
            self.states.alerts.negative_valence_s = number(text, 0, 86400, "negative_valence_s")
            return self.states.alerts.negative_valence_s

        def negative_share(text):
            self.states.alerts.negative_share = number(text, 0, 1, "negative_share")
            return self.states.alerts.negative_share

        handlers = {"pause": pause, "resume": resume, "paused": set_paused, "privacy": set_privacy,
                    "negative_valence_s": negative_valence_s, "negative_share": negative_share}
        if self.text_scorer is not None:
            handlers["text"] = lambda text: self.add_text(text).as_dict()
        return handlers

    def settings(self) -> dict[str, Any]:
        """What can be set from outside, as it is now: kept retained on MQTT (``P/<name>/state``)."""
        return {"privacy": "ON" if self.privacy else "OFF", "paused": "ON" if self.paused else "OFF",
                "negative_valence_s": self.states.alerts.negative_valence_s,
                "negative_share": self.states.alerts.negative_share}

    def add_text(self, text: str, now: float | None = None):
        """A caption or transcript line: scored at once, counted for ``text.ttl_s``; the line itself is
        not kept. Raises ValueError for empty or over-long text (answered on MQTT, not fatal)."""
        if self.text_scorer is None:
            raise ValueError("the text stream is off: set [text] enabled = true")
        scored = self.text_scorer.score(text)
        self._text = (time.monotonic() if now is None else now, scored)
        return scored

    def current_text(self, now: float):
        if self._text is None or self.privacy or now - self._text[0] > self.config["text"]["ttl_s"]:
            return None
        return self._text[1]

    # -- payloads ----------------------------------------------------------------------------------
    def _wall(self, monotonic: float) -> float:
        return time.time() - (time.monotonic() - monotonic)

    def state_payload(self, now: float) -> dict[str, Any]:
        persons = [] if self.privacy else self.states.snapshot(now)
        probs = np.mean([[p["probabilities"][e] for e in EMOTIONS] for p in persons], axis=0) if persons else None
        dominant = EMOTIONS[int(np.argmax(probs))] if probs is not None else None
        valences = [p["valence"] for p in persons]
        valence = max(set(valences), key=valences.count) if valences else None
        payload = {"v": 1, "people": len(persons), "paused": self.paused, "privacy": self.privacy,
                   "dominant_emotion": dominant, "valence": valence, "alert_active": now < self._alert_until,
                   "persons": persons}
        voice = None if self.privacy else self.voice
        if self.speech is not None:
            payload["voice"] = None if voice is None else describe(voice)
        for person in persons:
            face = np.array([person["probabilities"][e] for e in EMOTIONS])
            if self.speech is not None or self.fusion is not None:
                person["fused"] = describe(self.fused(face, voice, person["track_id"]))
            if self.explain:
                person["explain"] = self.explanation(face, person["track_id"])
        if self.text_scorer is not None:
            text = self.current_text(now)
            payload["text"] = None if text is None else text.as_dict()
            room = np.mean([[p.get("fused", p)["probabilities"][e] for e in EMOTIONS] for p in persons], axis=0) \
                if persons else None
            payload["combined_valence"] = combine_valence(room, None if text is None else text.probabilities,
                                                          self.config["text"]["weight"])
        return payload

    def fused(self, face: np.ndarray, voice: np.ndarray | None, track_id: int | None) -> np.ndarray:
        """The learned fusion's output for the track, or the weighted average (also while a new
        face has no steps yet)."""
        answer = self._answers.get(track_id)
        return answer.probabilities if answer is not None else late_fusion(face, voice, self.reliability)

    def explanation(self, face: np.ndarray, track_id: int | None = None) -> dict[str, Any]:
        """Each modality's say in the fused result (face alone when there is no microphone)."""
        voice = self.voice if self.speech is not None and not self.privacy else None
        explained = contributions({"face": face, "voice": voice}, modality_weights(face, voice, self.reliability),
                                  late_fusion(face, voice, self.reliability))
        answer = self._answers.get(track_id)
        if answer is not None:
            # A learned model's shares come from taking each modality, and each step, out of its input.
            explained["emotion"] = EMOTIONS[int(np.argmax(answer.probabilities))]
            explained["margin"] = round(margin(answer.probabilities), 4)
            for name, part in explained["modalities"].items():
                part["share"] = round(answer.modality_shares.get(name, 0.0), 4)
            last = len(answer.step_shares) - 1
            explained["steps"] = [{"age_s": round((last - i) * STEP_SECONDS, 2), "share": round(float(share), 4)}
                                  for i, share in enumerate(answer.step_shares)]
        return explained

    def stats_payload(self, window_s: float) -> dict[str, Any]:
        lat = np.array(self.counters.latencies_ms) if self.counters.latencies_ms else None
        capture = self._capture
        return {
            "v": 1, "time": round(time.time(), 3),
            "capture_fps": round(capture.capture_fps, 2) if capture else 0.0,
            "inference_fps": round(len(self.counters.latencies_ms) / window_s, 2) if window_s > 0 else 0.0,
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2), "p95": round(float(np.percentile(lat, 95)), 2)}
            if lat is not None else None,
            "captured_frames": capture.captured if capture else 0,
            "dropped_frames": (capture.dropped if capture else 0) + self.counters.skipped,
            "analysed_frames": self.counters.analysed,
            "events": self.counters.events,
            "queued_messages": self.sink.pending,
            "cpu_temp_c": cpu_temperature(),
            "connected": bool(self.sink.connected),
        }

    # -- the loop ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None) -> Counters:
        # Devices first: a missing camera or microphone stops here, with its hint, before the
        # service announces itself online.
        self._capture = LatestFrame(self.source)
        if self.microphone is not None:
            self.microphone.open()
        try:
            self._capture.start()
        except BaseException:
            if self.microphone is not None:
                self.microphone.close()
            raise
        self.sink.start()
        self.notifier.ready(f"{self.source.name} open, publishing")
        watchdog_s = self.notifier.watchdog_s
        next_voice = time.monotonic()
        max_fps = self.config["recognizer"]["max_fps"]
        stats_every = self.config["mqtt"]["stats_interval_s"]
        started = last_stats = time.monotonic()
        interval = 1.0 / max_fps
        next_due = started
        # The watchdog is fed only while frames keep coming: a camera that stops delivering for
        # half the watchdog period gets the service restarted by systemd.
        last_frame_at = last_ping = started
        next_step = started
        try:
            while not self._stop.is_set():
                if duration is not None and time.monotonic() - started >= duration:
                    break
                frame = self._capture.get(timeout=0.25)
                now = time.monotonic()
                self.sink.pump()
                if frame is not None:
                    last_frame_at = now
                if watchdog_s and now - last_ping >= watchdog_s / 4 and now - last_frame_at < watchdog_s / 2:
                    self.notifier.watchdog()
                    last_ping = now
                if self.speech is not None and now >= next_voice:
                    next_voice = now + self.config["audio"]["interval_s"]
                    seconds = self.speech.frames / 100.0
                    self.voice = None if self.privacy else self.speech.classify(self.microphone.latest(seconds))[0]
                if frame is None:
                    if self._capture.ended:
                        break
                    self._publish(self.states.update(now, []), now)
                # A frame is due when it arrives within a quarter interval of its slot, so that a
                # 30 fps camera and max_fps 15 give 15 analyses a second despite arrival jitter.
                elif self.paused or self.privacy or now < next_due - 0.25 * interval:
                    self.counters.skipped += 1
                    if self.privacy:
                        self.states.clear()
                    self._publish(self.states.update(now, []) if not self.privacy else [], now)
                else:
                    next_due = max(next_due + interval, now - interval)
                    faces = self.recognizer.analyze_image(frame.rgb, self.tracker)
                    done = time.monotonic()
                    self.counters.analysed += 1
                    self.counters.latencies_ms.append((done - frame.captured_at) * 1000)
                    for f in faces:
                        self._last_faces[f.track_id] = np.array([f.probabilities[e] for e in EMOTIONS], np.float32)
                    events = self.states.update(done, [(f.track_id, [f.probabilities[e] for e in EMOTIONS]) for f in faces])
                    self._publish(events, done)
                    self.sink.publish_faces({
                        "v": 1, "time": round(time.time(), 3), "captured_at": round(self._wall(frame.captured_at), 3),
                        "frame": frame.number, "faces": [f.as_dict() for f in faces],
                    })
                if self.history is not None and now >= next_step:
                    next_step = max(next_step + STEP_SECONDS, now - STEP_SECONDS)
                    self._push_steps()
                if now - last_stats >= stats_every:
                    stats = self.stats_payload(now - last_stats)
                    self.sink.publish_stats(stats)
                    self.notifier.status(f"{stats['inference_fps']} frames/s analysed, "
                                         f"{stats['queued_messages']} messages queued")
                    self.counters.latencies_ms.clear()
                    last_stats = now
            if self._capture.error is not None:
                raise RuntimeError(f"capture failed: {self._capture.error}")
        finally:
            self.notifier.stopping()
            if self.microphone is not None:
                self.microphone.close()
            self._capture.stop()
            self.sink.close()
            self.recognizer.close()
            self.notifier.close()
        return self.counters

    def _push_steps(self) -> None:
        """One fusion step for every person in view: their face since the last step (or none) and the voice."""
        voice = None if self.privacy else self.voice
        people = [p.track_id for p in self.states.people.values()]
        for track_id in people:
            self.history.push(track_id, self._last_faces.pop(track_id, None), voice)
        self.history.keep_only(people)
        self._last_faces.clear()
        self._answers = {track_id: self.fusion.answer(self.history.sequence(track_id), self.explain)
                         for track_id in people}

    def _publish(self, events, now: float) -> None:
        for event in events:
            if event.type == "alert":
                self._alert_until = now + max(self.states.alerts.cooldown_s, 5.0)
            payload = event.payload()
            evidence = np.array([payload["evidence"][e] for e in EMOTIONS]) if "evidence" in payload else None
            if self.speech is not None and evidence is not None:
                # Each modality's own and the fused result, as in the state.
                voice = None if self.privacy else self.voice
                payload["voice"] = None if voice is None else describe(voice)
                payload["fused"] = describe(self.fused(evidence, voice, payload.get("track_id")))
            if self.explain and evidence is not None:
                payload["explain"] = self.explanation(evidence, payload.get("track_id"))
            self.sink.publish_event(payload)
            self.counters.events += 1
        payload = self.state_payload(now)
        # Retained state goes out when something a subscriber acts on changes (people, their
        # states and valences, the voice's emotion, pause, privacy, alert), and otherwise at most
        # every STATE_REFRESH_S so that durations and probabilities stay fresh without a message
        # per frame.
        signature = json.dumps([payload["people"], payload["paused"], payload["privacy"], payload["alert_active"],
                                [(p["track_id"], p["state"], p["valence"]) for p in payload["persons"]],
                                (payload.get("voice") or {}).get("emotion"),
                                (payload.get("combined_valence") or {}).get("valence"),
                                (payload.get("text") or {}).get("compound")])
        if signature != self._state_signature or now - self._state_sent_at >= STATE_REFRESH_S:
            self._state_signature, self._state_sent_at = signature, now
            self.sink.publish_state(payload)
