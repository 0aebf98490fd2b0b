"""Voice activity and the feature windows the speech model reads.

Silence and steady background noise must give "no speech" rather than an emotion. A 10 ms frame
counts as voiced when it is loud in absolute terms, clearly above the recording's own noise
floor, and not spectrally flat (hiss and fan noise are flat; voiced speech has harmonics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectlite.audio.features import MelSpec, mel_power


@dataclass(frozen=True)
class VoiceOptions:
    min_level_db: float = -55.0      # frame energy, dB relative to full scale (mel power sum)
    above_floor_db: float = 12.0     # above the 10th percentile of the frame energies
    max_flatness: float = 0.35       # spectral flatness of the mel spectrum (0 tonal .. 1 white)
    min_voiced_share: float = 0.2    # of a window's frames, for the window to count as speech


@dataclass(frozen=True)
class WindowSpec:
    frames: int = 200                # 2 s at 100 frames per second
    hop: int = 50                    # a new window every 0.5 s
    #: Each window's log-mel clamped at this many dB below its loudest value before normalising
    #: (None: not clamped). Without it, a model learns how deep the pauses are (a studio's
    #: near-digital silence, a short clip's zero padding) as a cue to emotion, and that cue
    #: belongs to the recording, not to the speaker. A speech model's card says which it needs.
    dynamic_range_db: float | None = None


def voiced_frames(mel: np.ndarray, options: VoiceOptions = VoiceOptions(), floor_db: float | None = None) -> np.ndarray:
    """Boolean (frames,) from a mel power spectrogram (frames, n_mels)."""
    if len(mel) == 0:
        return np.zeros(0, bool)
    energy = 10 * np.log10(np.maximum(mel.sum(axis=1), 1e-12))
    floor = np.percentile(energy, 10) if floor_db is None else floor_db
    positive = np.maximum(mel, 1e-12)
    flatness = np.exp(np.log(positive).mean(axis=1)) / positive.mean(axis=1)
    return (energy >= options.min_level_db) & (energy >= floor + options.above_floor_db) & (flatness <= options.max_flatness)


def normalise(log_mel_window: np.ndarray, dynamic_range_db: float | None = None) -> np.ndarray:
    """Per-window mean removal per mel band (cepstral-mean style: removes the microphone and room
    colouring, which differ between speakers and devices), scaled to about unit range; first the
    window is clamped at ``dynamic_range_db`` below its loudest value, when given."""
    if dynamic_range_db is not None:
        log_mel_window = np.maximum(log_mel_window, log_mel_window.max() - dynamic_range_db)
    return ((log_mel_window - log_mel_window.mean(axis=0, keepdims=True)) / 20.0).astype(np.float32)


def speech_windows(audio: np.ndarray, spec: MelSpec = MelSpec(), windows: WindowSpec = WindowSpec(),
                   voice: VoiceOptions = VoiceOptions()) -> tuple[np.ndarray, np.ndarray]:
    """Normalised log-mel windows (N, frames, n_mels) of the voiced stretches, and their start times (s).

    Audio shorter than a window is zero-padded to one; windows with too little voice are left out,
    so silence or noise gives an empty result.
    """
    mel = mel_power(audio, spec)
    if len(mel) < windows.frames:
        mel = np.pad(mel, ((0, windows.frames - len(mel)), (0, 0)))
    voiced = voiced_frames(mel, voice)
    log = 10 * np.log10(np.maximum(mel, 1e-10))
    starts = range(0, len(mel) - windows.frames + 1, windows.hop)
    keep = [s for s in starts if voiced[s:s + windows.frames].mean() >= voice.min_voiced_share]
    if not keep:
        return np.zeros((0, windows.frames, spec.n_mels), np.float32), np.zeros(0)
    stack = np.stack([normalise(log[s:s + windows.frames], windows.dynamic_range_db) for s in keep])
    return stack, np.array(keep) * spec.hop_length / spec.sample_rate
