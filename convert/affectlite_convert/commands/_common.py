"""What the commands share: the program name, argument types, the hint after a speech run."""

from __future__ import annotations

import argparse
from pathlib import Path

PROG = "affectlite-convert"


def pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH such as 0,1 or -1,1, got '{text}'") from None
    if not low < high:
        raise argparse.ArgumentTypeError(f"LOW must be below HIGH, got '{text}'")
    return low, high


def shape(text: str) -> tuple[int, int, int]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected HxWxC such as 48x48x1, got '{text}'")
    return dims  # type: ignore[return-value]


def valence_pairs(text: str) -> dict[str, str]:
    pairs = [v.strip() for v in text.split(",") if v.strip()]
    try:
        valence = dict(pair.split("=", 1) for pair in pairs)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected label=valence pairs, e.g. bored=negative, got '{text}'") from None
    from typing import get_args

    from affectlite.labels import Valence

    wrong = {k: v for k, v in valence.items() if v not in get_args(Valence)}
    if wrong:
        raise argparse.ArgumentTypeError(f"valence is positive, negative or neutral, got {wrong}")
    return valence


def label_list(text: str) -> list[str]:
    labels = [v.strip() for v in text.split(",") if v.strip()]
    if len(labels) < 2:
        raise argparse.ArgumentTypeError(f"expected comma-separated labels, got '{text}'")
    return labels


def next_speech_convert(model: Path, run: Path) -> str:
    """The command that turns a speech run's model into what the device runs."""
    return (f"next: {PROG} convert {model} --input-kind features --task speech-emotion --calibration "
            f"{run / 'calibration.npz'} --training-info {run} --out speech_emotion_int8.tflite")
