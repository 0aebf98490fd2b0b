"""A domain-adversarial head (Ganin et al. 2016): features that do not tell which set a face came from.

Trained on FER2013 and a second face set, the CNN can learn each set's look (resolution, framing,
the oval mask) and a class prior per set, and read "disgust" as "a face from the other set". A
small head here learns to tell the sets apart from the CNN's embedding, and its gradient reaches
the CNN reversed: the CNN is pushed towards features the head cannot separate, which is what makes
the source invisible rather than merely balanced. The head exists only while training; the
deployed model is the plain CNN (:func:`face_part`).
"""

from __future__ import annotations

from pathlib import Path

import keras

#: Name of the head's output: the training data's second target (0: FER2013, 1: the new set).
DOMAIN_OUTPUT = "source"


@keras.saving.register_keras_serializable(package="affectlite")
class GradientReversal(keras.layers.Layer):
    """The identity forward; the gradient times -1 backward (``2 * stop_gradient(x) - x``)."""

    def call(self, x):
        return 2.0 * keras.ops.stop_gradient(x) - x


def with_domain_head(face_model, hidden: int = 64):
    """A training model with the face model's probabilities and a source logit from its embedding."""
    from keras import layers

    features = GradientReversal(name="reverse_gradient")(face_model.get_layer("embedding").output)
    hidden_units = layers.Dense(hidden, activation="relu", name="source_hidden")(features)
    source = layers.Dense(1, name=DOMAIN_OUTPUT)(hidden_units)
    return keras.Model(face_model.inputs[0], {"probabilities": face_model.output, DOMAIN_OUTPUT: source},
                       name="face_expression_cnn_adversarial")


def face_part(model):
    """The deployable face model inside a training model (the model itself when it has no head)."""
    if len(model.outputs) == 1:
        return model
    # One input tensor, not a list of one: deployment clones the model onto a fixed-size input.
    return keras.Model(model.inputs[0], model.get_layer("probabilities").output, name="face_expression_cnn")


def save_face_part(path: str | Path) -> Path:
    """Replaces a saved training model by its face part, so that ``final.keras`` is what deploys."""
    model = keras.models.load_model(path, compile=False)
    if len(model.outputs) > 1:
        face_part(model).save(path)
    return Path(path)
