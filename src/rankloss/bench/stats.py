"""Statistics of benchmark tables: confidence intervals and paired tests across seeds.

Two rows of a table that ran with the same seeds are compared **paired by seed**: the
differences :math:`d_s = x_s - y_s` (same data split, same seed, only the loss differs) remove
the part of the noise both rows share. With :math:`n` paired seeds,

.. math::
    \\bar d = \\frac1n \\sum_s d_s, \\qquad
    \\mathrm{se} = \\frac{\\mathrm{sd}(d)}{\\sqrt n}, \\qquad
    t = \\frac{\\bar d}{\\mathrm{se}}, \\qquad
    \\text{95\\% interval: } \\bar d \\pm t_{0.975,\\,n-1}\\,\\mathrm{se}

(Student 1908). The p-value is that of the two-sided paired t-test (``scipy.stats.ttest_rel``)
when scipy is installed, else of the exact sign-flip permutation test (Fisher 1935): the
fraction of the :math:`2^n` sign patterns :math:`\\pm d_s` whose mean is at least as far from 0
as :math:`\\bar d` (a seeded sample of 20,000 patterns above 16 seeds). The permutation test
needs no normality, but with :math:`n` seeds its smallest p-value is :math:`2/2^n`: it cannot
reach 0.05 with fewer than 6 seeds. The interval is the t interval in both cases (Student's
quantile is computed in closed form without scipy). Fewer than 3 paired seeds give no test
("n/a"). Cost: :math:`O(n)` per comparison (:math:`O(n 2^n)` for the exact permutation test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "PairedComparison",
    "paired_comparison",
    "mean_interval",
    "t_two_sided_p",
    "t_quantile",
    "sign_flip_p",
    "MIN_SEEDS",
]

#: The fewest paired seeds a test is made with; fewer give "n/a".
MIN_SEEDS = 3

Method = Literal["auto", "t", "permutation"]


@dataclass(frozen=True)
class PairedComparison:
    """A paired comparison of two rows across seeds (``x - y``).

    Attributes:
        n: the number of paired seeds.
        mean_difference: :math:`\\bar d`, the mean of ``x - y`` over the paired seeds.
        low, high: the two-sided confidence interval of the mean difference (``nan`` when
            ``n < 3``).
        p_value: the two-sided p-value (``None`` when ``n < 3``: no test).
        method: ``"paired t-test"``, ``"sign-flip permutation test"`` or ``"n/a"``.
        level: the significance level the interval and :attr:`significant` use (0.05).
    """

    n: int
    mean_difference: float
    low: float
    high: float
    p_value: float | None
    method: str
    level: float = 0.05

    @property
    def tested(self) -> bool:
        """Whether a test was made (``n >= 3``)."""
        return self.p_value is not None

    @property
    def significant(self) -> bool:
        """``p < level``: the two rows differ beyond the noise of the seeds."""
        return self.p_value is not None and self.p_value < self.level


def _cdf_abs(t: float, df: int) -> float:
    """:math:`P(|T| \\le t)` for Student's t with integer ``df`` (Abramowitz and Stegun
    26.7.3 and 26.7.4: a finite series in :math:`\\theta = \\arctan(t / \\sqrt{\\nu})`)."""
    if math.isinf(t):
        return 1.0
    theta = math.atan(abs(t) / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 1:
        total, term = 0.0, 1.0
        if df > 1:
            total = 1.0
            for k in range(1, (df - 3) // 2 + 1):
                term *= cos2 * (2 * k) / (2 * k + 1)
                total += term
        return min(1.0, 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total))
    total, term = 1.0, 1.0
    for k in range(1, (df - 2) // 2 + 1):
        term *= cos2 * (2 * k - 1) / (2 * k)
        total += term
    return min(1.0, math.sin(theta) * total)


def t_two_sided_p(t: float, df: int) -> float:
    """The two-sided p-value :math:`P(|T| \\ge |t|)` of Student's t with ``df >= 1`` degrees of
    freedom (closed form; no scipy needed). Cost: :math:`O(\\nu)`."""
    if df < 1:
        raise ValueError(f"t_two_sided_p: df must be >= 1, got {df}")
    if math.isnan(t):
        return math.nan
    return max(0.0, 1.0 - _cdf_abs(t, df))


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile of Student's t with ``df >= 1`` degrees of freedom, for
    ``0.5 <= probability < 1`` (bisection of the closed-form distribution function, to
    1e-12). Cost: about 100 evaluations of :math:`O(\\nu)`."""
    if df < 1:
        raise ValueError(f"t_quantile: df must be >= 1, got {df}")
    if not 0.5 <= probability < 1.0:
        raise ValueError(f"t_quantile: probability must be in [0.5, 1), got {probability}")
    target = 2 * probability - 1  # P(|T| <= q)
    low, high = 0.0, 1.0
    while _cdf_abs(high, df) < target:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if _cdf_abs(middle, df) < target:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def sign_flip_p(
    differences: ArrayLike, *, max_exact: int = 16, samples: int = 20_000, seed: int = 0
) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of ``mean(differences) = 0``.

    .. math:: p = \\frac{1}{2^n} \\#\\{\\varepsilon \\in \\{\\pm1\\}^n :
        |\\textstyle\\sum_s \\varepsilon_s d_s| \\ge |\\sum_s d_s|\\}

    Exact for ``n <= max_exact`` (every sign pattern, :math:`O(n 2^n)`); above, a sample of
    ``samples`` patterns drawn with ``seed`` (plus the observed one).
    """
    d = np.asarray(differences, dtype=np.float64)
    n = d.size
    if n == 0:
        return 1.0
    observed = abs(d.sum())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).sum()))
    if n <= max_exact:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        sums = np.abs(patterns @ d)
        return float(np.mean(sums >= observed - tolerance))
    rng = np.random.default_rng(seed)
    patterns = rng.choice(np.array([-1.0, 1.0]), size=(samples, n))
    sums = np.abs(patterns @ d)
    return float((np.sum(sums >= observed - tolerance) + 1) / (samples + 1))


def _scipy_t_test(x: np.ndarray, y: np.ndarray) -> float | None:
    if not _have_scipy():
        return None
    from scipy import stats

    return float(stats.ttest_rel(x, y).pvalue)


def _have_scipy() -> bool:
    try:
        import scipy.stats  # noqa: F401
    except ImportError:
        return False
    return True


def paired_comparison(
    x: Sequence[float],
    y: Sequence[float],
    *,
    confidence: float = 0.95,
    method: Method = "auto",
) -> PairedComparison:
    """Compare two rows paired by seed: ``x[s]`` and ``y[s]`` ran with the same seed.

    .. math:: \\bar d \\pm t_{(1+c)/2,\\,n-1}\\,\\frac{\\mathrm{sd}(x - y)}{\\sqrt n}

    Args:
        x, y: ``[n]`` values of the two rows, in the same seed order.
        confidence: the level :math:`c` of the interval (and ``1 - c`` of the test).
        method: ``"t"`` (paired t-test; scipy if installed, else the closed form),
            ``"permutation"`` (exact sign-flip test), ``"auto"``: the t-test when scipy is
            installed, else the permutation test.

    Returns:
        A :class:`PairedComparison`; ``n < 3`` gives ``p_value=None``, a ``nan`` interval and
        method ``"n/a"``. All differences equal up to rounding (a spread within
        :math:`10^{-12}` of the values' scale) give ``p = 1`` when they are 0 (within the same
        rounding) and otherwise ``p = 0`` for the t-test (its limit) or the exact sign-flip
        p-value (:math:`2 / 2^n`) for the permutation test, with an interval of zero width.

    Cost: :math:`O(n)` (:math:`O(n 2^n)` for the exact permutation test).
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired_comparison: x and y must be 1-D of one length, got {list(a.shape)} and "
            f"{list(b.shape)}"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"paired_comparison: confidence must be in (0, 1), got {confidence}")
    if method not in ("auto", "t", "permutation"):
        raise ValueError(
            f"paired_comparison: method must be one of ['auto', 't', 'permutation'], got {method!r}"
        )
    d = a - b
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    level = round(1.0 - confidence, 12)
    if n < MIN_SEEDS or not np.isfinite(d).all():
        return PairedComparison(n, mean, math.nan, math.nan, None, "n/a", level)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = t_quantile(0.5 + confidence / 2, n - 1) * se
    # Every difference equal up to float rounding of the inputs: no spread to test with (a
    # t statistic of rounding noise would be meaningless), and a mean within rounding is 0.
    rounding = 1e-12 * max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
    if float(np.ptp(d)) <= rounding:
        sign_flip = method == "permutation" or (method == "auto" and not _have_scipy())
        name = "sign-flip permutation test" if sign_flip else "paired t-test"
        if abs(mean) <= rounding:
            p = 1.0
        else:  # the t-test's limit is 0; the sign-flip test's smallest p is 2 / 2^n
            p = sign_flip_p(d) if sign_flip else 0.0
        return PairedComparison(n, mean, mean, mean, p, name, level)
    p_value: float | None = None
    if method == "permutation":
        p_value, name = sign_flip_p(d), "sign-flip permutation test"
    elif method == "t":
        p_value = _scipy_t_test(a, b)
        if p_value is None:
            p_value = t_two_sided_p(mean / se, n - 1)
        name = "paired t-test"
    else:
        p_value = _scipy_t_test(a, b)
        name = "paired t-test"
        if p_value is None:
            p_value, name = sign_flip_p(d), "sign-flip permutation test"
    return PairedComparison(n, mean, mean - half, mean + half, p_value, name, level)


def mean_interval(
    values: Sequence[float], *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its t interval,

    .. math:: \\bar x \\pm t_{(1+c)/2,\\,n-1}\\,\\mathrm{sd}(x) / \\sqrt n

    Args:
        values: ``[n]`` values (one per seed).
        confidence: the level :math:`c`.

    Returns:
        The mean and the interval's ends; the ends are ``nan`` with fewer than 2 values
        (``nan`` everywhere with none). Cost: :math:`O(n)`.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + confidence / 2, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return mean, mean - half, mean + half
