"""The imbalanced task's evaluation: nearest-centroid predictions and the minority averages."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rankloss.bench.runner import RunContext
from rankloss.bench.suites import SUITES, LossSpec
from rankloss.bench.tasks import _ImbalancedTask, run_imbalanced
from rankloss.data.types import LabelledDataset, LabelledSplit


class _Identity(nn.Module):
    """A perfect model on one-hot inputs: the outputs are the inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0 * self.w


def _task(train_y: list[int], test_y: list[int], minority: list[int], classifier: bool):
    eye = torch.eye(4)
    data = LabelledDataset(
        LabelledSplit(eye[train_y], torch.tensor(train_y)),
        LabelledSplit(eye[test_y], torch.tensor(test_y)),
    )
    return _ImbalancedTask(
        data,
        batch_size=4,
        sampler="uniform",
        minority=minority,
        classifier=classifier,
        num_classes=4,
    )


def test_a_class_without_training_samples_is_never_the_nearest_centroid() -> None:
    # Class 2 has no sample at all: its centroid would be NaN, which arg-max picks.
    task = _task([0, 1, 3, 0, 1, 3], [0, 1, 3], [3], classifier=False)
    report = task.evaluate(_Identity(), "test")
    assert report["accuracy"] == 1.0
    assert report["macro_recall"] == 1.0 and report["minority_recall"] == 1.0


@pytest.mark.parametrize("classifier", [True, False])
def test_minority_averages_leave_out_classes_absent_from_the_split(classifier: bool) -> None:
    # Class 3 has no test sample and is never predicted: like the macro averages, the
    # minority averages are over the classes that occur.
    task = _task([0, 1, 2, 3], [0, 1, 2, 2], [2, 3], classifier)
    report = task.evaluate(_Identity(), "test")
    assert report["minority_recall"] == 1.0 and report["minority_precision"] == 1.0
    assert report["macro_recall"] == 1.0
    only_absent = _task([0, 1, 2, 3], [0, 1, 2, 2], [3], classifier).evaluate(_Identity(), "test")
    assert math.isnan(only_absent["minority_recall"])  # nothing to average: not a 0


@pytest.mark.badinput("bench")
@pytest.mark.parametrize("minority", [[10], [-1], [], [1.5], [True]])
def test_minority_classes_outside_the_data_are_refused(tmp_path, minority) -> None:
    suite = SUITES["imbalanced"].with_budget(minority=minority, epochs=1)
    row = LossSpec("softmax_ce", "softmax_ce")
    ctx = RunContext(suite, row, "digits", 0, "cpu", tmp_path, False)
    with pytest.raises(ValueError, match=r"budget: minority must be a non-empty list of class"):
        run_imbalanced(ctx)
