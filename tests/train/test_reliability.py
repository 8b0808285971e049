"""The trainer under attack and interruption: crafted checkpoints are never run, non-finite
gradients and weights stop training, and resume survives torn and corrupt files."""

from __future__ import annotations

import csv
import json
import pathlib
import pickle
import random
import re

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from rankloss.data import LTRDataset, LTRSplit
from rankloss.models import MLPScorer
from rankloss.train import LTRTask, Trainer, UnsafeCheckpointError, seed_everything

FEATURES = 4


def _ltr(*, nan_label: bool = False) -> LTRDataset:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(FEATURES, generator=g)

    def split(q: int, n: int = 6) -> LTRSplit:
        x = torch.randn(q, n, FEATURES, generator=g)
        y = (x @ w).clamp(-1.5, 1.5).add(1.5).round()
        mask = torch.arange(n) < torch.randint(3, n + 1, (q, 1), generator=g)
        return LTRSplit(x, y, mask, torch.arange(q))

    train = split(12)
    if nan_label:
        train.labels[0, 0] = float("nan")
    return LTRDataset(train, split(4), split(4))


def _trainer(root: pathlib.Path, epochs: int, *, resume: bool = False, **kwargs) -> Trainer:
    seed_everything(0)
    options = {"loss": "listnet", "lr": 1e-2, "validation_split": "validation"} | kwargs
    return Trainer(
        MLPScorer(FEATURES, hidden=(8,), dropout=0.2),
        LTRTask(options.pop("data", None) or _ltr(), batch_size=4),
        options.pop("loss"),
        epochs=epochs,
        seed=3,
        log_dir=root / "logs",
        checkpoint_dir=root / "ckpt",
        resume=resume,
        progress=False,
        **options,
    )


def _rows(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _fit_warning(trainer: Trainer, *patterns: str) -> int | None:
    """Fit ``trainer``; every pattern must match one of the ``RuntimeWarning``s it gives."""
    with pytest.warns(RuntimeWarning) as record:
        resumed_from = trainer.fit().resumed_from
    messages = [str(w.message) for w in record]
    for pattern in patterns:
        assert any(re.search(pattern, m) for m in messages), (pattern, messages)
    return resumed_from


def _without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, Trainer]:
    """An uninterrupted three-epoch run: what every resumed run must equal."""
    root = tmp_path_factory.mktemp("full")
    trainer = _trainer(root, 3)
    trainer.fit()
    return root, trainer


def _assert_equals_full(root: pathlib.Path, trainer: Trainer, full: tuple) -> None:
    full_root, full_trainer = full
    for a, b in zip(full_trainer.model.state_dict().values(), trainer.model.state_dict().values()):
        assert torch.equal(a, b)
    assert _rows(root / "logs/steps.jsonl") == _rows(full_root / "logs/steps.jsonl")
    assert _without_time(_rows(root / "logs/epochs.jsonl")) == _without_time(
        _rows(full_root / "logs/epochs.jsonl")
    )
    csv_rows = list(csv.DictReader(open(root / "logs/steps.csv")))
    assert [r["global_step"] for r in csv_rows] == [
        str(r["global_step"]) for r in _rows(full_root / "logs/steps.jsonl")
    ]


# ------------------------------------------------------------------------------------ security
class _Payload:
    """Unpickling this creates a marker file: the proof that a loader ran code."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.badinput("security")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_crafted_pickle_checkpoint_is_refused_and_never_run(tmp_path, writer):
    trainer = _trainer(tmp_path / "run", 2)
    trainer.fit()  # leaves a good previous.pt beside the crafted last.pt
    marker = tmp_path / "marker"
    crafted = {"epoch": 1, "model": _Payload(marker)}
    last = tmp_path / "run/ckpt/last.pt"
    with open(last, "wb") as handle:
        if writer == "torch.save":
            torch.save(crafted, handle)
        else:
            pickle.dump(crafted, handle, protocol=2)
    with pytest.raises(UnsafeCheckpointError, match=f"refusing to load checkpoint {last}"):
        _trainer(tmp_path / "run", 3, resume=True).fit()
    assert not marker.exists()  # nothing in the file was run
    assert last.exists()  # and the suspicious file is left where it was, for inspection


@pytest.mark.badinput("security")
def test_checkpoint_loads_with_weights_only_and_restores_rng_bit_identically(tmp_path):
    trainer = _trainer(tmp_path, 1)
    trainer.fit()
    state = torch.load(tmp_path / "ckpt/last.pt", weights_only=True)
    random.random(), np.random.rand(), torch.rand(1)  # noqa: NPY002 - move every generator
    expected = (random.random(), np.random.rand(3).tolist(), torch.rand(3))  # noqa: NPY002
    random.random(), np.random.rand(), torch.rand(1)  # noqa: NPY002
    trainer.load_state_dict(state)
    random.random(), np.random.rand(), torch.rand(1)  # noqa: NPY002
    got = (random.random(), np.random.rand(3).tolist(), torch.rand(3))  # noqa: NPY002
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


# ---------------------------------------------------------------------------- non-finite values
class _NaNGradient(torch.autograd.Function):
    """The mean in the forward pass, a NaN gradient in the backward pass."""

    @staticmethod
    def forward(ctx, scores: Tensor) -> Tensor:  # type: ignore[override]
        ctx.shape = scores.shape
        return scores.mean()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return torch.full(ctx.shape, float("nan"))


def _nan_gradient_loss(scores: Tensor, labels: Tensor, mask: Tensor | None = None) -> Tensor:
    return _NaNGradient.apply(scores)


@pytest.mark.badinput("losses")
def test_a_finite_loss_with_nan_gradients_stops_training_before_the_step(tmp_path):
    trainer = _trainer(tmp_path, 2, loss=_nan_gradient_loss)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(
        FloatingPointError,
        match=r"non-finite gradient \(\d+ NaN of \d+\) in parameter '[\w.]+weight' at epoch 1, "
        r"step 1 \(global step 1\), although the loss was",
    ):
        trainer.fit()
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[name]), name  # the weights were not updated


class _Overflowing(torch.optim.SGD):
    """An optimizer whose step turns finite gradients into infinite weights."""

    @torch.no_grad()
    def step(self, closure=None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad.sign() * torch.tensor(float("inf")))


@pytest.mark.badinput("losses")
def test_weights_that_overflow_stop_training(tmp_path):
    trainer = _trainer(tmp_path, 1, optimizer=lambda params: _Overflowing(params, lr=1.0))
    with pytest.raises(
        FloatingPointError, match=r"parameter '[\w.]+' became non-finite .* at epoch 1, step 1"
    ):
        trainer.fit()


def _leaky_squared_error(scores: Tensor, labels: Tensor, mask: Tensor | None = None) -> Tensor:
    """A loss that skips non-finite labels with ``torch.where``: its value stays finite, but
    the NaN still reaches the gradient (the classic leak)."""
    keep = torch.isfinite(labels) if mask is None else mask & torch.isfinite(labels)
    return torch.where(keep, (scores - labels) ** 2, 0.0).mean()


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("loss", ["lambdarank", _leaky_squared_error])
def test_one_nan_label_does_not_train_to_nan_weights(tmp_path, loss):
    """The loss (rankloss's own validate their labels) or the trainer's gradient check stops
    the run at the first step that sees the NaN, before any weight turns NaN."""
    trainer = _trainer(tmp_path, 2, loss=loss, data=_ltr(nan_label=True), optimizer="sgd")
    with pytest.raises((FloatingPointError, ValueError), match=r"(?i)nan") as error:
        trainer.fit()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    if loss is _leaky_squared_error:
        assert "non-finite gradient" in str(error.value)


# -------------------------------------------------------------------------------------- resume
@pytest.mark.badinput("resume")
def test_kill_before_the_first_checkpoint_leaves_no_duplicate_log_rows(tmp_path, full):
    logs = tmp_path / "logs"
    logs.mkdir()
    done = (full[0] / "logs/steps.jsonl").read_text().splitlines()[:2]  # killed at step 3
    (logs / "steps.jsonl").write_text("".join(line + "\n" for line in done))
    trainer = _trainer(tmp_path, 3, resume=True)
    assert trainer.fit().resumed_from is None
    _assert_equals_full(tmp_path, trainer, full)


@pytest.mark.badinput("resume")
def test_torn_last_log_line_is_dropped_with_a_warning(tmp_path, full):
    _trainer(tmp_path, 2).fit()
    full_steps = (full[0] / "logs/steps.jsonl").read_text().splitlines()
    redone = [line for line in full_steps if json.loads(line)["epoch"] == 3][:2]
    with open(tmp_path / "logs/steps.jsonl", "a") as f:  # a kill in epoch 3, mid-write
        f.write("".join(line + "\n" for line in redone) + redone[-1][:17])
    with open(tmp_path / "logs/epochs.jsonl", "a") as f:
        f.write('{"epoch": 3, "train_lo')
    trainer = _trainer(tmp_path, 3, resume=True)
    patterns = [rf"{name}\.jsonl:\d+: dropping a torn last line" for name in ("steps", "epochs")]
    assert _fit_warning(trainer, *patterns) == 2
    _assert_equals_full(tmp_path, trainer, full)


@pytest.mark.badinput("resume")
@pytest.mark.parametrize("damage", ["empty", "half-written"])
def test_torn_last_checkpoint_falls_back_to_the_previous_one(tmp_path, full, damage):
    _trainer(tmp_path, 2).fit()
    last = tmp_path / "ckpt/last.pt"
    data = last.read_bytes()
    last.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    trainer = _trainer(tmp_path, 3, resume=True)
    assert _fit_warning(trainer, r"last\.pt cannot be read .*trying previous\.pt") == 1
    _assert_equals_full(tmp_path, trainer, full)
    assert (tmp_path / "ckpt/last.pt.torn").exists()
    assert torch.load(tmp_path / "ckpt/previous.pt", weights_only=True)["epoch"] == 2


@pytest.mark.badinput("resume")
def test_torn_only_checkpoint_starts_the_run_afresh_saying_so(tmp_path, full):
    _trainer(tmp_path, 1).fit()
    (tmp_path / "ckpt/last.pt").write_bytes(b"PK\x03\x04 torn")
    trainer = _trainer(tmp_path, 3, resume=True)
    patterns = [r"last\.pt cannot be read", "no readable checkpoint .* starting the run afresh"]
    assert _fit_warning(trainer, *patterns) is None
    _assert_equals_full(tmp_path, trainer, full)


@pytest.mark.badinput("resume")
def test_kill_between_the_checkpoint_renames_resumes_from_previous(tmp_path, full):
    _trainer(tmp_path, 2).fit()
    (tmp_path / "ckpt/last.pt").unlink()
    trainer = _trainer(tmp_path, 3, resume=True)
    assert _fit_warning(trainer, r"resuming from .*previous\.pt \(epoch 1\)") == 1
    _assert_equals_full(tmp_path, trainer, full)


@pytest.mark.badinput("resume")
def test_a_bad_log_line_before_the_last_is_an_error_naming_it(tmp_path):
    _trainer(tmp_path, 1).fit()
    steps = tmp_path / "logs/steps.jsonl"
    lines = steps.read_text().splitlines()
    steps.write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"steps\.jsonl:2: not a log row"):
        _trainer(tmp_path, 2, resume=True).fit()


@pytest.mark.badinput("security")
def test_a_foreign_checkpoint_is_an_error_naming_it(tmp_path):
    path = tmp_path / "ckpt/last.pt"
    path.parent.mkdir()
    torch.save(nn.Linear(2, 1).state_dict(), path)
    with pytest.raises(ValueError, match=f"{path} is not a rankloss trainer checkpoint"):
        _trainer(tmp_path, 1, resume=True).fit()


@pytest.mark.badinput("cli")
@pytest.mark.parametrize(
    ("option", "error", "message"),
    [
        ({"epochs": 0}, ValueError, "Trainer: epochs must be a positive integer, got 0"),
        ({"epochs": -3}, ValueError, "Trainer: epochs must be a positive integer, got -3"),
        ({"epochs": 2.5}, TypeError, "Trainer: epochs must be an int, got float"),
        ({"lr": -1.0}, ValueError, r"Trainer: lr must be > 0, got -1\.0"),
        ({"lr": float("nan")}, ValueError, "Trainer: lr must be finite, got nan"),
        ({"weight_decay": -0.1}, ValueError, r"Trainer: weight_decay must be >= 0, got -0\.1"),
        ({"grad_clip": 0.0}, ValueError, r"Trainer: grad_clip must be > 0, got 0\.0"),
        ({"log_every": 0}, ValueError, "Trainer: log_every must be a positive integer, got 0"),
        ({"seed": "abc"}, TypeError, "Trainer: seed must be an int, got str"),
    ],
)
def test_bad_trainer_options_fail_when_the_trainer_is_built(option, error, message):
    arguments = {"epochs": 1, "progress": False} | option
    with pytest.raises(error, match=message):
        Trainer(MLPScorer(FEATURES), LTRTask(_ltr()), "listnet", **arguments)
