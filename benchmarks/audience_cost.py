"""What audience measurement adds to the frame path: the default path over the sample clip's
frames with and without head direction and the tally, in turns (blocks of one pass each), in the
same process, one thread.

    python benchmarks/audience_cost.py
    python benchmarks/audience_cost.py --rounds 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from affectlite import SAMPLE_CLIP, EmotionRecognizer
from affectlite.audience import AudienceTally, Seen
from affectlite.sources.video_file import read_video


def one_pass(recognizer: EmotionRecognizer, frames: list[np.ndarray], audience: bool) -> list[float]:
    stream, tally, times = recognizer.stream(), AudienceTally(), []
    for n, frame in enumerate(frames):
        started = time.perf_counter()
        faces = recognizer.analyze_image(frame, stream)
        if audience:
            tally.update(n / 30, [Seen(f.track_id, f.head, f.emotion, f.valence) for f in faces])
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    frames = [frame.rgb for frame in read_video(SAMPLE_CLIP)]
    results = {False: [], True: []}
    with EmotionRecognizer() as recognizer:
        one_pass(recognizer, frames, False)                       # warm-up
        for _ in range(args.rounds):
            for audience in (False, True):
                results[audience].append(np.mean(one_pass(recognizer, frames, audience)))
    off, on = np.median(results[False]), np.median(results[True])
    print(f"{len(frames)} frames of {SAMPLE_CLIP.name}, {args.rounds} rounds, median of the rounds' means:")
    print(f"  frame path            {off:.3f} ms a frame")
    print(f"  with audience tally   {on:.3f} ms a frame  ({100 * (on / off - 1):+.1f} %)")


if __name__ == "__main__":
    main()
