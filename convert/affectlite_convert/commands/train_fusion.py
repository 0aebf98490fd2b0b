"""`train fusion`: the audio-visual fusion LSTM on label-paired sequences or real clips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from affectlite_convert.commands._common import PROG


def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    fusion = add(parent, "fusion", "the audio-visual fusion LSTM on label-paired sequences",
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
    fusion.set_defaults(handler=run)


def run(args) -> int:
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
