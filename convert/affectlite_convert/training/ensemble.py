"""Several finished speech runs as one model: their probabilities averaged.

Two networks trained from different random weights err on different unheard speakers, so their
mean is right more often than either (Lakshminarayanan et al. 2017); weight averaging (``train
blend``) cannot join them, because they sit in different basins. The price is one inference per
member, so the ensemble is one Keras model with one input that ``convert`` turns into one int8
file: the device runs it like any speech model, and its cost is measured like any
(``benchmarks/audio_path.py --speech``). Members must have learned the same windows from the same
speakers, or the ensemble's card and its held-out figures would describe none of them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# What members must share: the windows the device computes, and the speakers held out.
_SAME_WINDOWS = ("dynamic_range_db",)
_SAME_SPEAKERS = ("corpora", "train_actors", "val_actors", "val_speakers")


def average_speech_runs(runs: list[str | Path], out: str | Path) -> Path:
    """The mean of the runs' ``speech_emotion.keras`` probabilities, written to ``out`` as a run
    folder that ``convert --training-info`` and ``evaluate`` read like any speech run's."""
    from dataclasses import asdict

    import keras

    from affectlite_convert.training.run import with_defaults
    from affectlite_convert.training.train_speech import SpeechRecipe

    runs = [Path(run) for run in runs]
    if len(runs) < 2:
        raise ValueError("an ensemble needs at least two --run")
    states = [_finished_run(run) for run in runs]
    for state in states:
        state["recipe"] = with_defaults(state["recipe"], asdict(SpeechRecipe()))
    for key in _SAME_WINDOWS + _SAME_SPEAKERS:
        values = [state["recipe"].get(key) for state in states]
        if any(value != values[0] for value in values):
            shown = ", ".join(f"{run.name}: {value}" for run, value in zip(runs, values))
            raise ValueError(f"members differ in {key} ({shown}): an ensemble's members must take the same windows "
                             "and hold out the same speakers")

    members = [keras.models.load_model(run / "speech_emotion.keras", compile=False) for run in runs]
    shapes = {(tuple(m.inputs[0].shape[1:]), tuple(m.outputs[0].shape[1:])) for m in members}
    if len(shapes) > 1:
        raise ValueError(f"members take or give differently shaped tensors (input, output): {sorted(shapes)}")
    features = keras.Input(shape=members[0].inputs[0].shape[1:], name="log_mel")
    for i, member in enumerate(members):
        member.name = f"member_{i}"
    mean = keras.layers.Average(name="probabilities")([member(features) for member in members])

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "speech_emotion.keras"
    keras.Model(features, mean, name="speech_emotion_ensemble").save(path)
    shutil.copyfile(runs[0] / "calibration.npz", out / "calibration.npz")
    (out / "state.json").write_text(json.dumps(_ensemble_state(runs, states), indent=2))
    return path


def _finished_run(run: Path) -> dict[str, Any]:
    needed = [run / name for name in ("speech_emotion.keras", "state.json", "calibration.npz")]
    missing = [p.name for p in needed if not p.exists()]
    if missing:
        raise ValueError(f"{run}: not a finished speech run (no {', '.join(missing)}; `train speech` writes them, "
                         "`train blend` rewrites speech_emotion.keras)")
    return json.loads((run / "state.json").read_text())


def _ensemble_state(runs: list[Path], states: list[dict[str, Any]]) -> dict[str, Any]:
    """The first member's data description (the members share it), the recipe fields they share,
    and what each member did its own way: its seed, its blend, its calibration."""
    recipes = [state["recipe"] for state in states]
    shared = {key: value for key, value in recipes[0].items() if all(r.get(key) == value for r in recipes)}
    own = [{key: value for key, value in r.items() if key not in shared} for r in recipes]
    data = dict(states[0].get("data", {}))
    data.pop("weight_interpolation", None)
    data["ensemble"] = (f"mean of the probabilities of {len(runs)} networks trained separately, each calibrated "
                        "on the validation speakers")
    data["members"] = [
        {"run": run.name, **recipe, "temperature": round(state.get("temperature", 1.0), 4),
         **({"weight_interpolation": state["data"]["weight_interpolation"]}
            if "weight_interpolation" in state.get("data", {}) else {})}
        for run, recipe, state in zip(runs, own, states)]
    return {"recipe": shared, "data": data,
            "epochs_done": sum(state["epochs_done"] for state in states),
            "wall_seconds": sum(state["wall_seconds"] for state in states)}
