"""The retrieval budget's ``augment``: ``false``, ``true`` (the task's pipeline) or a table of
the pipeline's settings, checked before anything trains and passed to the pipeline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rankloss.augment import (
    Compose,
    FeatureDropout,
    FeatureNoise,
    GaussianBlur,
    GaussianNoise,
    RandomApply,
    RandomHorizontalFlip,
    RandomResizedCrop,
)
from rankloss.bench.config import load_config, own_data_suite
from rankloss.bench.runner import RunContext
from rankloss.bench.suites import (
    RETRIEVAL_AUGMENT,
    SUITES,
    LossSpec,
    check_retrieval_augment,
    check_suite,
    check_vector_augment,
)
from rankloss.bench.tasks import TASKS, _ImageTask
from rankloss.data.types import LabelledDataset, LabelledSplit
from rankloss.train.tasks import EmbeddingTask


def _data() -> LabelledDataset:
    x = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    split = LabelledSplit(x, torch.arange(4).repeat_interleave(6))
    return LabelledDataset(split, split, split)


def _steps(task: _ImageTask) -> list[object]:
    """The pipeline's steps, with a ``RandomApply`` replaced by the step it wraps."""
    assert isinstance(task.transform, Compose)
    return [getattr(t, "transform", t) for t in task.transform.transforms]


def test_false_true_and_a_table() -> None:
    assert check_retrieval_augment("w", False) is None
    assert check_retrieval_augment("w", True) == RETRIEVAL_AUGMENT
    settings = check_retrieval_augment("w", {"crop_scale": [0.8, 1], "flip": True, "blur_p": 0})
    assert settings == {
        **RETRIEVAL_AUGMENT,
        "crop_scale": (0.8, 1.0),
        "flip": True,
        "blur_p": 0.0,
    }
    # the defaults are not changed by a table
    assert RETRIEVAL_AUGMENT["crop_scale"] == (0.5, 1.0) and RETRIEVAL_AUGMENT["flip"] is False


def test_the_settings_reach_the_pipeline() -> None:
    table = check_retrieval_augment(
        "w", {"crop_scale": [0.9, 1.0], "flip": True, "blur_p": 0, "noise_std": 0.2}
    )
    task = _ImageTask(EmbeddingTask(_data()), views=False, augment=table, features=False)
    steps = _steps(task)
    crop = next(s for s in steps if isinstance(s, RandomResizedCrop))
    noise = next(s for s in steps if isinstance(s, GaussianNoise))
    assert crop.scale == (0.9, 1.0) and noise.std == (0.0, 0.2)
    assert any(isinstance(s, RandomHorizontalFlip) for s in steps)
    assert not any(isinstance(s, GaussianBlur) for s in steps)
    default = _steps(_ImageTask(EmbeddingTask(_data()), views=True, augment=None, features=False))
    assert next(s for s in default if isinstance(s, RandomResizedCrop)).scale == (0.5, 1.0)
    assert any(isinstance(s, GaussianBlur) for s in default)
    assert not any(isinstance(s, RandomHorizontalFlip) for s in default)
    assert all(not isinstance(s, RandomApply) for s in steps)


def _rows_of(x: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """For each image of ``x``, whether it is exactly one of the images of ``data``."""
    return (x.flatten(1)[:, None] == data.flatten(1)[None]).all(-1).any(-1)


def test_false_leaves_the_labelled_batches_as_they_are() -> None:
    """``augment = false``: every training image is one of the data set's images, untouched;
    with the pipeline none is."""
    base = EmbeddingTask(_data(), batch_size=8, per_class=2)
    images = base.data.train.x
    off = _ImageTask(base, views=False, augment=None, features=False)
    on = _ImageTask(base, views=False, augment=dict(RETRIEVAL_AUGMENT), features=False)
    kept = list(off.train_batches(torch.Generator().manual_seed(3)))
    changed = list(on.train_batches(torch.Generator().manual_seed(3)))
    assert kept and len(kept) == len(changed)
    for a, b in zip(kept, changed):
        assert torch.equal(a.y, b.y) and a.x.shape == b.x.shape == (8, 1, 8, 8)
        assert _rows_of(a.x, images).all()
        assert not _rows_of(b.x, images).any()


@pytest.mark.parametrize("views", [False, True])
def test_non_square_images_keep_their_shape(views: bool) -> None:
    x = torch.rand(24, 3, 6, 10, generator=torch.Generator().manual_seed(1))
    split = LabelledSplit(x, torch.arange(4).repeat_interleave(6))
    base = EmbeddingTask(LabelledDataset(split, split, split), batch_size=8, per_class=2)
    task = _ImageTask(base, views=views, augment=dict(RETRIEVAL_AUGMENT), features=False)
    for batch in task.train_batches(torch.Generator().manual_seed(0)):
        images = [batch.view1, batch.view2] if views else [batch.x]
        assert all(tuple(v.shape[1:]) == (3, 6, 10) for v in images)


@pytest.mark.badinput("bench")
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (
            "false",
            TypeError,
            "augment must be true, false or a table of pipeline settings, got str",
        ),
        (1, TypeError, "augment must be true, false or a table"),
        ({"crop": [0.5, 1.0]}, ValueError, r"augment: unknown key\(s\) \['crop'\]"),
        ({"crop_scale": [0.0, 1.0]}, ValueError, r"augment.crop_scale must be \[low, high\]"),
        ({"crop_scale": [0.9, 0.5]}, ValueError, r"augment.crop_scale must be \[low, high\]"),
        ({"crop_scale": [0.5, 1.2]}, ValueError, r"augment.crop_scale must be \[low, high\]"),
        ({"crop_scale": 0.5}, TypeError, r"augment.crop_scale must be two numbers"),
        ({"blur_sigma": [0.0, 1.0]}, ValueError, r"augment.blur_sigma must be \[low, high\]"),
        ({"blur_p": 1.5}, ValueError, r"augment.blur_p must be in \[0.0, 1.0\]"),
        ({"noise_std": -0.1}, ValueError, "augment.noise_std must be >= 0"),
        ({"flip": 1}, TypeError, "augment.flip must be a bool"),
        ({"jitter": "0.4"}, TypeError, "augment.jitter must be a number"),
    ],
)
def test_a_bad_augment_is_refused_before_training(
    tmp_path: Path, value: object, error: type, message: str
) -> None:
    suite = SUITES["quick-retrieval"].with_budget(augment=value)
    with pytest.raises(error, match=f"suite 'quick-retrieval': budget: {message}"):
        check_suite(suite)
    with pytest.raises(error, match=message):
        check_retrieval_augment("retrieval: budget", value)


@pytest.mark.badinput("bench")
def test_a_config_file_with_a_string_augment_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bench.toml"
    config.write_text('[[suite]]\nbase = "quick-retrieval"\nbudget = { augment = "no" }\n')
    with pytest.raises(
        ValueError,
        match=r"bench.toml: suite 'suite0': budget: augment must be true, false or a table of "
        r"pipeline settings, got str 'no'",
    ):
        load_config(config)


def test_a_config_file_with_an_augment_table(tmp_path: Path) -> None:
    config = tmp_path / "bench.toml"
    config.write_text(
        '[[suite]]\nbase = "quick-retrieval"\n'
        "budget = { augment = { crop_scale = [0.8, 1.0], blur_p = 0.0 } }\n"
    )
    suites = load_config(config).suites
    assert suites[0].budget["augment"] == {"crop_scale": [0.8, 1.0], "blur_p": 0.0}
    check_suite(replace(suites[0]))


# ------------------------------------------------------------------ feature vectors [N, f]
def _vectors(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "v.npz"
    np.savez(path, x=rng.normal(size=(120, 6)).astype("float32"), y=np.repeat(np.arange(4), 30))
    return path


def test_vectors_get_feature_dropout_and_noise() -> None:
    """The image pipeline needs ``[N, C, H, W]``; flat vectors get their own corruption, for
    labelled batches (``augment = true``) and for views rows alike."""
    x = torch.randn(24, 6, generator=torch.Generator().manual_seed(0))
    split = LabelledSplit(x, torch.arange(4).repeat_interleave(6))
    base = EmbeddingTask(LabelledDataset(split, split, split), batch_size=8, per_class=2)
    for views, augment in ((False, dict(RETRIEVAL_AUGMENT)), (True, None)):
        task = _ImageTask(base, views=views, augment=augment, features=False)
        assert isinstance(task.transform, Compose)
        kinds = [type(t) for t in task.transform.transforms]
        assert kinds == [FeatureDropout, FeatureNoise]
        batch = next(iter(task.train_batches(torch.Generator().manual_seed(1))))
        shown = [batch.x] if views is False else [batch.view1, batch.view2]
        for v in shown:
            assert v.shape == (8, 6) and not _rows_of(v, x).any()


def test_a_views_row_trains_on_vectors(tmp_path: Path) -> None:
    """A ``views = true`` row of the retrieval suite on a user's flat vectors trains (it
    stopped at the image crop before)."""
    suite = own_data_suite(_vectors(tmp_path), "vectors", losses=["supcon"])
    row = LossSpec("nt_xent (views)", "nt_xent", {"temperature": 0.5}, {"views": True})
    suite = replace(suite.with_budget(epochs=1, batch_size=16), losses=(row,))
    check_suite(suite)
    context = RunContext(suite, row, suite.dataset, 0, "cpu", tmp_path / "work")
    result = TASKS["retrieval"](context)
    assert len(result.history) == 1 and 0.0 < result.metrics["map@r"] <= 1.0


@pytest.mark.badinput("bench")
def test_an_image_augment_table_on_vectors_is_refused_before_training(tmp_path: Path) -> None:
    path = _vectors(tmp_path)
    config = tmp_path / "bench.toml"
    config.write_text(
        f'[[suite]]\nbase = "retrieval"\ndataset = {{ path = "{path.name}", format = "vectors" }}\n'
        "budget = { augment = { crop_scale = [0.8, 1.0] } }\n"
    )
    with pytest.raises(
        ValueError,
        match=r"bench.toml: .*budget: augment: a table of image settings needs images "
        r"\[N, C, H, W\], but the data are vectors \[\d+, 6\]",
    ):
        load_config(config)
    with pytest.raises(ValueError, match="augment: a table of image settings needs images"):
        check_vector_augment("retrieval: budget", {"flip": True}, (10, 6))
    check_vector_augment("retrieval: budget", True, (10, 6))
    check_vector_augment("retrieval: budget", False, (10, 6))


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("budget_value", "expected"),
    [
        (False, None),
        (True, RETRIEVAL_AUGMENT),
        ({"crop_scale": [0.8, 1.0]}, {**RETRIEVAL_AUGMENT, "crop_scale": (0.8, 1.0)}),
    ],
)
def test_run_retrieval_hands_the_budget_augment_to_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget_value: object, expected: object
) -> None:
    """``run_retrieval`` reads ``budget.augment`` (checked) and gives it to the task; the
    task is stopped as soon as it is built."""
    import rankloss.bench.tasks as tasks

    rng = np.random.default_rng(0)
    path = tmp_path / "img.npz"
    np.savez(path, x=rng.random((120, 64)).astype("float32"), y=np.repeat(np.arange(4), 30))
    config = tmp_path / "bench.toml"
    config.write_text(
        f'[[suite]]\nbase = "retrieval"\n'
        f'dataset = {{ path = "{path.name}", format = "vectors", shape = [1, 8, 8] }}\n'
    )
    suite = load_config(config).suites[0].with_budget(augment=budget_value)
    check_suite(suite)
    seen: list[object] = []

    def record(*args: object, augment: object, **kwargs: object) -> None:
        seen.append(augment)
        raise _Stop

    monkeypatch.setattr(tasks, "_ImageTask", record)
    context = RunContext(suite, suite.losses[0], suite.dataset, 0, "cpu", tmp_path / "work")
    with pytest.raises(_Stop):
        TASKS["retrieval"](context)
    assert seen == [expected]


@pytest.mark.badinput("bench")
def test_unscaled_pixels_are_refused_when_augmented(tmp_path: Path) -> None:
    """The colour jitter and the noise clamp to [0, 1]: 8-bit pixels must be scaled first."""
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "img.npz",
        x=rng.integers(0, 256, (120, 64)).astype("float32"),
        y=np.repeat(np.arange(4), 30),
    )
    config = tmp_path / "bench.toml"
    dataset = 'dataset = { path = "img.npz", format = "vectors", shape = [1, 8, 8]%s }\n'
    for budget in ("", "budget = { augment = true }\n"):
        config.write_text('[[suite]]\nbase = "retrieval"\n' + dataset % "" + budget)
        with pytest.raises(
            ValueError, match=r"the images hold values in \[0, 255\], but the image"
        ):
            load_config(config)
    # scaled, or not augmented and no views row: accepted
    config.write_text('[[suite]]\nbase = "retrieval"\n' + dataset % ", scale = 255")
    load_config(config)
    config.write_text(
        '[[suite]]\nbase = "retrieval"\n' + dataset % "" + "budget = { augment = false }\n"
        '[[suite.loss]]\nname = "supcon"\n'
    )
    assert len(load_config(config).suites) == 1
    # and the task refuses them too (a registered data set is not checked at load)
    split = LabelledSplit(torch.rand(24, 1, 8, 8) * 255, torch.arange(4).repeat_interleave(6))
    base = EmbeddingTask(LabelledDataset(split, split, split))
    with pytest.raises(
        ValueError, match=r"retrieval: the images hold values in \[0\.\d+, 254\.\d+\], but"
    ):
        _ImageTask(base, views=True, augment=None, features=False)
    _ImageTask(base, views=False, augment=None, features=False)
