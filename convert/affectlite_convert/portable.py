"""Paths in model cards that mean something on another machine.

A card travels with its model; ``/home/alice/runs/face7/calibration.npz`` tells its reader nothing
and tells everyone about the build machine. Paths under the working directory stay relative (as
``../shared/data/...`` in the commands one reruns); other absolute paths keep their last two parts
(``face7/calibration.npz``: the run folder and the file).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:[\w.+@=-]+/)*[\w.+@=-]+")


def portable_path(path: str | os.PathLike, cwd: Path | None = None) -> str:
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    cwd = cwd or Path.cwd()
    try:
        return os.path.relpath(path, cwd) if path.is_relative_to(cwd.parent) else "/".join(path.parts[-2:])
    except ValueError:
        return "/".join(path.parts[-2:])


def portable(value: Any, cwd: Path | None = None) -> Any:
    """``value`` (a string, or lists and dicts of them) with every absolute path made portable."""
    if isinstance(value, str):
        return _ABSOLUTE.sub(lambda m: portable_path(m.group(0), cwd), value)
    if isinstance(value, list):
        return [portable(v, cwd) for v in value]
    if isinstance(value, tuple):
        return tuple(portable(v, cwd) for v in value)
    if isinstance(value, dict):
        return {k: portable(v, cwd) for k, v in value.items()}
    return value
