"""How much of each corpus's emotion lies in utterance-level prosody, and does it carry across
languages? A yardstick for the speech model's cross-corpus figures, not a model to ship.

Each clip becomes eleven numbers (pitch level, range, spread and movement in semitones; loudness
spread and range; spectral centroid and flatness; voiced share and length), and a logistic
regression (balanced classes, each corpus weighted alike) learns them: once within each corpus,
scored on the speech model's validation speakers, and once per corpus left out, trained on the
other two. Scores are UAR over the labels the scored corpus has, with the answer taken over those
labels (as generous to the yardstick as possible). Needs librosa (the test extra).

    python benchmarks/voice_prosody.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from affectlite_convert.data.speech import load_corpus, read_clip, read_manifest

CORPORA = {"ravdess": {"17", "18", "19", "20"}, "emovo": {"f3", "m3"}, "turev-db": {"1984", "6783"}}


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


def table(root: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    rows = read_manifest(root / name)
    features = np.stack([prosody(read_clip(row.path)) for row in rows])
    labels = [i for i, present in enumerate(load_corpus(root / name).label_mask) if present]
    return features, np.array([row.label for row in rows]), np.array([str(row.speaker) for row in rows]), labels


def uar(model, x: np.ndarray, y: np.ndarray, labels: list[int]) -> float:
    from sklearn.metrics import recall_score

    probs = model.predict_proba(x)
    ours = np.isin(model.classes_, labels)
    answers = model.classes_[ours][probs[:, ours].argmax(axis=1)]
    return float(recall_score(y, answers, labels=labels, average="macro"))


def fitted(x: np.ndarray, y: np.ndarray, weights: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced"))
    return model.fit(x, y, logisticregression__sample_weight=weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/speech"))
    args = parser.parse_args()
    data = {name: table(args.data, name) for name in CORPORA}
    print("prosody alone, logistic regression, UAR over each corpus's labels")
    for name, held in CORPORA.items():
        x, y, speakers, labels = data[name]
        test = np.isin(speakers, list(held))
        model = fitted(x[~test], y[~test], np.ones((~test).sum()))
        print(f"  {name:9} within the corpus, speakers {', '.join(sorted(held))}: {100 * uar(model, x[test], y[test], labels):5.1f} %")
    for left in CORPORA:
        train = [n for n in CORPORA if n != left]
        x = np.concatenate([data[n][0] for n in train])
        y = np.concatenate([data[n][1] for n in train])
        weights = np.concatenate([np.full(len(data[n][1]), len(y) / len(data[n][1]) / len(train)) for n in train])
        model = fitted(x, y, weights)
        features, truth, _, labels = data[left]
        print(f"  {left:9} left out (trained on {' + '.join(train)}), all its clips: "
              f"{100 * uar(model, features, truth, labels):5.1f} %")


if __name__ == "__main__":
    main()
