"""Writing analysis results as JSON Lines or CSV, one record per face per frame.

JSON Lines record (schema version 1, described by ``affectlite/schemas/analyze-record.v1.json``)::

    {"schema": 1, "file": "clip.mp4", "frame": 12, "timestamp": 0.4, "face": 0, "track_id": 1,
     "box": [x0, y0, x1, y1], "score": 0.94, "emotion": "happy", "valence": "positive",
     "probabilities": {"angry": 0.01, ...}}

``frame`` is 0 and ``timestamp`` null for still images; ``track_id`` is null for images. A still
image in which no face was found gets one record saying so (``"face": null, "faces": 0``; in the
CSV a row with the file and empty face fields), so that "no face" is an answer, not silence;
a video frame without faces gets none. When a
video's sound track is analysed, each record also has ``voice`` (null while nobody speaks, else
the speech model's probabilities and emotion over the 2 s windows covering the frame) and
``fused`` (the late fusion of face and voice). The CSV has the same fields, with the box split
into x0..y1, one ``p_<emotion>`` column per label, and the voice and fused emotions.
"""

from __future__ import annotations

import csv
import json
from typing import IO

import numpy as np

from affectlite.labels import DEFAULT_LABELS, EMOTIONS, LabelSet, describe
from affectlite.recognizer import FaceEmotion, FrameResult

SCHEMA_VERSION = 1


def csv_fields(labels: LabelSet = DEFAULT_LABELS) -> list[str]:
    """The CSV columns: one ``p_<label>`` per class of the face model."""
    return (["file", "frame", "timestamp", "face", "track_id", "x0", "y0", "x1", "y1", "score", "emotion", "valence"]
            + [f"p_{name}" for name in labels.names] + ["voice_emotion", "fused_emotion", "fused_valence"])


class ResultWriter:
    def __init__(self, stream: IO[str], fmt: str = "jsonl", labels: LabelSet = DEFAULT_LABELS):
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"format must be jsonl or csv, got {fmt!r}")
        self.stream, self.fmt = stream, fmt
        self._csv = csv.DictWriter(stream, csv_fields(labels)) if fmt == "csv" else None
        if self._csv:
            self._csv.writeheader()

    def write(self, file: str, frame: int, timestamp: float | None, faces: list[FaceEmotion],
              result: FrameResult | None = None) -> None:
        """``result``: the video frame's result; when it was listened to, each record also gets
        the voice and the face's fused result."""
        listened = result is not None and result.listened
        if not faces and timestamp is None:
            if self._csv:
                self._csv.writerow({"file": file, "frame": frame, "timestamp": None})
            else:
                self.stream.write(json.dumps({"schema": SCHEMA_VERSION, "file": file, "frame": frame,
                                              "timestamp": None, "face": None, "faces": 0}) + "\n")
        for number, face in enumerate(faces):
            data = face.as_dict()
            extra = _audio_fields(result.voice, result.fused[number]) if listened else {}
            if self._csv:
                row = {"file": file, "frame": frame, "timestamp": _round(timestamp), "face": number,
                       "track_id": face.track_id, "score": data["score"], "emotion": face.emotion,
                       "valence": face.valence}
                row |= dict(zip(("x0", "y0", "x1", "y1"), data["box"]))
                row |= {f"p_{k}": v for k, v in data["probabilities"].items()}
                if extra:
                    row |= {"voice_emotion": extra["voice"]["emotion"] if extra["voice"] else "",
                            "fused_emotion": extra["fused"]["emotion"], "fused_valence": extra["fused"]["valence"]}
                self._csv.writerow(row)
            else:
                record = {"schema": SCHEMA_VERSION, "file": file, "frame": frame, "timestamp": _round(timestamp),
                          "face": number, "track_id": face.track_id, "box": data["box"], "score": data["score"],
                          "emotion": face.emotion, "valence": face.valence, "probabilities": data["probabilities"]}
                self.stream.write(json.dumps(record | extra) + "\n")
        self.stream.flush()


def _audio_fields(voice: dict[str, float] | None, fused: dict[str, float]) -> dict:
    return {"voice": None if voice is None else describe(_array(voice)), "fused": describe(_array(fused))}


def _array(probs: dict[str, float]) -> np.ndarray:
    return np.array([probs[e] for e in EMOTIONS])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
