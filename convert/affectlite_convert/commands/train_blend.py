"""`train blend`: a finished speech run averaged in weight space with the model it started from."""

from __future__ import annotations

from pathlib import Path

from affectlite_convert.commands._common import next_speech_convert


def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    blend = add(parent, "blend", "a finished speech run's model averaged in weight space with the model it "
                                    "started from (--init) or with a fine-tune of it, then calibrated on the run's "
                                    "validation speakers",
                ["affectlite-convert train blend --run runs/speech_ft --base speech_emotion_v1.keras --share 0.4",
                 "affectlite-convert train blend --run runs/speech_multi --base runs/speech_home/final.keras "
                 "--share 0.7"])
    blend.add_argument("--run", type=Path, required=True, help="the finished speech run")
    blend.add_argument("--base", type=Path, required=True,
                       help="the model the run started from (--init), or a run that started from this run's "
                            "final.keras (e.g. it trained on RAVDESS alone)")
    blend.add_argument("--share", type=float, required=True,
                       help="the run's share of the weights, 0..1 (choose it on the validation speakers)")
    blend.add_argument("--data", type=Path, default=Path("../shared/data/speech"),
                       help="folder holding the corpora (default: %(default)s)")
    blend.add_argument("--cache", type=Path, help="the run's simulated recordings (default: RUN/../speech-cache)")
    blend.set_defaults(handler=run)


def run(args) -> int:
    from affectlite_convert.training.blend import blend_speech

    out = blend_speech(args.run, args.base, args.share, args.data, args.cache or args.run.parent / "speech-cache")
    print(f"blended {args.share:g} x {args.run / 'final.keras'} + {1 - args.share:g} x {args.base}, calibrated: {out}\n"
          + next_speech_convert(out, args.run))
    return 0
