"""Frame sources and the latest-frame capture thread."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from affectlite.capture import LatestFrame
from affectlite.sources.base import SourceError
from affectlite.sources.images import MediaError
from affectlite.sources.memory import MemorySource
from affectlite import doctor
from affectlite.sources.picamera import PiCameraSource
from affectlite.sources.replay import VideoReplaySource
from affectlite.sources.webcam import WebcamSource
from affectlite.sources.video_file import read_video, video_info


def numbered_frames(n):
    return [np.full((4, 4, 3), i % 256, np.uint8) for i in range(n)]


def test_slow_consumer_gets_the_newest_frame_and_old_ones_are_dropped():
    capture = LatestFrame(MemorySource(numbered_frames(200), fps=400)).start()
    taken = []
    while True:
        frame = capture.get(timeout=1.0)
        if frame is None:
            break
        taken.append(frame.number)
        time.sleep(0.02)                      # a consumer far slower than the source
    capture.stop()
    assert capture.captured == 200
    assert taken == sorted(taken) and len(taken) < 200
    assert capture.dropped == 200 - len(taken)


def test_replay_keeps_the_clip_pace_and_loops(sad_clip):
    info = video_info(sad_clip)
    source = VideoReplaySource(sad_clip, realtime=True, loop=True)
    source.open()
    start = time.monotonic()
    count = 0
    while count < info["frames"] + 10:        # past the end: it starts again
        frame, captured_at = source.read()
        assert frame.shape == (360, 480, 3) and captured_at >= start
        count += 1
    elapsed = time.monotonic() - start
    source.close()
    assert source.loops == 1
    assert elapsed >= (info["frames"] - 1) / info["fps"]    # never faster than the clip itself


def test_replay_without_loop_ends(sad_clip):
    source = VideoReplaySource(sad_clip, realtime=False, loop=False)
    source.open()
    frames = 0
    while source.read() is not None:
        frames += 1
    source.close()
    assert frames == sum(1 for _ in read_video(sad_clip))


def test_replaying_a_truncated_file_loops_over_what_is_there_and_says_so_once(tmp_path, happy_clip, caplog):
    cut = tmp_path / "cut.flv"
    data = happy_clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.4)])
    there = sum(1 for _ in zip(range(1000), _frames_until_error(cut)))
    source = VideoReplaySource(cut, realtime=False, loop=True)
    source.open()
    for _ in range(3 * there):
        assert source.read() is not None
    source.close()
    assert source.loops == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "the file ends early" in warnings[0]


def _frames_until_error(path):
    try:
        yield from read_video(path)
    except MediaError:
        return


def test_missing_webcam_says_what_to_check():
    with pytest.raises(SourceError, match="no such camera.*affectlite doctor"):
        WebcamSource("/dev/video97").open()


class FakePicamera2:
    """Stand-in following picamera2's API: Picamera2(), create_video_configuration, configure,
    start, capture_array, stop, close. Frames come as picamera2's RGB888, i.e. B, G, R in memory."""

    instances: list["FakePicamera2"] = []

    def __init__(self):
        self.calls = []
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main=None, controls=None):
        self.calls.append("create_video_configuration")
        return {"main": main, "controls": controls}

    def configure(self, config):
        self.config = config
        self.calls.append("configure")

    def start(self):
        self.calls.append("start")

    def capture_array(self, name="main"):
        width, height = self.config["main"]["size"]
        bgr = np.zeros((height, width, 3), np.uint8)
        bgr[..., 0] = 255                                 # blue, in picamera2's RGB888 layout
        return bgr

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


def test_picamera_adapter_with_a_stand_in(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    source = PiCameraSource(320, 240, 15)
    source.open()
    frame, _ = source.read()
    source.close()
    camera = FakePicamera2.instances[-1]
    assert camera.calls == ["create_video_configuration", "configure", "start", "stop", "close"]
    assert camera.config["main"] == {"size": (320, 240), "format": "RGB888"}
    assert camera.config["controls"] == {"FrameRate": 15.0}
    assert frame.shape == (240, 320, 3) and frame[0, 0].tolist() == [0, 0, 255]   # blue stays blue in RGB


def test_picamera_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(SourceError, match="picamera2 is not installed"):
        PiCameraSource().open()


def test_picamera_built_against_another_numpy(monkeypatch, tmp_path):
    """apt's picamera2 in a venv whose pip pulled in a newer numpy: its import fails as simplejpeg's
    does, and the error names the numpy to pin (the system's, from its package metadata)."""
    from affectlite.sources.picamera import numpy_mismatch

    stand_in = tmp_path / "picamera2"
    stand_in.mkdir()
    (stand_in / "__init__.py").write_text('raise ValueError("numpy.dtype size changed, may indicate binary '
                                          'incompatibility. Expected 96 from C header, got 88 from PyObject")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    with pytest.raises(SourceError, match="picamera2 cannot load with this environment's numpy .*dtype size changed"):
        PiCameraSource().open()
    assert any("picamera2 cannot load" in line for line in doctor.cameras())      # doctor says the same
    system = tmp_path / "dist-packages"
    (system / "numpy-1.24.2.egg-info").mkdir(parents=True)
    assert "pip install 'numpy==1.24.2'" in numpy_mismatch(ValueError("x"), str(system))
    (system / "numpy-1.24.2.egg-info").rmdir()
    (system / "numpy-2.2.4.dist-info").mkdir()
    assert "pip install 'numpy==2.2.4'" in numpy_mismatch(ValueError("x"), str(system))
    assert "dpkg -s python3-numpy" in numpy_mismatch(ValueError("x"), str(tmp_path / "none"))
