"""Whether a model's probabilities mean what they say, and the one-number fix (temperature).

A kiosk's ``min_confidence``, its ``uncertain`` state and its alerts all read the top
probability as "how sure": that only works when, of the faces given 0.7, about 70 % are what
the model says. Expected calibration error (ECE) measures the gap; temperature scaling
(Guo et al. 2017) divides the logits by one fitted number, which changes no decision (the order
of the classes stays) and folds into the last layer of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: how many answers, their mean confidence, and how often they were right."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap between confidence and accuracy."""
        total = self.counts.sum()
        if total == 0:
            return float("nan")
        return float((self.counts * np.abs(self.confidence - self.accuracy)).sum() / total)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> Reliability:
    """Bins of the top-class confidence against whether the top class equals ``labels``."""
    probs = np.asarray(probs, np.float64)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    safe = np.maximum(counts, 1.0)
    return Reliability(
        edges=edges,
        counts=counts,
        confidence=np.bincount(index, confidence, minlength=bins) / safe,
        accuracy=np.bincount(index, correct, minlength=bins) / safe,
    )


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    return reliability(probs, labels, bins).ece


def cross_entropy(probs: np.ndarray, targets: np.ndarray, eps: float = 1e-7) -> float:
    """Mean cross-entropy (nats) from target distributions (e.g. the raters' votes) to ``probs``."""
    probs = np.clip(np.asarray(probs, np.float64), eps, 1.0)
    return float(-(np.asarray(targets, np.float64) * np.log(probs)).sum(axis=1).mean())


def tempered(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``log_probs / temperature`` (log-probabilities are logits up to a constant)."""
    z = np.asarray(log_probs, np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, targets: np.ndarray, low: float = 0.05, high: float = 10.0) -> float:
    """The temperature that minimises the cross-entropy from ``targets`` (distributions or
    one-hot rows) to the tempered ``probs``; golden-section search on log T (the loss is
    unimodal in T)."""
    log_probs = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1.0))
    loss = lambda log_t: cross_entropy(tempered(log_probs, float(np.exp(log_t))), targets)  # noqa: E731
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2.0))


def fold_temperature(model, temperature: float, layer: str = "probabilities") -> None:
    """Divide the softmax layer's kernel and bias by ``temperature`` in place: the model then gives
    the calibrated probabilities itself, on every runtime, with no change on the device."""
    if temperature == 1.0:
        return
    head = model.get_layer(layer)
    kernel, bias = head.get_weights()
    head.set_weights([kernel / temperature, bias / temperature])


def shift_logits(model, shift: np.ndarray, layer: str = "probabilities") -> None:
    """Add per-class offsets to the softmax layer's bias in place (a logit adjustment that puts a
    class prior back into a model trained on balanced classes), before any temperature is folded."""
    head = model.get_layer(layer)
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias + np.asarray(shift, bias.dtype)])
