"""The facial-expression CNN: a compact VGG-style network sized for an int8 budget.

Design choices, and why:
- Fully convolutional with global average pooling, so it trains on random 40x40 crops (about
  30 % less compute per step on a CPU) and is deployed on the whole 48x48 face.
- Down-sampling by strided 3x3 convolutions instead of a full-resolution conv pair plus pooling:
  the 48x48 stage is where a plain VGG spends most of its multiply-adds.
- Conv + BatchNorm + ReLU only: BatchNorm folds into the convolution when converted, and every op
  left (CONV_2D, MEAN, FULLY_CONNECTED, SOFTMAX) maps onto the Edge TPU in int8.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaceCnnSpec:
    """Width of each stage; the first entry runs at full resolution."""

    widths: tuple[int, ...] = (32, 48, 128, 256)
    convs_per_stage: int = 2
    dropout: float = 0.4
    num_classes: int = 7


def build_face_cnn(spec: FaceCnnSpec = FaceCnnSpec(), channels: int = 1):
    """Return an uncompiled Keras model taking (H, W, channels) floats in [0, 1]."""
    import keras
    from keras import layers

    def conv_bn_relu(x, filters: int, stride: int = 1):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x)

    inputs = keras.Input((None, None, channels), name="face")
    x = conv_bn_relu(inputs, spec.widths[0])
    for filters in spec.widths[1:]:
        x = conv_bn_relu(x, filters, stride=2)
        for _ in range(spec.convs_per_stage - 1):
            x = conv_bn_relu(x, filters)
    x = layers.GlobalAveragePooling2D(name="embedding")(x)
    x = layers.Dropout(spec.dropout)(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="face_expression_cnn")
