"""Video files (and anything else FFmpeg opens) as RGB frames with timestamps, through PyAV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from affectlite.sources.images import MediaError

#: What a folder given to ``affectlite analyze`` is searched for (any file FFmpeg opens may be
#: named directly).
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".flv", ".m4v", ".mpg", ".mpeg", ".ts"}


@dataclass(frozen=True)
class Frame:
    index: int              # position in the decoded stream, from 0
    timestamp: float        # seconds from the stream's start
    rgb: np.ndarray         # (H, W, 3) uint8


def video_info(path: str | Path) -> dict:
    """Frame rate, frame count (estimated when the container does not say) and size."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0) or None
            frames = stream.frames or (int(container.duration / 1e6 * rate) if container.duration and rate else None)
            return {"fps": rate, "frames": frames, "width": stream.width, "height": stream.height}
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from exc


def read_video(path: str | Path, every: int = 1, fps: float | None = None) -> Iterator[Frame]:
    """Decode frames; keep every ``every``-th, or about ``fps`` frames a second when given.

    Raises :class:`MediaError` for a file FFmpeg cannot open or that has no video stream; frames
    decoded before a corrupt stretch are still yielded.
    """
    import av

    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from exc
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_time, index = 0.0, -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                timestamp = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 30)
                if fps is not None:
                    if timestamp + 1e-6 < next_time:
                        continue
                    next_time = timestamp + 1.0 / fps
                elif index % every:
                    continue
                yield Frame(index, timestamp, frame.to_ndarray(format="rgb24"))
        except av.FFmpegError as exc:
            raise MediaError(f"{path}: decoding stopped at frame {index + 1}: {exc}") from exc
        if index < 0:
            raise MediaError(f"{path}: the video stream has no frames")
