"""`np.median` without its first-call import.

`np.median` checks for masked arrays, which imports `numpy.ma` on first use: 0.03 s in a
fresh process, and 0.1 s where Python may not write bytecode (containers that set
PYTHONDONTWRITEBYTECODE). The analysis runs it once per video, in processes that often
analyse one video each.
"""

from __future__ import annotations

import numpy as np


def median(values: np.ndarray) -> float:
    """The median of a 1-D array, equal to `np.median` (the mean of the middle two when even)."""
    count = len(values)
    if count == 0:
        raise ValueError("median of an empty array")
    low, high = (count - 1) // 2, count // 2
    ordered = np.partition(np.asarray(values, dtype=np.float64), [low, high])
    return float((ordered[low] + ordered[high]) / 2)
