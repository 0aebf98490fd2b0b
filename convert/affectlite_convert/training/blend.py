"""Weight-space interpolation of a speech run with the model it started from, or with a fine-tune
of it.

Fine-tuning the RAVDESS model on other corpora and rooms teaches it those, and costs some of what
it knew at home; averaging the two sets of weights (WiSE-FT, Wortsman et al. 2022) keeps most of
both, because a fine-tune stays in the same basin as its start. The same works the other way: a
three-corpus run fine-tuned on RAVDESS alone, averaged with the run (speech v4). ``share`` is the
run's weight; the blend is then calibrated like any run's result: a temperature fitted on the
run's validation speakers and folded into the last layer.
"""

from __future__ import annotations

import json
from pathlib import Path


def blend_speech(run_dir: str | Path, base: str | Path, share: float, data: str | Path,
                 cache: str | Path | None = None) -> Path:
    """``share`` x the run's ``final.keras`` + (1 - share) x ``base``, calibrated; written as the
    run's ``speech_emotion.keras`` (what ``convert`` takes) and noted in its state for the card."""
    import keras

    from affectlite_convert.calibration import fold_temperature
    from affectlite_convert.training.speech_cnn import SpeechCnnSpec
    from affectlite_convert.training.run import weights_like
    from affectlite_convert.training.train_speech import Pool, SpeechRecipe, fit_speech_temperature, load_training_data

    if not 0.0 <= share <= 1.0:
        raise ValueError(f"--share must be within 0..1, got {share}")
    run_dir = Path(run_dir)
    state_path = run_dir / "state.json"
    if not (run_dir / "final.keras").exists() or not state_path.exists():
        raise ValueError(f"{run_dir}: not a finished speech run (final.keras and state.json)")
    tuned = keras.models.load_model(run_dir / "final.keras", compile=False)
    tuned.set_weights([share * a + (1.0 - share) * b for a, b in zip(tuned.get_weights(), weights_like(base, tuned))])

    state = json.loads(state_path.read_text())
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in state["recipe"].items()}
    fields["model"] = SpeechCnnSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields["model"].items()})
    _, val_sets, _ = load_training_data(data, SpeechRecipe(**fields), cache)
    temperature = fit_speech_temperature(tuned, Pool.of(val_sets))
    fold_temperature(tuned, temperature)
    out = run_dir / "speech_emotion.keras"
    tuned.save(out)
    state["temperature"] = temperature
    state["data"]["weight_interpolation"] = (f"weights = {share:g} x this run's final + {1 - share:g} x "
                                             f"{_described(base, run_dir, state['recipe'])} (WiSE-FT)")
    state_path.write_text(json.dumps(state, indent=2))
    return out


def _described(base: str | Path, run_dir: Path, recipe: dict) -> str:
    """What the card says the other model is: the run's start, a fine-tune of the run (from its
    own run folder), or just its file name."""
    base = Path(base).resolve()
    if recipe.get("init") and Path(recipe["init"]).resolve() == base:
        return f"{base.name}, the model it started from"
    base_state = base.parent / "state.json"
    if base_state.exists():
        tune = json.loads(base_state.read_text()).get("recipe", {})
        if tune.get("init") and Path(tune["init"]).resolve() == (run_dir / "final.keras").resolve():
            return (f"this run's final trained {tune['epochs']} more epochs on {', '.join(tune['corpora'])} alone "
                    f"at learning rate {tune['learning_rate']:g} ({base.name})")
    return base.name
