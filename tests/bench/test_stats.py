"""Paired comparisons across seeds (``rankloss.bench.stats``) against scipy and hand-worked
examples."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from rankloss.bench.stats import (
    mean_interval,
    paired_comparison,
    sign_flip_p,
    t_quantile,
    t_two_sided_p,
)

stats = pytest.importorskip("scipy.stats", reason="the reference is scipy")

# Known data: metric values of two rows over 5 seeds.
X = [0.431, 0.442, 0.425, 0.450, 0.437]
Y = [0.420, 0.436, 0.427, 0.431, 0.425]


def test_hand_worked_example() -> None:
    # d = (1, 2, 3): mean 2, sd 1, se 1/sqrt(3), t = 2 sqrt(3), df 2;
    # p = 1 - t / sqrt(t^2 + 2) (the closed form for df = 2) = 1 - sqrt(12 / 14).
    result = paired_comparison([2.0, 3.0, 4.0], [1.0, 1.0, 1.0])
    assert result.n == 3 and result.mean_difference == pytest.approx(2.0)
    assert result.p_value == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-9)
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} se
    assert (result.low, result.high) == pytest.approx((2 - half, 2 + half), rel=1e-9)
    assert result.method == "paired t-test" and not result.significant


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 8, 9, 30, 101])
def test_student_t_matches_scipy(df: int) -> None:
    for t in (0.0, 0.1, 0.7, 1.5, 2.2, 4.0, 12.0, 80.0):
        assert t_two_sided_p(t, df) == pytest.approx(2 * stats.t.sf(t, df), abs=1e-12)
        assert t_two_sided_p(-t, df) == t_two_sided_p(t, df)
    for q in (0.5, 0.8, 0.95, 0.975, 0.995, 0.9995):
        assert t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-9, abs=1e-12)


def test_paired_t_test_matches_scipy() -> None:
    result = paired_comparison(X, Y)
    reference = stats.ttest_rel(X, Y)
    d = np.subtract(X, Y)
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert (result.low, result.high) == pytest.approx((low, high), rel=1e-9)
    assert result.mean_difference == pytest.approx(d.mean())
    assert result.significant == (reference.pvalue < 0.05)
    # The closed-form t (no scipy) gives the same test.
    assert paired_comparison(X, Y, method="t").p_value == pytest.approx(reference.pvalue)
    # Another confidence level.
    r90 = paired_comparison(X, Y, confidence=0.9)
    assert r90.high - r90.low == pytest.approx(
        np.diff(stats.t.interval(0.9, 4, loc=0, scale=stats.sem(d)))[0]
    )
    assert r90.level == pytest.approx(0.1)


def test_significant_difference_is_found() -> None:
    x = [0.50, 0.52, 0.51, 0.53, 0.50]
    y = [0.40, 0.41, 0.42, 0.41, 0.40]
    result = paired_comparison(y, x)
    assert result.significant and result.mean_difference < 0 and result.high < 0
    assert result.p_value == pytest.approx(stats.ttest_rel(y, x).pvalue)


@pytest.mark.parametrize("n", [3, 5, 8])
def test_exact_sign_flip_test_matches_scipy(n: int) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.normal(0.3, 0.05, n), rng.normal(0.28, 0.05, n)
    reference = stats.permutation_test(
        (x, y),
        lambda a, b: np.mean(a - b),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    ).pvalue
    assert sign_flip_p(x - y) == pytest.approx(reference, abs=1e-12)
    result = paired_comparison(x, y, method="permutation")
    assert result.p_value == pytest.approx(reference, abs=1e-12)
    assert result.method == "sign-flip permutation test"


def test_sign_flip_by_hand_and_sampled() -> None:
    # d = (1, 2, 3): of the 8 sign patterns only (+,+,+) and (-,-,-) reach |sum| >= 6.
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)
    # d = (1, -1, 2): |sum| = 2; only (-++) and (+--) give a smaller |sum| (0).
    assert sign_flip_p([1.0, -1.0, 2.0]) == pytest.approx(6 / 8)
    # The smallest p-value with n seeds is 2 / 2^n: 5 seeds can never reach 0.05.
    assert sign_flip_p([1.0] * 5) == pytest.approx(2 / 32)
    # Above 16 seeds, a seeded sample of sign patterns approximates the exact p-value.
    rng = np.random.default_rng(0)
    d = rng.normal(0.01, 0.03, 18)
    exact = sign_flip_p(d, max_exact=18)
    sampled = sign_flip_p(d, max_exact=16, samples=20_000, seed=1)
    assert sampled == pytest.approx(exact, abs=0.01)
    assert sampled == sign_flip_p(d, max_exact=16, samples=20_000, seed=1)


def test_without_scipy_the_permutation_test_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)  # ``from scipy import stats`` fails
    result = paired_comparison(X, Y)
    assert result.method == "sign-flip permutation test"
    assert result.p_value == pytest.approx(sign_flip_p(np.subtract(X, Y)))
    # The interval is still Student's (closed form).
    monkeypatch.delitem(sys.modules, "scipy")
    with_scipy = paired_comparison(X, Y)
    assert (result.low, result.high) == pytest.approx((with_scipy.low, with_scipy.high))


def test_without_scipy_constant_differences_get_the_sign_flip_p(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    result = paired_comparison([0.61, 0.62, 0.63], [0.60, 0.61, 0.62])
    assert result.method == "sign-flip permutation test"
    assert result.p_value == pytest.approx(0.25) and not result.significant


def test_fewer_than_three_seeds_is_not_tested() -> None:
    for n in (0, 1, 2):
        result = paired_comparison([0.5] * n, [0.4] * n)
        assert result.p_value is None and result.method == "n/a" and not result.tested
        assert math.isnan(result.low) and math.isnan(result.high)
        assert not result.significant
    assert paired_comparison([0.5, 0.6], [0.4, 0.3]).mean_difference == pytest.approx(0.2)


def test_zero_spread() -> None:
    same = paired_comparison([0.4, 0.5, 0.6], [0.4, 0.5, 0.6])
    assert same.p_value == 1.0 and same.low == same.high == 0.0 and not same.significant
    shifted = paired_comparison([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert shifted.p_value == 0.0 and shifted.significant
    # The sign-flip test cannot go below 2 / 2^n: 0.25 with 3 seeds, not 0.
    flipped = paired_comparison([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], method="permutation")
    assert flipped.p_value == pytest.approx(0.25) and not flipped.significant
    assert shifted.low == pytest.approx(0.1) and shifted.high == pytest.approx(0.1)
    # equal up to float rounding (0.1 + 0.2 != 0.3): tied, not "significantly different"
    rounded = paired_comparison([0.3, 0.6, 0.9], [0.1 + 0.2, 0.2 + 0.4, 0.9])
    assert rounded.p_value == 1.0 and not rounded.significant
    # a real, tiny spread is still tested
    tiny = paired_comparison([0.3, 0.6, 0.9], [0.3 + 1e-9, 0.6 - 1e-9, 0.9 + 2e-9])
    assert tiny.p_value is not None and 0.0 < tiny.p_value < 1.0


def test_mean_interval_matches_scipy() -> None:
    mean, low, high = mean_interval(X)
    reference = stats.t.interval(0.95, len(X) - 1, loc=np.mean(X), scale=stats.sem(X))
    assert mean == pytest.approx(np.mean(X))
    assert (low, high) == pytest.approx(reference, rel=1e-9)
    one = mean_interval([0.3])
    assert one[0] == 0.3 and math.isnan(one[1]) and math.isnan(one[2])
    assert all(math.isnan(v) for v in mean_interval([]))


@pytest.mark.badinput("bench")
def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="x and y must be 1-D of one length, got \\[3\\] and \\[2"):
        paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="confidence must be in \\(0, 1\\), got 1.5"):
        paired_comparison(X, Y, confidence=1.5)
    with pytest.raises(ValueError, match="method must be one of"):
        paired_comparison(X, Y, method="wilcoxon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="df must be >= 1, got 0"):
        t_quantile(0.9, 0)
    with pytest.raises(ValueError, match="probability must be in \\[0.5, 1\\)"):
        t_quantile(1.0, 3)
    # Non-finite values (a diverged run) are not tested.
    assert paired_comparison([0.1, math.nan, 0.3], [0.1, 0.2, 0.3]).method == "n/a"
