"""`convert`: a Keras model or SavedModel to TFLite (float32, dynamic or int8) with its model card."""

from __future__ import annotations

import json
from pathlib import Path

from affectlite_convert.commands._common import pair, shape, valence_pairs, label_list
from affectlite_convert.portable import portable


def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    conv = add(parent, "convert", "Keras/SavedModel to TFLite with a model card",
               ["affectlite-convert convert my_model.keras --calibration faces/ --out my_model_int8.tflite",
                "affectlite-convert convert my_model.keras --input-range 0,255 --labels neg,neu,pos --out m.tflite"])
    conv.add_argument("model", type=Path, help=".keras, .h5 or a SavedModel folder")
    conv.add_argument("--out", type=Path, required=True, help="output .tflite (the card goes beside it)")
    conv.add_argument("--quant", choices=["float32", "dynamic", "int8"], default="int8")
    conv.add_argument("--calibration", type=Path, help=".npz with 'x' or a folder of images (int8 only)")
    conv.add_argument("--io-type", choices=["int8", "uint8"], default="int8",
                      help="input/output tensor type of an int8 model")
    conv.add_argument("--input-shape", type=shape, help="HxWxC when the model leaves them free")
    conv.add_argument("--input-range", type=pair, default=(0.0, 1.0),
                      help="float range the model expects for pixels 0..255: 0,1 (pixels / 255), -1,1, or 0,255 "
                           "for a model that starts with its own Rescaling/Normalization layer (such a model is "
                           "refused with anything else)")
    conv.add_argument("--labels", type=label_list, help="output labels in order (default: affectlite's seven)")
    conv.add_argument("--valence", type=valence_pairs, default={},
                      help="valence of labels that are not among the seven emotions, e.g. "
                           "bored=negative,engaged=positive (others: the emotions' own, else neutral); "
                           "the device's negative-valence alerts follow it")
    conv.add_argument("--calibration-samples", type=int, default=500)
    conv.add_argument("--input-kind", choices=["image", "features"], default="image",
                      help="features: float tensors (e.g. log-mel windows) calibrated from an .npz 'x'")
    conv.add_argument("--name", help="model name for the card")
    conv.add_argument("--task", default="facial-expression")
    conv.add_argument("--note", action="append", default=[], help="a line for the card's notes (repeatable)")
    conv.add_argument("--intended-use", default="",
                      help="what the model is for, for the card (default: the task's text; a custom task: none)")
    conv.add_argument("--limitation", action="append", default=[],
                      help="a limitation for the card, beside the task's own (repeatable)")
    conv.add_argument("--training-info", type=Path,
                      help="JSON file (or a training run folder) describing the training data for the card")
    conv.set_defaults(handler=run)


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
def run(args) -> int:
    from affectlite.labels import EMOTIONS
    from affectlite_convert.converter import ConvertOptions, convert

    if args.quant != "int8" and args.calibration is not None:
        raise ValueError("--calibration applies to --quant int8 only")
    training = portable(_training_info(args.training_info))
    options = ConvertOptions(
        quant=args.quant, io_type=args.io_type, input_shape=args.input_shape, value_range=args.input_range,
        labels=args.labels or list(EMOTIONS), valence=args.valence, calibration_samples=args.calibration_samples,
        input_kind=args.input_kind,
        name=args.name, task=args.task, training_data=training, notes=args.note,
        intended_use=args.intended_use, limitations=args.limitation,
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
