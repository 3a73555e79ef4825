"""Python lists and numpy arrays to Arrow arrays without ``pa.array``.

``pa.array`` imports pandas on its first call whenever pandas is installed (pyarrow checks every
input for pandas types), which costs the recorder a second of CPU and tens of MB in a process
that must stay light, and ``effanalyze`` a third of a second on every run. Building the arrays
from numpy buffers avoids it; both halves write only fixed-width numbers, booleans and strings,
so that is all this handles.
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
        dtype = _numpy_dtype(arrow_type)
        zero = dtype.type(0)
        data = np.fromiter((zero if value is None else value for value in values), dtype=dtype, count=count)
        buffers = [validity, pa.py_buffer(data)]
    return pa.Array.from_buffers(arrow_type, count, buffers, null_count=nulls)


def from_numpy(values: np.ndarray, arrow_type: pa.DataType | None = None, mask: np.ndarray | None = None) -> pa.Array:
    """A fixed-width Arrow array holding a numpy array's values (``mask`` true marks a null)."""
    arrow_type = arrow_type or pa.from_numpy_dtype(values.dtype)
    count = int(values.size)
    nulls = 0 if mask is None else int(np.count_nonzero(mask))
    validity = pa.py_buffer(np.packbits(~mask, bitorder="little")) if nulls else None
    if pa.types.is_boolean(arrow_type):
        data = pa.py_buffer(np.packbits(values.astype(bool), bitorder="little"))
    else:
        data = pa.py_buffer(np.ascontiguousarray(values, dtype=_numpy_dtype(arrow_type)))
    return pa.Array.from_buffers(arrow_type, count, [validity, data], null_count=nulls)


def repeated_string(text: str, count: int) -> pa.Array:
    """A string array of ``count`` copies of ``text`` (a host name per row), built in one step."""
    encoded = text.encode()
    offsets = np.arange(count + 1, dtype=np.int32) * len(encoded)
    return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(encoded * count)])


def values_and_validity(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """A fixed-width column's values as numpy and its validity (None when nothing is null).

    Zero-copy for a single-chunk numeric column. Values at null positions are whatever the
    buffer holds, so read them only where valid.
    """
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 0:  # combine_chunks() would build its empty result with pa.array
            return np.zeros(0, dtype=_numpy_dtype(column.type)), None
        column = column.chunk(0) if column.num_chunks == 1 else pa.concat_arrays(column.chunks)
    array = column
    count, offset = len(array), array.offset
    if count == 0:
        return np.zeros(0, dtype=_numpy_dtype(array.type)), None
    validity, data = array.buffers()[:2]
    if pa.types.is_boolean(array.type):
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little", count=offset + count)
        values = bits[offset:].astype(bool)
    else:
        values = np.frombuffer(data, _numpy_dtype(array.type), count=offset + count)[offset:]
    if not array.null_count:
        return values, None
    valid = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little", count=offset + count)[offset:]
    return values, valid.view(bool)  # unpackbits gives 0/1 bytes: read as bool without a copy


def to_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A fixed-width column as ``to_numpy(zero_copy_only=False)`` gives it (with nulls: float64, NaN for null)."""
    values, valid = values_and_validity(column)
    if valid is None:
        return values
    result = values.astype(np.float64)
    result[~valid] = np.nan
    return result


def _numpy_dtype(arrow_type: pa.DataType) -> np.dtype:
    return np.dtype(bool) if pa.types.is_boolean(arrow_type) else np.dtype(arrow_type.to_pandas_dtype())
