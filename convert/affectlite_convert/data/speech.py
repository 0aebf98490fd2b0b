"""RAVDESS speech as labelled feature windows, split by actor (never by clip).

Labels are mapped onto the face model's seven so that both modalities speak one vocabulary:
calm -> neutral, fearful -> fear, surprised -> surprise (the others keep their names).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlite.audio.resample import to_model_rate
from affectlite.audio.voice import speech_windows
from affectlite.labels import EMOTIONS
from affectlite_convert.data.faces import DataError

RAVDESS_TO_EMOTIONS = {"neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                       "fearful": "fear", "disgust": "disgust", "surprised": "surprise"}

RAVDESS_INFO = {
    "name": "RAVDESS speech (Livingstone & Russo 2018, PLoS ONE 13(5) e0196391), actors 01-20",
    "licence": "CC BY-NC-SA 4.0 (non-commercial); a model trained on it is for non-commercial use",
    "label_mapping": "calm -> neutral, fearful -> fear, surprised -> surprise; the others unchanged",
}


@dataclass
class SpeechSet:
    windows: np.ndarray      # (N, frames, n_mels) float32, normalised log-mel
    labels: np.ndarray       # (N,) indices into EMOTIONS
    clips: np.ndarray        # (N,) clip number, for clip-level scores
    clip_labels: np.ndarray  # (clips,) label per clip
    actors: list[int]
    clip_actors: list[int]   # (clips,) actor per clip


def read_manifest(root: str | Path) -> list[dict]:
    root = Path(root)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise DataError(f"{manifest}: no manifest (expected RAVDESS laid out as in ../shared/data/speech/ravdess)")
    with manifest.open() as handle:
        rows = list(csv.DictReader(handle))
    missing = {"path", "emotion", "actor"} - set(rows[0] if rows else {})
    if missing:
        raise DataError(f"{manifest}: missing column(s) {sorted(missing)}")
    unknown = {r["emotion"] for r in rows} - set(RAVDESS_TO_EMOTIONS)
    if unknown:
        raise DataError(f"{manifest}: unknown emotion label(s) {sorted(unknown)}")
    return rows


def load_speech(root: str | Path, actors: list[int]) -> SpeechSet:
    """Feature windows of every clip of the given actors."""
    import soundfile

    root = Path(root)
    windows, labels, clips, clip_labels, clip_actors = [], [], [], [], []
    for row in read_manifest(root):
        if int(row["actor"]) not in actors:
            continue
        try:
            audio, rate = soundfile.read(root / row["path"], dtype="float32")
        except (OSError, RuntimeError) as exc:
            raise DataError(f"{root / row['path']}: cannot read audio ({exc})") from exc
        found, _ = speech_windows(to_model_rate(audio, rate))
        if len(found) == 0:
            continue
        label = EMOTIONS.index(RAVDESS_TO_EMOTIONS[row["emotion"]])
        windows.append(found)
        labels += [label] * len(found)
        clips += [len(clip_labels)] * len(found)
        clip_labels.append(label)
        clip_actors.append(int(row["actor"]))
    if not windows:
        raise DataError(f"{root}: no voiced clips for actors {actors}")
    return SpeechSet(np.concatenate(windows), np.array(labels), np.array(clips), np.array(clip_labels), list(actors),
                     clip_actors)
