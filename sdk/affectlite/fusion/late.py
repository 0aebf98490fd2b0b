"""Late fusion: a weighted average of the face and voice models' probabilities.

The baseline every learned fusion must beat: it needs no training and degrades gracefully,
since a missing modality simply drops out of the average.
"""

from __future__ import annotations

import numpy as np

#: Weight of the face model where both are present, chosen a priori (the face model is the
#: stronger of the two on its own data), not tuned on any test set.
FACE_WEIGHT = 0.6


def late_fusion(face: np.ndarray | None, voice: np.ndarray | None, face_weight: float = FACE_WEIGHT) -> np.ndarray | None:
    """Probabilities over EMOTIONS, or None when neither modality is present."""
    if not 0.0 <= face_weight <= 1.0:
        raise ValueError(f"face_weight must be in [0, 1], got {face_weight}")
    if face is None and voice is None:
        return None
    if voice is None:
        return np.asarray(face, dtype=np.float64)
    if face is None:
        return np.asarray(voice, dtype=np.float64)
    fused = face_weight * np.asarray(face, dtype=np.float64) + (1 - face_weight) * np.asarray(voice, dtype=np.float64)
    return fused / fused.sum()
