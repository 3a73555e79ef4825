"""How per-GPU values make the job's: the one rule every table and chart uses to combine GPUs."""

from __future__ import annotations

from typing import Literal

import numpy as np

Combine = Literal["sum", "mean", "max", "min"]


def combine_gpus(stack: np.ndarray, how: Combine) -> np.ndarray:
    """Rows (one per GPU) combined column by column with ``how``; a NaN is a value not known for
    that GPU and is skipped, and a column no GPU knows is NaN."""
    known = ~np.isnan(stack)
    any_known = known.any(axis=0)
    if how == "min":
        return np.min(np.where(known, stack, 0.0), axis=0)
    filled = np.where(known, stack, 0.0)
    if how == "sum":
        result = filled.sum(axis=0)
    elif how == "max":
        result = np.where(known, stack, -np.inf).max(axis=0)
    else:
        result = filled.sum(axis=0) / np.maximum(known.sum(axis=0), 1)
    return np.where(any_known, result, np.nan)
