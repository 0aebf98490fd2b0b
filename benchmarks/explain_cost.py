"""What an explanation costs per face, one thread: occlusion on the int8 TFLite model (what the
device and `affectlite analyze --explain` use) and Grad-CAM on the Keras model (the workstation),
beside one plain classification of the same crop as the baseline, in the same process.

    python benchmarks/explain_cost.py [--faces 20]

Faces: the first N FER2013 PublicTest images (48x48 crops, as the aligner produces).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "sdk" / "affectlite" / "models"


def median_ms(fn, items) -> float:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=20)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "faces" / "fer2013_publictest.npz")
    args = parser.parse_args()

    from affectlite.classifiers.expression import ExpressionClassifier
    from affectlite.explain import occlusion_map
    from affectlite_convert.explain import load_explainer

    with np.load(args.data) as data:
        crops = [x[..., None] for x in data["x"][: args.faces]]
    classifier = ExpressionClassifier(MODELS / "face_expression_int8.tflite", num_threads=1)
    gradcam = load_explainer(MODELS / "face_expression.keras")
    for crop in crops[:3]:                                    # warm-up
        gradcam.heat(crop, 3)
    classify = median_ms(classifier.classify, crops * 20)
    occlusion = median_ms(lambda c: occlusion_map(classifier.classify, c, int(np.argmax(classifier.classify(c)))), crops)
    grad = median_ms(lambda c: gradcam.heat(c, 3), crops)
    print(f"faces: {len(crops)} FER2013 PublicTest crops, 1 thread (Grad-CAM: TensorFlow's own threading)")
    print(f"int8 classification      {classify:8.3f} ms  1.0x")
    print(f"occlusion map (int8)     {occlusion:8.3f} ms  {occlusion / classify:.0f}x")
    print(f"Grad-CAM map (Keras)     {grad:8.3f} ms  {grad / classify:.0f}x")


if __name__ == "__main__":
    main()
