"""Audio features and voice activity: numpy log-mel against librosa, speech against silence and noise."""

from __future__ import annotations


import numpy as np
import pytest
import soundfile

from affectlite.audio.features import MelSpec, log_mel, mel_filterbank, mel_power
from affectlite.audio.resample import to_model_rate
from affectlite.audio.voice import WindowSpec, speech_windows
from conftest import SHARED

RAVDESS = SHARED / "data" / "speech" / "ravdess"
CLIP = RAVDESS / "Actor_01" / "03-01-05-01-01-01-01.flac"        # angry, "Kids are talking by the door"


@pytest.fixture(scope="module")
def speech():
    audio, rate = soundfile.read(CLIP, dtype="float32")
    assert rate == 16000
    return audio


def test_log_mel_matches_librosa(speech):
    """Same filterbank (Slaney) and framing: within 1e-3 dB of librosa on real speech."""
    import librosa

    spec = MelSpec()
    reference = librosa.feature.melspectrogram(
        y=speech, sr=16000, n_fft=spec.n_fft, hop_length=spec.hop_length, win_length=spec.win_length,
        window="hann", center=True, pad_mode="constant", power=2.0, n_mels=spec.n_mels, fmin=spec.fmin, fmax=spec.fmax).T
    np.testing.assert_allclose(mel_filterbank(spec), librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=20, fmax=8000),
                               atol=1e-7)
    ours = log_mel(speech)
    assert ours.shape == reference.shape
    assert np.abs(ours - 10 * np.log10(np.maximum(reference, 1e-10))).max() < 1e-3


def test_frames_and_empty_input():
    assert mel_power(np.zeros(16000, np.float32)).shape == (101, 64)     # 100 frames a second, centred
    assert log_mel(np.zeros(0, np.float32)).shape[1] == 64


def test_speech_gives_windows(speech):
    windows, starts = speech_windows(speech)
    assert len(windows) >= 2 and windows.shape[1:] == (200, 64)
    assert np.all(np.diff(starts) == 0.5)
    assert abs(windows.mean()) < 0.05                                 # per-band means removed


def test_a_clamped_window_forgets_how_deep_the_pauses_are(speech):
    """A short word padded with digital silence and the same word in a quiet room give different
    windows unclamped (the padding sits 100 dB down), and nearly the same windows clamped 60 dB
    below their loudest value: the depth of a recording's pauses is not the speaker's emotion."""
    word = speech[16000:28000]                                          # 0.75 s, padded to 2 s
    room = np.concatenate([word, 10 ** (-65 / 20) * np.random.default_rng(0).standard_normal(20000).astype(np.float32)])
    clamped = WindowSpec(dynamic_range_db=60.0)
    padded_raw, room_raw = speech_windows(word)[0][0], speech_windows(room)[0][0]
    padded_clamped, room_clamped = speech_windows(word, windows=clamped)[0][0], speech_windows(room, windows=clamped)[0][0]
    assert np.abs(padded_raw - room_raw).mean() > 4 * np.abs(padded_clamped - room_clamped).mean()
    # within a band the values span at most the 60 dB (3.0 once divided by 20)
    assert (padded_clamped.max(axis=0) - padded_clamped.min(axis=0)).max() <= 3.0 + 1e-5
    assert (padded_raw.max(axis=0) - padded_raw.min(axis=0)).max() > 3.5
    assert np.array_equal(speech_windows(word, windows=WindowSpec())[0], speech_windows(word)[0])   # off by default


@pytest.mark.parametrize("kind", ["silence", "faint hiss", "loud white noise", "rumble", "mains hum"])
def test_silence_and_noise_give_no_speech(kind):
    rng = np.random.default_rng(1)
    n = 3 * 16000
    t = np.arange(n) / 16000
    audio = {
        "silence": np.zeros(n),
        "faint hiss": rng.normal(0, 1e-4, n),
        "loud white noise": rng.normal(0, 0.1, n),
        "rumble": np.convolve(rng.normal(0, 1, n), np.ones(200) / 20, "same") * 0.05,
        "mains hum": 0.05 * np.sin(2 * np.pi * 50 * t) + 0.02 * np.sin(2 * np.pi * 150 * t),
    }[kind].astype(np.float32)
    windows, _ = speech_windows(audio)
    assert len(windows) == 0


def test_speech_in_noise_is_still_speech(speech):
    rng = np.random.default_rng(2)
    noisy = speech + rng.normal(0, 0.003, len(speech)).astype(np.float32)
    assert len(speech_windows(noisy)[0]) >= 2


def test_resampling_to_16k_mono():
    rate = 44100
    t = np.arange(rate) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1).astype(np.float32)
    mono = to_model_rate(stereo, rate)
    assert mono.dtype == np.float32 and abs(len(mono) - 16000) <= 32
    peak = np.fft.rfftfreq(len(mono), 1 / 16000)[np.argmax(np.abs(np.fft.rfft(mono)))]
    assert peak == pytest.approx(440, abs=2)
    with pytest.raises(ValueError, match="expected"):
        to_model_rate(np.zeros((2, 2, 2)), 8000)
