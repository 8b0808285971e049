"""The retrieval suites' protocol (Musgrave et al. 2020): class-disjoint train, validation and
test classes, early stopping on the validation classes, rows that train nothing, and the
convolutional embedding network (digits ships with scikit-learn: offline)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rankloss import metrics
from rankloss.bench import tasks as tasks_module
from rankloss.bench.runner import RunContext
from rankloss.bench.suites import SUITES, TASK_SETTINGS, LossSpec, build_row_loss, check_suite
from rankloss.bench.tasks import TASKS, _held_out_classes, load_dataset
from rankloss.losses import SupConLoss
from rankloss.models import ConvEmbedding
from rankloss.train.tasks import EmbeddingTask


def _classes(split) -> set[int]:
    return set(split.y.unique().tolist())


@pytest.mark.parametrize(("folds", "fold"), [(2, 0), (2, 1), (3, 0), (3, 1), (3, 2)])
def test_validation_classes_are_neither_training_nor_test_classes(folds: int, fold: int) -> None:
    full = load_dataset("digits")
    data = _held_out_classes(full, 6, folds, fold)
    train, validation, test = _classes(data.train), _classes(data.validation), _classes(data.test)
    expected = set(torch.arange(6).tensor_split(folds)[fold].tolist())
    assert validation == expected
    assert train == set(range(6)) - expected
    assert test == {6, 7, 8, 9}
    assert not (train & validation) and not (train & test) and not (validation & test)
    # every sample of the training classes in the train and validation splits is used once;
    # the test split is the data set's test split of the test classes
    seen = torch.cat([full.train.y, full.validation.y])
    assert len(data.train) + len(data.validation) == int((seen < 6).sum())
    assert len(data.test) == int((full.test.y >= 6).sum())
    assert torch.equal(data.test.x, full.test.x[full.test.y >= 6])


@pytest.mark.badinput("bench")
@pytest.mark.parametrize(
    ("folds", "fold", "message"),
    [
        (4, 0, "folds must be 1 .* or from 2 to train_classes // 2 \\(3; .*got 4"),
        (3, 3, "fold must be < folds \\(3\\), got 3"),
        (0, 0, "folds must be a positive integer, got 0"),
    ],
)
def test_bad_folds_are_refused(folds: int, fold: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"retrieval: budget: {message}"):
        _held_out_classes(load_dataset("digits"), 6, folds, fold)


def test_one_fold_is_the_protocol_without_validation_classes() -> None:
    full = load_dataset("digits")
    data = _held_out_classes(full, 6, 1)
    assert torch.equal(data.train.y, full.train.y[full.train.y < 6])
    assert torch.equal(data.validation.y, full.validation.y[full.validation.y < 6])
    assert _classes(data.test) == {6, 7, 8, 9}


def _context(tmp_path: Path, loss: LossSpec, seed: int = 0, **budget: object) -> RunContext:
    suite = SUITES["quick-retrieval"].with_budget(**budget)
    suite = replace(suite, losses=(loss,))
    check_suite(suite)
    return RunContext(suite, loss, "digits", seed, "cpu", tmp_path / "work")


def test_early_stopping_reads_the_validation_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 1 validates on fold 1 (classes 2, 3): every validation the trainer runs sees those
    classes only, its map@r is the history the early stopping reads, and the kept epoch's
    validation map@r is the table's ``validation/map@r``."""
    seen: list[tuple[str, set[int], float]] = []
    evaluate = EmbeddingTask.evaluate

    def spy(self, model, split, **kwargs):
        out = evaluate(self, model, split, **kwargs)
        seen.append((split, _classes(self.data.split(split)), out["map@r"]))
        return out

    monkeypatch.setattr(EmbeddingTask, "evaluate", spy)
    loss = LossSpec("supcon", "supcon")
    ctx = _context(tmp_path, loss, seed=1, epochs=3, patience=1, max_per_split=400)
    result = TASKS["retrieval"](ctx)
    validations = [(classes, value) for split, classes, value in seen if split == "validation"]
    tests = [classes for split, classes, _ in seen if split == "test"]
    assert validations and all(classes == {2, 3} for classes, _ in validations)
    assert tests == [{6, 7, 8, 9}]  # the test classes are evaluated once, after training
    per_epoch = [value for _, value in validations[: len(result.history)]]
    assert [row["validation"] for row in result.history] == pytest.approx(per_epoch)
    best = max(per_epoch)
    assert result.metrics["validation/map@r"] == pytest.approx(best)
    assert result.validation["map@r"] == pytest.approx(best)
    assert "validation classes [2, 3]" in result.notes


@pytest.mark.parametrize("name", ["raw", "untrained"])
def test_baseline_rows_train_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    def no_optimizer(self, *args, **kwargs):
        raise AssertionError("a baseline row built an optimiser")

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", no_optimizer)
    assert build_row_loss("retrieval", LossSpec(name, name)) is None
    assert TASK_SETTINGS["retrieval"].baselines[name] is None
    ctx = _context(tmp_path, LossSpec(name, name))
    result = TASKS["retrieval"](ctx)
    assert result.notes == "no training" and result.history == []
    test = load_dataset("digits").test
    test = test.subset(torch.nonzero(test.y >= 6).flatten())
    if name == "raw":
        embeddings = test.x.flatten(1)
    else:  # the suite's network at the run's seed, ranked by its representation
        settings = ctx.suite.model
        torch.manual_seed(0)
        model = ConvEmbedding(
            1, 8, settings["embedding_dim"], settings["width"], head=tuple(settings["head"])
        ).eval()
        with torch.no_grad():
            embeddings = model.features(test.x)
    expected = metrics.embedding_retrieval_metrics(embeddings, test.y, ks=(1,))
    for metric in ("precision@1", "r_precision", "map@r"):
        assert result.metrics[metric] == pytest.approx(expected[metric], abs=1e-6)
    assert 0.0 < result.metrics["validation/map@r"] <= 1.0


def test_retrieval_suites_have_the_baseline_rows() -> None:
    for name in ("retrieval", "retrieval-fashion", "quick-retrieval"):
        suite = SUITES[name]
        assert {row.name for row in suite.losses} >= {"raw", "untrained"}
        assert "validation/map@r" in suite.metrics and suite.primary == "map@r"
        assert suite.budget["folds"] >= 2


@pytest.mark.parametrize("size", [8, 28])
def test_conv_embedding_builds_and_trains_a_step(size: int) -> None:
    torch.manual_seed(0)
    model = ConvEmbedding(1, size, out_features=16, width=4, head=(8,))
    images = torch.rand(12, 1, size, size)
    labels = torch.arange(4).repeat(3)
    embeddings = model(images)
    side = size // 4
    assert embeddings.shape == (12, 16)
    assert model.features(images).shape == (12, model.feature_dim) == (12, 8 * side * side)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(12))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = SupConLoss()(embeddings, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_conv_option_runs_in_the_retrieval_task(tmp_path: Path) -> None:
    """The suite's model (``kind = "conv"``, retrieval on the features) trains a step."""
    ctx = _context(tmp_path, LossSpec("triplet", "triplet", {"margin": 0.2}), epochs=1)
    assert ctx.suite.model["kind"] == "conv" and ctx.suite.model["retrieve"] == "features"
    model = tasks_module._image_model(ctx, torch.zeros(2, 1, 8, 8))
    assert isinstance(model, ConvEmbedding)
    result = TASKS["retrieval"](ctx)
    assert len(result.history) == 1 and result.history[0]["train_loss"] > 0
    assert 0.0 < result.metrics["map@r"] <= 1.0


def test_few_training_classes_fall_back_to_fewer_folds(tmp_path: Path) -> None:
    """A budget's folds shrink to what the training classes allow (two classes a fold), and to
    no validation classes below four training classes; the notes say so."""
    loss = LossSpec("supcon", "supcon")
    ctx = _context(tmp_path / "a", loss, seed=1, epochs=1, train_classes=5, max_per_split=300)
    assert "validation classes [3, 4] (folds 3 -> 2)" in TASKS["retrieval"](ctx).notes
    ctx = _context(tmp_path / "b", loss, epochs=1, train_classes=3, max_per_split=300)
    result = TASKS["retrieval"](ctx)
    assert "no validation classes (folds 3 -> 1" in result.notes
    assert 0.0 < result.metrics["validation/map@r"] <= 1.0
    # asked for: not blamed on too few classes
    ctx = _context(tmp_path / "c", loss, epochs=1, folds=1, max_per_split=300)
    notes = TASKS["retrieval"](ctx).notes
    assert "no validation classes (folds = 1: early stopping on the training classes)" in notes


@pytest.mark.badinput("bench")
def test_bad_model_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ConvEmbedding: images must be \[N, C, 8, 8\]"):
        ConvEmbedding(1, 8)(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="ConvEmbedding: width must be a positive integer, got 0"):
        ConvEmbedding(1, 8, width=0)
    loss = LossSpec("supcon", "supcon")
    suite = replace(SUITES["quick-retrieval"], model={"kind": "cnn", "retrieve": "features"})
    ctx = RunContext(replace(suite, losses=(loss,)), loss, "digits", 0, "cpu", tmp_path)
    with pytest.raises(ValueError, match='retrieve = "features" needs kind = "conv"'):
        TASKS["retrieval"](ctx)
    suite = replace(SUITES["quick-retrieval"], model={"kind": "resnet"})
    ctx = RunContext(replace(suite, losses=(loss,)), loss, "digits", 0, "cpu", tmp_path)
    with pytest.raises(ValueError, match="retrieval: model: kind must be one of"):
        TASKS["retrieval"](ctx)
