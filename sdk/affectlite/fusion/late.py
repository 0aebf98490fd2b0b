"""Late fusion: a weighted average of the face and voice models' probabilities.

The baseline every learned fusion must beat: it needs no training and degrades gracefully,
since a missing modality simply drops out of the average.

Each modality's weight is how reliable it has proven (its measured accuracy on data it never
saw, from its model card) times how sure it is now (its top probability; both models are
temperature-calibrated, so that number means what it says). A confident face is therefore not
overturned by an unsure or out-of-domain voice, and an unsure face gives way to a voice that is
sure. A voice below ``[audio] min_confidence`` does not reach this function at all: it counts as
no voice (:func:`affectlite.classifiers.speech.sure_or_none`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Reliability:
    """How far each modality has proven right, 0..1; only their ratio matters. The defaults are
    for models whose cards carry no measured figure (0.6/0.4: the face is the stronger model)."""

    face: float = 0.6
    voice: float = 0.4

    def __post_init__(self):
        for name in ("face", "voice"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} reliability must be in (0, 1], got {value}")


def measured_reliability(card, default: float) -> float:
    """The ``reliability`` a model card records (``metrics.reliability.value``, written by
    ``affectlite-convert evaluate --record``), else ``default``."""
    value = ((card.metrics if card is not None else {}).get("reliability") or {}).get("value")
    return float(value) if value else default


def reliability_from_cards(face_card, voice_card) -> Reliability:
    default = Reliability()
    return Reliability(measured_reliability(face_card, default.face), measured_reliability(voice_card, default.voice))


def modality_weights(face: np.ndarray | None, voice: np.ndarray | None,
                     reliability: Reliability = Reliability()) -> dict[str, float]:
    """Each present modality's share of the fused result (summing to 1)."""
    raw = {}
    if face is not None:
        raw["face"] = reliability.face * float(np.max(face))
    if voice is not None:
        raw["voice"] = reliability.voice * float(np.max(voice))
    total = sum(raw.values())
    return {name: (w / total if total > 0 else 1.0 / len(raw)) for name, w in raw.items()}


def late_fusion(face: np.ndarray | None, voice: np.ndarray | None,
                reliability: Reliability = Reliability()) -> np.ndarray | None:
    """Probabilities over EMOTIONS, or None when neither modality is present."""
    if face is None and voice is None:
        return None
    if face is None or voice is None:
        return np.asarray(face if voice is None else voice, dtype=np.float64)
    weights = modality_weights(face, voice, reliability)
    fused = sum(weights[name] * np.asarray(probs, dtype=np.float64)
                for name, probs in (("face", face), ("voice", voice)) if probs is not None)
    return fused / fused.sum()
