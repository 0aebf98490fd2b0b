"""Cost of the audio-visual path per second of input, one thread, medians.

Stages: log-mel features and voice activity over one second of audio; speech-model inference
(two 2 s windows a second, one every 0.5 s); the fusion LSTM over one 2 s window of steps
(four a second, if run at every step); and, as the yardstick, one frame of the face path
(detection + alignment + classification, 640x480, one face) times 30 frames.

    python benchmarks/audio_path.py [--runs 200] [--speech MODEL.tflite ...] [--fusion MODEL.tflite]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared/data/speech/ravdess/Actor_18/03-01-03-02-01-01-18.flac"


def median_ms(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--speech", type=Path, nargs="+", default=[None],
                        help="int8 speech models with their cards, each timed in turn (default: the bundled one)")
    parser.add_argument("--fusion", type=Path, help="an int8 fusion model with its card (optional)")
    args = parser.parse_args()

    from affectlite.audio.voice import speech_windows
    from affectlite.classifiers.expression import ExpressionClassifier
    from affectlite.classifiers.speech import SpeechClassifier
    from affectlite.faces.align import aligned_crop
    from affectlite.faces.blazeface import BlazeFaceDetector
    from affectlite.runtime import adapters
    from affectlite.runtime.interpreter import make_interpreter
    from affectlite.sources.video_file import read_video

    audio, _ = soundfile.read(SPEECH, dtype="float32")
    two_seconds = audio[16000:48000]
    one_second = audio[16000:32000]
    speeches = {str(path or "bundled"): SpeechClassifier(path) for path in args.speech}
    speech = next(iter(speeches.values()))

    frame = next(iter(read_video(ROOT / "sdk/affectlite/samples/1001_DFA_HAP_XX.flv", every=30))).rgb
    canvas = np.full((480, 640, 3), 60, np.uint8)
    canvas[60:420, 80:560] = frame
    detector, classifier = BlazeFaceDetector(), ExpressionClassifier()

    def face_frame():
        face = detector.detect(canvas)[0]
        classifier.classify(aligned_crop(canvas, face, 48, 1))

    stages = {
        "features + voice activity, 1 s of audio": median_ms(lambda: speech_windows(one_second, windows=speech.windows), args.runs),
    }
    per_window = {}
    for name, model in speeches.items():
        windows, _ = speech_windows(two_seconds, windows=model.windows)
        per_window[name] = median_ms(lambda: model.classify_windows(windows[:1]), args.runs)
    stages["speech model, 2 windows (1 s of audio)"] = 2 * next(iter(per_window.values()))
    if args.fusion:
        fusion = make_interpreter(args.fusion)
        steps = np.zeros(tuple(adapters.input_details(fusion)["shape"]), np.float32)
        stages["fusion LSTM, 4 windows (1 s)"] = 4 * median_ms(lambda: adapters.run_from_blank_state(fusion, steps), args.runs)
    face = median_ms(face_frame, args.runs)
    stages["face path, 30 frames (1 s of 30 fps video)"] = 30 * face

    total = sum(stages.values())
    print(f"\nper second of input, one thread, medians of {args.runs} runs")
    for name, ms in stages.items():
        print(f"  {name:<46} {ms:8.2f} ms  {100 * ms / total:5.1f} %")
    print(f"  {'total':<46} {total:8.2f} ms  = {100 * total / 1000:.1f} % of one core for real time here;"
          f" x5-8 on a Raspberry Pi 4 core")
    if len(per_window) > 1:
        first = next(iter(per_window.values()))
        print("\nspeech models, one 2 s window (the table above uses the first)")
        for name, ms in per_window.items():
            print(f"  {name:<60} {ms:6.3f} ms  x{ms / first:.2f}")


if __name__ == "__main__":
    main()
