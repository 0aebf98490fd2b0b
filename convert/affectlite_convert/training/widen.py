"""A wider face CNN that starts as a trained narrower one (Net2WiderNet, Chen et al. 2016).

Trained from scratch, a wider network needs many more epochs than a CPU affords before it is as
good as the narrow one it is meant to beat; widened, it starts from exactly the narrow one's
answers and the extra channels only add what fine-tuning finds. Each new channel copies a random
channel of the same layer (kernel and BatchNorm); the next layer's weights from every copy of a
channel are divided by the number of copies, so the sum it sees is unchanged. Dropout before the
last layer and the data's noise make the copies drift apart in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def start_from(path: str | Path, model, seed: int = 0) -> None:
    """Sets ``model``'s weights from the Keras model at ``path``: its own when the architecture
    is the same, widened when it is the same chain of layers with fewer channels."""
    import keras

    from affectlite_convert.training.run import weights_like

    try:
        model.set_weights(weights_like(path, model))
        return
    except ValueError:
        pass
    try:
        widen_into(keras.models.load_model(path, compile=False), model, seed)
    except ValueError as exc:
        raise ValueError(f"{path}: not a model of this recipe's architecture, nor a narrower one ({exc})") from None


def widen_into(narrow, wide, seed: int = 0) -> None:
    """Sets ``wide``'s weights so that it computes what ``narrow`` computes (a conv + BatchNorm
    chain that ends in one dense layer, as
    :func:`~affectlite_convert.training.face_cnn.build_face_cnn` builds)."""
    import keras

    def chain(model):
        kept = (keras.layers.Conv2D, keras.layers.BatchNormalization, keras.layers.Dense)
        return [layer for layer in model.layers if isinstance(layer, kept)]

    old, new = chain(narrow), chain(wide)
    if [type(layer) for layer in old] != [type(layer) for layer in new] or not old \
            or not isinstance(old[-1], keras.layers.Dense) or isinstance(old[-2], keras.layers.Dense):
        raise ValueError("another chain of layers")
    rng = np.random.default_rng(seed)
    weights: list[list[np.ndarray]] = []
    copies_of = None                        # for the layer's input channels: new index -> old index
    for before, after in zip(old, new):
        given, shape = before.get_weights(), after.get_weights()[0].shape
        if isinstance(before, keras.layers.BatchNormalization):
            weights.append([w[copies_of] for w in given])
            continue
        kernel = given[0]
        if copies_of is not None:
            share = np.bincount(copies_of, minlength=kernel.shape[-2])[copies_of]
            kernel = np.take(kernel, copies_of, axis=-2) / share[:, None]
        grown = shape[-1] - kernel.shape[-1]
        if kernel.shape[:-1] != shape[:-1] or grown < 0:
            raise ValueError(f"{after.name} is narrower or has another kernel size")
        if isinstance(before, keras.layers.Dense):
            if grown:
                raise ValueError("another number of classes")
            weights.append([kernel, *given[1:]])
            break
        copies_of = np.concatenate([np.arange(kernel.shape[-1]), rng.integers(0, kernel.shape[-1], grown)])
        weights.append([np.take(kernel, copies_of, axis=-1), *(w[copies_of] for w in given[1:])])
    for layer, values in zip(new, weights):
        layer.set_weights(values)
