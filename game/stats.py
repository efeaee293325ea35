"""Statistics users can trust (issue 13): every rate with its n and a Wilson interval, two models on the same items
compared pairwise (exact McNemar for binary outcomes, a seeded paired bootstrap for rates), and the unbiased pass@k
estimator. Pure functions on counts and lists, no I/O and no scipy: the formulas are short and tested against
hand-computed values."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import NormalDist


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """(k/n, low, high): the Wilson score interval, which stays inside [0, 1] and is sane at 0/n and n/n, unlike
    the normal approximation. n = 0 gives (nan, 0, 1): nothing measured, nothing excluded."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return math.nan, 0.0, 1.0
    z = _z(confidence)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact bounds where rounding would leave 1e-17
    high = 1.0 if k == n else min(1.0, centre + half)
    return p, low, high


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (items only A got right, items only B got right):
    under the null each discordant pair is a fair coin, so p = min(1, 2 * P[Binomial(b+c, 1/2) <= min(b, c)])."""
    if a_only < 0 or b_only < 0:
        raise ValueError("discordant counts must be >= 0")
    n = a_only + b_only
    if n == 0:
        return 1.0
    low = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def discordant(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int]:
    """(items only A got right, items only B got right) of two paired outcome lists."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths ({len(a)} != {len(b)})")
    return (sum(1 for x, y in zip(a, b, strict=True) if x and not y),
            sum(1 for x, y in zip(a, b, strict=True) if y and not x))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean(b) - mean(a), low, high): a percentile interval from resampling *items* (both models' scores of an
    item move together), seeded so that the same runs always give the same interval."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths ({len(a)} != {len(b)})")
    n = len(a)
    if n == 0:
        return math.nan, math.nan, math.nan
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    delta = sum(diffs) / n
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    alpha = (1 - confidence) / 2
    low = means[max(0, math.floor(alpha * resamples))]
    high = means[min(resamples - 1, math.ceil((1 - alpha) * resamples) - 1)]
    return delta, low, high


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of Chen et al. (2021): 1 - C(n-c, k) / C(n, k) for n samples of which c passed."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def bootstrap_mean(values: Sequence[float], resamples: int = 2000, confidence: float = 0.95,
                   seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) by resampling items: the interval of a mean of per-item estimates (pass@k with several
    samples per task), where no closed form fits."""
    return paired_bootstrap([0.0] * len(values), values, resamples, confidence, seed)


def f1_score(tp: int, fp: int, fn: int) -> float:
    """F1 of the positive class, 2tp / (2tp + fp + fn). nan when there is neither a positive item nor a positive
    prediction: nothing was there to find, and 0 or 1 would both claim a result."""
    if min(tp, fp, fn) < 0:
        raise ValueError(f"counts must be >= 0, got tp={tp}, fp={fp}, fn={fn}")
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else math.nan


def bootstrap_f1(truth: Sequence[bool], predicted: Sequence[bool], resamples: int = 2000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """(F1, low, high): a seeded percentile interval from resampling items. F1 is not a mean of per-item scores, so
    each resample recounts tp/fp/fn; resamples where F1 is undefined (no positive at all) are left out."""
    if len(truth) != len(predicted):
        raise ValueError(f"truth and predictions need equal lengths ({len(truth)} != {len(predicted)})")
    codes = [(2 if t else 1) if t != p else (0 if t else 3) for t, p in zip(truth, predicted, strict=True)]
    value = f1_score(codes.count(0), codes.count(1), codes.count(2))
    n = len(codes)
    if n == 0:
        return math.nan, math.nan, math.nan
    rng = random.Random(seed)
    estimates = []
    for _ in range(resamples):
        sample = rng.choices(codes, k=n)
        estimate = f1_score(sample.count(0), sample.count(1), sample.count(2))
        if not math.isnan(estimate):
            estimates.append(estimate)
    if not estimates:
        return value, math.nan, math.nan
    estimates.sort()
    alpha = (1 - confidence) / 2
    m = len(estimates)
    return value, estimates[max(0, math.floor(alpha * m))], estimates[min(m - 1, math.ceil((1 - alpha) * m) - 1)]
