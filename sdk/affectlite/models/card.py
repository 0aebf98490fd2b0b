"""Model cards: what a model expects and what it was measured to do, next to the ``.tflite``.

The JSON file is for programs (the runtime reads the input format and labels from it, never from
guesses); the Markdown file is the same content for people. Both are written from one
:class:`ModelCard`, so they cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CARD_VERSION = 1


@dataclass
class InputSpec:
    """How to turn a face crop (or a feature window) into the model's input tensor."""

    shape: list[int]                 # e.g. [1, 48, 48, 1], static, batch 1
    dtype: str                       # "int8", "uint8" or "float32"
    color: str = "grayscale"         # "grayscale", "rgb" or "features"
    value_range: list[float] = field(default_factory=lambda: [0.0, 1.0])  # float range before quantization
    scale: float | None = None       # quantization of the tensor (None for float tensors)
    zero_point: int | None = None
    #: Feature models: each window clamped at this many dB below its loudest value before
    #: normalising (affectlite.audio.voice.WindowSpec); None for models trained without it.
    dynamic_range_db: float | None = None


@dataclass
class OutputSpec:
    shape: list[int]
    dtype: str
    kind: str = "probabilities"      # softmax output in label order
    scale: float | None = None
    zero_point: int | None = None


@dataclass
class ModelCard:
    name: str
    task: str                        # "facial-expression", "speech-emotion", "fusion", "custom"
    labels: list[str]
    input: InputSpec
    output: OutputSpec
    quantization: str                # "float32", "dynamic" or "int8"
    file: str                        # the .tflite file name, relative to the card
    sha256: str
    training_data: dict[str, Any] = field(default_factory=dict)   # name, licence, splits
    metrics: dict[str, Any] = field(default_factory=dict)         # measured figures + the command
    source_model: str | None = None
    converter: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Each label's valence (positive, negative, neutral) where it is not one of the seven
    #: emotions' (affectlite.labels.VALENCE) or should differ; a label given none is neutral.
    valence: dict[str, str] = field(default_factory=dict)
    #: What the model is for, what it must not be used for, and what it gets wrong: read before
    #: deploying it (written by the toolchain per task, see affectlite_convert.scope).
    intended_use: str = ""
    out_of_scope: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    #: Earlier versions of this model and their headline figures, newest first.
    history: list[dict[str, Any]] = field(default_factory=list)
    card_version: int = CARD_VERSION

    # -- files -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "ModelCard":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable model card ({exc})") from exc
        try:
            data = dict(data)
            data["input"] = InputSpec(**data["input"])
            data["output"] = OutputSpec(**data["output"])
            return cls(**data)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: model card is missing or has unknown fields ({exc})") from exc

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def to_markdown(self, width: int = 100) -> str:
        """The card for people: lists wrapped at ``width``, per-class recall as tables."""
        q = self.input
        bullet = lambda text: textwrap.fill(str(text), width, initial_indent="- ", subsequent_indent="  ")  # noqa: E731
        lines = [
            f"# Model card: {self.name}",
            "",
            bullet(f"Task: {self.task}"),
            bullet(f"File: `{self.file}` (sha256 `{self.sha256}`)"),
            bullet(f"Quantization: {self.quantization}"),
            bullet(f"Labels, in output order: {', '.join(self.labels)}"),
        ]
        if self.valence:
            lines.append(bullet(f"Valence: {', '.join(f'{k} {v}' for k, v in self.valence.items())}"))
        if self.intended_use:
            lines += ["", "## Intended use", "", textwrap.fill(self.intended_use, width)]
        if self.out_of_scope:
            lines += ["", "## Out of scope"] + [bullet(item) for item in self.out_of_scope]
        if self.limitations:
            lines += ["", "## Limitations"] + [bullet(item) for item in self.limitations]
        lines += [
            "",
            "## Input",
            bullet(f"Tensor: shape {q.shape}, {q.dtype}, {q.color}"),
            bullet(f"Values: floats in [{q.value_range[0]}, {q.value_range[1]}]"
                   + (f", quantized as q = round(v / {q.scale:.8g}) + {q.zero_point}" if q.scale else "")),
        ]
        if q.dynamic_range_db is not None:
            lines.append(bullet(f"Feature windows clamped at {q.dynamic_range_db:g} dB below their loudest value "
                                "before normalising (affectlite.audio.voice.WindowSpec.dynamic_range_db)"))
        lines += [
            "",
            "## Output",
            bullet(f"Tensor: shape {self.output.shape}, {self.output.dtype}, {self.output.kind}"
                   + (f"; v = (q - {self.output.zero_point}) * {self.output.scale:.8g}" if self.output.scale else "")),
        ]
        if self.metrics:
            recall_rows = _recall_rows(self.metrics)
            if recall_rows:
                lines += ["", "## Per-class recall", "", "| data | n | accuracy | macro recall | "
                          + " | ".join(self.labels) + " |", "|---|---|---|---|" + "---|" * len(self.labels)]
                lines += [f"| {name} | {row['n']} | {100 * row['accuracy']:.1f} % | {100 * row['macro_recall']:.1f} % | "
                          + " | ".join(f"{100 * row['per_class_recall'].get(k, float('nan')):.1f}" for k in self.labels)
                          + " |" for name, row in recall_rows]
            lines += ["", "## Metrics"] + [bullet(f"{k}: {_fmt(v)}") for k, v in self.metrics.items()]
        if self.history:
            lines += ["", "## Earlier versions"] + [bullet(_fmt(entry)) for entry in self.history]
        if self.training_data:
            lines += ["", "## Training data"] + [bullet(f"{k}: {_fmt(v)}") for k, v in self.training_data.items()]
        if self.converter:
            lines += ["", "## Conversion"] + [bullet(f"{k}: {_fmt(v)}") for k, v in self.converter.items()]
        if self.notes:
            lines += ["", "## Notes"] + [bullet(n) for n in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, json_path: str | Path) -> tuple[Path, Path]:
        """Write ``NAME.json`` and ``NAME.md`` atomically (never a half-written card)."""
        json_path = Path(json_path)
        md_path = json_path.with_suffix(".md")
        for path, text in ((json_path, self.to_json()), (md_path, self.to_markdown())):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        return json_path, md_path


def card_for_model(model_path: str | Path, what: str = "model") -> ModelCard:
    """The card beside a model file, after checking that the card describes *this* file.

    A model whose bytes were damaged or swapped still loads and still answers - wrongly (2,000
    flipped bytes in the face model's weights turned the happy sample clip sad) - so every load
    compares the file's sha256 with the card's; hashing a 1 MB model takes a few milliseconds.
    An Edge TPU twin (``*_edgetpu.tflite``, compiled on the user's machine) shares its CPU model's
    card and is not checked against it."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ValueError(f"{model_path}: no such {what} file")
    card_file = card_path_for(model_path)
    if not card_file.exists():
        raise ValueError(f"{model_path}: no model card {card_file.name} beside it; convert the model with "
                         "affectlite-convert, which writes one")
    card = ModelCard.load(card_file)
    if card.sha256 and not model_path.stem.endswith("_edgetpu"):
        digest = file_sha256(model_path)
        if digest != card.sha256:
            raise ValueError(f"{model_path}: its sha256 {digest} is not the one its card {card_file.name} gives "
                             f"({card.sha256}): the card belongs to another model, or the file was changed or "
                             "damaged after the card was written; copy the model and its card again, or convert it "
                             "again with affectlite-convert for a matching card")
    return card


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_path_for(model_path: str | Path) -> Path:
    """``face.tflite`` -> ``face.json``; an Edge TPU twin ``face_edgetpu.tflite`` shares the card."""
    model_path = Path(model_path)
    stem = model_path.stem.removesuffix("_edgetpu")
    return model_path.with_name(stem + ".json")


def _recall_rows(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, figures) for each measured data set with per-class recall, and its FER+-majority part."""
    rows = []
    for name, entry in metrics.items():
        if isinstance(entry, dict) and isinstance(entry.get("per_class_recall"), dict):
            rows.append((name, entry))
            if isinstance(entry.get("ferplus_majority"), dict):
                rows.append((f"{name}, FER+ raters' majority", entry["ferplus_majority"]))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        # records (an ensemble's members) hold commas and semicolons of their own
        return (" | " if any(isinstance(v, dict) for v in value) else ", ").join(_fmt(v) for v in value)
    return str(value)
