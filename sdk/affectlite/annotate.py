"""Drawing boxes and labels on frames, and writing annotated images and videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlite.recognizer import FaceEmotion

COLOURS = {"positive": (40, 200, 80), "negative": (230, 60, 50), "neutral": (230, 200, 40)}


def draw(rgb: np.ndarray, faces: list[FaceEmotion]) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(rgb)
    pen = ImageDraw.Draw(image)
    width = max(2, round(max(rgb.shape[:2]) / 320))
    for face in faces:
        colour = COLOURS[face.valence]
        pen.rectangle(face.box, outline=colour, width=width)
        label = f"{face.emotion} {face.probabilities[face.emotion]:.0%}"
        if face.track_id is not None:
            label = f"#{face.track_id} {label}"
        x, y = face.box[0], max(face.box[1] - 14, 0)
        left, top, right, bottom = pen.textbbox((x, y), label)
        pen.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=colour)
        pen.text((x, y), label, fill=(0, 0, 0))
    return np.asarray(image)


def save_image(rgb: np.ndarray, path: str | Path) -> None:
    from PIL import Image

    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    Image.fromarray(rgb).save(tmp)
    tmp.replace(path)


class VideoWriter:
    """An H.264 (or MPEG-4 Part 2 where the FFmpeg build lacks libx264) video, via PyAV."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int):
        import av

        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.stem + ".tmp" + self.path.suffix)
        self._container = av.open(str(self._tmp), mode="w")
        rate = max(1, round(fps))
        for codec in ("libx264", "mpeg4"):
            try:
                self._stream = self._container.add_stream(codec, rate=rate)
                break
            except (av.FFmpegError, ValueError):  # codec missing from this FFmpeg build
                continue
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(rgb[: self._stream.height, : self._stream.width], format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._tmp.replace(self.path)

    def discard(self) -> None:
        try:
            self._container.close()
        finally:
            self._tmp.unlink(missing_ok=True)
