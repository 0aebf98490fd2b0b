"""A training run folder that survives being stopped: checkpoints every epoch, ``--resume``.

The folder holds ``last.keras`` (weights and optimizer state, including the step counter that
drives the learning-rate schedule), ``state.json`` (epochs done, wall time, the recipe, history)
and ``log.csv``; ``final.keras`` appears only when the last epoch is done. Every model trainer
in the toolchain uses this one class, so all of them stop and resume the same way.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any, Callable


class TrainingRun:
    def __init__(self, run_dir: str | Path, recipe: dict[str, Any], resume: bool = False, library: str = "keras",
                 defaults: dict[str, Any] | None = None):
        """``library``: "keras" (Keras 3) or "tf_keras" (for models whose LSTM must fuse on conversion).
        ``defaults``: the recipe's default values, so that a run started before the toolchain grew an
        option resumes when that option is left at its default."""
        self.library = library
        self.dir = Path(run_dir)
        self.state_path, self.last_path = self.dir / "state.json", self.dir / "last.keras"
        if self.dir.exists() and any(self.dir.iterdir()) and not resume:
            raise FileExistsError(f"{self.dir} already holds a run; pass --resume to continue it or choose another --out")
        self.dir.mkdir(parents=True, exist_ok=True)
        recipe = json.loads(json.dumps(recipe))
        self.state: dict[str, Any] = {"epochs_done": 0, "wall_seconds": 0.0}
        if resume and self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())
            started = self.state.get("recipe")
            if started is not None:
                started = with_defaults(started, defaults or {})
                changed = sorted(k for k in set(started) | set(recipe) if started.get(k) != recipe.get(k))
                if changed:
                    raise ValueError(f"{self.dir} was started with another recipe (it differs in "
                                     f"{', '.join(f'{k}: {started.get(k)!r} then, {recipe.get(k)!r} now' for k in changed)}); "
                                     "resume it with the same options")
        self.state["recipe"] = recipe

    @property
    def resuming(self) -> bool:
        return self.state["epochs_done"] > 0 and self.last_path.exists()

    def model(self, build: Callable[[], Any]):
        """The checkpointed model when resuming, else a new one from ``build()`` (compiled)."""
        return self._keras().models.load_model(self.last_path) if self.resuming else build()

    def _keras(self):
        return importlib.import_module(self.library)

    def fit(self, model, train_ds, val_ds, epochs: int, verbose: int = 1, callbacks: list | None = None,
            steps_per_epoch: int | None = None) -> Path:
        """``steps_per_epoch``: for an endless ``train_ds`` (batches drawn at random)."""
        keras = self._keras()
        final = self.dir / "final.keras"
        if self.state["epochs_done"] >= epochs:
            if not final.exists():  # stopped between the last checkpoint and the final save
                # what fit() does at its end: an optimizer with EMA swaps the averaged weights in
                model.optimizer.finalize_variable_values(model.trainable_variables)
                model.save(final)
            self.save_state()
            return final
        run = self

        class Checkpoint(keras.callbacks.Callback):
            """Saves model and state atomically after each epoch: a kill loses at most one epoch."""

            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                tmp = run.dir / "last.tmp.keras"
                self.model.save(tmp)
                tmp.replace(run.last_path)
                run.state["epochs_done"] = epoch + 1
                run.state["wall_seconds"] += time.monotonic() - self.started
                entry = {k: float(v) for k, v in (logs or {}).items()} | {"epoch": epoch + 1}
                run.state.setdefault("history", []).append(entry)
                run.save_state()

        model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=self.state["epochs_done"],
                  steps_per_epoch=steps_per_epoch,
                  callbacks=[Checkpoint(), keras.callbacks.CSVLogger(str(self.dir / "log.csv"), append=True),
                             *(callbacks or [])],
                  verbose=verbose)
        model.save(final)
        return final

    def save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(self.state_path)


def weights_like(path: str | Path, model) -> list:
    """The weights of the Keras model at ``path``, refused unless it has ``model``'s architecture:
    a run started from a trained model (``--init``) fine-tunes it instead of starting over."""
    import keras

    weights = keras.models.load_model(path, compile=False).get_weights()
    if [w.shape for w in weights] != [w.shape for w in model.get_weights()]:
        raise ValueError(f"{path}: not a model of this recipe's architecture "
                         f"({len(model.get_weights())} weight tensors of other shapes)")
    return weights


def with_defaults(recipe: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A recipe as a state.json holds it (lists, not tuples), with the options the toolchain grew
    after it was written at their defaults: what that run did."""
    return json.loads(json.dumps(defaults)) | recipe


def training_info(run_dir: str | Path) -> dict[str, Any]:
    """What a model card says about training: the data and its licence, the recipe, wall time."""
    state = json.loads((Path(run_dir) / "state.json").read_text())
    return dict(state.get("data", {})) | {
        "recipe": state["recipe"],
        "epochs_done": state["epochs_done"],
        "training_wall_minutes": round(state["wall_seconds"] / 60, 1),
    }
