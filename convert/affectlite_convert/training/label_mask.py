"""A loss over the labels a corpus has, for corpora that label only some emotions.

TurEV-DB has angry, happy, neutral and sad only. Scoring its clips with the ordinary
cross-entropy over all seven would teach "this angry voice is not fearful" from a corpus that
never asked anyone to sound fearful. Instead the model's probabilities are renormalised over the
corpus's labels before the cross-entropy: p'(k) = p(k) m(k) / sum_j p(j) m(j), with ``m`` the
corpus's label mask. The target travels with its mask: ``y_true`` is (batch, 2K), the target
distribution followed by the mask.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def pack_targets(labels: np.ndarray, masks: np.ndarray, smoothing: float = 0.0, soft: np.ndarray | None = None,
                 soft_weight: float = 0.0) -> np.ndarray:
    """(N, 2K) float32: one-hot targets smoothed over the row's own labels only, then the masks.
    With ``soft`` (N, K), e.g. teachers' probabilities, ``soft_weight`` of each target is ``soft``
    renormalised over the row's labels: a teacher's belief in a label its corpus lacks is no target."""
    masks = masks.astype(np.float32)
    onehot = np.eye(masks.shape[1], dtype=np.float32)[labels]
    targets = (1.0 - smoothing) * onehot + smoothing * masks / masks.sum(axis=1, keepdims=True)
    if soft is not None and soft_weight > 0:
        kept = soft * masks
        kept = kept / np.maximum(kept.sum(axis=1, keepdims=True), 1e-7)
        targets = (1.0 - soft_weight) * targets + soft_weight * kept
    return np.concatenate([targets, masks], axis=1).astype(np.float32)


def _split(y_true, y_pred):
    k = ops.shape(y_pred)[-1]
    target, mask = y_true[:, :k], y_true[:, k:]
    masked = y_pred * mask
    return target, masked / ops.maximum(ops.sum(masked, axis=-1, keepdims=True), 1e-7)


@keras.saving.register_keras_serializable(package="affectlite")
def masked_crossentropy(y_true, y_pred):
    target, probs = _split(y_true, y_pred)
    return -ops.sum(target * ops.log(ops.clip(probs, 1e-7, 1.0)), axis=-1)


@keras.saving.register_keras_serializable(package="affectlite")
def masked_accuracy(y_true, y_pred):
    target, probs = _split(y_true, y_pred)
    return ops.cast(ops.equal(ops.argmax(target, axis=-1), ops.argmax(probs, axis=-1)), "float32")
