"""The JSON Schemas of every payload, for the seven emotions or a face model's own classes.

The files describe the seven emotions; :func:`schema` gives the same schema for another
:class:`~affectlite.labels.LabelSet` (a user's own model), so that consumers validate what a
device with that model really sends. Voice and fused results never appear with such a model
(they need the seven emotions).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from affectlite.labels import DEFAULT_LABELS, EMOTIONS, LabelSet

FOLDER = Path(__file__).parent
_PATTERN = "^(" + "|".join(EMOTIONS) + ")$"


def schema(name: str, labels: LabelSet = DEFAULT_LABELS) -> dict[str, Any]:
    """``name``: e.g. "mqtt-state" (the file ``mqtt-state.v1.json``)."""
    path = FOLDER / f"{name}.v1.json"
    if not path.exists():
        known = sorted(p.name.removesuffix(".v1.json") for p in FOLDER.glob("*.v1.json"))
        raise ValueError(f"no schema {name!r}; known: {known}")
    data = json.loads(path.read_text())
    return data if labels.is_emotions else _relabel(data, labels.names)


def _relabel(node: Any, names: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        if set(EMOTIONS) <= {v for v in node if isinstance(v, str)}:     # an enum or required list of them
            return list(names) + [v for v in node if v not in EMOTIONS]
        return [_relabel(v, names) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties" and set(EMOTIONS) <= set(value):
            first = value[EMOTIONS[0]]
            out[key] = {name: first for name in names} | {k: _relabel(v, names) for k, v in value.items()
                                                          if k not in EMOTIONS}
        elif key == "patternProperties" and _PATTERN in value:
            out[key] = {("^(" + "|".join(map(re.escape, names)) + ")$" if k == _PATTERN else k): _relabel(v, names)
                        for k, v in value.items()}
        else:
            out[key] = _relabel(value, names)
    return out
