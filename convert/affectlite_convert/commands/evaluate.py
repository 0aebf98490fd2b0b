"""`evaluate`: accuracy, recall, calibration and confusion matrices of models on labelled data."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from affectlite_convert.commands._common import PROG, pair, label_list
from affectlite_convert.portable import portable


def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    ev = add(parent, "evaluate", "accuracy, recall, calibration and confusion matrices on labelled data",
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
    ev.add_argument("--labels", type=label_list, help="output labels of Keras models (TFLite: from the card)")
    ev.add_argument("--input-range", type=pair, default=(0.0, 1.0), help="input range of Keras models")
    ev.add_argument("--part", choices=["report", "choose", "train"],
                    help="score one part of a face set split by image (a set with no subject ids, e.g. "
                         "affectnet7_train.npz, as `train face --new-set` splits it); default: the whole file")
    ev.add_argument("--record", action="store_true",
                    help="write the figures and this command into each TFLite model's card")
    ev.set_defaults(handler=run)


def run(args) -> int:
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
        command = portable(" ".join([PROG] + [shlex.quote(a) for a in sys.argv[1:]]))
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
            card.metrics["speech_corpora"] = table | {
                "command": portable(" ".join([PROG] + [shlex.quote(a) for a in sys.argv[1:]]))}
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
