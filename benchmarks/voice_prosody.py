"""How much of each corpus's emotion lies in utterance-level prosody, does it carry across
languages, and does it add to a speech model? A yardstick, not a model to ship.

Each clip becomes eleven numbers (pitch level, range, spread and movement in semitones; loudness
spread and range; spectral centroid and flatness; voiced share and length), and a logistic
regression (balanced classes, each corpus weighted alike) learns them: once within each corpus,
scored on the speech model's validation speakers, and once per corpus left out, trained on the
other two. With ``--speech MODEL``, the regression is trained on the speakers the model was
trained on (its card) and mixed with the model's clip probabilities, log p = (1 - w) log p_model +
w log p_prosody, scored on the speakers it never heard. Scores are over the labels the scored
corpus has, the answer taken among those labels (as `affectlite-convert evaluate` does). Needs
librosa (the test extra).

With ``--speech MODEL --windows``, as a device would do it: twelve numbers over each 2 s window the
speech model reads, from a numpy pitch tracker (YIN, once per 10 ms frame, voiced frames only) and
the model's own mel spectrum and voice activity, the mix per window and a clip the mean of its
windows. Besides the grid it prints the honest figure for a weight that must be chosen: w chosen on
one half of the held-out speakers (RAVDESS 17-18, EMOVO f3, TurEV-DB 1984, all corpora alike) and
scored on the other half, then the halves swapped.

    python benchmarks/voice_prosody.py
    python benchmarks/voice_prosody.py --speech sdk/affectlite/models/speech_emotion_int8.tflite
    python benchmarks/voice_prosody.py --speech sdk/affectlite/models/speech_emotion_int8.tflite --windows
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from affectlite.labels import EMOTIONS
from affectlite_convert.data.speech import CORPORA, read_clip, read_manifest
from affectlite_convert.training.train_speech import MULTI_CORPUS

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
#: The bundled speech model's validation speakers, per corpus (its recipe's).
VALIDATION = {"ravdess": {str(a) for a in MULTI_CORPUS.val_actors}} | {
    name: {s.split(":")[1] for s in MULTI_CORPUS.val_speakers if s.startswith(name + ":")}
    for name in ("emovo", "turev-db")}
MIXES = (0.0, 0.2, 0.3, 0.5, 1.0)
GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
#: Halves of the held-out speakers for choosing w on one and scoring on the other.
HALVES = {"ravdess": ({"17", "18"}, {"19", "20"}), "emovo": ({"f3"}, {"m3"}), "turev-db": ({"1984"}, {"6783"})}


def prosody(audio: np.ndarray, rate: int = 16000) -> np.ndarray:
    import librosa

    hop, frame = rate // 100, 1024
    f0 = librosa.yin(audio, fmin=65, fmax=500, sr=rate, frame_length=frame, hop_length=hop)
    n = len(f0)
    level = 20 * np.log10(librosa.feature.rms(y=audio, frame_length=frame, hop_length=hop)[0][:n] + 1e-6)
    voiced = level > level.max() - 30
    centroid = librosa.feature.spectral_centroid(y=audio, sr=rate, n_fft=frame, hop_length=hop)[0][:n][voiced]
    flatness = librosa.feature.spectral_flatness(y=audio, n_fft=frame, hop_length=hop)[0][:n][voiced]
    pitch = 12 * np.log2(f0[voiced] / 100.0)
    loud = level[voiced]
    return np.array([np.median(pitch), np.percentile(pitch, 90) - np.percentile(pitch, 10), pitch.std(),
                     np.abs(np.diff(pitch)).mean() if len(pitch) > 1 else 0.0, loud.std(),
                     np.percentile(loud, 90) - np.percentile(loud, 10), np.median(np.log(centroid)),
                     np.log(centroid).std(), np.median(np.log(flatness + 1e-6)), voiced.mean(),
                     np.log(voiced.sum() / 100.0)], np.float32)


class Corpus:
    """Every clip of a corpus: its prosody, label and speaker, and (with a speech model) the
    model's clip probabilities; clips in which the device finds no voice are left out."""

    def __init__(self, root: Path, name: str, speech=None):
        from affectlite.audio.voice import speech_windows

        self.name, self.mask = name, CORPORA[name].label_mask.astype(bool)
        features, labels, speakers, heard = [], [], [], []
        for row in read_manifest(root / name):
            audio = read_clip(row.path)
            if speech is not None:
                windows = speech_windows(audio, windows=speech[1])[0]
                if not len(windows):
                    continue
                heard.append(speech[0](windows[..., None]).mean(axis=0))
            features.append(prosody(audio))
            labels.append(row.label)
            speakers.append(str(row.speaker))
        self.x, self.y, self.speakers = np.stack(features), np.array(labels), np.array(speakers)
        self.model = np.stack(heard) if heard else None

    def scores(self, probs: np.ndarray, keep: np.ndarray) -> tuple[float, float]:
        """Accuracy and UAR of ``probs`` (clips in ``keep``, seven columns) over the corpus's labels."""
        from sklearn.metrics import recall_score

        answers = np.where(self.mask, probs, -np.inf).argmax(axis=1)
        truth = self.y[keep]
        return float(np.mean(answers == truth)), float(recall_score(truth, answers, labels=np.flatnonzero(self.mask),
                                                                      average="macro"))


def fitted(x: np.ndarray, y: np.ndarray, weights: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced"))
    return model.fit(x, y, logisticregression__sample_weight=weights)


def trained_on(corpora: dict[str, Corpus], keep: dict[str, np.ndarray]):
    """The regression over the kept clips of several corpora, each corpus weighted alike."""
    names = [n for n in keep if keep[n].any()]
    x = np.concatenate([corpora[n].x[keep[n]] for n in names])
    y = np.concatenate([corpora[n].y[keep[n]] for n in names])
    weights = np.concatenate([np.full(keep[n].sum(), len(y) / keep[n].sum() / len(names)) for n in names])
    return fitted(x, y, weights)


def seven(model, x: np.ndarray) -> np.ndarray:
    probs = np.zeros((len(x), len(EMOTIONS)))
    probs[:, model.classes_] = model.predict_proba(x)
    return probs


def yardstick(corpora: dict[str, Corpus]) -> None:
    print("prosody alone, logistic regression, UAR over each corpus's labels")
    for name, corpus in corpora.items():
        test = np.isin(corpus.speakers, list(VALIDATION[name]))
        model = trained_on(corpora, {name: ~test})
        print(f"  {name:9} within the corpus, speakers {', '.join(sorted(VALIDATION[name]))}: "
              f"{100 * corpus.scores(seven(model, corpus.x[test]), test)[1]:5.1f} %")
    for left, corpus in corpora.items():
        model = trained_on(corpora, {n: np.ones(len(c.y), bool) for n, c in corpora.items() if n != left})
        everything = np.ones(len(corpus.y), bool)
        print(f"  {left:9} left out (trained on the other two), all its clips: "
              f"{100 * corpus.scores(seven(model, corpus.x), everything)[1]:5.1f} %")


def mixed_with(path: Path, corpora: dict[str, Corpus]) -> None:
    from affectlite_convert.evaluate import trained_speakers

    trained = trained_speakers(path)
    heard = {n: np.isin(c.speakers, trained.get(n, [])) for n, c in corpora.items()}
    model = trained_on(corpora, heard)
    print(f"{path.name} mixed with prosody (trained on the same speakers), accuracy / UAR on the speakers it never heard")
    print(f"  {'corpus':9} {'clips':>5}  " + "  ".join(f"w={w:<11g}" for w in MIXES))
    for name, corpus in corpora.items():
        test = ~heard[name]
        logs = np.log(corpus.model[test] + 1e-6), np.log(seven(model, corpus.x[test]) + 1e-6)
        cells = [corpus.scores((1 - w) * logs[0] + w * logs[1], test) for w in MIXES]
        print(f"  {name:9} {test.sum():>5}  " + "  ".join(f"{100 * a:4.1f} / {100 * u:4.1f}" for a, u in cells))


# -- the device's way: numbers per 2 s window, in numpy ----------------------------------------------

def pitch_track(audio: np.ndarray, wanted: np.ndarray, rate: int = 16000, hop: int = 160, window: int = 320,
                fmin: float = 65.0, fmax: float = 500.0, threshold: float = 0.2) -> np.ndarray:
    """f0 in Hz per 10 ms frame centred like mel_power's (0: no clear pitch, or not ``wanted``):
    YIN's cumulative-mean-normalised difference, the first dip below ``threshold``."""
    count = len(wanted)
    tau_min, tau_max = int(rate / fmax), int(np.ceil(rate / fmin))
    span = window + tau_max + 1
    padded = np.pad(audio, (window // 2, max(0, (count - 1) * hop + span - window // 2 - len(audio))))
    rows = np.flatnonzero(wanted)
    result = np.zeros(count, np.float32)
    if not len(rows):
        return result
    frames = np.stack([padded[r * hop:r * hop + span] for r in rows]).astype(np.float64)
    n = 576                                  # >= span, 2^6 * 9: fast for numpy's FFT
    corr = np.fft.irfft(np.conj(np.fft.rfft(frames[:, :window], n)) * np.fft.rfft(frames, n), n)[:, :tau_max + 1]
    energy = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    shifted = energy[:, window:window + tau_max + 1] - energy[:, :tau_max + 1]
    diff = np.maximum(shifted[:, :1] + shifted - 2 * corr, 0.0)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * np.arange(1, tau_max + 1) / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)
    search = cmnd[:, tau_min:tau_max]
    dip = (search < threshold) & (search <= cmnd[:, tau_min + 1:tau_max + 1])
    tau = tau_min + dip.argmax(axis=1)
    result[rows] = np.where(dip.any(axis=1) & (energy[:, -1] > 1e-10), rate / tau, 0.0)
    return result


def window_numbers(audio: np.ndarray, starts: np.ndarray, frames: int) -> np.ndarray:
    """(N, 12) per voiced window the speech model reads (``starts`` in s, as speech_windows gives
    them): pitch median, range, spread and movement (semitones), loudness spread and range (dB),
    median and spread of the log spectral centroid, median log flatness (all over the voiced
    frames), voiced share, pitched share, voice onsets a second."""
    from affectlite.audio.features import MelSpec, _hz_to_mel, _mel_to_hz, mel_power
    from affectlite.audio.voice import voiced_frames

    spec = MelSpec()
    mel = mel_power(audio, spec)
    if len(mel) < frames:
        mel = np.pad(mel, ((0, frames - len(mel)), (0, 0)))
    voiced = voiced_frames(mel)
    positive = np.maximum(mel, 1e-12)
    centres = _mel_to_hz(np.linspace(_hz_to_mel(spec.fmin), _hz_to_mel(spec.fmax), spec.n_mels + 2)[1:-1])
    level = 10 * np.log10(positive.sum(axis=1))
    bright = np.log(positive @ centres / positive.sum(axis=1))
    flat = np.log(np.exp(np.log(positive).mean(axis=1)) / positive.mean(axis=1))
    f0 = pitch_track(audio, voiced)
    semitones, pitched_all = 12 * np.log2(np.maximum(f0, 1.0) / 100.0), voiced & (f0 > 0)
    rows = []
    for s in np.round(starts * 100).astype(int):
        v, p, st = voiced[s:s + frames], pitched_all[s:s + frames], semitones[s:s + frames]
        pitch = [0.0] * 4
        if p.sum() >= 2:
            p10, p50, p90 = np.percentile(st[p], (10, 50, 90))
            both = p[1:] & p[:-1]
            pitch = [p50, p90 - p10, st[p].std(), np.abs(np.diff(st))[both].mean() if both.any() else 0.0]
        sound = [0.0] * 5
        if v.sum() >= 2:
            loud, b = level[s:s + frames][v], bright[s:s + frames][v]
            l10, l90 = np.percentile(loud, (10, 90))
            sound = [loud.std(), l90 - l10, np.median(b), b.std(), np.median(flat[s:s + frames][v])]
        onsets = np.count_nonzero(v[1:] & ~v[:-1]) + int(v[0])
        rows.append(pitch + sound + [v.mean(), p.sum() / max(v.sum(), 1), onsets * 100 / len(v)])
    return np.array(rows, np.float32).reshape(-1, 12)


class WindowCorpus:
    """Every voiced 2 s window of a corpus: its twelve numbers (``x``), the speech model's answer,
    label, clip and speaker; the prosody regression's answer once it is trained."""

    def __init__(self, root: Path, name: str, predict, spec):
        from affectlite.audio.voice import speech_windows

        self.mask = CORPORA[name].label_mask.astype(bool)
        x, model, clips, labels, speakers = [], [], [], [], []
        for clip, row in enumerate(read_manifest(root / name)):
            audio = read_clip(row.path)
            windows, starts = speech_windows(audio, windows=spec)
            if len(windows):
                x.append(window_numbers(audio, starts, spec.frames))
                model.append(predict(windows[..., None]))
                clips += [clip] * len(windows)
                labels += [row.label] * len(windows)
                speakers += [str(row.speaker)] * len(windows)
        self.x, self.model = np.concatenate(x), np.concatenate(model)
        self.clip, self.y, self.speakers = np.array(clips), np.array(labels), np.array(speakers)
        self.prosody: np.ndarray | None = None

    def correct(self, keep: np.ndarray, w: float) -> tuple[int, int]:
        """Clips right and clips among the windows in ``keep``, the two answers mixed per window
        with weight ``w`` and a clip's windows averaged, answered over the corpus's labels."""
        logs = (1 - w) * np.log(self.model[keep] + 1e-6) + w * np.log(self.prosody[keep] + 1e-6)
        probs = np.exp(logs - logs.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        clips, index = np.unique(self.clip[keep], return_inverse=True)
        summed = np.zeros((len(clips), len(EMOTIONS)))
        np.add.at(summed, index, probs)
        truth = np.zeros(len(clips), int)
        truth[index] = self.y[keep]
        return int(np.sum(np.where(self.mask, summed, -np.inf).argmax(axis=1) == truth)), len(clips)


def on_windows(path: Path, data: Path) -> None:
    from affectlite_convert.evaluate import feature_predictor, model_windows, trained_speakers

    predict, spec, trained = feature_predictor(path), model_windows([path]), trained_speakers(path)
    corpora = {name: WindowCorpus(data, name, predict, spec) for name in VALIDATION}
    heard = {n: np.isin(c.speakers, trained.get(n, [])) for n, c in corpora.items()}
    regression = trained_on(corpora, heard)
    for corpus in corpora.values():
        corpus.prosody = seven(regression, corpus.x)

    print(f"{path.name} mixed per 2 s window with twelve numpy prosody numbers (regression trained on the "
          f"model's training speakers); clip accuracy on the speakers it never heard")
    print(f"  {'corpus':9} {'clips':>5}  " + "  ".join(f"w={w:<5g}" for w in GRID))
    for name, c in corpora.items():
        cells = [c.correct(~heard[name], w) for w in GRID]
        print(f"  {name:9} {cells[0][1]:>5}  " + "  ".join(f"{100 * r / n:7.1f}" for r, n in cells))
    halves = {n: [~heard[n] & np.isin(c.speakers, list(h)) for h in HALVES[n]] for n, c in corpora.items()}
    chosen, scored = [], {n: [0, 0, 0] for n in corpora}
    for pick, score in ((0, 1), (1, 0)):
        mean = [np.mean([np.divide(*c.correct(halves[n][pick], w)) for n, c in corpora.items()]) for w in GRID]
        w = GRID[int(np.argmax(mean))]
        chosen.append(w)
        for n, c in corpora.items():
            right, clips = c.correct(halves[n][score], w)
            scored[n] = [scored[n][0] + right, scored[n][1] + c.correct(halves[n][score], 0.0)[0], scored[n][2] + clips]
    print(f"  w chosen on one half of the held-out speakers, scored on the other (w = {chosen[0]:g} then {chosen[1]:g}):")
    for n, (right, alone, clips) in scored.items():
        print(f"  {n:9} mixed {100 * right / clips:5.1f} %, the speech model alone {100 * alone / clips:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SPEECH)
    parser.add_argument("--speech", type=Path, help="a speech model with its card (or run folder) to mix with")
    parser.add_argument("--windows", action="store_true",
                        help="with --speech: numpy prosody per 2 s device window, and w chosen on half the speakers")
    args = parser.parse_args()
    if args.windows:
        if not args.speech:
            parser.error("--windows needs --speech MODEL")
        on_windows(args.speech, args.data)
        return
    speech = None
    if args.speech:
        from affectlite_convert.evaluate import feature_predictor, model_windows

        speech = feature_predictor(args.speech), model_windows([args.speech])
    corpora = {name: Corpus(args.data, name, speech) for name in VALIDATION}
    if speech is None:
        yardstick(corpora)
    else:
        mixed_with(args.speech, corpora)


if __name__ == "__main__":
    main()
