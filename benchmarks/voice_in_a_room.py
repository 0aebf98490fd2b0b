"""Speech models on held-out speakers as a device hears them: under a steady noise floor.

The corpora are studio recordings: their pauses are near-digital silence, and TurEV-DB's short
words are zero-padded to a 2 s window. A microphone in a room never gives that; it hears the room.
Each held-out clip (the speakers the model's card says it never heard) is scored clean, and with
white noise under the whole clip at SNR dB below the clip's RMS (short clips padded with that
noise, not silence): 40 dB is a quiet room, 25 dB an ordinary one. Clip level, int8 as shipped.
With ``--word S``, each condition is also scored with every clip cut to one S-second stretch of
its voice (silence around it, before the room): the lone words a kiosk hears, which the acted
corpora's sentences are not. Besides accuracy, each row gives the share of clips too unsure to
count (top probability under ``[audio] min_confidence``'s default) and the share heard as sad.

    python benchmarks/voice_in_a_room.py                                  # the bundled model
    python benchmarks/voice_in_a_room.py --word 0.8
    python benchmarks/voice_in_a_room.py --models old_int8.tflite sdk/affectlite/models/speech_emotion_int8.tflite
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np

from affectlite.audio.voice import speech_windows
from affectlite.classifiers.speech import BUNDLED_MODEL, DEFAULT_MIN_CONFIDENCE
from affectlite.labels import EMOTIONS

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


def in_a_room(audio: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    if snr_db is None:
        return audio
    audio = np.concatenate([audio, np.zeros(max(0, 32000 - len(audio)), np.float32)])
    rms = float(np.sqrt(np.mean(audio ** 2))) + 1e-9
    noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    return audio + noise * rms * 10 ** (-snr_db / 20)


def figures(model: Path, snr_db: float | None, word_s: float | None = None) -> dict[str, float]:
    """Accuracy per corpus, and over all clips the shares unsure and heard as sad."""
    from affectlite_convert.data.speech import CORPORA, read_clip, read_manifest
    from affectlite_convert.evaluate import feature_predictor, model_windows, trained_speakers
    from affectlite_convert.training.recording import excerpt

    predict, spec, heard = feature_predictor(model), model_windows([model]), trained_speakers(model)
    result, unsure, sad, clips = {}, 0, 0, 0
    for name, corpus in CORPORA.items():
        rows = [r for r in read_manifest(SPEECH / name, corpus) if str(r.speaker) not in set(heard.get(name, []))]
        right = total = 0
        for row in rows:
            seed = zlib.crc32(str(row.path).encode())
            audio = read_clip(row.path)
            if word_s is not None:
                audio = excerpt(audio, word_s, np.random.default_rng(seed))
            windows, _ = speech_windows(in_a_room(audio, snr_db, seed), windows=spec)
            if len(windows):
                probs = predict(windows[..., None]).mean(axis=0)
                total += 1
                right += int(np.argmax(probs * corpus.label_mask) == row.label)
                unsure += int(probs.max() < DEFAULT_MIN_CONFIDENCE)
                sad += int(np.argmax(probs) == EMOTIONS.index("sad"))
        result[name] = right / max(total, 1)
        clips += total
    return result | {"unsure": unsure / max(clips, 1), "sad": sad / max(clips, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, nargs="+", default=[BUNDLED_MODEL])
    parser.add_argument("--snr", type=float, nargs="+", default=[40.0, 25.0])
    parser.add_argument("--word", type=float, help="also score every clip cut to one stretch of this many seconds")
    args = parser.parse_args()
    words = [None] + ([args.word] if args.word else [])
    conditions = [(snr, word) for snr in (None, *args.snr) for word in words]
    print(f"{'model':<34} {'condition':<22} {'RAVDESS':>9} {'EMOVO':>9} {'TurEV-DB':>9} {'unsure':>8} {'sad':>8}")
    for model in args.models:
        for snr, word in conditions:
            found = figures(model, snr, word)
            label = ("clean" if snr is None else f"{snr:g} dB SNR") + (f", {word:g} s words" if word else "")
            print(f"{model.parent.name + '/' + model.name:<34} {label:<22} "
                  + " ".join(f"{100 * found[c]:>7.1f} %" for c in ("ravdess", "emovo", "turev-db", "unsure", "sad")),
                  flush=True)


if __name__ == "__main__":
    main()
