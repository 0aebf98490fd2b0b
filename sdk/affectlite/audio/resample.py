"""Every audio input becomes 16 kHz mono float32 here, and only here."""

from __future__ import annotations

import numpy as np

from affectlite.audio.features import SAMPLE_RATE


def to_model_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    """(samples,) or (samples, channels) float audio at ``rate`` -> 16 kHz mono float32 in [-1, 1].

    Uses FFmpeg's resampler (through PyAV, already a dependency for video) rather than a
    hand-written filter.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1:
        raise ValueError(f"expected (samples,) or (samples, channels) audio, got shape {audio.shape}")
    if rate == SAMPLE_RATE or len(audio) == 0:
        return np.ascontiguousarray(audio)
    import av

    frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
    frame.sample_rate = int(rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = [f.to_ndarray().ravel() for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().ravel() for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
