"""Real audio-visual corpora for the fusion LSTM: CREMA-D and RAVDESS as their owners lay them out.

A user with the full data gets real pairs instead of label-paired ones: every clip goes through
the device's own path (BlazeFace, eye-line crop, the int8 face model at 4 steps a second; the
clip's sound track through voice activity and the int8 speech model) and becomes overlapping
sequences of the 16-number steps the fusion model takes (see :mod:`data.pairs`). Labels come
from the file names; sequences are split by actor, never by clip.

- CREMA-D: ``VideoFlash/1001_DFA_HAP_XX.flv`` (actor, sentence, emotion, intensity).
- RAVDESS: ``Actor_01/01-01-03-01-01-01-01.mp4`` (modality, channel, emotion, intensity,
  statement, repetition, actor); calm counts as neutral, as in the speech model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlite.labels import EMOTIONS
from affectlite_convert.data.pairs import STEP_FEATURES, STEP_SECONDS

CREMA_D = re.compile(r"^(?P<actor>\d{4})_[A-Z]{3}_(?P<emotion>ANG|DIS|FEA|HAP|NEU|SAD)_[A-Z]{1,2}$")
CREMA_D_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
RAVDESS = re.compile(r"^0[12]-0[12]-(?P<emotion>0[1-8])-0[12]-0[12]-0[12]-(?P<actor>\d{2})$")
RAVDESS_EMOTIONS = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fear",
                    "07": "disgust", "08": "surprise"}
VIDEO_SUFFIXES = {".flv", ".mp4", ".avi", ".mov", ".mkv"}


@dataclass(frozen=True)
class Clip:
    path: Path
    actor: str
    label: int            # index into EMOTIONS


def parse_clip(path: Path) -> Clip | None:
    """The actor and label a CREMA-D or RAVDESS file name carries; None for other names."""
    for pattern, names, corpus in ((CREMA_D, CREMA_D_EMOTIONS, "crema-d"), (RAVDESS, RAVDESS_EMOTIONS, "ravdess")):
        match = pattern.match(path.stem)
        if match:
            return Clip(path, f"{corpus}:{match['actor']}", EMOTIONS.index(names[match["emotion"]]))
    return None


def scan_corpus(root: str | Path) -> list[Clip]:
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder (give the corpus root, e.g. CREMA-D/ or RAVDESS/)")
    videos = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    clips = [c for c in map(parse_clip, videos) if c is not None]
    if not clips:
        names = ", ".join(p.name for p in videos[:3]) or "no video files"
        raise ValueError(f"{root}: no CREMA-D (1001_DFA_HAP_XX.flv) or RAVDESS (01-01-03-01-01-01-01.mp4) clips "
                         f"found ({names})")
    return clips


def clip_steps(clip: Path, recognizer, speech) -> np.ndarray:
    """(T, 16) steps of one clip, 0.25 s apart: the largest face's and the voice's probabilities
    with presence flags (zeros and flag 0 where there is no face or no speech)."""
    from affectlite.sources.audio import read_video_audio

    audio = read_video_audio(clip)
    voice_at = speech.timeline(audio) if audio is not None and len(audio) else (lambda t: None)
    steps = []
    for frame in recognizer.analyze_video(clip, fps=1 / STEP_SECONDS):
        step = np.zeros(STEP_FEATURES, np.float32)
        if frame.faces:
            step[0:7] = [frame.faces[0].probabilities[e] for e in EMOTIONS]
            step[7] = 1
        voice = voice_at(frame.timestamp)
        if voice is not None:
            step[8:15], step[15] = voice, 1
        steps.append(step)
    return np.array(steps, np.float32).reshape(-1, STEP_FEATURES)


def sequences_from_steps(steps: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Overlapping windows of ``length`` steps; a clip shorter than that is padded with empty steps."""
    if len(steps) < length:
        steps = np.concatenate([steps, np.zeros((length - len(steps), STEP_FEATURES), np.float32)])
    starts = range(0, len(steps) - length + 1, hop)
    return np.stack([steps[s:s + length] for s in starts])


@dataclass
class AvSequences:
    x: np.ndarray          # (N, steps, 16)
    y: np.ndarray          # (N,)
    actors: np.ndarray     # (N,) the speaker of each sequence, for splitting


def corpus_sequences(clips: list[Clip], face_model: str | Path, speech_model: str | Path, length: int = 8,
                     hop: int = 4, progress=None) -> AvSequences:
    from affectlite.classifiers.speech import SpeechClassifier
    from affectlite.recognizer import EmotionRecognizer, RecognizerOptions

    xs, ys, actors = [], [], []
    with EmotionRecognizer(RecognizerOptions(expression_model=face_model)) as recognizer, \
            SpeechClassifier(speech_model) as speech:
        for clip in (progress(clips) if progress else clips):
            sequences = sequences_from_steps(clip_steps(clip.path, recognizer, speech), length, hop)
            xs.append(sequences)
            ys += [clip.label] * len(sequences)
            actors += [clip.actor] * len(sequences)
    return AvSequences(np.concatenate(xs), np.array(ys), np.array(actors))


def split_by_actor(actors: np.ndarray, held_out_share: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, held out) with every actor on one side only."""
    unique = np.unique(actors)
    if len(unique) < 2:
        raise ValueError(f"only {len(unique)} actor(s) in the corpus: a speaker-independent split needs at least 2")
    held = np.random.default_rng(seed).permutation(unique)[:max(1, round(held_out_share * len(unique)))]
    mask = np.isin(actors, held)
    return ~mask, mask
