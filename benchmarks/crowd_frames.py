"""The frame path with 1, 5, 10 and 20 faces, and how often detection can be skipped.

1. Milliseconds per 640x480 frame (median over a sequence, one thread), for frames holding 1, 5,
   10 and 20 real faces (heads and shoulders cut from the CREMA-D clips' frames, 120 px tiles on a
   grey canvas, drifting 2 px a frame so that following has something to follow), with the
   full-range detector (a queue of people is small in the frame; the short-range one is for
   faces near the camera): the runtime's path as it is (``detect_every`` as given, faces
   classified in one call) against detecting on every frame and classifying face by face, in the
   same process. "found" is how many of the faces the detector finds on the first frame.
2. Track continuity on the six CREMA-D clips, and on the composited crowd of 10, with
   ``detect_every`` N against detecting on every frame: faces lost (frames with a different face
   count), track ids or swaps, and frames (faces) whose emotion differs.

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


def crowd_continuity(detector: str, detect_every: int, faces: int = 10, count: int = 90) -> None:
    """The composited crowd (drifting back and forth) with detect_every N against every frame:
    how many faces each run has per frame, how many of the every-frame run's faces the other
    also has (boxes overlapping by IoU >= 0.5), and track swaps (a track of one run paired with a
    second track of the other)."""
    frames = crowd_frames(faces, count)
    with EmotionRecognizer(RecognizerOptions(detector=detector, detect_every=1, max_faces=20)) as every, \
            EmotionRecognizer(RecognizerOptions(detector=detector, detect_every=detect_every, max_faces=20)) as skipping:
        base_tracker, tracker, follower = IouTracker(), IouTracker(), skipping.follower()
        counts_a, counts_b = [], []
        matched = total = swaps = differs = 0
        pairs: dict[int, int] = {}
        for frame in frames:
            a = every.analyze_image(frame, base_tracker)
            b = skipping.analyze_image(frame, tracker, follower)
            counts_a.append(len(a))
            counts_b.append(len(b))
            for x in a:
                total += 1
                match = max(b, key=lambda y: _iou(x.box, y.box), default=None)
                if match is None or _iou(x.box, match.box) < 0.5:
                    continue
                matched += 1
                differs += x.emotion != match.emotion
                if pairs.setdefault(x.track_id, match.track_id) != match.track_id:
                    swaps += 1
                    pairs[x.track_id] = match.track_id
    print(f"crowd of {faces} ({count} frames), detect_every {detect_every}: detector on "
          f"{100 * follower.detections / follower.frames:.0f} % of frames; faces per frame: every frame "
          f"{min(counts_a)}-{max(counts_a)} (mean {np.mean(counts_a):.1f}), followed {min(counts_b)}-{max(counts_b)} "
          f"(mean {np.mean(counts_b):.1f}); of the every-frame run's {total} faces the followed run has "
          f"{matched} ({100 * matched / max(total, 1):.0f} %), {differs} of them with another emotion; track swaps: {swaps}")


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


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
    crowd_continuity(args.detector, args.detect_every)


if __name__ == "__main__":
    main()
