"""Accuracy, macro recall, per-class recall and the confusion matrix, for Keras and TFLite alike.

A TFLite model is run by the same interpreter and input preparation that the device uses, with
the labels and value range from its model card, so the figures describe the shipped model.
Face data with FER+ votes attached is also scored against the raters: accuracy and recall
against their majority, and whether the probabilities are calibrated (ECE, cross-entropy to the
vote distributions, a reliability diagram).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectlite.audio.voice import WindowSpec
from affectlite.fusion.late import Reliability as FusionReliability, late_fusion
from affectlite.labels import EMOTIONS, reorder_probabilities
from affectlite.models.card import ModelCard, card_path_for
from affectlite.runtime import adapters
from affectlite.runtime.interpreter import make_interpreter
from affectlite_convert.calibration import Reliability, cross_entropy, reliability
from affectlite_convert.data.faces import FaceSet
from affectlite_convert.data.images import to_model_input
from affectlite_convert.data.pairs import remove_modality


@dataclass
class CrowdFigures:
    """A face model against the FER+ raters (rows whose majority is one of the seven labels)."""

    majority: "Evaluation"           # accuracy, recalls and confusion against the raters' majority
    ece: float                       # expected calibration error of the top class against the majority
    cross_entropy: float             # mean cross-entropy from the vote distributions to the model
    reliability: Reliability

    def as_dict(self) -> dict:
        return self.majority.as_dict() | {"ece": round(self.ece, 4), "cross_entropy_to_votes": round(self.cross_entropy, 4)}

    def render(self) -> str:
        m = self.majority
        return "\n".join([
            f"  against the FER+ raters' majority ({m.n} images; contempt, unknown and not-a-face left out):",
            f"    accuracy      {100 * m.accuracy:6.2f} %",
            f"    macro recall  {100 * m.macro_recall:6.2f} %",
            "    per-class recall: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in m.per_class_recall.items()),
            f"    calibration: ECE {self.ece:.4f}, cross-entropy to the votes {self.cross_entropy:.4f} nats",
        ])


def crowd_figures(probs: np.ndarray, votes, model: str) -> CrowdFigures:
    """``votes``: :class:`affectlite_convert.data.ferplus.Votes` row-aligned with ``probs``."""
    usable = votes.usable
    probs, majority = probs[usable], votes.majority()[usable]
    table = reliability(probs, majority)
    return CrowdFigures(metrics(majority, probs.argmax(axis=1), f"{model} against the FER+ majority"), table.ece,
                        cross_entropy(probs, votes.distribution()[usable]), table)


@dataclass
class Evaluation:
    model: str
    n: int
    accuracy: float
    macro_recall: float
    per_class_recall: dict[str, float]
    confusion: np.ndarray            # rows: true label, columns: predicted, in EMOTIONS order
    #: For a fusion model: what it has to beat on the same data (:func:`fusion_report`).
    contenders: dict[str, float] = field(default_factory=dict)
    #: For face data with FER+ votes: the figures against the raters.
    crowd: CrowdFigures | None = None

    def as_dict(self) -> dict:
        figures = {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "macro_recall": round(self.macro_recall, 4),
            "per_class_recall": {k: round(v, 4) for k, v in self.per_class_recall.items()},
        }
        return (figures | ({"contenders": self.contenders} if self.contenders else {})
                | ({"ferplus_majority": self.crowd.as_dict()} if self.crowd else {}))

    def render(self) -> str:
        width = max(len(name) for name in EMOTIONS)
        lines = [
            f"{self.model}: {self.n} {'sequences' if self.contenders else 'samples'}",
            f"  accuracy      {100 * self.accuracy:6.2f} %",
            f"  macro recall  {100 * self.macro_recall:6.2f} %",
            "  per-class recall: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in self.per_class_recall.items()),
            *([  "  on the same sequences: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in self.contenders.items())]
              if self.contenders else []),
            "  confusion matrix (rows true, columns predicted):",
            "  " + " " * width + "".join(f"{name[:7]:>8}" for name in EMOTIONS),
        ]
        for name, row in zip(EMOTIONS, self.confusion):
            lines.append(f"  {name:<{width}}" + "".join(f"{v:>8d}" for v in row))
        if self.crowd:
            lines.append(self.crowd.render())
        return "\n".join(lines)


def metrics(y_true: np.ndarray, y_pred: np.ndarray, model: str) -> Evaluation:
    k = len(EMOTIONS)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    support = confusion.sum(axis=1)
    recall = np.divide(np.diag(confusion), support, out=np.zeros(k), where=support > 0)
    present = support > 0
    return Evaluation(
        model=model,
        n=int(len(y_true)),
        accuracy=float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        macro_recall=float(recall[present].mean()) if present.any() else 0.0,
        per_class_recall={name: float(r) for name, r in zip(EMOTIONS, recall)},
        confusion=confusion,
    )


def predict_tflite(path: Path, images: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """Probabilities in :data:`EMOTIONS` order, one image at a time as on the device."""
    card_file = card_path_for(path)
    card = ModelCard.load(card_file) if card_file.exists() else None
    interpreter = make_interpreter(path, num_threads=num_threads)
    shape = adapters.input_details(interpreter)["shape"]
    value_range = tuple(card.input.value_range) if card else (0.0, 1.0)
    labels = card.labels if card else list(EMOTIONS)
    x = to_model_input(images, (int(shape[1]), int(shape[2])), int(shape[3]), value_range)
    probs = np.stack([adapters.run(interpreter, sample[None])[0] for sample in x])
    return reorder_probabilities(probs, labels)


def predict_keras(path: Path, images: np.ndarray, labels=EMOTIONS, value_range=(0.0, 1.0)) -> np.ndarray:
    from affectlite_convert.keras_io import load_model

    model = load_model(path)
    shape = model.input_shape
    size = (shape[1] or images.shape[1], shape[2] or images.shape[2])
    x = to_model_input(images, size, int(shape[3] or 1), value_range)
    probs = np.concatenate([np.asarray(model.fn(x[i:i + 256])) for i in range(0, len(x), 256)])
    return reorder_probabilities(probs, labels)


def predict(path: str | Path, images: np.ndarray, labels=EMOTIONS, value_range=(0.0, 1.0)) -> np.ndarray:
    path = Path(path)
    if path.suffix == ".tflite":
        return predict_tflite(path, images)
    return predict_keras(path, images, labels, value_range)


def evaluate(path: str | Path, data: FaceSet, labels=EMOTIONS, value_range=(0.0, 1.0)) -> Evaluation:
    """Figures against the data's labels and, when ``data.votes`` is attached, against the raters."""
    probs = predict(path, data.x, labels, value_range)
    result = metrics(data.y, probs.argmax(axis=1), Path(path).name)
    if data.votes is not None:
        result.crowd = crowd_figures(probs, data.votes, result.model)
    return result


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> Path:
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp)
    _pyplot().close(fig)
    tmp.replace(out)
    return out


def plot_reliability(crowd: CrowdFigures, out: str | Path) -> Path:
    """Reliability diagram: how often the raters' majority agreed with the top class, per
    confidence bin, against the diagonal of perfect calibration; bin sizes below."""
    plt = _pyplot()
    table = crowd.reliability
    centres = (table.edges[:-1] + table.edges[1:]) / 2
    width = table.edges[1] - table.edges[0]
    filled = table.counts > 0
    fig, (ax, bars) = plt.subplots(2, 1, figsize=(5.2, 6.0), dpi=110, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    ax.bar(centres[filled], table.accuracy[filled], width=width * 0.9, color="tab:blue", alpha=0.8,
           label="share the raters' majority agrees")
    ax.plot(centres[filled], table.confidence[filled], "o", color="tab:orange", markersize=4,
            label="mean confidence in the bin (the gap to the bar is the error)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("agreement with the FER+ majority")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{crowd.majority.model}\nECE {crowd.ece:.3f}, accuracy {100 * crowd.majority.accuracy:.1f} % "
                 f"({crowd.majority.n} images)", fontsize=9)
    bars.bar(centres, table.counts, width=width * 0.9, color="tab:grey")
    bars.set_xlabel("top-class probability")
    bars.set_ylabel("faces")
    fig.tight_layout()
    return _save(fig, Path(out))


def plot_confusion(evaluation: Evaluation, out: str | Path) -> Path:
    """Row-normalised confusion matrix as a PNG (counts in the cells)."""
    plt = _pyplot()
    out = Path(out)
    rows = evaluation.confusion.sum(axis=1, keepdims=True)
    share = np.divide(evaluation.confusion, rows, out=np.zeros_like(evaluation.confusion, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(j, i, f"{evaluation.confusion[i, j]}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(f"{evaluation.model}\naccuracy {100 * evaluation.accuracy:.1f} %, "
                 f"macro recall {100 * evaluation.macro_recall:.1f} %", fontsize=9)
    fig.tight_layout()
    return _save(fig, out)


def feature_predictor(path: str | Path):
    """A function from feature tensors (N, ...) to probabilities (N, 7), Keras or TFLite, with the
    model loaded once. A TFLite model runs one sample at a time from a blank state, as on the
    device (the fusion LSTM would otherwise carry one sequence over into the next)."""
    path = Path(path)
    if path.suffix == ".tflite":
        card_file = card_path_for(path)
        labels = ModelCard.load(card_file).labels if card_file.exists() else list(EMOTIONS)
        interpreter = make_interpreter(path)

        def run_tflite(x: np.ndarray) -> np.ndarray:
            probs = np.stack([adapters.run_from_blank_state(interpreter, sample[None])[0]
                              for sample in x.astype(np.float32)])
            return reorder_probabilities(probs, labels)

        return run_tflite
    from affectlite_convert.keras_io import load_model

    model = load_model(path)
    return lambda x: np.concatenate([np.asarray(model.fn(x[i:i + 256])) for i in range(0, len(x), 256)])


def predict_windows(path: str | Path, windows: np.ndarray) -> np.ndarray:
    """Probabilities (N, 7) for feature windows (N, frames, bands), Keras or TFLite."""
    return feature_predictor(path)(windows[..., None].astype(np.float32))


def evaluate_speech(path: str | Path, data) -> Evaluation:
    """Clip-level figures: each clip's windows are averaged, as the device averages over an utterance."""
    probs = predict_windows(path, data.windows)
    clip_probs = np.zeros((len(data.clip_labels), len(EMOTIONS)))
    np.add.at(clip_probs, data.clips, probs)
    return metrics(data.clip_labels, clip_probs.argmax(axis=1), Path(path).name)


# -- fusion models on held-out sequences ---------------------------------------------------------

def modality_means(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 7) mean face and voice probabilities over the steps that have them (zeros if none)."""
    face_on, voice_on = x[:, :, 7], x[:, :, 15]
    face = (x[:, :, 0:7] * face_on[..., None]).sum(1) / np.maximum(face_on.sum(1, keepdims=True), 1)
    voice = (x[:, :, 8:15] * voice_on[..., None]).sum(1) / np.maximum(voice_on.sum(1, keepdims=True), 1)
    return face, voice


def fusion_report(predict, x: np.ndarray, y: np.ndarray, reliability: FusionReliability = FusionReliability()) -> dict[str, float]:
    """Accuracy of every contender on the same held-out sequences: the face, the voice (a sequence
    with no sure voice counts as wrong), the weighted average as the device computes it with
    ``reliability`` (the models' cards), the learned model, and the learned model without each modality."""
    face, voice = modality_means(x)
    fused = np.stack([late_fusion(f, v, reliability) for f, v in zip(face, voice)])

    def accuracy(probs, present=True):
        return round(float(np.mean((np.argmax(probs, axis=1) == y) & present)), 4)

    def neutral_recall(probs):
        neutral = y == EMOTIONS.index("neutral")
        return round(float(np.mean(np.argmax(probs[neutral], axis=1) == y[neutral])), 4) if neutral.any() else 0.0

    lstm = predict(x)
    return {
        "face_only": accuracy(face, x[:, :, 7].any(axis=1)),
        "voice_only": accuracy(voice, x[:, :, 15].any(axis=1)),
        "late_fusion": accuracy(fused),
        "lstm": accuracy(lstm),
        "lstm_face_removed": accuracy(predict(remove_modality(x, "face"))),
        "lstm_voice_removed": accuracy(predict(remove_modality(x, "voice"))),
        # how often a neutral person stays neutral: the face's own rate is what fusion must keep
        "face_neutral_recall": neutral_recall(face),
        "late_fusion_neutral_recall": neutral_recall(fused),
        "lstm_neutral_recall": neutral_recall(lstm),
    }


def evaluate_fusion(path: str | Path, x: np.ndarray, y: np.ndarray,
                    reliability: FusionReliability = FusionReliability()) -> Evaluation:
    """The model's figures on the sequences, and every contender's beside it (:func:`fusion_report`)."""
    predict = feature_predictor(path)
    result = metrics(y, predict(x).argmax(axis=1), Path(path).name)
    result.contenders = fusion_report(predict, x, y, reliability)
    return result


# -- speech models across corpora -----------------------------------------------------------------

@dataclass
class CorpusFigures:
    """Clip-level figures of a speech model on one corpus's speakers it never heard."""

    corpus: str
    speakers: list
    clips: int
    accuracy: float
    uar: float                       # unweighted average recall over the labels the corpus has
    per_class_recall: dict[str, float]

    def as_dict(self) -> dict:
        return {"speakers": [str(s) for s in self.speakers], "clips": self.clips, "accuracy": round(self.accuracy, 4),
                "uar": round(self.uar, 4), "per_class_recall": {k: round(v, 4) for k, v in self.per_class_recall.items()}}


def clip_probabilities(predict, data) -> np.ndarray:
    """(clips, 7): each clip's windows averaged, as the device averages over an utterance."""
    probs = predict(data.windows[..., None].astype(np.float32))
    clip_probs = np.zeros((len(data.clip_labels), len(EMOTIONS)))
    np.add.at(clip_probs, data.clips, probs)
    counts = np.bincount(data.clips, minlength=len(data.clip_labels))[:, None]
    return clip_probs / np.maximum(counts, 1)


def corpus_figures(predict, data) -> CorpusFigures:
    """Accuracy and UAR over the labels the corpus has; the answer is the most probable of those
    labels (a 4-label corpus asks "which of these four", not "which of seven")."""
    mask = data.label_mask
    probs = clip_probabilities(predict, data) * mask
    result = metrics(data.clip_labels, probs.argmax(axis=1), data.corpus)
    recalls = {k: v for k, v, m in zip(EMOTIONS, result.per_class_recall.values(), mask) if m}
    return CorpusFigures(data.corpus, sorted(set(data.clip_actors), key=str), result.n, result.accuracy,
                         result.macro_recall, recalls)


def model_windows(paths) -> WindowSpec:
    """The feature windows speech models read (clamped or not): from a TFLite model's card or a
    Keras model's run folder; models compared side by side must agree."""
    import json

    known = set()
    for path in map(Path, paths):
        card_file = card_path_for(path)
        if path.suffix == ".tflite" and card_file.exists():
            known.add(ModelCard.load(card_file).input.dynamic_range_db)
        elif (path.parent / "state.json").exists():
            known.add(json.loads((path.parent / "state.json").read_text()).get("recipe", {}).get("dynamic_range_db"))
    if len(known) > 1:
        raise ValueError(f"these models read different feature windows (dynamic range {sorted(known, key=str)} dB); "
                         "evaluate them one at a time")
    return WindowSpec(dynamic_range_db=known.pop() if known else None)


def trained_speakers(path: str | Path) -> dict[str, list[str]]:
    """The speakers of each corpus a speech model was trained on: from its model card (TFLite) or
    the run folder it sits in (Keras); a RAVDESS-only card lists ``train_actors``."""
    import json

    path = Path(path)
    card_file = card_path_for(path)
    if path.suffix == ".tflite" and card_file.exists():
        data = ModelCard.load(card_file).training_data
    elif (path.parent / "state.json").exists():
        data = json.loads((path.parent / "state.json").read_text()).get("data", {})
    else:
        raise ValueError(f"{path}: cannot tell which speakers it was trained on (no model card, no run folder "
                         "state.json beside it)")
    if "corpora" in data:
        return {name: list(map(str, info["train_speakers"])) for name, info in data["corpora"].items()}
    return {"ravdess": [str(a) for a in data.get("train_actors", range(1, 17))]}


def speech_table(path: str | Path, data_root: str | Path, crema_d: str | Path | None = None) -> dict:
    """Per corpus under ``data_root``: the figures on every speaker the model was not trained on
    (a corpus it never heard is scored whole: leave-one-corpus-out); then the CREMA-D clips."""
    from affectlite_convert.data.speech import CORPORA, load_corpus

    predict = feature_predictor(path)
    trained = trained_speakers(path)
    windows = model_windows([path])
    table: dict = {"corpora": {}}
    for name, corpus in CORPORA.items():
        root = Path(data_root) / name
        if not (root / "manifest.csv").exists():
            continue
        seen = set(trained.get(name, []))
        data = load_corpus(root, corpus=corpus, windows=windows)
        held = data.speakers(lambda s: str(s) not in seen)
        if len(held.clip_labels):
            figures = corpus_figures(predict, held)
            table["corpora"][name] = figures.as_dict() | {"left_out_of_training": name not in trained}
    if crema_d is not None:
        table["crema_d"] = crema_d_voice(predict, crema_d, windows)
    return table


CREMA_D_LABELS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def crema_d_voice(predict, folder: str | Path, windows: WindowSpec = WindowSpec()) -> dict:
    """The voice's answer (over all seven labels, as on the device) for the CREMA-D sample's six
    video sound tracks and six MP3s (``windows``: the model's WindowSpec)."""
    from affectlite.audio.voice import speech_windows
    from affectlite.sources.audio import read_video_audio

    folder = Path(folder)
    answers = {}
    for clip in sorted([*folder.glob("VideoFlash/*.flv"), *folder.glob("AudioMP3/*.mp3")]):
        found, _ = speech_windows(read_video_audio(clip), windows=windows)
        label = CREMA_D_LABELS[clip.stem.split("_")[2]]
        answer = EMOTIONS[int(predict(found[..., None]).mean(axis=0).argmax())] if len(found) else None
        answers[clip.name] = {"label": label, "voice": answer}
    return {"clips": answers, "correct": sum(a["label"] == a["voice"] for a in answers.values()), "of": len(answers)}


def render_speech_table(model: str, table: dict) -> str:
    lines = [f"{model}: clip level, speakers it was not trained on",
             f"  {'corpus':<10} {'speakers':<28} {'clips':>5} {'accuracy':>9} {'UAR':>7}  per-class recall"]
    for name, row in table["corpora"].items():
        who = "all (corpus left out)" if row["left_out_of_training"] else ", ".join(row["speakers"])
        recalls = ", ".join(f"{k} {100 * v:.0f}" for k, v in row["per_class_recall"].items())
        lines.append(f"  {name:<10} {who[:28]:<28} {row['clips']:>5} {100 * row['accuracy']:>8.1f}% "
                     f"{100 * row['uar']:>6.1f}%  {recalls}")
    if "crema_d" in table:
        crema = table["crema_d"]
        lines.append(f"  CREMA-D sample: {crema['correct']} of {crema['of']} right (6 video sound tracks, 6 MP3s): "
                     + ", ".join(f"{v['label']}->{v['voice']}" for v in crema["clips"].values()))
    return "\n".join(lines)
