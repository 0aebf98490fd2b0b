"""The speech-emotion CNN over 2 s log-mel windows (200 frames x 64 mel bands).

Four conv blocks with pooling shrink time and frequency together; global average pooling
makes the embedding independent of where in the window the voice sits. Conv + BN + ReLU, max
pooling, mean and a dense layer: int8-friendly and mappable to the Edge TPU.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechCnnSpec:
    widths: tuple[int, ...] = (24, 48, 96, 160)
    dropout: float = 0.3
    num_classes: int = 7


def build_speech_cnn(spec: SpeechCnnSpec = SpeechCnnSpec(), frames: int = 200, n_mels: int = 64):
    import keras
    from keras import layers

    inputs = keras.Input((frames, n_mels, 1), name="log_mel")
    x = inputs
    for i, width in enumerate(spec.widths):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if i < len(spec.widths) - 1:
            x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D(name="embedding")(x)
    x = layers.Dropout(spec.dropout)(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="speech_emotion_cnn")
