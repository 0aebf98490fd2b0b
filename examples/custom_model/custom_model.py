"""Bring your own model: train a small Keras CNN, convert it to int8, check it for the Edge TPU,
and run it on the device through a configuration - end to end, with the real tools.

    python examples/custom_model/custom_model.py --out my_model/ [--data FER2013_TRAIN.npz] [--epochs 3]

The model deliberately differs from the bundled one in everything a card describes - 64x64 input,
pixels scaled to [-1, 1], labels in the `fer` package's order - to show that the runtime needs
nothing but the card that `affectlite-convert convert` writes. Needs the `convert` extra.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SHARED_TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces" / "fer2013_train.npz"
MY_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]   # my model's output order
ALPHABETICAL = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]  # the .npz label order


def sh(*command: str) -> str:
    """Run a step as a user would type it; stop with its own message when it fails."""
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"step failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def train(data: Path, out: Path, samples: int, epochs: int) -> tuple[Path, Path]:
    import keras

    with np.load(data) as npz:
        pick = np.random.default_rng(0).permutation(len(npz["y"]))[:samples]      # the file is sorted by label
        x, y = npz["x"][pick], npz["y"][pick]
    y = np.array([MY_LABELS.index(ALPHABETICAL[i]) for i in y])
    x = keras.ops.convert_to_numpy(keras.ops.image.resize(x[..., None].astype("float32"), (64, 64)))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64, 64, 1)),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(64, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(MY_LABELS), activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x / 127.5 - 1.0, y, epochs=epochs, batch_size=64, verbose=2)
    out.mkdir(parents=True, exist_ok=True)
    calibration = out / "calibration.npz"
    # Calibration images as pixels 0..255; --input-range tells the converter how the model scales them.
    np.savez_compressed(calibration, x=np.clip(x[:300, ..., 0], 0, 255).astype(np.uint8))
    path = out / "my_model.keras"
    model.save(path)
    return path, calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=SHARED_TRAIN, help="FER2013-style .npz (x: 48x48 uint8, y)")
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    convert, affectlite = str(bin_dir / "affectlite-convert"), str(bin_dir / "affectlite")

    keras_model, calibration = train(args.data, args.out, args.samples, args.epochs)
    tflite = args.out / "my_model_int8.tflite"
    sh(convert, "convert", str(keras_model), "--quant", "int8", "--calibration", str(calibration),
       "--input-range=-1,1", "--labels", ",".join(MY_LABELS), "--name", "my_model_int8",
       "--note", "Example model from examples/custom_model: a few epochs on a FER2013 subset.", "--out", str(tflite))
    check = sh(convert, "edgetpu-check", str(tflite))
    print(next(line for line in check.splitlines() if line.startswith("summary:")))

    config = args.out / "device.toml"
    config.write_text(f'[recognizer]\nmodel = "{tflite.resolve()}"\n\n[mqtt]\nenabled = false\n')
    sh(affectlite, "run", "--config", str(config), "--print-config")          # validates the file
    records = sh(affectlite, "analyze", "--model", str(tflite), "--fps", "2").splitlines()
    print(f"{len(records)} faces analysed by my model in the sample clip; first: {records[0][:160]}")


if __name__ == "__main__":
    main()
