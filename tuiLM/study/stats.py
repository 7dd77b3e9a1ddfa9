"""Statistics of seed groups (specs/studies.md, "Judging results").

A configuration's value is the mean over its seeds, shown as mean ± standard error with k. Two
configurations that ran the same seeds (run.seed + 0..k-1: the same initialisation and data order,
common random numbers) are compared seed by seed: a paired t-test and a seeded bootstrap confidence
interval of the per-seed differences. Welch's t-test is used only when the seeds differ. A difference
whose interval includes 0 is "not distinguishable from seed noise", and so is one whose t-test gives
p >= 0.05: with k <= 5 seeds the bootstrap enumerates every resample, and the percentile interval of
3 differences is their [min, max], which excludes 0 whenever all seeds agree in sign (1 time in 4
under seed noise alone); the t-test holds false alarms at 5 % (``tests/test_study_stats.py``).

A possible lucky run is a configuration's best seed when it beats the group's mean by more than
Grubbs' critical number of standard deviations (one-sided, 5 %): the spec's fixed "2 standard
deviations" can never be reached below k = 6 (a value lies at most (k-1)/sqrt(k) of them from the
mean), and measuring against the siblings' own spread flagged half of all configurations at k = 3.

Numbers only (numpy, scipy); no torch, no Optuna.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..units import fmt_se

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
ALPHA = 0.05  # 1 - CONFIDENCE, written exactly (1 - 0.95 is 0.05000000000000004); false-alarm rate of a "better"/"worse" verdict and of a lucky flag


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


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``: ``diff`` = mean(a) - mean(b) in objective units; ``gain`` > 0 when a is better."""

    method: str  # "paired" | "welch" | "none" (too few seeds for either)
    k: int  # paired seeds, or min(k_a, k_b) for Welch
    k_a: int
    k_b: int
    diff: float
    diff_se: float
    gain: float  # diff with the sign that makes "better" positive
    rel_gain: float  # gain / |mean(b)|
    p: float
    ci: tuple[float, float]  # bootstrap interval of gain
    significant: bool  # p < ALPHA and the interval excludes 0
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        # by hand, not dataclasses.asdict (its deep copy is most of the cost for 1,000 comparisons)
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["ci"] = [None if x != x else x for x in self.ci]
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


EXACT_MAX = 10_000  # k**k resamples or fewer: the bootstrap distribution is enumerated exactly


def bootstrap_ci(samples: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``samples``. With few samples (k**k <= 10,000: k <= 5)
    every ordered resample is enumerated, so the interval is exact and costs microseconds; otherwise
    ``resamples`` seeded random resamples (the same input gives the same interval)."""
    import numpy as np

    x = np.asarray(samples, dtype=float)
    k = x.size
    if k == 0:
        return math.nan, math.nan
    if k ** k <= EXACT_MAX:
        idx = np.indices((k,) * k).reshape(k, -1).T  # every ordered resample, equally likely
        means = x[idx].mean(axis=1)
    else:
        rng = np.random.default_rng(seed)
        means = x[rng.integers(0, k, size=(resamples, k))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail], method="inverted_cdf")
    return float(lo), float(hi)


def bootstrap_ci_two(a: Sequence[float], b: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b), each group resampled on its own (unpaired)."""
    import numpy as np

    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    ma = xa[rng.integers(0, xa.size, size=(resamples, xa.size))].mean(axis=1)
    mb = xb[rng.integers(0, xb.size, size=(resamples, xb.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(ma - mb, [tail, 100 - tail])
    return float(lo), float(hi)


def compare(a: Sequence[float], b: Sequence[float], seeds_a: Sequence[int] | None = None,
            seeds_b: Sequence[int] | None = None, direction: str = "minimize", digits: int = 4) -> Comparison:
    """Configuration ``a`` against ``b`` (values per seed). Paired over the seeds both ran when they share
    at least 2 (``seeds_*`` None: the i-th values share a seed); Welch's t-test otherwise."""
    sign = -1.0 if direction == "minimize" else 1.0
    if seeds_a is None:
        seeds_a = list(range(len(a)))
    if seeds_b is None:
        seeds_b = list(range(len(b)))
    va, vb = dict(zip(seeds_a, a)), dict(zip(seeds_b, b))
    shared = [s for s in seeds_a if s in vb]
    mean_a, mean_b = mean_se(list(a))[0], mean_se(list(b))[0]
    rel_base = abs(mean_b) if mean_b and math.isfinite(mean_b) else math.nan
    if len(shared) >= 2:
        d = [sign * (va[s] - vb[s]) for s in shared]
        gain, gain_se = mean_se(d)
        if gain_se <= 1e-12 * max(abs(gain), 1e-300):  # identical differences: no spread to test against
            p = 0.0 if gain != 0 else 1.0
        else:
            p = _t_p(gain / gain_se, len(d) - 1)
        ci = bootstrap_ci(d)
        method, k = "paired", len(shared)
        diff = sign * gain
    elif len(a) >= 2 and len(b) >= 2:
        gain = sign * (mean_a - mean_b)
        sa, sb = mean_se(list(a))[1], mean_se(list(b))[1]
        gain_se = math.sqrt(sa ** 2 + sb ** 2)
        if gain_se <= 1e-12 * max(abs(gain), 1e-300):
            p = 0.0 if gain != 0 else 1.0
        else:
            # Welch-Satterthwaite degrees of freedom
            df = gain_se ** 4 / (sa ** 4 / (len(a) - 1) + sb ** 4 / (len(b) - 1))
            p = _t_p(gain / gain_se, df)
        lo, hi = bootstrap_ci_two(a, b)
        ci = tuple(sorted((sign * lo, sign * hi)))  # type: ignore[assignment]
        method, k = "welch", min(len(a), len(b))
        diff = mean_a - mean_b
    else:
        diff = mean_a - mean_b
        gain = sign * diff
        return Comparison("none", min(len(a), len(b)), len(a), len(b), diff, math.nan, gain,
                          gain / rel_base if rel_base == rel_base else math.nan, math.nan, (math.nan, math.nan),
                          False, "one seed: cannot tell from seed noise (run more seeds)")
    significant = p < ALPHA and not (ci[0] <= 0.0 <= ci[1])
    rel = gain / rel_base if rel_base == rel_base else math.nan
    cmp = Comparison(method, k, len(a), len(b), diff, gain_se, gain, rel, p, (float(ci[0]), float(ci[1])),
                     significant, "")
    object.__setattr__(cmp, "verdict", verdict(cmp, digits))
    return cmp


def _t_p(t: float, df: float) -> float:
    """Two-sided p of Student's t (scipy's ufunc: the same figure as scipy.stats' t-tests, without their
    per-call overhead, which matters for 500 trials x 2 comparisons)."""
    from scipy.special import stdtr

    return float(2 * stdtr(df, -abs(t)))


def verdict(c: Comparison, digits: int = 4) -> str:
    """"better by X ± Y (p = ..., paired over k seeds)", or "not distinguishable from seed noise"."""
    over = f"paired over {c.k} seeds" if c.method == "paired" else f"Welch, {c.k_a} vs {c.k_b} seeds"
    if not c.significant:
        return (f"not distinguishable from seed noise (gain {_signed(c.gain, digits)} ± "
                f"{fmt_se(c.diff_se, digits)}, {_p(c.p)}, {over})")
    word = "better" if c.gain > 0 else "worse"
    rel = f", {abs(c.rel_gain) * 100:.2g} %" if c.rel_gain == c.rel_gain else ""
    return f"{word} by {fmt_se(abs(c.gain), digits)} ± {fmt_se(c.diff_se, digits)}{rel} ({_p(c.p)}, {over})"


def _signed(x: float, digits: int) -> str:
    """"+0.0123"; a gain too small to show reads "+<0.0001" (fmt_se's rule), not "+0.0000"."""
    return f"{'+' if x >= 0 else '-'}{fmt_se(abs(x), digits)}"


def _p(p: float) -> str:
    if p != p:
        return "p = -"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def lucky_seeds(values: Sequence[float], direction: str = "minimize", alpha: float = ALPHA) -> list[int]:
    """[index of the best seed] when it beats the group's mean by more than Grubbs' critical value of
    standard deviations (one-sided at ``alpha``: under seed noise alone, a share ``alpha`` of groups is
    flagged at every k), else []. Needs k >= 3: two values give no spread to judge one of them by."""
    from scipy.special import stdtrit

    k = len(values)
    if k < 3:
        return []
    sign = -1.0 if direction == "minimize" else 1.0
    mean, se = mean_se(values)
    sd = se * math.sqrt(k)
    if not sd > 0:
        return []
    best = max(range(k), key=lambda i: sign * values[i])
    t = float(stdtrit(k - 2, 1 - alpha / k))
    critical = (k - 1) / math.sqrt(k) * math.sqrt(t * t / (k - 2 + t * t))
    return [best] if sign * (values[best] - mean) / sd > critical else []
