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


class VideoEndedEarly(MediaError):
    """The stream stopped well before the length its header declares: a truncated download or a
    file still being written. Raised after the frames that were there have been yielded."""


def _ended_early(path, container, stream, frames_decoded: int, last_time: float | None) -> str:
    """Why the decoded stream looks cut short, or "" when it reached the declared end. FFmpeg
    just stops at the end of the data, so a truncated file otherwise reads as a short one."""
    rate = float(stream.average_rate or stream.guessed_rate or 30)
    if stream.frames and frames_decoded < stream.frames - 2:
        return f"{path}: the file ends early: {frames_decoded} of the {stream.frames} frames its header declares"
    if last_time is None:
        return ""
    if stream.duration and stream.time_base:
        declared, slack = float(stream.duration * stream.time_base), 0.25
    elif container.duration:
        declared, slack = container.duration / 1e6, 0.5        # may include a longer sound track
    else:
        return ""
    if last_time + 2.0 / rate + slack < declared:
        return (f"{path}: the file ends early: video up to {last_time:.2f} s of the {declared:.2f} s its header "
                "declares (truncated, or still being written); the results cover that part")
    return ""


def read_video(path: str | Path, every: int = 1, fps: float | None = None) -> Iterator[Frame]:
    """Decode frames; keep every ``every``-th, or about ``fps`` frames a second when given.

    Raises :class:`MediaError` for a file FFmpeg cannot open or that has no video stream; frames
    decoded before a corrupt stretch are still yielded, and a stream that stops well before its
    declared length raises :class:`VideoEndedEarly` after its last frame.
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
        next_time, index, timestamp = 0.0, -1, None
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
        short = _ended_early(path, container, stream, index + 1, timestamp)
        if short:
            raise VideoEndedEarly(short)
