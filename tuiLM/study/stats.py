"""Statistics of seed groups: mean and standard error (specs/studies.md, "Judging results")."""

from __future__ import annotations

import math
from typing import Sequence


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(k)); SE is NaN for fewer than 2 values."""
    k = len(values)
    if k == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / k
    if k < 2:
        return mean, math.nan
    var = math.fsum((v - mean) ** 2 for v in values) / (k - 1)
    return mean, math.sqrt(var / k)
