"""Arrow arrays to and from numpy without pa.array/to_numpy: same values, nulls where they were."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from efftrace.recorder.format.columns import from_numpy, repeated_string, to_arrow, to_numpy, values_and_validity


@pytest.mark.parametrize("arrow_type", [pa.int64(), pa.uint8(), pa.int16(), pa.uint64(), pa.float32(), pa.float64()])
def test_numbers_round_trip_with_nulls_and_offsets(arrow_type):
    values = [3, None, 7, 0, None, 250]
    array = to_arrow(values, arrow_type)
    assert array.to_pylist() == pa.array(values, arrow_type).to_pylist()
    for sliced in (array, array[1:], array[2:4], pa.chunked_array([array[:3], array[3:]])):
        expected = sliced.to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(to_numpy(sliced), expected)


def test_validity_is_none_without_nulls_and_exact_for_integers():
    big = np.array([1_800_000_000_123_456_789, 1_800_000_000_123_456_790], dtype=np.int64)
    values, valid = values_and_validity(from_numpy(big))
    assert valid is None and values.dtype == np.int64
    np.testing.assert_array_equal(values, big)  # no detour through float64
    values, valid = values_and_validity(to_arrow([1, None], pa.uint8()))
    assert valid.tolist() == [True, False] and values[0] == 1


def test_booleans_and_masks():
    flags = np.array([True, False, True, True, False, False, True, False, True])
    assert from_numpy(flags).to_pylist() == flags.tolist()
    assert to_numpy(from_numpy(flags)[3:]).tolist() == flags[3:].tolist()
    masked = from_numpy(np.array([1.5, np.nan, 2.5]), pa.float64(), mask=np.array([False, True, False]))
    assert masked.to_pylist() == [1.5, None, 2.5]


def test_empty_columns_and_repeated_strings():
    assert to_numpy(pa.chunked_array([], pa.int64())).size == 0
    assert to_numpy(to_arrow([], pa.float64())).size == 0
    assert repeated_string("node-7", 3).to_pylist() == ["node-7"] * 3
    assert repeated_string("", 0).to_pylist() == []
