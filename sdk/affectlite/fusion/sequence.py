"""A learned audio-visual fusion model on the device: the last seconds of one person's face and
the voice, step by step, through the int8 LSTM that `affectlite-convert train fusion` makes.

A step is 16 numbers every 0.25 s: the face model's probabilities and a presence flag, the speech
model's probabilities and a presence flag (zeros and flag 0 for a missing modality), exactly as
in training (the toolchain imports these constants). Configured with ``[fusion] model`` ("bundled"
or a path); without one the service fuses with the weighted average (:mod:`affectlite.fusion.late`),
which the bundled LSTM only ties on held-out pairs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectlite.labels import reorder_probabilities
from affectlite.models.card import card_for_model, card_path_for
from affectlite.runtime import adapters
from affectlite.runtime.interpreter import make_interpreter

STEP_FEATURES = 16
STEP_SECONDS = 0.25
#: The LSTM that ships, trained on label-paired sequences (its card has the figures); selected
#: with ``[fusion] model = "bundled"``.
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "models" / "fusion_lstm_int8.tflite"


def make_step(face: np.ndarray | None, voice: np.ndarray | None) -> np.ndarray:
    step = np.zeros(STEP_FEATURES, np.float32)
    if face is not None:
        step[0:7], step[7] = face, 1.0
    if voice is not None:
        step[8:15], step[15] = voice, 1.0
    return step


@dataclass(frozen=True)
class FusedAnswer:
    """The learned fusion's answer on one person's latest steps, and what it rests on (when asked)."""

    probabilities: np.ndarray
    modality_shares: dict[str, float] = field(default_factory=dict)
    step_shares: np.ndarray | None = None      # oldest step first


class SequenceFusion:
    def __init__(self, model_path: str | Path, num_threads: int = 1):
        model_path = BUNDLED_MODEL if str(model_path) == "bundled" else Path(model_path)
        card_file = card_path_for(model_path)
        self.card = card_for_model(model_path, "fusion model")
        shape = self.card.input.shape
        if self.card.input.color != "features" or len(shape) != 3 or shape[2] != STEP_FEATURES:
            raise ValueError(f"{card_file}: not a fusion model (input {shape}, expected [1, steps, {STEP_FEATURES}])")
        self.steps = int(shape[1])
        self._interpreter = make_interpreter(model_path, num_threads)

    def predict(self, steps: np.ndarray) -> np.ndarray:
        """Probabilities in EMOTIONS order for up to ``self.steps`` steps (older ones padded as absent)."""
        steps = np.asarray(steps, np.float32)[-self.steps:]
        padded = np.zeros((self.steps, STEP_FEATURES), np.float32)
        if len(steps):
            padded[-len(steps):] = steps
        probs = adapters.run_from_blank_state(self._interpreter, padded[None])[0]
        return reorder_probabilities(probs, self.card.labels)

    def answer(self, steps: np.ndarray, explain: bool = False) -> FusedAnswer:
        """The probabilities, and with ``explain`` each modality's and each step's share."""
        if not explain:
            return FusedAnswer(self.predict(steps))
        return FusedAnswer(self.predict(steps), self.contributions(steps), self.step_shares(steps))

    def contributions(self, steps: np.ndarray) -> dict[str, float]:
        """Each modality's share of the top class, by removing it: how much the decision leans on it."""
        full = self.predict(steps)
        top = int(np.argmax(full))
        drops = {}
        for name, part in (("face", slice(0, 8)), ("voice", slice(8, 16))):
            without = np.array(steps, np.float32, copy=True)
            if not without[:, part.stop - 1].any():
                continue                              # absent throughout: no say
            without[:, part] = 0.0
            drops[name] = max(0.0, float(full[top] - self.predict(without)[top]))
        total = sum(drops.values())
        return {name: (drop / total if total > 0 else 1.0 / len(drops)) for name, drop in drops.items()}

    def step_shares(self, steps: np.ndarray) -> np.ndarray:
        """Each step's share of the top class (oldest first), by blanking that step alone.

        Measured by taking steps out rather than read from the model's attention weights: attention
        says where the model looked, not what its answer depends on, and this works for any fusion
        model a user converts. Costs one inference per step (about 0.1 ms each)."""
        steps = np.asarray(steps, np.float32)[-self.steps:]
        probs = self.predict(steps)
        top = int(np.argmax(probs))
        full = probs[top]
        drops = np.zeros(len(steps))
        for i in range(len(steps)):
            without = steps.copy()
            without[i] = 0.0
            drops[i] = max(0.0, float(full - self.predict(without)[top]))
        if drops.sum() == 0:                           # no single step matters: all present ones alike
            drops = (steps[:, 7] + steps[:, 15] > 0).astype(np.float64)
        total = drops.sum()
        return drops / total if total > 0 else drops

    def close(self) -> None:
        self._interpreter = None


class StepHistory:
    """The last steps of every tracked person, one step every STEP_SECONDS."""

    def __init__(self, steps: int):
        self.steps = steps
        self._rows: dict[int, deque] = {}

    def push(self, track_id: int, face: np.ndarray | None, voice: np.ndarray | None) -> None:
        self._rows.setdefault(track_id, deque(maxlen=self.steps)).append(make_step(face, voice))

    def sequence(self, track_id: int) -> np.ndarray:
        rows = self._rows.get(track_id)
        return np.array(rows, np.float32) if rows else np.zeros((0, STEP_FEATURES), np.float32)

    def keep_only(self, track_ids) -> None:
        for gone in set(self._rows) - set(track_ids):
            del self._rows[gone]

