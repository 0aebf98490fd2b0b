"""What every frame source offers the live service: open, read frames, close.

A source delivers (RGB uint8 frame, capture time) pairs; ``read`` returns None when the source
has ended (a file without looping). Sources raise :class:`SourceError` with a hint when the
device is missing or busy.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class SourceError(RuntimeError):
    """A camera or stream that cannot be opened or read; the message says what to check."""


class FrameSource(Protocol):
    name: str

    def open(self) -> None: ...

    def read(self) -> tuple[np.ndarray, float] | None: ...

    def close(self) -> None: ...
