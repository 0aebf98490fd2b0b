"""The voice: the microphone's last seconds classified every ``[audio] interval_s``.

``voice`` is the latest probabilities, or None while nobody speaks, while the voice is unsure
(below ``[audio] min_confidence``) and in privacy mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from affectlite.service.clocks import Every


class VoiceListener:
    def __init__(self, audio: dict[str, Any], threads: int):
        from affectlite.classifiers.speech import SpeechClassifier
        from affectlite.sources.audio import Microphone

        device = audio["device"]
        self.microphone = Microphone(None if device < 0 else device)
        self.speech = SpeechClassifier(audio["model"] or None, threads, audio["min_confidence"])
        self.interval_s = audio["interval_s"]
        self.voice: np.ndarray | None = None
        self._clock: Every | None = None

    @property
    def card(self):
        return self.speech.card

    def open(self) -> None:
        """Raises SourceError (with a hint) when there is no microphone."""
        self.microphone.open()

    def update(self, now: float, privacy: bool) -> None:
        if self._clock is None:
            self._clock = Every(self.interval_s, now)
        if not self._clock.due(now):
            return
        if privacy:
            self.voice = None
            return
        self.voice = self.speech.classify(self.microphone.latest(self.speech.frames / 100.0))[0]

    def close(self) -> None:
        self.microphone.close()
