"""Bench plots: bar axes start at 0 unless marked cut; curves average every seed."""

from __future__ import annotations

import pytest

from rankloss.bench.report import _bar_limits, curve_over_seeds


def test_bars_near_zero_start_at_zero():
    assert _bar_limits([0.05, 0.3], [0.01, 0.02])[0] == 0.0


def test_bars_far_from_zero_are_cut_and_the_cut_is_reported():
    low, high = _bar_limits([0.80, 0.82], [0.01, 0.01])
    assert 0.7 < low < 0.79 and 0.83 <= high <= 1.0


def test_no_finite_mean_gives_no_limits():
    assert _bar_limits([float("nan")], [0.0]) is None


def test_curves_average_every_seed_on_common_epochs():
    h1 = [{"epoch": 1, "validation": 0.2}, {"epoch": 2, "validation": 0.4}]
    h2 = [{"epoch": 1, "validation": 0.4}, {"epoch": 2, "validation": 0.6}, {"epoch": 3}]
    epochs, mean, low, high = curve_over_seeds([h1, h2], "validation")
    assert epochs == [1.0, 2.0]
    assert mean == pytest.approx([0.3, 0.5]) and low == [0.2, 0.4] and high == [0.4, 0.6]


def test_training_loss_relative_to_its_first_epoch():
    h1 = [{"train_loss": 2.0}, {"train_loss": 1.0}]
    h2 = [{"train_loss": 4.0}, {"train_loss": 1.0}]
    _, mean, _, _ = curve_over_seeds([h1, h2], "train_loss", relative=True)
    assert mean == pytest.approx([1.0, 0.375])
