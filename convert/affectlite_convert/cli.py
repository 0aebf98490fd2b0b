"""``affectlite-convert``: a thin command line over the toolchain's library calls.

Each command is one module of :mod:`affectlite_convert.commands`, its parser beside what it does.
Every failure the user can fix (a bad file, a wrong option) ends with one line naming the
problem and exit status 2; failures at run time exit with 1. Nothing half-written is left.
"""

from __future__ import annotations

import argparse
import os
import sys

from affectlite_convert.commands import (convert, edgetpu_check, evaluate, explain, metadata, train_blend,
                                         train_ensemble, train_face, train_fusion, train_speech)
from affectlite_convert.commands._common import PROG

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The commands that run TensorFlow (the others read and write .tflite files only).
NEEDS_TENSORFLOW = ("train", "convert", "evaluate", "explain")


def build_parser() -> argparse.ArgumentParser:
    from affectlite import __version__
    from affectlite.cli import HelpFormatter, examples, verbose_option

    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=HelpFormatter,
        description="The workstation toolchain: train, convert to int8 TFLite, evaluate, check for the Edge TPU.",
        epilog=examples("affectlite-convert convert my_model.keras --calibration faces/ --out my_model_int8.tflite",
                        "affectlite-convert evaluate my_model.keras my_model_int8.tflite --data faces.npz",
                        "affectlite-convert train face --labels ferplus --out runs/face",
                        "affectlite-convert edgetpu-check my_model_int8.tflite"))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = [verbose_option()]

    def add(parent, name, help, example_lines=(), **kwargs):
        return parent.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                                 formatter_class=HelpFormatter, parents=common,
                                 epilog=examples(*example_lines) if example_lines else None, **kwargs)

    train = add(sub, "train", "train a model on the bundled recipes")
    train_sub = train.add_subparsers(dest="model", required=True)
    for command in (train_face, train_speech, train_blend, train_ensemble, train_fusion):
        command.add_to(train_sub, add)
    for command in (convert, evaluate, explain, edgetpu_check, metadata):
        command.add_to(sub, add)
    return parser


def main(argv: list[str] | None = None) -> int:
    from affectlite.cli import set_verbosity

    parser = build_parser()
    args = parser.parse_args(argv)
    set_verbosity(args)
    if args.command in NEEDS_TENSORFLOW:
        from affectlite.runtime.quiet import import_tensorflow_quietly

        try:
            import_tensorflow_quietly()
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "tensorflow":
                raise
            print(f"{PROG}: error: `{PROG} {args.command}` needs TensorFlow, which this Python does not have; install "
                  "the workstation toolchain with: pip install 'affectlite[convert]' (a device needs only affectlite)",
                  file=sys.stderr)
            return 2
    try:
        return args.handler(args)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{PROG}: failed: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (e.g. `... --json | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
