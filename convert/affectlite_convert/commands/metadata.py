"""`metadata`: a card's labels and input normalisation written into its .tflite as TFLite metadata."""

from __future__ import annotations

import os
from pathlib import Path



def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    meta = add(parent, "metadata", "write a model card's labels and input normalisation into its .tflite as "
                                "standard TFLite metadata (convert does this for new models)",
               ["affectlite-convert metadata face_expression_int8.tflite"])
    meta.add_argument("model", type=Path, help="a .tflite with its card (.json) beside it; the card's sha256 is "
                                               "updated to the new file")
    meta.set_defaults(handler=run)


def run(args) -> int:
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
