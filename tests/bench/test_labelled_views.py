"""The retrieval task's ``views = "labelled"`` rows (SupCon's recipe, Khosla et al. 2020): two
augmented views of every image of a labelled batch, concatenated, with the labels repeated, so
an embedding loss is called as ``loss(cat([z1, z2]), cat([y, y]))``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from rankloss.bench.config import load_config
from rankloss.bench.runner import RunContext
from rankloss.bench.suites import RETRIEVAL_AUGMENT, SUITES, LossSpec, check_suite
from rankloss.bench.tasks import TASKS, _ImageTask, _Views
from rankloss.data.types import LabelledDataset, LabelledSplit
from rankloss.losses import SupConLoss, get
from rankloss.train.tasks import EmbeddingTask

#: A jitter of the fake augmentation, far below the gap between two images' values.
_JITTER = 1e-3


def _fake_data(per_class: int = 6, classes: int = 4) -> LabelledDataset:
    """Images ``[N, 1, 4, 4]`` whose every pixel is the image's index / 100 (in [0, 1], as the
    task requires of images it augments), so an image's index can be read back from any view
    of it (the fake augmentation below moves pixels by < 1e-3)."""
    n = per_class * classes
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 4, 4) / 100
    y = torch.arange(classes).repeat_interleave(per_class)
    split = LabelledSplit(x, y)
    return LabelledDataset(split, split, split)


def _jitter(x: Tensor, *, generator: torch.Generator) -> Tensor:
    """A fake augmentation: the image plus uniform noise in ``[0, 1e-3)`` from ``generator``."""
    return x + _JITTER * torch.rand(x.shape, generator=generator)


def _task(views: bool | str, augment: bool = False) -> _ImageTask:
    base = EmbeddingTask(_fake_data(), batch_size=8, per_class=2)
    settings = dict(RETRIEVAL_AUGMENT) if augment else None
    task = _ImageTask(base, views=views, augment=settings, features=False)
    task.transform = _jitter
    return task


def _image_ids(x: Tensor) -> Tensor:
    return (x.flatten(1).mean(1) * 100).round().long()


def test_batches_hold_two_views_of_each_image_and_the_labels_twice() -> None:
    task = _task("labelled")
    data = task.base.data.train
    batches = list(task.train_batches(torch.Generator().manual_seed(0)))
    assert len(batches) == len(data) // 8
    for batch in batches:
        assert batch.x.shape == (16, 1, 4, 4) and batch.y.shape == (16,)
        first, second = batch.x[:8], batch.x[8:]
        ids = _image_ids(first)
        # the two halves are views of the same images, in the same order ...
        assert torch.equal(_image_ids(second), ids)
        assert len(set(ids.tolist())) == 8
        # ... labelled with those images' labels, twice
        assert torch.equal(batch.y, torch.cat([data.y[ids], data.y[ids]]))
        # ... and are different views: every pixel of each is the image plus its own jitter
        assert (first - data.x[ids]).abs().max() < _JITTER
        assert (second - data.x[ids]).abs().max() < _JITTER
        assert not torch.equal(first, second)
        assert (first - second).abs().flatten(1).amax(1).min() > 0


def test_the_loss_receives_both_views_and_the_repeated_labels() -> None:
    """An embedding loss gets ``cat([model(view1), model(view2)])`` and ``cat([y, y])``: its
    value equals the loss of the two halves embedded separately and concatenated."""
    calls: list[tuple[Tensor, Tensor]] = []

    class Spy(SupConLoss):
        def forward(self, embeddings: Tensor, labels: Tensor | None = None, **kwargs) -> Tensor:
            assert labels is not None and not kwargs
            calls.append((embeddings.detach().clone(), labels.clone()))
            return super().forward(embeddings, labels, **kwargs)

    task = _task("labelled")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 5))
    batch = next(iter(task.train_batches(torch.Generator().manual_seed(3))))
    value = task.training_step(model, batch, Spy(temperature=0.5))
    assert len(calls) == 1
    embeddings, labels = calls[0]
    assert embeddings.shape == (16, 5) and torch.equal(labels, batch.y)
    assert torch.equal(labels[:8], labels[8:])
    with torch.no_grad():
        z1, z2 = model(batch.x[:8]), model(batch.x[8:])
    assert torch.allclose(embeddings, torch.cat([z1, z2]), atol=1e-6)
    expected = SupConLoss(temperature=0.5)(torch.cat([z1, z2]), torch.cat([labels[:8]] * 2))
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_a_list_loss_ranks_every_other_view_of_the_batch() -> None:
    """A list loss (``EmbeddingTask``'s list form) gets ``[2B, 2B]`` lists: each view ranks
    the other ``2B - 1``, its image's other view and its class's views relevant."""
    seen: dict[str, Tensor] = {}
    listnet = get("listnet")

    def spy(scores: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
        seen.update(scores=scores, labels=labels, mask=mask)
        return listnet(scores, labels, mask)

    spy.kind = "list"  # type: ignore[attr-defined]
    task = _task("labelled")
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 5))
    batch = next(iter(task.train_batches(torch.Generator().manual_seed(1))))
    assert torch.isfinite(task.training_step(model, batch, spy))
    assert seen["scores"].shape == (16, 16)
    rows = torch.arange(8)
    assert (seen["labels"][rows, rows + 8] == 1).all() and (
        seen["labels"][rows + 8, rows] == 1
    ).all()
    assert not seen["mask"].diagonal().any() and seen["mask"].sum() == 16 * 15


def test_views_are_reproducible_and_the_other_modes_are_unchanged() -> None:
    """The same epoch generator gives the same views (a resumed run sees them again);
    ``views = true`` still yields unlabelled view pairs, ``false`` one view per image."""
    first = list(_task("labelled").train_batches(torch.Generator().manual_seed(5)))
    again = list(_task("labelled").train_batches(torch.Generator().manual_seed(5)))
    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) for a, b in zip(first, again))
    simclr = next(iter(_task(True).train_batches(torch.Generator().manual_seed(5))))
    assert isinstance(simclr, _Views) and simclr.view1.shape == (8, 1, 4, 4)
    assert torch.equal(_image_ids(simclr.view1), _image_ids(simclr.view2))
    labelled = next(
        iter(_task(False, augment=True).train_batches(torch.Generator().manual_seed(5)))
    )
    assert labelled.x.shape == (8, 1, 4, 4) and labelled.y.shape == (8,)


def test_a_labelled_views_row_trains_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real augmentation on digits: every training step sees ``2B`` views whose halves
    differ, with the labels repeated."""
    steps: list[tuple[Tensor, Tensor]] = []
    training_step = EmbeddingTask.training_step

    def spy(self, model, batch, loss):
        steps.append((batch.x, batch.y))
        return training_step(self, model, batch, loss)

    monkeypatch.setattr(EmbeddingTask, "training_step", spy)
    loss = LossSpec("supcon (labelled views)", "supcon", options={"views": "labelled"})
    suite = replace(
        SUITES["quick-retrieval"].with_budget(epochs=1, max_per_split=300), losses=(loss,)
    )
    check_suite(suite)
    result = TASKS["retrieval"](RunContext(suite, loss, "digits", 0, "cpu", tmp_path / "work"))
    assert len(result.history) == 1 and 0.0 < result.metrics["map@r"] <= 1.0
    assert steps
    for x, y in steps:
        half = len(y) // 2
        assert len(y) == 2 * half and torch.equal(y[:half], y[half:])
        assert x.shape[0] == len(y) and not torch.equal(x[:half], x[half:])


@pytest.mark.badinput("bench")
@pytest.mark.parametrize(
    ("value", "error"),
    [("labeled", ValueError), ("simclr", ValueError), ("", ValueError), (1, TypeError)],
)
def test_a_bad_views_value_is_refused(tmp_path: Path, value: object, error: type) -> None:
    allowed = r'views must be false, true \(SimCLR\) or "labelled" \(SupCon\), got'
    loss = LossSpec("supcon", "supcon", options={"views": value})
    suite = replace(SUITES["quick-retrieval"], losses=(loss,))
    with pytest.raises(error, match=rf"suite 'quick-retrieval': loss 'supcon': options: {allowed}"):
        check_suite(suite)
    with pytest.raises(error, match=f"retrieval: options: {allowed}"):
        _ImageTask(EmbeddingTask(_fake_data()), views=value, augment=None, features=False)  # type: ignore[arg-type]
    config = tmp_path / "bench.toml"
    literal = f'"{value}"' if isinstance(value, str) else str(value)
    config.write_text(
        '[[suite]]\nbase = "quick-retrieval"\n[[suite.loss]]\nname = "supcon"\n'
        f"options = {{ views = {literal} }}\n"
    )
    with pytest.raises(ValueError, match=f"bench.toml: .*{allowed} .*{value!r}"):
        load_config(config)
