"""Python lists to Arrow arrays without ``pa.array``.

``pa.array`` imports pandas on its first call whenever pandas is installed (pyarrow checks every
input for pandas types), which costs the recorder a second of CPU and tens of MB in a process
that must stay light. Building the arrays from numpy buffers avoids it; the recorder's columns
are only fixed-width numbers, booleans and strings, so that is all this handles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    present = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
    nulls = len(values) - int(present.sum())
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(present, bitorder="little")), nulls


def to_arrow(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """An Arrow array of ``arrow_type`` holding ``values`` (None is null)."""
    validity, nulls = _validity(values)
    count = len(values)
    if pa.types.is_string(arrow_type):
        encoded = [b"" if value is None else str(value).encode() for value in values]
        offsets = np.zeros(count + 1, dtype=np.int32)
        np.cumsum([len(item) for item in encoded], out=offsets[1:])
        buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    elif pa.types.is_boolean(arrow_type):
        bits = np.fromiter((bool(value) for value in values), dtype=bool, count=count)
        buffers = [validity, pa.py_buffer(np.packbits(bits, bitorder="little"))]
    else:
        dtype = np.dtype(arrow_type.to_pandas_dtype())
        zero = dtype.type(0)
        data = np.fromiter((zero if value is None else value for value in values), dtype=dtype, count=count)
        buffers = [validity, pa.py_buffer(data)]
    return pa.Array.from_buffers(arrow_type, count, buffers, null_count=nulls)
