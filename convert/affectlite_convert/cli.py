"""``affectlite-convert``: a thin command line over the toolchain's library calls.

Every failure the user can fix (a bad file, a wrong option) ends with one line naming the
problem and exit status 2; failures at run time exit with 1. Nothing half-written is left.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROG = "affectlite-convert"


def _pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH such as 0,1 or -1,1, got '{text}'") from None
    if not low < high:
        raise argparse.ArgumentTypeError(f"LOW must be below HIGH, got '{text}'")
    return low, high


def _shape(text: str) -> tuple[int, int, int]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected HxWxC such as 48x48x1, got '{text}'")
    return dims  # type: ignore[return-value]


def _valence(text: str) -> dict[str, str]:
    pairs = [v.strip() for v in text.split(",") if v.strip()]
    try:
        valence = dict(pair.split("=", 1) for pair in pairs)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected label=valence pairs, e.g. bored=negative, got '{text}'") from None
    from typing import get_args

    from affectlite.labels import Valence

    wrong = {k: v for k, v in valence.items() if v not in get_args(Valence)}
    if wrong:
        raise argparse.ArgumentTypeError(f"valence is positive, negative or neutral, got {wrong}")
    return valence


def _labels(text: str) -> list[str]:
    labels = [v.strip() for v in text.split(",") if v.strip()]
    if len(labels) < 2:
        raise argparse.ArgumentTypeError(f"expected comma-separated labels, got '{text}'")
    return labels


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
    face = add(train_sub, "face", "the facial-expression CNN on FER2013 (single labels or the FER+ raters' votes)",
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
                      help="start from this trained face model (.keras, same architecture) instead of random weights")
    face.add_argument("--ema", type=float, default=0.0, metavar="MOMENTUM",
                      help="keep an exponential moving average of the weights, e.g. 0.999 (default: off)")
    face.add_argument("--teacher", type=Path, action="append", default=[],
                      help="a trained face model to distil from (repeat for an ensemble)")
    face.add_argument("--distill", type=float, default=0.5, metavar="WEIGHT",
                      help="share of the teachers' probabilities in the targets (with --teacher)")
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
    face.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")

    speech = add(train_sub, "speech", "the speech-emotion CNN on one or several corpora, split by speaker",
                 ["affectlite-convert train speech --out runs/speech",
                  "affectlite-convert train speech --corpora ravdess,emovo --out runs/speech_without_turev"])
    speech.add_argument("--data", type=Path, default=Path("../shared/data/speech"),
                        help="folder holding the corpora (ravdess/, emovo/, turev-db/), or one RAVDESS folder "
                             "(default: %(default)s)")
    speech.add_argument("--recipe", choices=["ravdess", "multi"], default="multi",
                        help="multi: RAVDESS, EMOVO and TurEV-DB with simulated recording conditions and balanced "
                             "batches (the bundled model); ravdess: RAVDESS alone, clean (default: %(default)s)")
    speech.add_argument("--corpora", help="comma-separated corpora instead of the recipe's, e.g. ravdess,emovo to "
                                          "leave TurEV-DB out")
    speech.add_argument("--val-speakers",
                        help="validation speakers of corpora other than RAVDESS, e.g. emovo:f1,emovo:m1 "
                             "(default: the recipe's; RAVDESS validates on actors 17-20)")
    speech.add_argument("--cache", type=Path, help="folder for the simulated recordings (computed once, reused "
                                                    "by later runs; default: OUT/../speech-cache)")
    speech.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, final model")
    speech.add_argument("--epochs", type=int, help="default: the recipe's (40 ravdess, 30 multi)")
    speech.add_argument("--learning-rate", type=float, help="peak learning rate (default: the recipe's, 0.002)")
    speech.add_argument("--init", type=Path, help="start from this trained speech model (.keras, same architecture), "
                                                  "e.g. to teach a RAVDESS model the other corpora")
    speech.add_argument("--seed", type=int, help="training seed (default 7); the simulated recordings keep theirs, so "
                                                  "runs that differ only in --seed can be averaged by `train blend`")
    speech.add_argument("--dynamic-range-db", type=float,
                        help="clamp each feature window at this many dB below its loudest value, so that how deep "
                             "a recording's pauses are cannot pass for emotion (the card carries it to the device; "
                             "default: not clamped)")
    speech.add_argument("--short-utterances", type=float,
                        help="share of the simulated recordings cut to one short stretch of voice (0.5-1.5 s, "
                             "silence around it), as a device hears lone words; 0..1 (default: 0)")
    speech.add_argument("--corpus-weights",
                        help="relative share of each corpus in the balanced batches, e.g. ravdess=2 (RAVDESS half "
                             "the draws of three corpora; a corpus not named: 1)")
    speech.add_argument("--widths",
                        help="channels of the conv blocks, one number per block, e.g. 32,64,128,192 (the bundled "
                             "v4; default: 24,48,96,160, v1-v3's; wider is slower on the device: "
                             "benchmarks/audio_path.py --speech)")
    speech.add_argument("--teacher", type=Path, action="append", default=[],
                        help="a trained speech model (same windows) to distil from; repeat for an ensemble, whose "
                             "mean probabilities teach one network of the size you ship")
    speech.add_argument("--distill", type=float, default=0.5, metavar="WEIGHT",
                        help="share of the teachers' probabilities in the targets (with --teacher; default: %(default)s)")
    speech.add_argument("--folds", type=int,
                        help="train one model per fold of actors 1-16 instead (OUT/fold_N), for out-of-fold "
                             "outputs that `train fusion --speech-folds OUT` learns from (RAVDESS recipe)")
    speech.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")

    blend = add(train_sub, "blend", "a finished speech run's model averaged in weight space with the model it "
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

    ensemble = add(train_sub, "ensemble", "finished speech runs as one model that averages their probabilities "
                                          "(networks from different random weights, which `train blend` cannot join); "
                                          "one inference per member on the device",
                   ["affectlite-convert train ensemble --run runs/speech_s7 --run runs/speech_s8 --out runs/speech_pair"])
    ensemble.add_argument("--run", type=Path, action="append", required=True,
                          help="a finished speech run (its speech_emotion.keras); repeat, at least twice")
    ensemble.add_argument("--out", type=Path, required=True, help="folder for the ensemble, read by convert and evaluate")

    fusion = add(train_sub, "fusion", "the audio-visual fusion LSTM on label-paired sequences",
                 ["affectlite-convert train fusion --speech-folds runs/speech_folds --out runs/fusion"])
    fusion.add_argument("--faces", type=Path, default=Path("../shared/data/faces/fer2013_publictest.npz"),
                        help="faces the face model never saw (split in two: training and held-out pairs)")
    fusion.add_argument("--speech", type=Path, default=Path("../shared/data/speech"),
                        help="speech corpora (or one corpus's folder): the speakers the speech model never heard, "
                             "half of each corpus's to train the fusion, half held out (default: %(default)s)")
    fusion.add_argument("--cache", type=Path, help="the simulated recordings of the training voices, as `train speech` "
                                                    "caches them (default: OUT/../speech-cache)")
    fusion.add_argument("--recorded-copies", type=int, default=2,
                        help="simulated recordings of each training voice (0: clean voices only)")
    fusion.add_argument("--face-model", type=Path, help="int8 face model (default: the bundled one)")
    fusion.add_argument("--speech-model", type=Path, help="int8 speech model (default: the bundled one)")
    fusion.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, final model, report")
    fusion.add_argument("--av-corpus", type=Path,
                        help="train on real audio-visual clips instead: a CREMA-D (VideoFlash/*.flv) or RAVDESS "
                             "(Actor_NN/01-01-EE-...mp4) folder, split by actor")
    fusion.add_argument("--speech-folds", type=Path,
                        help="also learn from out-of-fold speech outputs of actors 1-16 (the folder of "
                             "`train speech --folds`)")
    fusion.add_argument("--epochs", type=int, default=25)
    fusion.add_argument("--voice-jitter", type=float, default=1.0,
                        help="log-space noise on the training voices (default 1.0: few speakers; "
                             "compare recipes on the validation figures, never on the held-out ones)")
    fusion.add_argument("--neutral-share", type=float, default=0.3,
                        help="share of training sequences labelled neutral (default %(default)s; held-out pairs keep "
                             "every class alike): with every class alike the LSTM learns to read neutral faces as "
                             "sad or afraid")
    fusion.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")

    conv = add(sub, "convert", "Keras/SavedModel to TFLite with a model card",
               ["affectlite-convert convert my_model.keras --calibration faces/ --out my_model_int8.tflite",
                "affectlite-convert convert my_model.keras --input-range 0,255 --labels neg,neu,pos --out m.tflite"])
    conv.add_argument("model", type=Path, help=".keras, .h5 or a SavedModel folder")
    conv.add_argument("--out", type=Path, required=True, help="output .tflite (the card goes beside it)")
    conv.add_argument("--quant", choices=["float32", "dynamic", "int8"], default="int8")
    conv.add_argument("--calibration", type=Path, help=".npz with 'x' or a folder of images (int8 only)")
    conv.add_argument("--io-type", choices=["int8", "uint8"], default="int8",
                      help="input/output tensor type of an int8 model")
    conv.add_argument("--input-shape", type=_shape, help="HxWxC when the model leaves them free")
    conv.add_argument("--input-range", type=_pair, default=(0.0, 1.0),
                      help="float range the model expects for pixels 0..255: 0,1 (pixels / 255), -1,1, or 0,255 "
                           "for a model that starts with its own Rescaling/Normalization layer (such a model is "
                           "refused with anything else)")
    conv.add_argument("--labels", type=_labels, help="output labels in order (default: affectlite's seven)")
    conv.add_argument("--valence", type=_valence, default={},
                      help="valence of labels that are not among the seven emotions, e.g. "
                           "bored=negative,engaged=positive (others: the emotions' own, else neutral); "
                           "the device's negative-valence alerts follow it")
    conv.add_argument("--calibration-samples", type=int, default=500)
    conv.add_argument("--input-kind", choices=["image", "features"], default="image",
                      help="features: float tensors (e.g. log-mel windows) calibrated from an .npz 'x'")
    conv.add_argument("--name", help="model name for the card")
    conv.add_argument("--task", default="facial-expression")
    conv.add_argument("--note", action="append", default=[], help="a line for the card's notes (repeatable)")
    conv.add_argument("--training-info", type=Path,
                      help="JSON file (or a training run folder) describing the training data for the card")

    ev = add(sub, "evaluate", "accuracy, recall, calibration and confusion matrices on labelled data",
             ["affectlite-convert evaluate face.keras face_int8.tflite --data ../shared/data/faces/fer2013_publictest.npz",
              "affectlite-convert evaluate speech_int8.tflite --data ../shared/data/speech"])
    ev.add_argument("models", type=Path, nargs="+", help="Keras or TFLite models; differences are against the first")
    ev.add_argument("--data", type=Path, required=True,
                    help=".npz with x (uint8 images), y and classes; a folder of class subfolders of images "
                         "(angry/, happy/, ...); a RAVDESS folder (speech models, --actors); or the folder of speech "
                         "corpora (ravdess/, emovo/, turev-db/): a table per corpus on the speakers each model was "
                         "not trained on")
    ev.add_argument("--votes", type=Path,
                    help="FER+ votes for a FER2013 file, to score against the raters and measure calibration "
                         "(default: ferplus_votes.npz beside --data, when there)")
    ev.add_argument("--crema-d", type=Path, default=Path("../shared/data/av/crema-d-sample"),
                    help="with a folder of speech corpora: also the CREMA-D sample's 12 sound tracks "
                         "(default: %(default)s, when there)")
    ev.add_argument("--actors", default="17-20", help="RAVDESS actors to evaluate speech models on, e.g. 17-20")
    ev.add_argument("--plots", type=Path,
                    help="folder for the confusion matrices (and, with FER+ votes, reliability diagrams) as PNG; "
                         "created when missing (default: no plots)")
    ev.add_argument("--labels", type=_labels, help="output labels of Keras models (TFLite: from the card)")
    ev.add_argument("--input-range", type=_pair, default=(0.0, 1.0), help="input range of Keras models")
    ev.add_argument("--part", choices=["report", "choose", "train"],
                    help="score one part of a face set split by image (a set with no subject ids, e.g. "
                         "affectnet7_train.npz, as `train face --new-set` splits it); default: the whole file")
    ev.add_argument("--record", action="store_true",
                    help="write the figures and this command into each TFLite model's card")

    ex = add(sub, "explain", "heat maps of what an expression model's decision rests on",
             ["affectlite-convert explain face.keras photo.jpg --out maps/"])
    ex.add_argument("model", type=Path, help=".keras/.h5 (Grad-CAM) or .tflite with its card (occlusion)")
    ex.add_argument("images", type=Path, nargs="+", help="photos (faces are found and aligned) or face crops")
    ex.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    ex.add_argument("--crops", action="store_true", help="the images are face crops already: no detection")
    ex.add_argument("--method", choices=["auto", "gradcam", "occlusion"], default="auto",
                    help="auto: Grad-CAM for Keras models, occlusion for TFLite models")
    ex.add_argument("--top", type=int, default=3, help="classes to print per face")
    ex.add_argument("--input-range", type=_pair, default=(0.0, 1.0), help="input range of Keras models")

    chk = add(sub, "edgetpu-check", "whether the Edge TPU compiler can map this model, op by op",
              ["affectlite-convert edgetpu-check face_int8.tflite --json"])
    chk.add_argument("model", type=Path, help="an int8 .tflite")
    chk.add_argument("--no-compiler", action="store_true", help="do not run edgetpu_compiler even if installed")
    chk.add_argument("--json", action="store_true", help="the verdict and the op table as JSON")

    meta = add(sub, "metadata", "write a model card's labels and input normalisation into its .tflite as "
                                "standard TFLite metadata (convert does this for new models)",
               ["affectlite-convert metadata face_expression_int8.tflite"])
    meta.add_argument("model", type=Path, help="a .tflite with its card (.json) beside it; the card's sha256 is "
                                               "updated to the new file")
    return parser


def _metadata(args) -> int:
    import hashlib

    from affectlite.models.card import ModelCard, card_path_for
    from affectlite_convert.tflite_metadata import add_metadata

    if not args.model.exists():
        raise FileNotFoundError(f"{args.model}: no such file")
    card_file = card_path_for(args.model)
    if not card_file.exists():
        raise ValueError(f"{args.model}: no model card {card_file.name} beside it")
    card = ModelCard.load(card_file)
    content = args.model.read_bytes()
    if card.sha256 and hashlib.sha256(content).hexdigest() != card.sha256:
        raise ValueError(f"{args.model}: its sha256 differs from the card's: the card belongs to another file")
    updated = add_metadata(content, card)
    card.sha256 = hashlib.sha256(updated).hexdigest()
    tmp = args.model.with_name(args.model.name + ".tmp")
    tmp.write_bytes(updated)
    card.write(card_file)
    os.replace(tmp, args.model)
    print(f"{args.model}: labels ({', '.join(card.labels)}) and input normalisation written as TFLite metadata; "
          f"{card_file.name} updated (sha256 {card.sha256[:12]}...)")
    return 0


def _train(args) -> int:
    return {"face": _train_face, "speech": _train_speech, "fusion": _train_fusion, "blend": _train_blend,
            "ensemble": _train_ensemble}[args.model](args)


def _train_blend(args) -> int:
    from affectlite_convert.training.blend import blend_speech

    out = blend_speech(args.run, args.base, args.share, args.data, args.cache or args.run.parent / "speech-cache")
    print(f"blended {args.share:g} x {args.run / 'final.keras'} + {1 - args.share:g} x {args.base}, calibrated: {out}\n"
          + _next_speech_convert(out, args.run))
    return 0


def _train_ensemble(args) -> int:
    from affectlite_convert.training.ensemble import average_speech_runs

    out = average_speech_runs(args.run, args.out)
    print(f"averaged the probabilities of {len(args.run)} runs: {out}\n" + _next_speech_convert(out, args.out))
    return 0


def _next_speech_convert(model: Path, run: Path) -> str:
    """The command that turns a speech run's model into what the device runs."""
    return (f"next: {PROG} convert {model} --input-kind features --task speech-emotion --calibration "
            f"{run / 'calibration.npz'} --training-info {run} --out speech_emotion_int8.tflite")


def _train_fusion(args) -> int:
    import numpy as np

    from affectlite.classifiers.expression import BUNDLED_MODEL as FACE_MODEL
    from affectlite.classifiers.speech import BUNDLED_MODEL as SPEECH_MODEL
    from affectlite_convert.data.faces import load_face_npz
    from affectlite_convert.data.pairs import PairingOptions, save_sequences
    from affectlite_convert.training.train_fusion import (FusionRecipe, cards_reliability, out_of_fold_voices,
                                                          split_faces, train_fusion, unheard_voices)

    recipe = FusionRecipe(epochs=args.epochs, recorded_copies=args.recorded_copies,
                          pairing=PairingOptions(voice_jitter=args.voice_jitter, neutral_share=args.neutral_share))
    face_model, speech_model = args.face_model or FACE_MODEL, args.speech_model or SPEECH_MODEL
    verbose = 1 if sys.stdout.isatty() else 2
    if args.av_corpus is not None:
        from tqdm import tqdm

        from affectlite_convert.training.train_fusion import train_fusion_av

        final, figures, (x_eval, y_eval) = train_fusion_av(
            args.av_corpus, face_model, speech_model, args.out, recipe,
            resume=args.resume, verbose=verbose,
            progress=lambda clips: tqdm(clips, desc="clips", unit="clip", disable=not sys.stderr.isatty()))
    else:
        faces_train, faces_eval = split_faces(load_face_npz(args.faces))
        voices, held_voices = unheard_voices(speech_model, args.speech, recipe, args.cache or args.out.parent / "speech-cache")
        if args.speech_folds:
            from affectlite_convert.training.train_speech import corpus_root

            voices = out_of_fold_voices(args.speech_folds, corpus_root(args.speech, "ravdess", single=True)) + voices
        final, figures, (x_eval, y_eval) = train_fusion(faces_train, faces_eval, voices, held_voices, face_model,
                                                        speech_model, args.out, recipe, resume=args.resume,
                                                        verbose=verbose)
    np.savez(args.out / "calibration.npz", x=x_eval[:500])
    save_sequences(args.out / "held_out.npz", x_eval, y_eval, cards_reliability(face_model, speech_model))
    validation = json.loads((args.out / "state.json").read_text()).get("validation_report")
    if validation:
        print("validation pairs (choose recipes on these), accuracy: "
              + ", ".join(f"{k} {100 * v:.1f} %" for k, v in validation.items()))
    print("held-out pairs, accuracy: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in figures.items()))
    print(f"trained model: {final}\nnext: {PROG} convert {final} --input-kind features --task fusion "
          f"--calibration {args.out / 'calibration.npz'} --training-info {args.out} --out fusion_int8.tflite")
    return 0


def _train_speech(args) -> int:
    from dataclasses import replace

    import numpy as np
    from tqdm import tqdm

    from affectlite_convert.training.train_speech import MULTI_CORPUS, SpeechRecipe, load_training_data, train_speech

    recipe = MULTI_CORPUS if args.recipe == "multi" else SpeechRecipe()
    if args.epochs is not None:
        recipe = replace(recipe, epochs=args.epochs)
    if args.learning_rate is not None:
        recipe = replace(recipe, learning_rate=args.learning_rate)
    if args.seed is not None:
        recipe = replace(recipe, seed=args.seed)
    if args.dynamic_range_db is not None:
        if args.dynamic_range_db <= 0:
            raise ValueError(f"--dynamic-range-db must be above 0, got {args.dynamic_range_db}")
        recipe = replace(recipe, dynamic_range_db=args.dynamic_range_db)
    if args.short_utterances is not None:
        if not 0 <= args.short_utterances <= 1:
            raise ValueError(f"--short-utterances is a share of the simulated recordings, 0..1; got "
                             f"{args.short_utterances}")
        if not recipe.recorded_copies:
            raise ValueError("--short-utterances cuts simulated recordings, and this recipe has none (use --recipe multi)")
        recipe = replace(recipe, short_utterances=args.short_utterances)
    if args.corpus_weights:
        recipe = replace(recipe, corpus_weights=tuple(p.strip() for p in args.corpus_weights.split(",") if p.strip()))
    if args.widths:
        try:
            widths = tuple(int(w) for w in args.widths.split(","))
        except ValueError:
            raise ValueError(f"--widths takes whole numbers separated by commas, e.g. 32,64,128,256; got "
                             f"{args.widths!r}") from None
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"--widths needs at least two blocks of at least one channel, got {args.widths!r}")
        recipe = replace(recipe, model=replace(recipe.model, widths=widths))
    if args.init is not None:
        if not args.init.exists():
            raise FileNotFoundError(f"--init {args.init}: no such file")
        recipe = replace(recipe, init=str(args.init))
    if args.teacher:
        if not 0.0 < args.distill <= 1.0:
            raise ValueError(f"--distill must be above 0 and at most 1, got {args.distill}")
        missing = [str(t) for t in args.teacher if not t.exists()]
        if missing:
            raise FileNotFoundError(f"--teacher {', '.join(missing)}: no such file")
        recipe = replace(recipe, teachers=tuple(str(t.resolve()) for t in args.teacher), distill_weight=args.distill)
    if args.corpora:
        recipe = replace(recipe, corpora=tuple(c.strip() for c in args.corpora.split(",") if c.strip()))
    if args.val_speakers is not None:
        recipe = replace(recipe, val_speakers=tuple(v.strip() for v in args.val_speakers.split(",") if v.strip()))
    recipe = replace(recipe, val_speakers=tuple(v for v in recipe.val_speakers if v.split(":")[0] in recipe.corpora))
    verbose = 1 if sys.stdout.isatty() else 2
    if args.folds is not None:
        from affectlite_convert.training.train_speech import train_speech_folds

        for held, final in train_speech_folds(args.data, args.out, recipe, args.folds, args.resume, verbose):
            print(f"fold model for actors {list(held)}: {final}")
        print(f"next: {PROG} train fusion --speech-folds {args.out} --out runs/fusion")
        return 0
    cache = args.cache or args.out.parent / "speech-cache"
    progress = lambda rows: tqdm(rows, desc="simulated recordings", unit="clip",  # noqa: E731
                                 disable=not sys.stderr.isatty())
    final = train_speech(args.data, args.out, recipe, resume=args.resume, verbose=verbose, cache=cache,
                         progress=progress)
    state = json.loads((args.out / "state.json").read_text())
    import keras

    from affectlite_convert.calibration import fold_temperature

    model = keras.models.load_model(final, compile=False)
    fold_temperature(model, state["temperature"])
    deploy = args.out / "speech_emotion.keras"
    model.save(deploy)
    print(f"temperature {state['temperature']:.3f} (fitted on the validation speakers) folded into {deploy}")
    train_sets, _, _ = load_training_data(args.data, recipe, cache)
    windows = np.concatenate([s.windows for s in train_sets])
    pick = np.random.default_rng(0).permutation(len(windows))[:500]
    calibration = args.out / "calibration.npz"
    np.savez(calibration, x=windows[pick].astype(np.float32)[..., None])
    print(f"trained model: {deploy}\n" + _next_speech_convert(deploy, args.out))
    return 0


def _train_face(args) -> int:
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
                        distill_weight=args.distill if args.teacher else 0.0,
                        warmup_epochs=args.warmup_epochs, init=str(args.init.resolve()) if args.init else "",
                        new_set=str(args.new_set) if args.new_set else "",
                        new_set_smoothing=args.new_set_smoothing if args.new_set else FaceRecipe.new_set_smoothing,
                        mask_probability=args.mask_probability if args.new_set else 0.0,
                        blur_probability=args.blur_probability if args.new_set else 0.0)
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


def _training_info(path: Path | None) -> dict:
    if path is None:
        return {}
    if path.is_dir():
        from affectlite_convert.training.run import training_info

        return training_info(path)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read training info ({exc})") from exc


def _convert(args) -> int:
    from affectlite.labels import EMOTIONS
    from affectlite_convert.converter import ConvertOptions, convert

    if args.quant != "int8" and args.calibration is not None:
        raise ValueError("--calibration applies to --quant int8 only")
    training = _training_info(args.training_info)
    options = ConvertOptions(
        quant=args.quant, io_type=args.io_type, input_shape=args.input_shape, value_range=args.input_range,
        labels=args.labels or list(EMOTIONS), valence=args.valence, calibration_samples=args.calibration_samples,
        input_kind=args.input_kind,
        name=args.name, task=args.task, training_data=training, notes=args.note,
        # a speech run's windows travel with its model: the device computes them from the card
        dynamic_range_db=training.get("recipe", {}).get("dynamic_range_db"),
    )
    card = convert(args.model, args.out, options, args.calibration)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB, {card.quantization}, input "
          f"{card.input.shape} {card.input.dtype}) and its card {args.out.with_suffix('.json').name} / .md")
    check = card.converter.get("agreement")
    if check:
        same = check["same_top_class"]
        share = "n/a (every input was a near tie)" if same is None else f"{100 * same:.1f} %"
        print(f"against the source model on {check['inputs']} calibration inputs: same top class on {share} of the "
              f"{check['clear_inputs']} without a near tie, largest output difference "
              f"{check['largest_output_difference']:.3f}")
        if (same is not None and same < 0.9) or check["largest_output_difference"] > 0.25:
            print("WARNING: the converted model often answers differently from its source: check that the "
                  "calibration data is what the model will see, then `affectlite-convert evaluate` both models")
    return 0


def _evaluate(args) -> int:
    from affectlite.labels import EMOTIONS
    from affectlite.models.card import ModelCard, card_path_for
    from affectlite_convert.data.faces import load_face_npz
    from affectlite_convert.data.pairs import is_sequence_file, load_sequences
    from affectlite_convert.evaluate import evaluate, plot_confusion

    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
    faces = None
    if args.data.is_dir() and any((args.data / name / "manifest.csv").exists() for name in ("ravdess", "emovo", "turev-db")):
        return _evaluate_speech_corpora(args)
    if args.data.is_dir() and not (args.data / "manifest.csv").exists():
        from affectlite_convert.data.images import load_class_folders

        faces = load_class_folders(args.data, EMOTIONS)
    elif args.data.is_dir():
        from affectlite_convert.data.speech import load_speech
        from affectlite_convert.evaluate import evaluate_speech

        first, _, last = args.actors.partition("-")
        try:
            actors = list(range(int(first), int(last or first) + 1))
        except ValueError:
            raise ValueError(f"--actors must be N or N-M, got {args.actors!r}") from None
        from affectlite_convert.evaluate import model_windows

        speech = load_speech(args.data, actors, model_windows(args.models))
        run = lambda path: evaluate_speech(path, speech)  # noqa: E731
    elif is_sequence_file(args.data):
        from affectlite_convert.evaluate import evaluate_fusion

        x, y, reliability = load_sequences(args.data)
        run = lambda path: evaluate_fusion(path, x, y, reliability)  # noqa: E731
    else:
        faces = _with_votes(load_face_npz(args.data), args.data, args.votes)
    if args.part is not None:
        if faces is None:
            raise ValueError("--part applies to face data (.npz or class folders) only")
        from affectlite_convert.data.faces import holdout_part

        faces = holdout_part(faces, args.part)
    if faces is not None:
        run = lambda path: evaluate(path, faces, args.labels or EMOTIONS, args.input_range)  # noqa: E731
    results = []
    for path in args.models:
        result = run(path)
        results.append(result)
        print(result.render())
        if args.plots is None:
            print()
            continue
        print(f"  plot: {plot_confusion(result, args.plots / (path.stem + '_confusion.png'))}")
        if result.crowd:
            from affectlite_convert.evaluate import plot_reliability

            print(f"  plot: {plot_confusion(result.crowd.majority, args.plots / (path.stem + '_ferplus_confusion.png'))}")
            print(f"  plot: {plot_reliability(result.crowd, args.plots / (path.stem + '_reliability.png'))}")
        print()
    base = results[0]
    for result in results[1:]:
        print(f"{result.model} - {base.model}: accuracy {100 * (result.accuracy - base.accuracy):+.2f} points, "
              f"macro recall {100 * (result.macro_recall - base.macro_recall):+.2f} points")
    if args.record:
        command = " ".join([PROG] + [shlex.quote(a) for a in sys.argv[1:]])
        for path, result in zip(args.models, results):
            card_file = card_path_for(path)
            if path.suffix != ".tflite" or not card_file.exists():
                continue
            card = ModelCard.load(card_file)
            entry = result.as_dict() | {"command": command}
            if result is not base:
                entry["compared_with"] = {"model": base.model, **base.as_dict()}
                entry["difference_points"] = {
                    "accuracy": round(100 * (result.accuracy - base.accuracy), 2),
                    "macro_recall": round(100 * (result.macro_recall - base.macro_recall), 2),
                }
            key = Path(args.data).stem + (f"_actors_{args.actors}" if args.data.is_dir() else "") + (
                f"_{args.part}" if args.part else "")
            card.metrics[key] = entry
            if result.crowd is not None and card.task == "facial-expression":
                card.metrics["reliability"] = {
                    "value": round(result.crowd.majority.accuracy, 4),
                    "measured_on": f"{key}: accuracy against the FER+ raters' majority ({result.crowd.majority.n} images)",
                    "used_for": "the face's weight in late fusion (affectlite.fusion.late)"}
            card.write(card_file)
            print(f"recorded in {card_file}")
    return 0


def _evaluate_speech_corpora(args) -> int:
    from affectlite.models.card import ModelCard, card_path_for
    from affectlite_convert.evaluate import render_speech_table, speech_table

    crema_d = args.crema_d if args.crema_d and args.crema_d.is_dir() else None
    for path in args.models:
        table = speech_table(path, args.data, crema_d)
        print(render_speech_table(path.name, table) + "\n")
        card_file = card_path_for(path)
        if args.record and path.suffix == ".tflite" and card_file.exists():
            card = ModelCard.load(card_file)
            card.metrics["speech_corpora"] = table | {"command": " ".join([PROG] + [shlex.quote(a) for a in sys.argv[1:]])}
            rows = table["corpora"]
            card.metrics["reliability"] = {
                "value": round(sum(r["accuracy"] for r in rows.values()) / len(rows), 4),
                "measured_on": "mean clip accuracy over " + ", ".join(
                    f"{name} ({'left out' if r['left_out_of_training'] else 'held-out speakers'})"
                    for name, r in rows.items()),
                "used_for": "the voice's weight in late fusion (affectlite.fusion.late)"}
            card.write(card_file)
            print(f"recorded in {card_file}")
    return 0


def _with_votes(data, data_path: Path, votes_path: Path | None):
    """Attach FER+ votes: the given file, else ``ferplus_votes.npz`` beside a FER2013 file."""
    from affectlite_convert.data.faces import FaceSet
    from affectlite_convert.data.ferplus import SPLIT_OF_FILE, votes_for

    if votes_path is None:
        beside = data_path.with_name("ferplus_votes.npz")
        if data_path.stem not in SPLIT_OF_FILE or not beside.exists():
            return data
        votes_path = beside
    return FaceSet(data.x, data.y, data.source, votes_for(data_path, votes_path, len(data)))


def _edgetpu_check(args) -> int:
    from dataclasses import asdict

    from affectlite_convert.edgetpu.check import check_model
    from affectlite_convert.edgetpu.compiler import COMPILER, find_compiler, run_compiler

    report = check_model(args.model)
    ok = report.fully_mappable
    compiler: dict = {"ran": False}
    if args.no_compiler:
        compiler["why_not"] = "--no-compiler"
    elif find_compiler() is None:
        compiler["why_not"] = "not installed here; it ships for x86-64 Debian/Ubuntu in Coral's apt repository"
    else:
        log = run_compiler(args.model)
        compiler = {"ran": True, "version": log.version, "mapped": log.mapped, "unmapped": log.unmapped,
                    "rows": [asdict(row) for row in log.rows], "errors": log.errors}
        ok = ok and not log.errors and log.unmapped == 0
    if args.json:
        print(json.dumps({"model": str(args.model), "fully_mappable": ok, "ops_on_edgetpu": report.mapped,
                          "ops_on_cpu": report.on_cpu, "model_problems": report.model_problems,
                          "ops": [asdict(op) for op in report.ops], "compiler": compiler}, indent=2))
        return 0 if ok else 1
    print(report.render())
    if not compiler["ran"]:
        print(f"\n{COMPILER}: not run ({compiler['why_not']}), so this verdict comes from the rules above only")
    else:
        print(f"\n{COMPILER} {compiler['version']}: {compiler['mapped']} ops mapped to the Edge TPU, "
              f"{compiler['unmapped']} on the CPU")
        for row in compiler["rows"]:
            print(f"  {row['op']:<30} {row['count']:>4}  {row['status']}")
        for error in compiler["errors"]:
            print(f"  {error}")
    return 0 if ok else 1


def _explain(args) -> int:
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


def main(argv: list[str] | None = None) -> int:
    from affectlite.cli import set_verbosity

    parser = build_parser()
    args = parser.parse_args(argv)
    set_verbosity(args)
    if args.command in ("train", "convert", "evaluate", "explain"):
        import importlib.util

        from affectlite.runtime.quiet import import_tensorflow_quietly

        if importlib.util.find_spec("tensorflow") is None:
            print(f"{PROG}: error: `{PROG} {args.command}` needs TensorFlow, which this Python does not have; install "
                  "the workstation toolchain with: pip install 'affectlite[convert]' (a device needs only affectlite)",
                  file=sys.stderr)
            return 2
        import_tensorflow_quietly()
    handlers = {"train": _train, "convert": _convert, "evaluate": _evaluate, "edgetpu-check": _edgetpu_check,
                "explain": _explain, "metadata": _metadata}
    try:
        return handlers[args.command](args)
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
