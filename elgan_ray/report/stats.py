"""The statistics of the report's comparisons, as pure functions of arrays: intervals of a mean difference, paired
and unpaired, and the smallest difference a study of n pairs could have detected. numpy and math only.

A GAN run and the fit-only control of the same seed start from the same pre-trained G and train on the same
batches, so their difference is paired by seed: the seed-to-seed spread of the baseline cancels out of it. With
n <= EXACT_PAIRS pairs the interval is exact: the 95 % interval of the mean difference is every shift m for which
the sign-flip permutation test of the differences minus m (all 2^n sign patterns) does not reject at 5 %. Such a
test cannot reject at all with fewer than 6 pairs (its smallest two-sided p-value is 2 / 2^n = 0.0625 at n = 5):
the interval is then unbounded, and that is the honest answer. Above EXACT_PAIRS pairs the interval is a paired
bootstrap's (the percentile interval of N_BOOT resampled means of the differences).

The minimal detectable effect (mde) is the difference a two-sided paired t-test at 5 % finds with 80 % power for
this n and the observed sd of the differences: (t(0.975, n-1) + t(0.8, n-1)) * sd / sqrt(n). It says what a study
of this size could have seen, beside what it saw; a "no difference" smaller than it is no evidence of none.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

N_BOOT = 10_000  # bootstrap resamples; with seed BOOT_SEED the intervals are reproducible exactly
BOOT_SEED = 0
EXACT_PAIRS = 10  # up to this many pairs the sign-flip test runs over every one of the 2^n sign patterns
LEVEL = 0.95  # of every interval
POWER = 0.8  # of the minimal detectable effect


def resampled_means(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N_BOOT bootstrap means: values[rng.integers(0, n, (N_BOOT, n))].mean(axis=1)."""
    return values[rng.integers(0, len(values), (N_BOOT, len(values)))].mean(axis=1)


def bootstrap_ci(values: np.ndarray, seed: int = BOOT_SEED) -> tuple[float, float]:
    """95% percentile interval (np.percentile's default, linear) of the mean of the non-NaN values; NaN below 2."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:  # one value resamples to itself: an interval of width 0 would claim certainty
        return float("nan"), float("nan")
    low, high = np.percentile(resampled_means(values, np.random.default_rng(seed)), [2.5, 97.5])
    return float(low), float(high)


def unpaired_bootstrap_ci(x: np.ndarray, y: np.ndarray, seed: int = BOOT_SEED) -> tuple[float, float]:
    """95% percentile interval of mean(x) - mean(y), each side resampled on its own (x first, from one generator);
    NaN with fewer than 2 values on a side."""
    if len(x) < 2 or len(y) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    diffs = resampled_means(np.asarray(x, float), rng) - resampled_means(np.asarray(y, float), rng)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def sign_flip_p(differences: np.ndarray, shift: float = 0.0) -> float:
    """Exact two-sided p-value of the sign-flip permutation test that the differences are centred on `shift`:
    the share of the 2^n sign patterns whose mean is at least as far from 0 as the observed one."""
    centred = np.asarray(differences, float) - shift
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(centred))))  # (2^n, n)
    means = np.abs(signs @ centred) / len(centred)
    observed = abs(centred.mean())
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))  # ties count, within float rounding


def sign_flip_ci(differences: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The exact interval of the mean difference: every shift the sign-flip test does not reject at 1 - level.
    (-inf, inf) when no shift can be rejected (fewer than 6 pairs at 95 %); NaN below 2 pairs."""
    d = np.asarray(differences, float)
    if len(d) < 2:
        return float("nan"), float("nan")
    alpha = 1 - level
    if 2 / 2 ** len(d) > alpha:  # even the most extreme pattern is as likely as alpha: nothing is ever rejected
        return -math.inf, math.inf
    spread = float(np.ptp(d)) or 1.0
    # Shifts far enough out are rejected (all differences on one side); bisect between the mean and them.
    return _edge(d, alpha, d.mean(), d.min() - spread), _edge(d, alpha, d.mean(), d.max() + spread)


def _edge(d: np.ndarray, alpha: float, inside: float, outside: float, steps: int = 60) -> float:
    """The boundary between a shift the test does not reject (inside) and one it rejects (outside)."""
    for _ in range(steps):
        middle = (inside + outside) / 2
        if sign_flip_p(d, middle) > alpha:
            inside = middle
        else:
            outside = middle
    return (inside + outside) / 2


def paired_ci(differences: np.ndarray) -> tuple[float, float, str]:
    """(low, high, method) of the mean of paired differences: the exact sign-flip interval for up to EXACT_PAIRS
    pairs, else the paired bootstrap's."""
    d = np.asarray(differences, float)
    if len(d) <= EXACT_PAIRS:
        return (*sign_flip_ci(d), "sign-flip")
    return (*bootstrap_ci(d), "bootstrap")


def t_cdf(t: float, df: int) -> float:
    """Student's t distribution function for whole degrees of freedom (closed form; Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan2(t, math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2:  # odd: 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c * c * 2 * k / (2 * k + 1)
            total += term
        inside = 2 / math.pi * (theta + (s * c * total if df > 1 else 0.0))
    else:  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c * c * (2 * k - 1) / (2 * k)
            total += term
        inside = s * total
    return 0.5 + inside / 2  # inside = P(-t < T < t) with its sign: P(T < t) for either sign of t


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with df whole degrees of freedom, by bisection of t_cdf."""
    low, high = -1e4, 1e4
    for _ in range(200):
        middle = (low + high) / 2
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def minimal_detectable_effect(sd: float, n: int, level: float = LEVEL, power: float = POWER) -> float:
    """The mean paired difference a two-sided paired t-test at 1 - level detects with `power`, for n pairs whose
    differences have standard deviation sd; NaN below 2 pairs or without an sd."""
    if n < 2 or not math.isfinite(sd):
        return float("nan")
    df = n - 1
    return (t_quantile(1 - (1 - level) / 2, df) + t_quantile(power, df)) * sd / math.sqrt(n)
