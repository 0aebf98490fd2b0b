"""Speech models on held-out speakers as a device hears them: under a steady noise floor.

The corpora are studio recordings: their pauses are near-digital silence, and TurEV-DB's short
words are zero-padded to a 2 s window. A microphone in a room never gives that; it hears the room.
Each held-out clip (the speakers the model's card says it never heard) is scored clean, and with
white noise under the whole clip at SNR dB below the clip's RMS (short clips padded with that
noise, not silence): 40 dB is a quiet room, 25 dB an ordinary one. Clip level, int8 as shipped.

    python benchmarks/voice_in_a_room.py                                  # the bundled model
    python benchmarks/voice_in_a_room.py --models old_int8.tflite sdk/affectlite/models/speech_emotion_int8.tflite
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np

from affectlite.audio.voice import speech_windows
from affectlite.classifiers.speech import BUNDLED_MODEL

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


def in_a_room(audio: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    if snr_db is None:
        return audio
    audio = np.concatenate([audio, np.zeros(max(0, 32000 - len(audio)), np.float32)])
    rms = float(np.sqrt(np.mean(audio ** 2))) + 1e-9
    noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    return audio + noise * rms * 10 ** (-snr_db / 20)


def accuracy(model: Path, snr_db: float | None) -> dict[str, float]:
    from affectlite_convert.data.speech import CORPORA, read_clip, read_manifest
    from affectlite_convert.evaluate import feature_predictor, model_windows, trained_speakers

    predict, spec, heard = feature_predictor(model), model_windows([model]), trained_speakers(model)
    result = {}
    for name, corpus in CORPORA.items():
        rows = [r for r in read_manifest(SPEECH / name, corpus) if str(r.speaker) not in set(heard.get(name, []))]
        right = total = 0
        for row in rows:
            windows, _ = speech_windows(in_a_room(read_clip(row.path), snr_db, zlib.crc32(str(row.path).encode())),
                                        windows=spec)
            if len(windows):
                total += 1
                right += int(np.argmax(predict(windows[..., None]).mean(axis=0) * corpus.label_mask) == row.label)
        result[name] = right / max(total, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, nargs="+", default=[BUNDLED_MODEL])
    parser.add_argument("--snr", type=float, nargs="+", default=[40.0, 25.0])
    args = parser.parse_args()
    conditions = [None, *args.snr]
    print(f"{'model':<34} {'condition':<12} {'RAVDESS':>9} {'EMOVO':>9} {'TurEV-DB':>9}")
    for model in args.models:
        for snr in conditions:
            figures = accuracy(model, snr)
            label = "clean" if snr is None else f"{snr:g} dB SNR"
            print(f"{model.parent.name + '/' + model.name:<34} {label:<12} "
                  + " ".join(f"{100 * figures[c]:>7.1f} %" for c in ("ravdess", "emovo", "turev-db")), flush=True)


if __name__ == "__main__":
    main()
