"""The audio-visual fusion model: a compact LSTM over steps, with attention pooling.

Built with tf_keras at batch 1 so that the converter turns the LSTM into one fused
UNIDIRECTIONAL_SEQUENCE_LSTM op that quantizes to int8 (Keras 3's LSTM does not). Unidirectional,
16 numbers a step: far under the Edge TPU's limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from affectlite_convert.data.pairs import STEP_FEATURES


@dataclass(frozen=True)
class FusionSpec:
    steps: int = 8
    hidden: int = 32
    units: int = 32
    num_classes: int = 7


def build_fusion_lstm(spec: FusionSpec = FusionSpec(), batch_size: int | None = None):
    import tf_keras as K

    inputs = K.Input((spec.steps, STEP_FEATURES), batch_size=batch_size, name="steps")
    x = K.layers.Dense(spec.hidden, activation="relu")(inputs)
    h = K.layers.LSTM(spec.units, return_sequences=True)(x)
    weights = K.layers.Softmax(axis=1, name="attention")(K.layers.Dense(1)(h))   # which steps matter
    # Weighted sum over steps as MUL + MEAN (a mean is the sum / steps; the dense layer absorbs the
    # factor): a Dot layer would become BATCH_MATMUL, which the Edge TPU cannot run.
    pooled = K.layers.GlobalAveragePooling1D()(K.layers.Multiply()([h, weights]))
    outputs = K.layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(pooled)
    return K.Model(inputs, outputs, name="fusion_lstm")
