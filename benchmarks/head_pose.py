"""Head direction from the face detector's keypoints against Pointing'04's labelled head poses,
and the attention thresholds chosen on it.

Every photo goes through the short-range detector; its keypoints give yaw and pitch
(affectlite.audience.head_pose). The constants are fitted on subjects 1-8 and the thresholds
chosen there (the largest balanced accuracy of "looking" = head within 30 degrees of the camera
in yaw and pitch); what is printed for subjects 9-15 was not used to choose anything.

    python benchmarks/head_pose.py
    python benchmarks/head_pose.py --canvas 640x480 --scale 1.5    # as a kiosk camera frames them

The photos' faces are about 90 px wide in 256x192 pictures (a third of the width). With
``--canvas`` each photo is enlarged by ``--scale`` and pasted into a grey frame of that size, as a
camera would show a person at some distance: the keypoints of small faces tell less.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

import numpy as np

from affectlite.audience.head_pose import YAW_SCALE, AttentionOptions, head_pose
from affectlite.faces.blazeface import BlazeFaceDetector
from affectlite.sources.images import read_image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "pointing04"


def framed(image: np.ndarray, canvas: tuple[int, int] | None, scale: float) -> np.ndarray:
    if canvas is None:
        return image
    from PIL import Image

    width, height = canvas
    big = np.asarray(Image.fromarray(image).resize((round(image.shape[1] * scale), round(image.shape[0] * scale))))
    frame = np.full((height, width, 3), 128, np.uint8)
    y, x = (height - big.shape[0]) // 2, (width - big.shape[1]) // 2
    frame[max(y, 0):max(y, 0) + min(big.shape[0], height), max(x, 0):max(x, 0) + min(big.shape[1], width)] = \
        big[max(-y, 0):max(-y, 0) + min(big.shape[0], height), max(-x, 0):max(-x, 0) + min(big.shape[1], width)]
    return frame


def measure(data: Path, canvas: tuple[int, int] | None = None, scale: float = 1.0) -> list[dict]:
    detector = BlazeFaceDetector("short")
    rows = []
    for row in csv.DictReader((data / "labels.csv").open()):
        faces = detector.detect(framed(read_image(data / "images" / row["file"]), canvas, scale))
        face = max(faces, key=lambda f: f.width) if faces else None
        pose = head_pose(face.keypoints, face.box) if face else None
        rows.append({"subject": int(row["subject"]), "yaw": int(row["pan_yaw"]), "pitch": int(row["tilt_pitch"]),
                     "found": face is not None, "width": face.width if face else None, "ear_share": None if face is None else
                     float((face.keypoints[2, 0] - (face.keypoints[4, 0] + face.keypoints[5, 0]) / 2) / face.width),
                     "pose": pose})
    return rows


def balanced_accuracy(rows: list[dict], options: AttentionOptions, within: float) -> float:
    truth = np.array([abs(r["yaw"]) <= within and abs(r["pitch"]) <= within for r in rows])
    said = np.array([options.looking(r["pose"]) for r in rows])
    return float((said[truth].mean() + (~said[~truth]).mean()) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--within", type=float, default=30.0, help="degrees of yaw and pitch that count as looking")
    parser.add_argument("--canvas", help="WxH: paste each photo into a frame of this size (see above)")
    parser.add_argument("--scale", type=float, default=1.0, help="with --canvas: enlarge the photos this much")
    args = parser.parse_args()

    canvas = tuple(int(v) for v in args.canvas.lower().split("x")) if args.canvas else None
    rows = measure(args.data, canvas, args.scale)
    fit = [r for r in rows if r["subject"] <= 8 and r["found"] and r["pitch"] == 0 and abs(r["yaw"]) <= 60]
    scale = float(np.median([r["ear_share"] / -np.sin(np.radians(r["yaw"])) for r in fit if r["yaw"] != 0]))
    widths = [r["width"] for r in rows if r["found"]]
    print(f"{len(rows)} photos" + (f" in {args.canvas} frames at x{args.scale:g}" if canvas else "")
          + f", faces found in {sum(r['found'] for r in rows)} (median width {np.median(widths):.0f} px); "
          f"yaw scale fitted on subjects 1-8: {scale:.3f} (affectlite.audience.head_pose.YAW_SCALE = {YAW_SCALE})")
    choose = [r for r in rows if r["subject"] <= 8]
    report = [r for r in rows if r["subject"] > 8]
    grid = [AttentionOptions(max_yaw_deg=y, max_pitch_deg=p) for y, p in itertools.product(range(15, 50, 5), range(15, 55, 5))]
    best = max(grid, key=lambda o: (balanced_accuracy(choose, o, args.within), -o.max_yaw_deg))
    print(f"chosen on subjects 1-8: max_yaw_deg {best.max_yaw_deg:g}, max_pitch_deg {best.max_pitch_deg:g} "
          f"(balanced accuracy {100 * balanced_accuracy(choose, best, args.within):.1f} %)")
    print(f"subjects 9-15, looking = head within {args.within:g} degrees: balanced accuracy "
          f"{100 * balanced_accuracy(report, best, args.within):.1f} %\n")
    print(f"{'yaw':>5} {'photos':>7} {'found':>6} {'said looking':>13} {'truth':>8} {'right':>7}   median estimate")
    for yaw in sorted({r["yaw"] for r in report}):
        group = [r for r in report if r["yaw"] == yaw]
        truth = [abs(r["yaw"]) <= args.within and abs(r["pitch"]) <= args.within for r in group]
        said = [best.looking(r["pose"]) for r in group]
        estimates = [r["pose"].yaw for r in group if r["pose"]]
        print(f"{yaw:>+5} {len(group):>7} {sum(r['found'] for r in group):>6} {sum(said):>13} {sum(truth):>8} "
              f"{100 * np.mean([s == t for s, t in zip(said, truth)]):>6.1f}%   "
              f"{np.median(estimates) if estimates else float('nan'):+.0f}")
    for pitch in sorted({r["pitch"] for r in report}):
        group = [r for r in report if r["pitch"] == pitch and r["pose"]]
        if group:
            print(f"pitch {pitch:+d}: median estimate {np.median([r['pose'].pitch for r in group]):+.0f} "
                  f"({len(group)} faces)")


if __name__ == "__main__":
    main()
