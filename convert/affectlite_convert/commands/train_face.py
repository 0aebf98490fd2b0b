"""`train face`: the facial-expression CNN on FER+ votes (and a second face set)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from affectlite_convert.commands._common import PROG

FACE_WIDTHS = "32,48,128,256"


def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    face = add(parent, "face", "the facial-expression CNN on FER2013 (single labels or the FER+ raters' votes)",
               ["affectlite-convert train face --labels ferplus --epochs 40 --out runs/face",
                "affectlite-convert train face --labels ferplus --epochs 40 --out runs/face --resume"])
    face.add_argument("--data", type=Path, default=Path("../shared/data/faces"),
                      help="folder with fer2013_train.npz and fer2013_publictest.npz")
    face.add_argument("--train", type=Path, help="training .npz (default: DATA/fer2013_train.npz)")
    face.add_argument("--val", type=Path, help="validation .npz (default: DATA/fer2013_publictest.npz)")
    face.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, final model")
    face.add_argument("--labels", choices=["fer2013", "ferplus"], default="fer2013",
                      help="targets: FER2013's single labels, or the FER+ raters' vote distributions "
                           "(DATA/ferplus_votes.npz); default: %(default)s")
    face.add_argument("--votes", type=Path, help="FER+ votes file (default: DATA/ferplus_votes.npz)")
    face.add_argument("--label-mix", type=float, default=0.25, metavar="SHARE",
                      help="with --labels ferplus: share of the FER2013 label mixed into each vote distribution, "
                           "which keeps the rare disgust and fear recalled (default: %(default)s)")
    face.add_argument("--temperature-holdout", type=int, default=2000, metavar="N",
                      help="with --labels ferplus: training images kept out of training to fit the temperature "
                           "that calibrates the probabilities; 0: none (default: %(default)s)")
    face.add_argument("--class-weight-power", type=float, default=0.5,
                      help="per-class loss weights (N / (K n_c)) ** POWER; 0: unweighted (default: %(default)s)")
    face.add_argument("--epochs", type=int, default=60)
    face.add_argument("--batch-size", type=int, default=128)
    face.add_argument("--learning-rate", type=float, default=2e-3)
    face.add_argument("--warmup-epochs", type=int, default=3,
                      help="epochs of linear warm-up to --learning-rate before the cosine decay (default: %(default)s)")
    face.add_argument("--init", type=Path,
                      help="start from this trained face model (.keras) instead of random weights: of the same "
                           "architecture, or narrower (fewer channels, e.g. a shipped model before --widths): it "
                           "is widened so that it starts with the same answers (Net2WiderNet)")
    face.add_argument("--ema", type=float, default=0.0, metavar="MOMENTUM",
                      help="keep an exponential moving average of the weights, e.g. 0.999 (default: off)")
    face.add_argument("--teacher", type=Path, action="append", default=[],
                      help="a trained face model to distil from (repeat for an ensemble)")
    face.add_argument("--distill", type=float, default=0.5, metavar="WEIGHT",
                      help="share of the teachers' probabilities in the targets (with --teacher)")
    face.add_argument("--teacher-mask", action="store_true",
                      help="with --new-set: the teachers see every face through the new set's oval mask (for a "
                           "teacher trained on that set alone)")
    face.add_argument("--domain-adversarial", type=float, default=0.0, metavar="WEIGHT",
                      help="with --new-set: weight of a head that learns which set a face came from, its gradient "
                           "reversed into the network so that the source becomes invisible; 0: off (default: %(default)s)")
    face.add_argument("--new-set", type=Path, metavar="NPZ",
                      help="with --labels ferplus: a second training set with single labels and none of FER2013's "
                           "images, e.g. DATA/affectnet7_train.npz; 84 %% is trained on, 6 %% chooses the prior "
                           "adjustment, 10 %% is kept for reporting (`evaluate --part report`)")
    face.add_argument("--new-set-smoothing", type=float, default=0.1, metavar="SHARE",
                      help="share of a new-set face's one-hot target spread over the labels (default: %(default)s)")
    face.add_argument("--mask-probability", type=float, default=0.5,
                      help="with --new-set: FER2013 faces given the new set's oval mask, so that the mask tells no "
                           "source (default: %(default)s)")
    face.add_argument("--blur-probability", type=float, default=0.5,
                      help="with --new-set: new-set faces blurred to FER2013's resolution (default: %(default)s)")
    face.add_argument("--widths", type=_widths, default=FACE_WIDTHS, metavar="W1,W2,...",
                      help="channels of each stage, the first at full resolution; wider learns more and costs more "
                           "per face (benchmarks/face_latency.py) (default: %(default)s)")
    face.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    face.set_defaults(handler=run)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) < 2 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected two or more channel counts separated by commas, e.g. "
                                         f"{FACE_WIDTHS}, got '{text}'")
    return widths


def run(args) -> int:
    from affectlite_convert.training.face_cnn import FaceCnnSpec
    from affectlite_convert.training.train_face import FaceRecipe, export_for_deployment, train_face

    train = args.train or args.data / "fer2013_train.npz"
    val = args.val or args.data / "fer2013_publictest.npz"
    if not 0.0 <= args.ema < 1.0:
        raise ValueError(f"--ema must be in [0, 1), got {args.ema}")
    if not 0.0 <= args.distill <= 1.0:
        raise ValueError(f"--distill must be in [0, 1], got {args.distill}")
    for option, model in [*(("--teacher", t) for t in args.teacher), *([("--init", args.init)] if args.init else [])]:
        if not model.exists():
            raise FileNotFoundError(f"{option} {model}: no such file")
    if not 0 <= args.warmup_epochs <= args.epochs:
        raise ValueError(f"--warmup-epochs must be from 0 to --epochs ({args.epochs}), got {args.warmup_epochs}")
    crowd = args.labels == "ferplus"
    if not 0.0 <= args.label_mix <= 1.0:
        raise ValueError(f"--label-mix must be in [0, 1], got {args.label_mix}")
    recipe = FaceRecipe(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                        labels=args.labels, label_mix=args.label_mix if crowd else 0.0,
                        temperature_holdout=args.temperature_holdout if crowd else 0,
                        # the vote distributions are soft already: smoothing them only blurs calibration
                        label_smoothing=0.0 if crowd else FaceRecipe.label_smoothing,
                        class_weight_power=args.class_weight_power,
                        ema_momentum=args.ema, teachers=tuple(str(t.resolve()) for t in args.teacher),
                        distill_weight=args.distill if args.teacher else 0.0, teacher_mask=args.teacher_mask,
                        domain_adversarial=args.domain_adversarial,
                        warmup_epochs=args.warmup_epochs, init=str(args.init.resolve()) if args.init else "",
                        new_set=str(args.new_set) if args.new_set else "",
                        new_set_smoothing=args.new_set_smoothing if args.new_set else FaceRecipe.new_set_smoothing,
                        mask_probability=args.mask_probability if args.new_set else 0.0,
                        blur_probability=args.blur_probability if args.new_set else 0.0,
                        model=FaceCnnSpec(widths=args.widths))
    if args.new_set and not args.new_set.is_file():
        raise FileNotFoundError(f"--new-set {args.new_set}: no such file")
    final = train_face(train, val, args.out, recipe, resume=args.resume, verbose=1 if sys.stdout.isatty() else 2,
                       votes_path=(args.votes or args.data / "ferplus_votes.npz") if crowd else None)
    state = json.loads((args.out / "state.json").read_text())
    temperature = state.get("temperature", 1.0)
    if "prior_shift" in state:
        print(f"prior adjustment alpha {state['data']['prior_adjustment']['alpha']:g} (chosen on the held-out images) "
              "folded into the model")
    if temperature != 1.0:
        print(f"temperature {temperature:.3f} (fitted on the held-out training images) folded into the model")
    deploy = export_for_deployment(final, args.out / "face_expression.keras", temperature=temperature,
                                   prior_shift=state.get("prior_shift"))
    print(f"trained model: {deploy}\nnext: {PROG} convert {deploy} --calibration {train} --quant int8 "
          f"--training-info {args.out} --out face_expression_int8.tflite")
    return 0
