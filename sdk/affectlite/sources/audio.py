"""Audio inputs, all delivered as 16 kHz mono float32: files (soundfile), the sound track of a
video (PyAV) and a live microphone (pyaudio) feeding a ring buffer."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from affectlite.audio.features import SAMPLE_RATE
from affectlite.audio.resample import to_model_rate
from affectlite.sources.base import SourceError
from affectlite.sources.images import MediaError


def read_audio_file(path: str | Path) -> np.ndarray:
    try:
        import soundfile
    except ImportError as exc:
        raise MediaError("reading audio files needs soundfile: pip install 'affectlite[audio]'") from exc
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (OSError, RuntimeError) as exc:
        raise MediaError(f"{path}: not a readable audio file ({exc})") from exc
    return to_model_rate(audio, rate)


def read_video_audio(path: str | Path) -> np.ndarray | None:
    """The first sound track of a video at 16 kHz mono, or None when it has none."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            chunks = []
            for frame in container.decode(stream):
                chunks += [f.to_ndarray().ravel() for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().ravel() for f in resampler.resample(None)]
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot decode its sound track ({exc})") from exc
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


class RingBuffer:
    """The last ``seconds`` of audio; writers append, readers copy out the most recent stretch."""

    def __init__(self, seconds: float = 4.0, rate: int = SAMPLE_RATE):
        self._data = np.zeros(int(seconds * rate), np.float32)
        self._written = 0
        self._lock = threading.Lock()

    def write(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float32)[-len(self._data):]
        with self._lock:
            start = self._written % len(self._data)
            end = start + len(samples)
            if end <= len(self._data):
                self._data[start:end] = samples
            else:
                split = len(self._data) - start
                self._data[start:], self._data[: end - len(self._data)] = samples[:split], samples[split:]
            self._written += len(samples)

    def latest(self, samples: int) -> np.ndarray:
        with self._lock:
            samples = min(samples, len(self._data), self._written)
            end = self._written % len(self._data)
            return np.concatenate([self._data, self._data])[len(self._data) + end - samples: len(self._data) + end].copy()

    @property
    def total(self) -> int:
        return self._written


class Microphone:
    """Live 16 kHz mono capture through PortAudio into a :class:`RingBuffer`."""

    def __init__(self, device: int | None = None, seconds: float = 4.0, chunk: int = 1600):
        self.device, self.chunk = device, chunk
        self.buffer = RingBuffer(seconds)
        self._audio = None
        self._stream = None
        self._rate = SAMPLE_RATE

    def open(self) -> None:
        try:
            import pyaudio
        except ImportError as exc:
            raise SourceError(
                "microphone capture needs pyaudio: on Raspberry Pi OS sudo apt install libportaudio2 "
                "python3-pyaudio, in a virtual environment made with --system-site-packages (as "
                "scripts/install-pi.sh makes it); elsewhere pip builds it from source: sudo apt install "
                "portaudio19-dev python3-dev gcc, then pip install 'affectlite[audio]'") from exc
        audio = pyaudio.PyAudio()
        try:
            info = (audio.get_device_info_by_index(self.device) if self.device is not None
                    else audio.get_default_input_device_info())
        except (OSError, IOError, ValueError) as exc:
            audio.terminate()
            raise SourceError(f"no microphone found ({exc}); plug one in and check `arecord -l`") from exc
        if int(info.get("maxInputChannels", 0)) < 1:
            audio.terminate()
            raise SourceError(f"audio device {info.get('name')!r} has no input channels; choose a microphone")

        def callback(data, frames, time_info, status):
            samples = np.frombuffer(data, np.int16).astype(np.float32) / 32768.0
            self.buffer.write(samples if self._rate == SAMPLE_RATE else to_model_rate(samples, self._rate))
            return None, pyaudio.paContinue

        for rate in (SAMPLE_RATE, int(info.get("defaultSampleRate", SAMPLE_RATE))):
            try:
                self._stream = audio.open(format=pyaudio.paInt16, channels=1, rate=rate, input=True,
                                          input_device_index=int(info["index"]), frames_per_buffer=self.chunk,
                                          stream_callback=callback)
                self._rate = rate
                break
            except (OSError, ValueError) as exc:
                error = exc
        else:
            audio.terminate()
            raise SourceError(f"cannot open microphone {info.get('name')!r}: {error}")
        self._audio = audio
        self._stream.start_stream()

    def latest(self, seconds: float) -> np.ndarray:
        return self.buffer.latest(int(seconds * SAMPLE_RATE))

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop_stream()
            self._stream.close()
            self._stream = None
        if self._audio is not None:
            self._audio.terminate()
            self._audio = None
