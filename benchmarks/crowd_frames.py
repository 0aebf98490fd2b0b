"""The frame path with 1, 5, 10 and 20 faces, and how often detection can be skipped.

1. Milliseconds per 640x480 frame (median and mean over a sequence, one thread), for frames holding 1, 5,
   10 and 20 real faces (heads and shoulders cut from the CREMA-D clips' frames, 120 px tiles on a
   grey canvas, drifting 2 px a frame so that following has something to follow), with the
   full-range detector (a queue of people is small in the frame; the short-range one is for
   faces near the camera): the runtime's path as it is (``detect_every`` and ``classify_every`` as
   given, due faces classified in one call) against detecting and classifying on every frame, face
   by face and batched, the three taking turns frame by frame in the same process; the ratio is of
   the means. "found" is how many of the faces the detector finds on the first frame.
2. Track continuity on the six CREMA-D clips, and on the composited crowd of 10, with the path as
   given against detecting and classifying on every frame: faces lost (frames with a different
   face count), track ids or swaps, and frames (faces) whose emotion differs.

    python benchmarks/crowd_frames.py                       # the defaults
    python benchmarks/crowd_frames.py --detect-every 3 --classify-every 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from affectlite import EmotionRecognizer, RecognizerOptions
from affectlite.tracker import iou_matrix

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


def one_call_per_face(recognizer: EmotionRecognizer) -> EmotionRecognizer:
    """The recognizer classifying face by face, one interpreter call each (the path before batching)."""
    classifier = recognizer.classifier
    batched = classifier.classify_many
    classifier.classify_many = lambda crops: (np.stack([classifier.classify(c) for c in crops]) if crops
                                              else batched(crops))
    return recognizer


def per_frame_ms(recognizers: list[EmotionRecognizer], frames: list[np.ndarray]) -> list[tuple[float, float, object]]:
    """Per recognizer: median and mean ms per frame after a warm-up fifth, and its stream. The
    recognizers take turns frame by frame, so that a machine whose speed drifts slows them alike."""
    streams = [recognizer.stream() for recognizer in recognizers]
    times: list[list[float]] = [[] for _ in recognizers]
    for frame in frames:
        for recognizer, stream, kept in zip(recognizers, streams, times):
            start = time.perf_counter()
            recognizer.analyze_image(frame, stream)
            kept.append((time.perf_counter() - start) * 1000)
    results = []
    for stream, kept in zip(streams, times):
        values = np.array(kept[len(kept) // 5:])
        results.append((float(np.median(values)), float(values.mean()), stream))
    return results


def continuity(options: RecognizerOptions) -> None:
    from affectlite.sources.video_file import read_video

    clips = sorted((SHARED / "av" / "crema-d-sample" / "VideoFlash").glob("*.flv"))
    with EmotionRecognizer(RecognizerOptions(detect_every=1, classify_every=1)) as every, \
            EmotionRecognizer(options) as skipping:
        lost = differs = frames_total = 0
        detections = 0
        ids = set()
        for clip in clips:
            base, stream = every.stream(), skipping.stream()
            for frame in read_video(clip):
                a = every.analyze_image(frame.rgb, base)
                b = skipping.analyze_image(frame.rgb, stream)
                frames_total += 1
                lost += len(a) != len(b)
                differs += any(x.emotion != y.emotion for x, y in zip(a, b))
                ids |= {f.track_id for f in b}
            detections += stream.follower.detections
    print(f"\nCREMA-D clips, {_path(options)}: detector ran on {detections} of {frames_total} frames "
          f"({100 * detections / frames_total:.0f} %); frames with a face lost or added: {lost}; track ids "
          f"{sorted(ids)} (one per clip's person); frames whose emotion differs from detecting and classifying "
          f"every frame: {differs} ({100 * differs / frames_total:.1f} %)")


def crowd_continuity(options: RecognizerOptions, faces: int = 10, count: int = 90) -> None:
    """The composited crowd (drifting back and forth) with the path as given against every frame:
    how many faces each run has per frame, how many of the every-frame run's faces the other
    also has (boxes overlapping by IoU >= 0.5), and track swaps (a track of one run paired with a
    second track of the other)."""
    frames = crowd_frames(faces, count)
    with EmotionRecognizer(RecognizerOptions(detector=options.detector, detect_every=1, classify_every=1,
                                             max_faces=20)) as every, EmotionRecognizer(options) as skipping:
        base, stream = every.stream(), skipping.stream()
        counts_a, counts_b = [], []
        matched = total = swaps = differs = 0
        pairs: dict[int, int] = {}
        for frame in frames:
            a = every.analyze_image(frame, base)
            b = skipping.analyze_image(frame, stream)
            counts_a.append(len(a))
            counts_b.append(len(b))
            for x in a:
                total += 1
                overlaps = iou_matrix([x.box], [y.box for y in b])[0]
                if not len(overlaps) or overlaps.max() < 0.5:
                    continue
                match = b[int(overlaps.argmax())]
                matched += 1
                differs += x.emotion != match.emotion
                if pairs.setdefault(x.track_id, match.track_id) != match.track_id:
                    swaps += 1
                    pairs[x.track_id] = match.track_id
    follower = stream.follower
    print(f"crowd of {faces} ({count} frames), {_path(options)}: detector on "
          f"{100 * follower.detections / follower.frames:.0f} % of frames; faces per frame: every frame "
          f"{min(counts_a)}-{max(counts_a)} (mean {np.mean(counts_a):.1f}), followed {min(counts_b)}-{max(counts_b)} "
          f"(mean {np.mean(counts_b):.1f}); of the every-frame run's {total} faces the followed run has "
          f"{matched} ({100 * matched / max(total, 1):.0f} %), {differs} of them with another emotion; track swaps: {swaps}")


def _path(options: RecognizerOptions) -> str:
    return f"detect_every {options.detect_every}, classify_every {options.classify_every}"


def main() -> None:
    defaults = RecognizerOptions()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detect-every", type=int, default=defaults.detect_every)
    parser.add_argument("--classify-every", type=int, default=defaults.classify_every)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--detector", choices=["short", "full"], default="full")
    args = parser.parse_args()
    options = RecognizerOptions(detector=args.detector, detect_every=args.detect_every,
                                classify_every=args.classify_every, max_faces=20)
    every = RecognizerOptions(detector=args.detector, detect_every=1, classify_every=1, max_faces=20)
    print(f"ms per 640x480 frame, one thread, {args.detector}-range detector, median (mean) over {args.frames} frames")
    print(f"{'faces':>5} {'found':>5} {'every frame, per face':>22} {'batched':>15} {_path(options):>36} {'ratio':>7}")
    with one_call_per_face(EmotionRecognizer(every)) as per_face, EmotionRecognizer(every) as batched, \
            EmotionRecognizer(options) as recognizer:
        for faces in (1, 5, 10, 20):
            frames = crowd_frames(faces, args.frames)
            found = len(recognizer.analyze_image(frames[0]))
            before, together, now = per_frame_ms([per_face, batched, recognizer], frames)
            cells = [f"{median:.2f} ({mean:.2f})" for median, mean, _ in (before, together, now)]
            stream = now[2]
            print(f"{faces:>5} {found:>5} {cells[0]:>22} {cells[1]:>15} {cells[2]:>36} {before[1] / now[1]:>6.1f}x"
                  f"   detector on {100 * stream.follower.detections / stream.follower.frames:.0f} % of frames, "
                  f"{100 * stream.cadence.classified / max(stream.cadence.faces, 1):.0f} % of faces classified")
    continuity(RecognizerOptions(detect_every=args.detect_every, classify_every=args.classify_every))
    crowd_continuity(options)


if __name__ == "__main__":
    main()
