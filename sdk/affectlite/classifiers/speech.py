"""The speech-emotion classifier: voiced 2 s log-mel windows in, probabilities over the labels out.

Silence and noise yield no windows (see :mod:`affectlite.audio.voice`), hence ``None`` — "no
speech" — rather than a guess.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlite.audio.voice import WindowSpec, speech_windows
from affectlite.labels import EMOTIONS, reorder_probabilities
from affectlite.models.card import card_for_model, card_path_for
from affectlite.runtime import adapters
from affectlite.runtime.interpreter import make_interpreter

BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "models" / "speech_emotion_int8.tflite"
#: ``[audio] min_confidence``'s default: below this top probability an utterance is "unsure" and
#: counts as no voice. Chosen with ``python benchmarks/voice_unsure.py`` on the held-out speakers of
#: RAVDESS, EMOVO and TurEV-DB (the CREMA-D clips not consulted): the lowest threshold at which the
#: utterances kept are right at least half the time on average (speech v5: 52.7 % at 0.30, 49.8 %
#: at 0.25, 48.5 % for all of them), keeping 73-89 % of them; v4's was 0.30 too, v3's 0.40.
DEFAULT_MIN_CONFIDENCE = 0.3


def sure_or_none(probs: np.ndarray | None, min_confidence: float) -> np.ndarray | None:
    """The voice's probabilities, or None ("no voice", as for silence) when its top probability is
    below ``min_confidence``: an unsure voice must not move a person's state or the fusion."""
    if probs is None or float(np.max(probs)) < min_confidence:
        return None
    return probs


class SpeechClassifier:
    """``min_confidence``: an utterance whose mean top probability is below it is "unsure" and
    :meth:`classify` reports no voice for it (0: every voiced utterance counts)."""

    def __init__(self, model_path: str | Path | None = None, num_threads: int = 1, min_confidence: float = 0.0):
        self.min_confidence = min_confidence
        model_path = Path(model_path) if model_path else BUNDLED_MODEL
        card_file = card_path_for(model_path)
        self.card = card_for_model(model_path, "speech model")
        if self.card.input.color != "features":
            raise ValueError(f"{card_file}: not a feature model (input colour {self.card.input.color!r})")
        self._interpreter = make_interpreter(model_path, num_threads)
        self.frames, self.bands = self.card.input.shape[1], self.card.input.shape[2]
        #: The windows this model was trained on, as its card describes them.
        self.windows = WindowSpec(frames=self.frames, dynamic_range_db=self.card.input.dynamic_range_db)

    def classify_windows(self, windows: np.ndarray) -> np.ndarray:
        """(N, frames, bands) normalised windows -> (N, 7) probabilities in EMOTIONS order."""
        if len(windows) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        probs = np.stack([adapters.run(self._interpreter, w.reshape(1, self.frames, self.bands, 1))[0] for w in windows])
        return reorder_probabilities(probs, self.card.labels)

    def classify(self, audio: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """16 kHz mono audio -> (mean probabilities, or None without speech or when unsure;
        per-window probabilities; window starts in s)."""
        windows, starts = speech_windows(audio, windows=self.windows)
        probs = self.classify_windows(windows)
        mean = probs.mean(axis=0) if len(probs) else None
        return sure_or_none(mean, self.min_confidence), probs, starts

    def timeline(self, audio: np.ndarray):
        """A function from a time in seconds to the voice's probabilities there: the mean of the
        windows covering it, or None where nobody speaks. Video analysis and fusion training
        line the voice up with frames through it."""
        _, probs, starts = self.classify(audio)
        span = self.frames / 100.0

        def at(timestamp: float) -> np.ndarray | None:
            covering = (starts <= timestamp) & (timestamp < starts + span)
            return sure_or_none(probs[covering].mean(axis=0), self.min_confidence) if covering.any() else None

        return at

    def close(self) -> None:
        self._interpreter = None

    def __enter__(self) -> "SpeechClassifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
