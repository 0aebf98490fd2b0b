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

    python benchmarks/voice_prosody.py
    python benchmarks/voice_prosody.py --speech sdk/affectlite/models/speech_emotion_int8.tflite
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SPEECH)
    parser.add_argument("--speech", type=Path, help="a speech model with its card (or run folder) to mix with")
    args = parser.parse_args()
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
