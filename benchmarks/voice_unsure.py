"""When is the voice too unsure to count? Coverage and accuracy of the speech model's utterances
above each confidence threshold, on speakers it was never trained on.

For every clip of the held-out speakers of each corpus (those the model card lists as not in
training: RAVDESS 17-20, the validation speakers of EMOVO and TurEV-DB) and the CREMA-D sample's
twelve sound tracks: the mean of the clip's window probabilities, its top class and top
probability, as the device computes them. For each threshold it prints the share of clips kept
and how often the kept ones are right. ``[audio] min_confidence`` is chosen from this table.

    python benchmarks/voice_unsure.py
    python benchmarks/voice_unsure.py --model runs/speech/speech_emotion_int8.tflite
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from affectlite.classifiers.speech import BUNDLED_MODEL
from affectlite.labels import EMOTIONS

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
CREMA_D = ROOT.parent / "shared" / "data" / "av" / "crema-d-sample"


def held_out_clips(model: Path) -> list[tuple[str, np.ndarray, int]]:
    """(corpus, mean probabilities, label) per held-out clip; CREMA-D clips as corpus "crema-d"."""
    from affectlite.audio.voice import speech_windows
    from affectlite.sources.audio import read_video_audio
    from affectlite_convert.data.speech import CORPORA, load_corpus
    from affectlite_convert.evaluate import (CREMA_D_LABELS, clip_probabilities, feature_predictor, model_windows,
                                             trained_speakers)

    predict = feature_predictor(model)
    trained = trained_speakers(model)
    spec = model_windows([model])
    clips = []
    for name, corpus in CORPORA.items():
        seen = set(trained.get(name, []))
        data = load_corpus(SPEECH / name, corpus=corpus, windows=spec).speakers(lambda s: str(s) not in seen)
        if len(data.clip_labels):
            for probs, label in zip(clip_probabilities(predict, data), data.clip_labels):
                clips.append((name, probs, int(label)))
    for path in sorted([*CREMA_D.glob("VideoFlash/*.flv"), *CREMA_D.glob("AudioMP3/*.mp3")]):
        windows, _ = speech_windows(read_video_audio(path), windows=spec)
        if len(windows):
            label = EMOTIONS.index(CREMA_D_LABELS[path.stem.split("_")[2]])
            clips.append(("crema-d", predict(windows[..., None]).mean(axis=0), label))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    args = parser.parse_args()
    clips = held_out_clips(args.model)
    corpora = sorted({c for c, _, _ in clips})
    print(f"{args.model.name}: {len(clips)} held-out clips ({', '.join(f'{c} {sum(x == c for x, _, _ in clips)}' for c in corpora)})")
    print(f"{'threshold':>9}  " + "  ".join(f"{c + ' kept / right':>24}" for c in corpora))
    for threshold in (0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
        cells = []
        for corpus in corpora:
            rows = [(p, y) for c, p, y in clips if c == corpus]
            kept = [(p, y) for p, y in rows if p.max() >= threshold]
            right = np.mean([p.argmax() == y for p, y in kept]) if kept else float("nan")
            cells.append(f"{100 * len(kept) / len(rows):>10.0f} % / {100 * right:>5.1f} %")
        print(f"{threshold:>9.2f}  " + "  ".join(f"{cell:>24}" for cell in cells))


if __name__ == "__main__":
    main()
