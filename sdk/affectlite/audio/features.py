"""Log-mel features in numpy: the one implementation shared by training and the device.

The toolchain imports :func:`log_mel` from here, so a model never sees features computed one
way in training and another way on the device. The filterbank follows librosa's defaults
(Slaney mel scale and area normalisation) so the features can be checked against librosa; the
tests do that.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class MelSpec:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 400          # 25 ms
    hop_length: int = 160          # 10 ms: 100 frames a second
    n_mels: int = 64
    fmin: float = 20.0
    fmax: float = 8000.0


def _hz_to_mel(hz):
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=8)
def mel_filterbank(spec: MelSpec = MelSpec()) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, Slaney-normalised (constant area)."""
    fft_hz = np.linspace(0, spec.sample_rate / 2, spec.n_fft // 2 + 1)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(spec.fmin), _hz_to_mel(spec.fmax), spec.n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=8)
def _window(spec: MelSpec) -> np.ndarray:
    window = np.hanning(spec.win_length + 1)[:-1]        # periodic Hann, as scipy/librosa use
    pad = (spec.n_fft - spec.win_length) // 2
    return np.pad(window, (pad, spec.n_fft - spec.win_length - pad)).astype(np.float32)


def mel_power(audio: np.ndarray, spec: MelSpec = MelSpec()) -> np.ndarray:
    """(frames, n_mels) mel power spectrogram of mono float audio, frames centred (zero padding)."""
    audio = np.asarray(audio, dtype=np.float32).ravel()
    half = spec.n_fft // 2
    padded = np.pad(audio, (half, half))
    count = 1 + (len(padded) - spec.n_fft) // spec.hop_length
    if count < 1:
        return np.zeros((0, spec.n_mels), np.float32)
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, spec.n_fft), strides=(padded.strides[0] * spec.hop_length, padded.strides[0]))
    power = np.abs(np.fft.rfft(frames * _window(spec), axis=1)) ** 2
    return (power.astype(np.float32) @ mel_filterbank(spec).T).astype(np.float32)


def log_mel(audio: np.ndarray, spec: MelSpec = MelSpec(), floor: float = 1e-10) -> np.ndarray:
    """(frames, n_mels) log-mel features in decibels (10 log10 power), floored at -100 dB."""
    return (10.0 * np.log10(np.maximum(mel_power(audio, spec), floor))).astype(np.float32)
