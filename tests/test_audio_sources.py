"""Audio inputs: files, video sound tracks, and the microphone through a stand-in pyaudio."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from affectlite.sources.audio import Microphone, RingBuffer, read_audio_file, read_video_audio
from affectlite.sources.base import SourceError
from affectlite.sources.images import MediaError
from conftest import SHARED


def test_sound_track_of_a_video(sad_clip):
    audio = read_video_audio(sad_clip)                     # MP3 at 44.1 kHz inside an FLV
    assert audio.dtype == np.float32 and 1.5 * 16000 < len(audio) < 2.5 * 16000
    assert np.abs(audio).max() > 0.05


def test_audio_files():
    flac = read_audio_file(SHARED / "data/speech/ravdess/Actor_02/03-01-03-01-01-01-02.flac")
    mp3 = read_audio_file(SHARED / "data/av/crema-d-sample/AudioMP3/1002_DFA_HAP_XX.mp3")
    assert flac.dtype == mp3.dtype == np.float32 and len(flac) > 16000 and len(mp3) > 16000


def test_unreadable_audio(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not audio")
    with pytest.raises(MediaError, match="not a readable audio file"):
        read_audio_file(bad)


def test_ring_buffer_keeps_the_latest():
    ring = RingBuffer(seconds=1.0, rate=10)                # 10 samples
    ring.write(np.arange(7))
    assert ring.latest(5).tolist() == [2, 3, 4, 5, 6]
    ring.write(np.arange(7, 15))                           # wraps around
    assert ring.latest(10).tolist() == list(range(5, 15))
    assert ring.latest(100).tolist() == list(range(5, 15)) and ring.total == 15


class FakeStream:
    def __init__(self, callback, rate, chunk):
        self.callback, self.rate, self.chunk, self.active = callback, rate, chunk, False

    def start_stream(self):
        self.active = True
        tone = (np.sin(np.arange(self.chunk) * 0.1) * 16000).astype(np.int16)
        for _ in range(5):                                  # PortAudio would call this from its thread
            self.callback(tone.tobytes(), self.chunk, {}, 0)

    def stop_stream(self):
        self.active = False

    def close(self):
        pass


def fake_pyaudio(devices):
    """A stand-in module with pyaudio's names: PyAudio(), paInt16, paContinue, device info, open()."""

    class PyAudio:
        def get_default_input_device_info(self):
            inputs = [d for d in devices if d["maxInputChannels"] > 0]
            if not inputs:
                raise OSError("No Default Input Device Available")
            return inputs[0]

        def get_device_info_by_index(self, index):
            return devices[index]

        def get_device_count(self):
            return len(devices)

        def open(self, format, channels, rate, input, input_device_index, frames_per_buffer, stream_callback):
            assert (format, channels, input) == (8, 1, True)
            if rate not in devices[input_device_index]["rates"]:
                raise OSError("Invalid sample rate")
            self.stream = FakeStream(stream_callback, rate, frames_per_buffer)
            return self.stream

        def terminate(self):
            pass

    return types.SimpleNamespace(PyAudio=PyAudio, paInt16=8, paContinue=0)


def test_microphone_fills_the_ring_buffer(monkeypatch):
    device = {"index": 0, "name": "USB mic", "maxInputChannels": 1, "defaultSampleRate": 48000, "rates": {16000, 48000}}
    monkeypatch.setitem(sys.modules, "pyaudio", fake_pyaudio([device]))
    mic = Microphone(chunk=1600)
    mic.open()
    assert mic.buffer.total == 5 * 1600
    assert mic.latest(0.1).shape == (1600,) and np.abs(mic.latest(0.1)).max() > 0.4
    mic.close()


def test_microphone_at_the_device_rate_is_resampled(monkeypatch):
    device = {"index": 0, "name": "44k mic", "maxInputChannels": 2, "defaultSampleRate": 44100, "rates": {44100}}
    monkeypatch.setitem(sys.modules, "pyaudio", fake_pyaudio([device]))
    mic = Microphone(chunk=4410)
    mic.open()
    assert abs(mic.buffer.total - 5 * 1600) <= 5 * 16               # 0.1 s chunks arrive as 1600 samples
    mic.close()


def test_no_microphone(monkeypatch):
    speaker = {"index": 0, "name": "HDMI", "maxInputChannels": 0, "defaultSampleRate": 48000, "rates": {48000}}
    monkeypatch.setitem(sys.modules, "pyaudio", fake_pyaudio([speaker]))
    with pytest.raises(SourceError, match="no microphone found"):
        Microphone().open()
    with pytest.raises(SourceError, match="has no input channels"):
        Microphone(device=0).open()
    monkeypatch.setitem(sys.modules, "pyaudio", None)
    with pytest.raises(SourceError, match="python3-pyaudio.*portaudio19-dev python3-dev gcc"):
        Microphone().open()
