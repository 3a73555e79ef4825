"""How far apart two analyses of one run are: every number of their JSON documents, compared.

    from figure_compare import largest_difference
    relative, where = largest_difference(summary_document(a), summary_document(b))

Used by ``bench/fleet.py`` and the tests to show that the cluster's figures are the single
process's: every figure, window, GPU row, time bucket and finding is compared, numbers by
relative difference (absolute below 1e-300, where a relative one means nothing), everything else
for equality; a key or row present on one side only counts as different (``inf``).

The energy cross-check (``energy_counter_diff``: (energy - counter) / counter, a few 1e-4) is the
one figure compared by its absolute difference: it is a difference of two nearly equal sums, so its
own relative difference is theirs divided by it, and bounding the absolute one bounds theirs.
"""

from __future__ import annotations

import math
from typing import Any

TINY = 1e-300
ABSOLUTE = ("energy_counter_diff",)  # keys compared by absolute difference (see above)


def largest_difference(old: Any, new: Any, where: str = "") -> tuple[float, str]:
    """The largest relative difference between the two documents, and where it is."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old.keys() != new.keys():
            return math.inf, f"{where}: keys {sorted(set(old) ^ set(new))}"
        return max((largest_difference(old[key], new[key], f"{where}.{key}") for key in old), default=(0.0, where))
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return math.inf, f"{where}: {len(old)} against {len(new)} items"
        pairs = zip(old, new, strict=True)
        return max(
            (largest_difference(a, b, f"{where}[{at}]") for at, (a, b) in enumerate(pairs)), default=(0.0, where)
        )
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool):
        if old == new or (isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)):
            return 0.0, where
        scale = max(abs(old), abs(new))
        if scale <= TINY or any(key in where for key in ABSOLUTE):
            return abs(old - new), where
        return abs(old - new) / scale, where
    return (0.0 if old == new else math.inf), where
