"""The facial-expression classifier: an aligned face crop in, probabilities over the labels out.

Everything model-specific (input size, colour, value range, label order) comes from the model
card next to the ``.tflite``, so a user's own converted model drops in without code changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlite.labels import EMOTIONS, LabelSet, reorder_probabilities
from affectlite.models.card import card_for_model, card_path_for
from affectlite.runtime import adapters
from affectlite.runtime.edgetpu import EdgeTpuMode, place_model
from affectlite.runtime.interpreter import make_interpreter

BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "models" / "face_expression_int8.tflite"


class ExpressionClassifier:
    def __init__(self, model_path: str | Path | None = None, num_threads: int = 1,
                 edgetpu: EdgeTpuMode = "off", edgetpu_device: str | None = None):
        model_path = Path(model_path) if model_path else BUNDLED_MODEL
        card_file = card_path_for(model_path)
        self.card = card_for_model(model_path, "expression model")
        if len(self.card.input.shape) != 4 or self.card.input.color not in ("grayscale", "rgb"):
            raise ValueError(f"{card_file}: not an image model (input {self.card.input.shape}, {self.card.input.color})")
        self.placement = place_model(model_path, edgetpu, edgetpu_device)
        self._interpreter = make_interpreter(self.placement.model, num_threads, self.placement.delegates)
        self._model_path, self._num_threads = model_path, num_threads
        self._batched = None                 # a second interpreter, resized to the frame's face count
        self._batch_size = 0
        details = adapters.input_details(self._interpreter)
        if [int(d) for d in details["shape"]] != self.card.input.shape:
            raise ValueError(f"{model_path}: the model's input {list(details['shape'])} does not match its card "
                             f"{self.card.input.shape}; the card belongs to another model")
        _, self.height, self.width, self.channels = self.card.input.shape
        low, high = self.card.input.value_range
        self._scale, self._offset = (high - low) / 255.0, low
        self._input = details
        # The seven emotions in any order are put in affectlite's; other classes stay as the card has them.
        seven = sorted(self.card.labels) == sorted(EMOTIONS)
        self._reorder = seven and list(self.card.labels) != list(EMOTIONS)
        self.labels = LabelSet.of(EMOTIONS if seven else self.card.labels, self.card.valence)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.height, self.width

    def classify(self, crop: np.ndarray) -> np.ndarray:
        """Probabilities in :attr:`labels` order for a (H, W, C) uint8 crop of the card's size."""
        values = crop.reshape(1, self.height, self.width, self.channels).astype(np.float32) * self._scale + self._offset
        probs = adapters.run(self._interpreter, values)[0]
        return reorder_probabilities(probs, self.card.labels) if self._reorder else probs

    def classify_many(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, len(labels)) probabilities for N crops in one interpreter call (the input's batch dimension
        resized to N); one call per crop where a single face is faster that way, and on the Edge
        TPU, whose compiled models take batch 1."""
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        if len(crops) == 1 or self.placement.on_edgetpu:
            return np.stack([self.classify(crop) for crop in crops])
        if self._batched is None:
            self._batched = make_interpreter(self._model_path, self._num_threads)
        if len(crops) != self._batch_size:
            index = adapters.input_details(self._batched)["index"]
            self._batched.resize_tensor_input(index, [len(crops), self.height, self.width, self.channels])
            self._batched.allocate_tensors()
            self._batch_size = len(crops)
        values = np.stack(crops).reshape(len(crops), self.height, self.width, self.channels).astype(np.float32)
        probs = adapters.run(self._batched, values * self._scale + self._offset)
        return reorder_probabilities(probs, self.card.labels) if self._reorder else probs

    def close(self) -> None:
        self._interpreter = None
        self._batched = None

    def __enter__(self) -> "ExpressionClassifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
