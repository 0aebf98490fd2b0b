"""Valence-level fusion: the audio-visual result and the text stream, where both speak the same language.

The face and voice models output seven emotions; text gives polarity only. Each side is reduced
to a distribution over positive / neutral / negative and the two are averaged with a fixed text
weight (a priori, like the late-fusion weight: text is sparse and often about something other
than how the speaker feels, so it counts for less). A missing side drops out.
"""

from __future__ import annotations

import numpy as np

from affectlite.labels import DEFAULT_LABELS, LabelSet

VALENCES = ("positive", "neutral", "negative")
TEXT_WEIGHT = 0.25


def combine_valence(emotions: np.ndarray | None, text: dict[str, float] | None,
                    text_weight: float = TEXT_WEIGHT, labels: LabelSet = DEFAULT_LABELS) -> dict | None:
    """``{"valence", "probabilities"}`` from emotion probabilities (over ``labels``) and/or text
    valence probabilities."""
    if not 0.0 <= text_weight <= 1.0:
        raise ValueError(f"text_weight must be in [0, 1], got {text_weight}")
    parts, weights = [], []
    if emotions is not None:
        scores = labels.valence_scores(emotions)
        parts.append(np.array([scores[v] for v in VALENCES]))
        weights.append(1.0 - text_weight)
    if text is not None:
        parts.append(np.array([text[v] for v in VALENCES]))
        weights.append(text_weight)
    if not parts:
        return None
    combined = np.average(parts, axis=0, weights=weights) if sum(weights) > 0 else parts[0]
    combined = combined / combined.sum()
    return {"valence": VALENCES[int(np.argmax(combined))],
            "probabilities": {v: round(float(p), 4) for v, p in zip(VALENCES, combined)}}
