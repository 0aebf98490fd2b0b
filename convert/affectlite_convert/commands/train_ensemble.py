"""`train ensemble`: finished speech runs as one model that averages their probabilities."""

from __future__ import annotations

from pathlib import Path

from affectlite_convert.commands._common import next_speech_convert


def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    ensemble = add(parent, "ensemble", "finished speech runs as one model that averages their probabilities "
                                          "(networks from different random weights, which `train blend` cannot join); "
                                          "one inference per member on the device",
                   ["affectlite-convert train ensemble --run runs/speech_s7 --run runs/speech_s8 --out runs/speech_pair"])
    ensemble.add_argument("--run", type=Path, action="append", required=True,
                          help="a finished speech run (its speech_emotion.keras); repeat, at least twice")
    ensemble.add_argument("--out", type=Path, required=True, help="folder for the ensemble, read by convert and evaluate")
    ensemble.set_defaults(handler=run)


def run(args) -> int:
    from affectlite_convert.training.ensemble import average_speech_runs

    out = average_speech_runs(args.run, args.out)
    print(f"averaged the probabilities of {len(args.run)} runs: {out}\n" + next_speech_convert(out, args.out))
    return 0
