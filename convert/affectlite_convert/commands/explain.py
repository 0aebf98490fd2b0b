"""`explain`: heat maps of what an expression model's decision rests on."""

from __future__ import annotations

import sys
from pathlib import Path

from affectlite_convert.commands._common import PROG, pair


def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    ex = add(parent, "explain", "heat maps of what an expression model's decision rests on",
             ["affectlite-convert explain face.keras photo.jpg --out maps/"])
    ex.add_argument("model", type=Path, help=".keras/.h5 (Grad-CAM) or .tflite with its card (occlusion)")
    ex.add_argument("images", type=Path, nargs="+", help="photos (faces are found and aligned) or face crops")
    ex.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    ex.add_argument("--crops", action="store_true", help="the images are face crops already: no detection")
    ex.add_argument("--method", choices=["auto", "gradcam", "occlusion"], default="auto",
                    help="auto: Grad-CAM for Keras models, occlusion for TFLite models")
    ex.add_argument("--top", type=int, default=3, help="classes to print per face")
    ex.add_argument("--input-range", type=pair, default=(0.0, 1.0), help="input range of Keras models")
    ex.set_defaults(handler=run)


def run(args) -> int:
    from affectlite.sources.images import MediaError
    from affectlite_convert.explain import explain_image, load_explainer

    explainer = load_explainer(args.model, args.method, args.input_range)
    failed = 0
    for path in args.images:
        try:
            results = explain_image(explainer, path, args.out, crops=args.crops, top_k=args.top)
        except (MediaError, OSError) as exc:
            print(f"{PROG}: {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if not results:
            print(f"{path}: no face found")
        for r in results:
            top = ", ".join(f"{name} {p:.2f}" for name, p in r.top)
            print(f"{path} face {r.face}: {top} -> {r.crop_png}" + (f", {r.photo_png}" if r.photo_png else ""))
    return 1 if failed else 0
