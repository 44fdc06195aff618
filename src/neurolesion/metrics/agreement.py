"""Agreement statistics between two raters, methods or models (thin, documented wrappers on scipy).

Correlation (Pearson, Spearman), Bland–Altman bias and limits of agreement, intraclass correlation
(two-way, absolute agreement: McGraw & Wong ICC(A,1) = Shrout & Fleiss ICC(2,1), and ICC(A,k)),
Cohen's kappa (unweighted, linear or quadratic weights), the sign test, the paired t-test, one-way ANOVA
with Tukey HSD post-hoc comparisons, and percentile bootstrap confidence intervals of any per-case
statistic.

Example:
    >>> a = np.array([1.0, 2.0, 3.0, 4.0]); b = a + 0.5
    >>> bland_altman(a, b).bias
    -0.5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, NamedTuple

import numpy as np
from scipy import stats


class TestResult(NamedTuple):
    """A test statistic and its two-sided p-value."""

    statistic: float
    p_value: float


def _pair(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} and {y.size}")
    return x, y


def pearson(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Pearson correlation r and its p-value (`scipy.stats.pearsonr`).

    Example:
        >>> round(pearson([1, 2, 3, 4], [2, 4, 5, 9]).statistic, 4)
        0.9648
    """
    x, y = _pair(a, b)
    r = stats.pearsonr(x, y)
    return TestResult(float(r.statistic), float(r.pvalue))


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Spearman rank correlation rho and its p-value (`scipy.stats.spearmanr`).

    Example:
        >>> spearman([1, 2, 3, 4], [2, 4, 5, 9]).statistic
        1.0
    """
    x, y = _pair(a, b)
    r = stats.spearmanr(x, y)
    return TestResult(float(r.statistic), float(r.pvalue))


@dataclass(frozen=True)
class BlandAltman:
    """Bland–Altman summary of paired differences a − b.

    Attributes:
        bias: mean difference.
        sd: standard deviation of the differences (ddof = 1).
        lower: bias − 1.96 sd.
        upper: bias + 1.96 sd.
        n: number of pairs.
    """

    bias: float
    sd: float
    lower: float
    upper: float
    n: int


def bland_altman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> BlandAltman:
    """Bias and 95 % limits of agreement of a − b.

    Example:
        >>> ba = bland_altman([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
        >>> ba.bias, round(ba.upper, 3)
        (0.0, 0.98)
    """
    x, y = _pair(a, b)
    d = x - y
    bias = float(d.mean()) if d.size else float("nan")
    sd = float(d.std(ddof=1)) if d.size > 1 else float("nan")
    return BlandAltman(bias, sd, bias - 1.96 * sd, bias + 1.96 * sd, int(d.size))


def icc(ratings: np.ndarray, average: bool = False) -> float:
    """Two-way intraclass correlation, absolute agreement.

    Args:
        ratings: (n_subjects, k_raters) scores, no missing values.
        average: the reliability of the mean of k raters, ICC(A,k), instead of one rater, ICC(A,1).

    Returns:
        The ICC.

    Raises:
        ValueError: fewer than two subjects or raters.

    Example:
        >>> round(icc(np.array([[1.0, 1.1], [2.0, 2.2], [3.0, 2.9], [4.0, 4.1]])), 4)
        0.9946
    """
    y = np.asarray(ratings, dtype=np.float64)
    if y.ndim != 2 or min(y.shape) < 2:
        raise ValueError(f"ratings must be (n_subjects >= 2, k_raters >= 2); got shape {y.shape}")
    n, k = y.shape
    grand = y.mean()
    ms_rows = k * np.sum((y.mean(axis=1) - grand) ** 2) / (n - 1)
    ms_cols = n * np.sum((y.mean(axis=0) - grand) ** 2) / (k - 1)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    ms_err = np.sum(resid**2) / ((n - 1) * (k - 1))
    if average:
        return float((ms_rows - ms_err) / (ms_rows + (ms_cols - ms_err) / n))
    return float((ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n))


def cohen_kappa(
    a: Sequence[int] | np.ndarray,
    b: Sequence[int] | np.ndarray,
    weights: Literal["linear", "quadratic"] | None = None,
) -> float:
    """Cohen's kappa between two raters' categorical (ordinal when weighted) scores.

    Args:
        a: first rater's category per subject.
        b: second rater's category per subject.
        weights: None (unweighted), "linear" or "quadratic" disagreement weights over the sorted
            categories seen in either rater.

    Returns:
        Kappa (1.0 when both raters use one and the same category throughout).

    Example:
        >>> round(cohen_kappa([0, 1, 2, 2], [0, 1, 1, 2]), 4)
        0.6364
    """
    x, y = _pair(a, b)
    cats, idx = np.unique(np.r_[x, y], return_inverse=True)
    q = cats.size
    observed = np.zeros((q, q))
    np.add.at(observed, (idx[: x.size], idx[x.size :]), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    gap = np.abs(np.subtract.outer(np.arange(q), np.arange(q))).astype(np.float64)
    w = {None: (gap > 0).astype(np.float64), "linear": gap, "quadratic": gap**2}[weights]
    disagreement_expected = float(np.sum(w * expected))
    if disagreement_expected == 0:
        return 1.0
    return 1.0 - float(np.sum(w * observed)) / disagreement_expected


def sign_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Two-sided sign test of paired samples (ties dropped).

    Returns:
        (number of pairs with a > b, exact binomial p-value).

    Example:
        >>> sign_test([2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1, 1])
        TestResult(statistic=6.0, p_value=0.03125)
    """
    x, y = _pair(a, b)
    above, below = int(np.sum(x > y)), int(np.sum(x < y))
    if above + below == 0:
        return TestResult(0.0, 1.0)
    return TestResult(float(above), float(stats.binomtest(above, above + below, 0.5).pvalue))


def paired_t_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Paired two-sided t-test of a − b (`scipy.stats.ttest_rel`).

    Example:
        >>> round(paired_t_test([1.0, 2.0, 3.0, 4.0], [1.1, 2.3, 3.2, 4.6]).statistic, 3)
        -2.777
    """
    x, y = _pair(a, b)
    r = stats.ttest_rel(x, y)
    return TestResult(float(r.statistic), float(r.pvalue))


@dataclass(frozen=True)
class Anova:
    """One-way ANOVA and Tukey HSD post-hoc comparisons.

    Attributes:
        f: F statistic.
        p_value: ANOVA p-value.
        posthoc: {(group i, group j): (mean_i − mean_j, Tukey-adjusted p-value)}.
    """

    f: float
    p_value: float
    posthoc: dict[tuple[str, str], tuple[float, float]]


def anova_oneway(groups: Mapping[str, Sequence[float] | np.ndarray]) -> Anova:
    """One-way ANOVA across named groups with Tukey HSD post-hoc tests (`scipy.stats`).

    Raises:
        ValueError: fewer than two groups.

    Example:
        >>> r = anova_oneway({"a": [1.0, 1.2, 0.9], "b": [2.0, 2.1, 1.8], "c": [1.0, 1.1, 1.05]})
        >>> r.p_value < 0.001, round(r.posthoc[("a", "b")][0], 3)
        (True, -0.933)
    """
    if len(groups) < 2:
        raise ValueError(f"ANOVA needs at least two groups; got {len(groups)}")
    names = list(groups)
    data = [np.asarray(groups[g], dtype=np.float64).ravel() for g in names]
    f = stats.f_oneway(*data)
    hsd = stats.tukey_hsd(*data)
    posthoc = {
        (names[i], names[j]): (float(data[i].mean() - data[j].mean()), float(hsd.pvalue[i, j]))
        for i, j in combinations(range(len(names)), 2)
    }
    return Anova(float(f.statistic), float(f.pvalue), posthoc)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[..., float] = np.mean,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a per-case statistic (`scipy.stats.bootstrap`).

    Args:
        values: one value per case; non-finite values (nan, inf) are dropped.
        statistic: function of a 1D sample accepting `axis` (np.mean, np.median, ...).
        n_boot: resamples.
        level: confidence level.
        seed: random seed.

    Returns:
        (lower, upper); (nan, nan) with fewer than two finite values.

    Example:
        >>> lo, hi = bootstrap_ci(np.arange(100.0))
        >>> 40 < lo < 49.5 < hi < 60
        True
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,), statistic, n_resamples=n_boot, confidence_level=level, method="percentile", random_state=seed
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
