"""``--losses``: a row's label keeps that row; a loss name that labels no row keeps every row
of that loss."""

from __future__ import annotations

import pytest

from rankloss.bench.cli import _filter_losses
from rankloss.bench.suites import SUITES


def _kept(wanted: str, *names: str) -> list[list[str]]:
    suites = [SUITES[n] for n in names or ("retrieval-fashion",)]
    return [[loss.label for loss in s.losses] for s in _filter_losses(suites, wanted)]


def test_a_label_keeps_only_its_row() -> None:
    # "supcon" labels a row: the "supcon (labelled views)" row (loss name supcon) stays out
    assert _kept("supcon") == [["supcon"]]
    assert _kept("supcon (labelled views)") == [["supcon (labelled views)"]]


def test_a_name_that_labels_no_row_keeps_every_row_of_that_loss() -> None:
    assert _kept("triplet") == [["triplet (batch-hard)", "triplet (semi-hard)"]]
    assert _kept("untrained, raw") == [["raw pixels (no training)", "untrained network"]]
    assert _kept("triplet,supcon") == [["triplet (batch-hard)", "triplet (semi-hard)", "supcon"]]


def test_each_suite_decides_for_itself() -> None:
    # quick-ltr has no row labelled "triplet": only the retrieval suite keeps a row
    kept = _kept("triplet (batch-hard),ranknet", "quick-ltr", "retrieval-fashion")
    assert kept == [["ranknet"], ["triplet (batch-hard)"]]


@pytest.mark.badinput("bench")
def test_a_word_that_selects_nothing_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as error:
        _filter_losses([SUITES["retrieval-fashion"]], "supcon,nope")
    assert error.value.code == 2
    assert "--losses names no row of these suites: nope;" in capsys.readouterr().err


def test_a_label_with_commas_is_one_row() -> None:
    from dataclasses import replace

    from rankloss.bench.suites import LossSpec

    rows = (LossSpec("margin (a, b)", "margin"), LossSpec("a", "supcon"), LossSpec("b", "ranknet"))
    suite = replace(SUITES["retrieval-fashion"], losses=rows)

    def kept(wanted: str) -> list[str]:
        return [loss.label for s in _filter_losses([suite], wanted) for loss in s.losses]

    assert kept("margin (a, b)") == ["margin (a, b)"]
    assert kept("b,margin (a, b)") == ["margin (a, b)", "b"]
    assert kept("a, b") == ["a", "b"]
