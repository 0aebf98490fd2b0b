"""Recording conditions simulated on the waveform, before the device's own features.

A speech model trained on studio recordings hears a lobby through a cheap microphone as a
different language. Each function below imitates one thing that stands between a speaker and
the device, in the order they happen: the speaker's pace, the room's echo, other sounds in the
room, the microphone's band, its gain (and clipping), and a lossy codec on the way. Every one
takes and returns 16 kHz mono float32 of the same length, so that the features are computed by
the device's own code afterwards (:func:`affectlite.audio.voice.speech_windows`).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np

from affectlite.audio.features import SAMPLE_RATE
from affectlite.audio.resample import to_model_rate


def _fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    audio = audio[:length]
    return np.pad(audio, (0, length - len(audio))).astype(np.float32)


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)) + 1e-12))


def excerpt(audio: np.ndarray, seconds: float, rng: np.random.Generator, fade_s: float = 0.01) -> np.ndarray:
    """A short utterance: one stretch of ``seconds`` from where the clip is loud, silence
    elsewhere, in place. Acted corpora speak whole sentences (RAVDESS 3.7 s, EMOVO 2.7 s), a
    kiosk hears "yes", "wow", a name; a model that has never heard a lone word in a window takes
    the quiet around it for sadness. A clip whose loud part is already this short is returned as is."""
    frame = SAMPLE_RATE // 100
    count = len(audio) // frame
    length = int(seconds * SAMPLE_RATE)
    if count == 0 or length >= len(audio):
        return np.asarray(audio, np.float32).copy()
    level = np.sqrt(np.mean(np.square(audio[: count * frame].reshape(count, frame), dtype=np.float64), axis=1))
    loud = np.flatnonzero(level >= level.max() * 10 ** (-30 / 20))           # within 30 dB of the loudest
    first, last = loud[0] * frame, (loud[-1] + 1) * frame
    if last - first <= length:
        return np.asarray(audio, np.float32).copy()
    start = int(rng.integers(first, last - length + 1))
    fade = np.ones(length, np.float32)
    ramp = np.linspace(0.0, 1.0, max(int(fade_s * SAMPLE_RATE), 1), dtype=np.float32)
    fade[: len(ramp)], fade[len(fade) - len(ramp):] = ramp, ramp[::-1]
    out = np.zeros(len(audio), np.float32)
    out[start:start + length] = audio[start:start + length] * fade
    return out


def speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation (tempo and pitch together, as in Kaldi's 0.9/1.0/1.1): the clip played
    ``factor`` times as fast, cut or padded back to its length."""
    n = len(audio)
    positions = np.arange(0, n - 1, factor)
    return _fit_length(np.interp(positions, np.arange(n), audio), n)


def reverberate(audio: np.ndarray, rt60_s: float, rng: np.random.Generator, wet: float = 0.7) -> np.ndarray:
    """A room: the clip convolved with a decaying-noise impulse response whose energy falls 60 dB in
    ``rt60_s``; the direct sound stays at the start; the level is kept."""
    length = int(rt60_s * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.908 * t / rt60_s)
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0                      # reflections start after ~2 ms
    response = np.zeros(length)
    response[0] = 1.0
    response += wet * tail / np.sqrt(np.sum(tail ** 2) + 1e-12)
    size = 1 << int(np.ceil(np.log2(len(audio) + length)))
    out = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(response, size), size)[: len(audio)]
    return (out * _rms(audio) / _rms(out)).astype(np.float32)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    return np.fft.irfft(spectrum, n)


def add_noise(audio: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator,
              babble: list[np.ndarray] | None = None) -> np.ndarray:
    """Background at ``snr_db`` below the speech: ``white``, ``pink`` (fans, traffic) or ``babble``
    (other speakers talking at once, from ``babble``: clips of other speakers)."""
    n = len(audio)
    if kind == "white":
        noise = rng.standard_normal(n)
    elif kind == "pink":
        noise = _pink(n, rng)
    elif kind == "babble":
        if not babble:
            raise ValueError("babble noise needs clips of other speakers")
        noise = np.zeros(n)
        for index in rng.choice(len(babble), size=min(4, len(babble)), replace=False):
            other = babble[index]
            start = int(rng.integers(0, max(len(other) - n, 0) + 1))
            piece = np.resize(other[start:start + n], n) if len(other) else np.zeros(n)
            noise += piece / _rms(piece)
    else:
        raise ValueError(f"unknown noise kind {kind!r}: white, pink or babble")
    noise *= _rms(audio) / _rms(noise) / (10.0 ** (snr_db / 20.0))
    return (audio + noise).astype(np.float32)


def band_limit(audio: np.ndarray, low_hz: float, high_hz: float, tilt_db: float = 0.0) -> np.ndarray:
    """A microphone or channel that passes ``low_hz``..``high_hz`` (smooth 1-octave skirts), with
    an optional tilt in dB per octave above 1 kHz (cheap USB microphones are bright or dull)."""
    n = len(audio)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    octave_low = np.log2(np.maximum(freqs, 1.0) / low_hz)
    octave_high = np.log2(high_hz / np.maximum(freqs, 1.0))
    gain = np.clip(octave_low + 1.0, 0.0, 1.0) * np.clip(octave_high + 1.0, 0.0, 1.0)
    gain = gain ** 2 * 10.0 ** (tilt_db * np.log2(np.maximum(freqs, 1000.0) / 1000.0) / 20.0)
    out = np.fft.irfft(np.fft.rfft(audio) * gain, n)
    return (out * _rms(audio) / _rms(out)).astype(np.float32)


def gain_and_clip(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """The input gain: quieter or louder, and clipped at full scale as a cheap sound card does."""
    return np.clip(audio * 10.0 ** (gain_db / 20.0), -1.0, 1.0).astype(np.float32)


#: codec -> (container format, encoder, sample rate it is encoded at)
CODECS = {"mp3": ("mp3", "libmp3lame", 16000), "opus": ("ogg", "libopus", 16000), "aac": ("adts", "aac", 16000)}


def lossy_codec(audio: np.ndarray, codec: str, kbps: int) -> np.ndarray:
    """The clip encoded with ``codec`` (mp3, opus or aac) at ``kbps`` and decoded again, in memory
    with PyAV (FFmpeg's encoders)."""
    import av

    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}: {sorted(CODECS)}")
    container_format, encoder, rate = CODECS[codec]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(encoder, rate=rate, layout="mono")
        stream.bit_rate = kbps * 1000
        frame_size = stream.codec_context.frame_size or 1024
        samples = np.clip(audio, -1.0, 1.0).astype(np.float32)
        sample_format = stream.codec_context.format.name
        for start in range(0, len(samples), frame_size):
            chunk = samples[start:start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for converted in _converter(sample_format, rate).resample(frame):
                container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer, "r") as container:
        decoded = [f.to_ndarray().reshape(-1, f.samples).mean(axis=0) for f in container.decode(audio=0)]
        decoded_rate = container.streams.audio[0].rate
    out = np.concatenate(decoded).astype(np.float32) if decoded else np.zeros(0, np.float32)
    out = to_model_rate(out, decoded_rate)
    return _fit_length(out[_codec_delay(audio, out):], len(audio))


def _codec_delay(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 4096) -> int:
    """Samples of encoder priming at the start of ``decoded`` (AAC adds 1,024, MP3 several
    hundred), found by cross-correlation, so the decoded clip lines up with the original."""
    n = min(len(reference), len(decoded))
    if n == 0:
        return 0
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(decoded[:n], size) * np.conj(np.fft.rfft(reference[:n], size)), size)
    return int(np.argmax(corr[: min(max_lag, n)]))


def _converter(sample_format: str, rate: int):
    import av

    return av.AudioResampler(format=sample_format, layout="mono", rate=rate)


@dataclass(frozen=True)
class RecordingConditions:
    """How often each condition is applied to a training copy, and its range."""

    #: Off unless a recipe asks (``train speech --short-utterances``): the bundled v4 trained without.
    excerpt_probability: float = 0.0
    excerpt_range_s: tuple[float, float] = (0.5, 1.5)
    speed_probability: float = 0.3
    speed_range: tuple[float, float] = (0.9, 1.1)
    reverb_probability: float = 0.5
    rt60_range_s: tuple[float, float] = (0.2, 0.8)
    noise_probability: float = 0.6
    snr_range_db: tuple[float, float] = (0.0, 20.0)
    band_probability: float = 0.4
    gain_probability: float = 0.5
    gain_range_db: tuple[float, float] = (-18.0, 12.0)
    codec_probability: float = 0.4
    kbps_range: tuple[int, int] = (16, 64)

    def identity(self) -> dict:
        """What a cache of simulated recordings is keyed by: the settings, less a condition that is
        off (so the recordings cached before that condition existed stay valid: they are the same)."""
        settings = asdict(self)
        if not self.excerpt_probability:
            settings = {k: v for k, v in settings.items() if not k.startswith("excerpt")}
        return settings


def simulate(audio: np.ndarray, rng: np.random.Generator, conditions: RecordingConditions = RecordingConditions(),
             babble: list[np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
    """One random recording of ``audio``: the conditions applied, and their names (for logs)."""
    c, applied = conditions, []
    out = np.asarray(audio, np.float32)
    if c.excerpt_probability and rng.random() < c.excerpt_probability:
        seconds = float(rng.uniform(*c.excerpt_range_s))
        out = excerpt(out, seconds, rng)
        applied.append(f"excerpt {seconds:.1f} s")
    if rng.random() < c.speed_probability:
        factor = float(rng.uniform(*c.speed_range))
        out = speed(out, factor)
        applied.append(f"speed {factor:.2f}")
    if rng.random() < c.reverb_probability:
        rt60 = float(rng.uniform(*c.rt60_range_s))
        out = reverberate(out, rt60, rng)
        applied.append(f"reverb {rt60:.2f} s")
    if rng.random() < c.noise_probability:
        kinds = ["white", "pink"] + (["babble"] if babble else [])
        kind, snr = str(rng.choice(kinds)), float(rng.uniform(*c.snr_range_db))
        out = add_noise(out, snr, kind, rng, babble)
        applied.append(f"{kind} noise {snr:.0f} dB")
    if rng.random() < c.band_probability:
        if rng.random() < 0.4:
            low, high, tilt = 300.0, 3400.0, 0.0                      # telephone
        else:
            low, high, tilt = float(rng.uniform(50, 250)), float(rng.uniform(4000, 7500)), float(rng.uniform(-4, 4))
        out = band_limit(out, low, high, tilt)
        applied.append(f"band {low:.0f}-{high:.0f} Hz")
    if rng.random() < c.gain_probability:
        gain = float(rng.uniform(*c.gain_range_db))
        out = gain_and_clip(out, gain)
        applied.append(f"gain {gain:+.0f} dB")
    if rng.random() < c.codec_probability:
        codec, kbps = str(rng.choice(sorted(CODECS))), int(rng.integers(c.kbps_range[0], c.kbps_range[1] + 1))
        out = lossy_codec(out, codec, kbps)
        applied.append(f"{codec} {kbps} kbit/s")
    return out, applied
