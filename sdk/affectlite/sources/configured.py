"""The frame source a configuration's ``[source]`` asks for; shared by ``run`` and ``doctor``, so
that doctor opens exactly what the service would."""

from __future__ import annotations

from typing import Any

from affectlite.sources.base import FrameSource


def make_source(config: dict[str, Any]) -> FrameSource:
    kind = config["kind"]
    if kind == "file":
        from affectlite.samples import SAMPLE_CLIP
        from affectlite.sources.replay import VideoReplaySource

        return VideoReplaySource(config["path"] or SAMPLE_CLIP, realtime=config["realtime"], loop=config["loop"])
    if kind == "webcam":
        from affectlite.sources.webcam import WebcamSource

        return WebcamSource(config["device"], config["width"], config["height"], config["fps"])
    from affectlite.sources.picamera import PiCameraSource

    return PiCameraSource(config["width"], config["height"], config["fps"])
