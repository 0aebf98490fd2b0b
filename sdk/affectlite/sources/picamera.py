"""The Raspberry Pi camera through picamera2 (installed with Raspberry Pi OS, importable only there).

A thin adapter over picamera2's own three steps: configure, start, ``capture_array``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from affectlite.sources.base import SourceError


def numpy_mismatch(exc: Exception, system_packages: str = "/usr/lib/python3/dist-packages") -> str:
    """Why apt's picamera2 does not import: its JPEG encoder was built against the system's numpy,
    and the virtual environment has another one (a dependency pulled it in)."""
    found = sorted(Path(system_packages).glob("numpy-*-info"))
    system = found[-1].name.split("-")[1].removesuffix(".egg").removesuffix(".dist") if found else ""
    pin = (f"pip install 'numpy=={system}'" if system else
           "pip install 'numpy==VERSION' with the VERSION of apt's python3-numpy (dpkg -s python3-numpy)")
    return (f"picamera2 cannot load with this environment's numpy {np.__version__} ({exc}): apt's picamera2 is built "
            f"against the system's numpy; with the virtual environment's pip, {pin} (scripts/install-pi.sh pins it)")


class PiCameraSource:
    def __init__(self, width: int = 640, height: int = 480, fps: float = 30):
        self.width, self.height, self.fps = width, height, fps
        self.name = "picamera"
        self._camera = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError("picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
                              "and create the virtual environment with --system-site-packages") from exc
        except ValueError as exc:                    # "numpy.dtype size changed, may indicate binary incompatibility"
            raise SourceError(numpy_mismatch(exc)) from exc
        try:
            camera = Picamera2()
            config = camera.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"},
                controls={"FrameRate": float(self.fps)},
            )
            camera.configure(config)
            camera.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise SourceError(f"no Raspberry Pi camera could be opened ({exc}); check the ribbon cable and "
                              "`rpicam-hello --list-cameras`") from exc
        self._camera = camera

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._camera is None:
            raise SourceError("picamera: read() before open()")
        # picamera2's "RGB888" is stored B, G, R in memory (libcamera's naming): reverse to RGB.
        array = self._camera.capture_array("main")
        return np.ascontiguousarray(array[..., 2::-1]), time.monotonic()

    def close(self) -> None:
        if self._camera is not None:
            self._camera.stop()
            self._camera.close()
            self._camera = None
