"""Each person's fused result: the learned fusion over their last steps when one is configured,
else the weighted average of face and voice (also while a new face has no steps yet), and what
each modality (and step) contributed to it."""

from __future__ import annotations

from typing import Any

import numpy as np

from affectlite.explain import contributions, margin
from affectlite.fusion.late import Reliability, late_fusion, modality_weights
from affectlite.fusion.sequence import STEP_SECONDS, FusedAnswer
from affectlite.labels import EMOTIONS
from affectlite.service.clocks import Every


class PersonFusion:
    def __init__(self, fusion_model: str, threads: int, reliability: Reliability):
        self.reliability = reliability
        self.model = self.history = None
        if fusion_model:
            from affectlite.fusion.sequence import SequenceFusion, StepHistory

            self.model = SequenceFusion(fusion_model, threads)
            self.history = StepHistory(self.model.steps)
        self._last_faces: dict[int, np.ndarray] = {}      # track -> its face probabilities since the last step
        # track -> the learned fusion's answer on its latest steps: it changes only when a step is
        # pushed, so the model runs once a step, not once a frame.
        self._answers: dict[int, FusedAnswer] = {}
        self._steps: Every | None = None

    def saw(self, faces) -> None:
        """The faces of an analysed frame (their probabilities become each track's next step)."""
        if self.history is None:
            return
        for face in faces:
            self._last_faces[face.track_id] = np.array([face.probabilities[e] for e in EMOTIONS], np.float32)

    def step(self, now: float, people: list[int], voice: np.ndarray | None, explain: bool) -> None:
        """Every STEP_SECONDS, one step for every person in view: their face since the last step
        (or none) and the voice."""
        if self.history is None:
            return
        if self._steps is None:
            self._steps = Every(STEP_SECONDS, now)
        if not self._steps.due(now):
            return
        for track_id in people:
            self.history.push(track_id, self._last_faces.pop(track_id, None), voice)
        self.history.keep_only(people)
        self._last_faces.clear()
        self._answers = {track_id: self.model.answer(self.history.sequence(track_id), explain) for track_id in people}

    def fused(self, face: np.ndarray, voice: np.ndarray | None, track_id: int | None) -> np.ndarray:
        answer = self._answers.get(track_id)
        return answer.probabilities if answer is not None else late_fusion(face, voice, self.reliability)

    def explanation(self, face: np.ndarray, voice: np.ndarray | None, track_id: int | None) -> dict[str, Any]:
        """Each modality's say in the fused result (face alone when there is no voice)."""
        explained = contributions({"face": face, "voice": voice}, modality_weights(face, voice, self.reliability),
                                  late_fusion(face, voice, self.reliability))
        answer = self._answers.get(track_id)
        if answer is not None:
            # A learned model's shares come from taking each modality, and each step, out of its input.
            explained["emotion"] = EMOTIONS[int(np.argmax(answer.probabilities))]
            explained["margin"] = round(margin(answer.probabilities), 4)
            for name, part in explained["modalities"].items():
                part["share"] = round(answer.modality_shares.get(name, 0.0), 4)
            last = len(answer.step_shares) - 1
            explained["steps"] = [{"age_s": round((last - i) * STEP_SECONDS, 2), "share": round(float(share), 4)}
                                  for i, share in enumerate(answer.step_shares)]
        return explained
