"""`train speech`: the speech-emotion CNN on one or several corpora, split by speaker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from affectlite_convert.commands._common import PROG, next_speech_convert


def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    speech = add(parent, "speech", "the speech-emotion CNN on one or several corpora, split by speaker",
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
    speech.set_defaults(handler=run)


def run(args) -> int:
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
    print(f"trained model: {deploy}\n" + next_speech_convert(deploy, args.out))
    return 0
