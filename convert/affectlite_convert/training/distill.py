"""Teachers' probabilities as training targets (knowledge distillation).

Runs from different seeds disagree where the data say little, and their average is often right
where each alone is not; but each member costs its inference on the device. Training one network
of the shipped size towards the members' mean probabilities keeps the device's cost of one and
can pass on part of what the ensemble knows (Hinton et al. 2015; how much it passed on for the
face and speech models: docs/models.md). Both trainers mix these probabilities into their targets
with a ``distill_weight``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def teacher_probabilities(teachers: Sequence[str | Path], views: Sequence[np.ndarray]) -> np.ndarray:
    """Mean probabilities of the teacher models over every view of the inputs (the same rows, e.g.
    images and their mirror images), as float32 (N, classes)."""
    import keras

    if not teachers:
        raise ValueError("teacher_probabilities: no teacher models given")
    total = None
    for path in teachers:
        model = keras.models.load_model(path, compile=False)
        expected = tuple(model.inputs[0].shape[1:])
        for x in views:
            # a fully convolutional teacher (None, None, 1) takes any image size
            if len(x.shape) != len(expected) + 1 or any(e not in (None, d) for e, d in zip(expected, x.shape[1:])):
                raise ValueError(f"teacher {path} takes inputs of shape {expected}, the training data are "
                                 f"{tuple(x.shape[1:])}: distil from models trained on the same inputs")
            probs = model.predict(x, batch_size=512, verbose=0)
            total = probs if total is None else total + probs
    return (total / (len(teachers) * len(views))).astype(np.float32)
