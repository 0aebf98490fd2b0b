"""Emotional speech corpora as labelled feature windows, split by speaker (never by clip).

Each corpus has a manifest loader (:data:`CORPORA`): which column names the speaker, how its
emotion names map onto the face model's seven (so both modalities speak one vocabulary), and
which of the seven it has at all. A corpus with only some labels (TurEV-DB: angry, happy,
neutral, sad) says so in :attr:`SpeechSet.label_mask`; training then scores its clips over those
labels only, never as evidence that the other emotions are absent.

Features come from the device's own code (:func:`affectlite.audio.voice.speech_windows`), on the
clean recording or on a simulated recording of it (:mod:`affectlite_convert.training.recording`).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from affectlite.audio.resample import to_model_rate
from affectlite.audio.voice import WindowSpec, speech_windows
from affectlite.labels import EMOTIONS
from affectlite_convert.data.faces import DataError
from affectlite_convert.training.recording import RecordingConditions, simulate


@dataclass(frozen=True)
class Corpus:
    name: str
    speaker_column: str
    #: The manifest's emotion names -> affectlite's labels.
    label_map: dict[str, str]
    info: dict[str, str] = field(default_factory=dict)

    @property
    def label_mask(self) -> np.ndarray:
        """(7,) bool: the labels this corpus has."""
        present = set(self.label_map.values())
        return np.array([name in present for name in EMOTIONS])


RAVDESS_TO_EMOTIONS = {"neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                       "fearful": "fear", "disgust": "disgust", "surprised": "surprise"}

RAVDESS_INFO = {
    "name": "RAVDESS speech (Livingstone & Russo 2018, PLoS ONE 13(5) e0196391), actors 01-20",
    "licence": "CC BY-NC-SA 4.0 (non-commercial); a model trained on it is for non-commercial use",
    "label_mapping": "calm -> neutral, fearful -> fear, surprised -> surprise; the others unchanged",
}

CORPORA: dict[str, Corpus] = {
    "ravdess": Corpus("ravdess", "actor", RAVDESS_TO_EMOTIONS, RAVDESS_INFO),
    "emovo": Corpus("emovo", "speaker", {name: name for name in EMOTIONS}, {
        "name": "EMOVO (Costantini et al., LREC 2014): Italian, 6 actors, 14 sentences, 7 emotions",
        "licence": "research use only (non-commercial)",
        "label_mapping": "disgusto -> disgust, gioia -> happy, neutro -> neutral, paura -> fear, rabbia -> angry, "
                         "sorpresa -> surprise, tristezza -> sad",
    }),
    "turev-db": Corpus("turev-db", "speaker", {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"}, {
        "name": "TurEV-DB (Canpolat et al. 2020): Turkish, 6 actors, single words, 4 emotions",
        "licence": "CC BY-NC-ND 4.0 (non-commercial; no redistribution of modified copies)",
        "label_mapping": "angry, happy, neutral (from calm), sad; the other three labels are absent and are "
                         "left out of its loss, not trained as 'not this emotion'",
    }),
}


def corpus_of(root: str | Path) -> Corpus:
    """The corpus a folder holds, by its name as in ../shared/data/speech (ravdess, emovo, turev-db)."""
    name = Path(root).name.lower()
    if name not in CORPORA:
        raise DataError(f"{root}: unknown corpus folder {Path(root).name!r}; expected one of {sorted(CORPORA)}")
    return CORPORA[name]


@dataclass
class SpeechSet:
    windows: np.ndarray      # (N, frames, n_mels) normalised log-mel (float32, or float16 when cached)
    labels: np.ndarray       # (N,) indices into EMOTIONS
    clips: np.ndarray        # (N,) clip number, for clip-level scores
    clip_labels: np.ndarray  # (clips,) label per clip
    actors: list             # the speakers asked for
    clip_actors: list        # (clips,) speaker per clip
    corpus: str = "ravdess"

    @property
    def label_mask(self) -> np.ndarray:
        return CORPORA[self.corpus].label_mask

    def speakers(self, keep: Callable[[object], bool]) -> "SpeechSet":
        """The clips of the speakers ``keep`` accepts (clip numbers restart at 0)."""
        clip_keep = np.array([keep(a) for a in self.clip_actors], bool)
        renumber = np.cumsum(clip_keep) - 1
        window_keep = clip_keep[self.clips]
        return SpeechSet(self.windows[window_keep], self.labels[window_keep], renumber[self.clips[window_keep]],
                         self.clip_labels[clip_keep], [a for a in self.actors if keep(a)],
                         [a for a, k in zip(self.clip_actors, clip_keep) if k], self.corpus)


@dataclass(frozen=True)
class ClipRow:
    path: Path
    label: int
    speaker: object          # int for RAVDESS actors (as the rest of the toolchain numbers them), else str


def read_manifest(root: str | Path, corpus: Corpus | None = None) -> list[ClipRow]:
    root = Path(root)
    corpus = corpus or corpus_of(root)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise DataError(f"{manifest}: no manifest (expected {corpus.name} laid out as in ../shared/data/speech)")
    with manifest.open() as handle:
        rows = list(csv.DictReader(handle))
    missing = {"path", "emotion", corpus.speaker_column} - set(rows[0] if rows else {})
    if missing:
        raise DataError(f"{manifest}: missing column(s) {sorted(missing)}")
    unknown = {r["emotion"] for r in rows} - set(corpus.label_map)
    if unknown:
        raise DataError(f"{manifest}: unknown emotion label(s) {sorted(unknown)}")
    as_speaker = int if corpus.name == "ravdess" else str
    return [ClipRow(root / r["path"], EMOTIONS.index(corpus.label_map[r["emotion"]]), as_speaker(r[corpus.speaker_column]))
            for r in rows]


def read_clip(path: Path) -> np.ndarray:
    """16 kHz mono float32."""
    import soundfile

    try:
        audio, rate = soundfile.read(path, dtype="float32")
    except (OSError, RuntimeError) as exc:
        raise DataError(f"{path}: cannot read audio ({exc})") from exc
    return to_model_rate(audio, rate)


def _collect(items: Iterable[tuple[ClipRow, np.ndarray]], speakers, corpus: str, root: Path) -> SpeechSet:
    """A set from (clip, its windows) pairs; clips without a voiced window are left out."""
    windows, labels, clips, clip_labels, clip_actors = [], [], [], [], []
    for row, found in items:
        if len(found) == 0:
            continue
        windows.append(found)
        labels += [row.label] * len(found)
        clips += [len(clip_labels)] * len(found)
        clip_labels.append(row.label)
        clip_actors.append(row.speaker)
    if not windows:
        raise DataError(f"{root}: no voiced clips for speakers {speakers}")
    return SpeechSet(np.concatenate(windows), np.array(labels), np.array(clips), np.array(clip_labels),
                     list(speakers), clip_actors, corpus)


def load_corpus(root: str | Path, speakers: list | None = None, corpus: Corpus | None = None,
                windows: WindowSpec = WindowSpec()) -> SpeechSet:
    """Feature windows of every clean clip of the given speakers (all when None); the corpus is
    known from the folder's name unless given."""
    root = Path(root)
    corpus = corpus or corpus_of(root)
    rows = [r for r in read_manifest(root, corpus) if speakers is None or r.speaker in speakers]
    chosen = speakers if speakers is not None else sorted({r.speaker for r in rows}, key=str)
    return _collect(((row, speech_windows(read_clip(row.path), windows=windows)[0]) for row in rows), chosen,
                    corpus.name, root)


def load_speech(root: str | Path, actors: list[int], windows: WindowSpec = WindowSpec()) -> SpeechSet:
    """RAVDESS actors' clean windows (the folder may be named otherwise: it is read as RAVDESS)."""
    return load_corpus(root, actors, CORPORA["ravdess"], windows)


def simulated_corpus(root: str | Path, copies: int, seed: int, cache: str | Path | None = None,
                     progress: Callable = lambda rows: rows, corpus: Corpus | None = None,
                     windows: WindowSpec = WindowSpec(), conditions: RecordingConditions | None = None) -> SpeechSet:
    """Every clip of a corpus as it sounds under ``copies`` random recording conditions (not the
    clean clip itself); each copy counts as a clip of its own. Babble noise is made from clips of the corpus's other speakers. Cached in ``cache`` (float16)
    under a key of the corpus, the copies, the seed and the conditions."""
    root = Path(root)
    corpus = corpus or corpus_of(root)
    conditions = conditions or RecordingConditions()
    clamp = [] if windows.dynamic_range_db is None else [windows.dynamic_range_db]
    key = hashlib.sha1(json.dumps([corpus.name, copies, seed, conditions.identity()] + clamp).encode()).hexdigest()[:12]
    cached = Path(cache) / f"{corpus.name}-{copies}x-{key}.npz" if cache else None
    rows = read_manifest(root, corpus)
    speakers = sorted({r.speaker for r in rows}, key=str)
    if cached and cached.exists():
        with np.load(cached, allow_pickle=False) as data:
            return SpeechSet(data["windows"], data["labels"], data["clips"], data["clip_labels"], speakers,
                             [type(speakers[0])(s) for s in data["clip_actors"]], corpus.name)
    rng = np.random.default_rng(seed)
    babble_source = {i: read_clip(rows[i].path) for i in rng.choice(len(rows), size=min(60, len(rows)), replace=False)}

    def recorded(row: ClipRow) -> np.ndarray:
        babble = [a for j, a in babble_source.items() if rows[j].speaker != row.speaker]
        noisy, _ = simulate(read_clip(row.path), rng, conditions, babble)
        return speech_windows(noisy, windows=windows)[0].astype(np.float16)

    expanded = [row for row in rows for _ in range(copies)]
    result = _collect(((row, recorded(row)) for row in progress(expanded)), speakers, corpus.name, root)
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.stem + ".tmp.npz")
        np.savez(tmp, windows=result.windows, labels=result.labels, clips=result.clips, clip_labels=result.clip_labels,
                 clip_actors=np.array([str(a) for a in result.clip_actors]))
        tmp.replace(cached)
    return result
