"""V4L2 webcams (``/dev/videoN``) through PyAV's FFmpeg, no OpenCV needed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from affectlite.sources.base import SourceError


class WebcamSource:
    def __init__(self, device: str = "/dev/video0", width: int = 640, height: int = 480, fps: float = 30):
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self.name = f"webcam:{device}"
        self._container = None
        self._frames = None

    def open(self) -> None:
        import av

        if not Path(self.device).exists():
            raise SourceError(f"{self.device}: no such camera; list cameras with `affectlite doctor` "
                              "(is the webcam plugged in, and is the user in the 'video' group?)")
        options = {"video_size": f"{self.width}x{self.height}", "framerate": str(self.fps)}
        try:
            self._container = av.open(self.device, format="v4l2", options=options)
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"{self.device}: cannot open the camera ({exc}); another program may be using it") from exc
        self._frames = self._container.decode(video=0)

    def read(self) -> tuple[np.ndarray, float] | None:
        import av

        if self._frames is None:
            raise SourceError(f"{self.name}: read() before open()")
        try:
            frame = next(self._frames, None)
        except av.FFmpegError as exc:
            raise SourceError(f"{self.device}: camera stopped delivering frames ({exc})") from exc
        return None if frame is None else (frame.to_ndarray(format="rgb24"), time.monotonic())

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container, self._frames = None, None
