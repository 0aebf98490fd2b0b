"""The frame path with 1, 5, 10 and 20 faces, and how often detection can be skipped.

1. Milliseconds per 640x480 frame (median over a sequence, one thread), for frames holding 1, 5,
   10 and 20 real faces (heads and shoulders cut from the CREMA-D clips' frames, 120 px tiles on a
   grey canvas, drifting 2 px a frame so that following has something to follow), with the
   full-range detector (a queue of people is small in the frame; the short-range one is for
   faces near the camera): the runtime's path as it is (``detect_every`` as given, faces
   classified in one call) against detecting on every frame and classifying face by face, in the
   same process. "found" is how many of the faces the detector finds on the first frame.
2. Track continuity on the six CREMA-D clips with ``detect_every`` N against detecting on every
   frame: faces lost (frames with a different face count), track ids, and frames whose emotion
   differs.

    python benchmarks/crowd_frames.py --detect-every 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from affectlite import EmotionRecognizer, RecognizerOptions
from affectlite.tracker import IouTracker

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def heads() -> list[np.ndarray]:
    """Twelve real heads with some context (BlazeFace needs more than a tight face crop): frames
    10 and 40 of each CREMA-D clip, the region around the actor's face."""
    from affectlite.sources.video_file import read_video

    found = []
    for clip in sorted((SHARED / "av" / "crema-d-sample" / "VideoFlash").glob("*.flv")):
        found += [frame.rgb[60:240, 125:305] for frame in read_video(clip) if frame.index in (10, 40)]
    return found


def crowd_frames(faces: int, count: int, tile: int = 120) -> list[np.ndarray]:
    sources = heads()
    tiles = [np.asarray(Image.fromarray(sources[i % len(sources)]).resize((tile, tile), Image.BILINEAR))
             for i in range(faces)]
    frames = []
    for step in range(count):
        canvas = np.full((480, 640, 3), 110, np.uint8)
        for i, image in enumerate(tiles):
            row, col = divmod(i, 5)
            y, x = 2 + row * 119, 2 + col * 127 + 2 * (step % 4)
            canvas[y:y + tile, x:x + tile] = image
        frames.append(canvas)
    return frames


def per_frame_ms(recognizer: EmotionRecognizer, frames: list[np.ndarray], batched: bool, follow: bool,
                 detected: list | None = None) -> float:
    """Median ms per frame after a warm-up fifth; ``detected`` gets the share of frames the detector ran on."""
    tracker, follower = IouTracker(), recognizer.follower() if follow else None
    classify_many = recognizer.classifier.classify_many
    if not batched:       # the path as it was: one interpreter call per face
        recognizer.classifier.classify_many = lambda crops: (
            np.stack([recognizer.classifier.classify(c) for c in crops]) if crops else classify_many(crops))
    times = []
    try:
        for frame in frames:
            start = time.perf_counter()
            recognizer.analyze_image(frame, tracker, follower)
            times.append(time.perf_counter() - start)
    finally:
        recognizer.classifier.classify_many = classify_many
    if detected is not None:
        detected.append(follower.detections / follower.frames if follower else 1.0)
    return float(np.median(times[len(times) // 5:]) * 1000)


def continuity(detect_every: int) -> None:
    from affectlite.sources.video_file import read_video

    clips = sorted((SHARED / "av" / "crema-d-sample" / "VideoFlash").glob("*.flv"))
    with EmotionRecognizer(RecognizerOptions(detect_every=1)) as every, \
            EmotionRecognizer(RecognizerOptions(detect_every=detect_every)) as skipping:
        lost = differs = frames_total = 0
        detections = 0
        ids = set()
        for clip in clips:
            base_tracker, tracker, follower = IouTracker(), IouTracker(), skipping.follower()
            for frame in read_video(clip):
                a = every.analyze_image(frame.rgb, base_tracker)
                b = skipping.analyze_image(frame.rgb, tracker, follower)
                frames_total += 1
                lost += len(a) != len(b)
                differs += any(x.emotion != y.emotion for x, y in zip(a, b))
                ids |= {f.track_id for f in b}
            detections += follower.detections
    print(f"\nCREMA-D clips, detect_every {detect_every}: detector ran on {detections} of {frames_total} frames "
          f"({100 * detections / frames_total:.0f} %); frames with a face lost or added: {lost}; track ids "
          f"{sorted(ids)} (one per clip's person); frames whose emotion differs from detecting every frame: "
          f"{differs} ({100 * differs / frames_total:.1f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detect-every", type=int, default=3)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--detector", choices=["short", "full"], default="full")
    args = parser.parse_args()
    print(f"ms per 640x480 frame, one thread, {args.detector}-range detector, median over {args.frames} frames")
    print(f"{'faces':>5} {'found':>5} {'every frame, per face':>22} {'batched':>9} "
          f"{f'batched + detect_every {args.detect_every}':>28} {'ratio':>7}")
    with EmotionRecognizer(RecognizerOptions(detector=args.detector, detect_every=args.detect_every,
                                             max_faces=20)) as recognizer:
        for faces in (1, 5, 10, 20):
            frames = crowd_frames(faces, args.frames)
            found = len(recognizer.analyze_image(frames[0]))
            before = per_frame_ms(recognizer, frames, batched=False, follow=False)
            batched = per_frame_ms(recognizer, frames, batched=True, follow=False)
            detected: list[float] = []
            now = per_frame_ms(recognizer, frames, batched=True, follow=True, detected=detected)
            print(f"{faces:>5} {found:>5} {before:>22.2f} {batched:>9.2f} {now:>28.2f} {before / now:>6.1f}x"
                  f"   detector on {100 * detected[0]:.0f} % of frames")
    continuity(args.detect_every)


if __name__ == "__main__":
    main()
