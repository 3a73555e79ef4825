"""JSON as every reader accepts it: no ``NaN``, no ``Infinity``.

Python's ``json`` writes those by default, and strict readers (browsers' ``JSON.parse``, jq, most
languages' parsers) refuse the file. Both halves write JSON through this: ``meta.json`` and the
rank files in the recorder, the summary in the analyzer.
"""

from __future__ import annotations

import json
import math
from typing import Any


def standard_json(value: Any) -> Any:
    """``value`` with every NaN or infinity made null, in dicts, lists and tuples at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: standard_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [standard_json(item) for item in value]
    return value


def dumps(value: Any, indent: int | None = 1) -> str:
    """``value`` as standard JSON text; objects JSON has no type for are written as their ``str``."""
    return json.dumps(standard_json(value), indent=indent, default=str, allow_nan=False)
