"""RankingModule: two epochs of tiny models on CPU, metrics logged, bad input refused."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

pl = pytest.importorskip("lightning.pytorch")

from rankloss import metrics  # noqa: E402
from rankloss.integrations.lightning import RankingModule  # noqa: E402
from rankloss.losses import InfoNCELoss, ListNetLoss, SupConLoss  # noqa: E402


class _Lists(Dataset):
    """Lists of 6 items with 3 features; the relevance is a noisy linear function of them."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.features = torch.randn(size, 6, 3, generator=generator)
        self.labels = (self.features @ torch.tensor([1.0, -1.0, 0.5])).clamp(0, 2).round()
        self.mask = torch.ones(size, 6, dtype=torch.bool)
        self.mask[::3, 4:] = False  # some lists are shorter
        self.features[::3, 4:] = float("nan")  # padding garbage never reaches the loss

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[i], "labels": self.labels[i], "mask": self.mask[i]}


def _trainer(tmp_path, epochs: int = 2) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        deterministic=True,
    )


class _Scorer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.nan_to_num(features)).squeeze(-1)


def test_list_loss_two_epochs(tmp_path):
    torch.manual_seed(0)
    train, val = _Lists(64, 0), _Lists(32, 1)
    module = RankingModule(_Scorer(), ListNetLoss(), metrics=("ndcg@5", "mrr"), lr=0.05)
    val_batch = {"features": val.features, "labels": val.labels, "mask": val.mask}

    def val_ndcg() -> float:
        with torch.no_grad():
            scores = module(val_batch["features"])
        return metrics.compute("ndcg@5", scores, val.labels, val.mask, reduction="mean").item()

    before = val_ndcg()
    trainer = _trainer(tmp_path)
    trainer.fit(module, DataLoader(train, batch_size=16), DataLoader(val, batch_size=32))
    logged = trainer.callback_metrics
    assert trainer.current_epoch == 2
    assert {"train/loss", "val/loss", "val/ndcg@5", "val/mrr"} <= set(logged)
    assert all(math.isfinite(float(v)) for v in logged.values())
    # the logged validation metric is rankloss's metric of the model's scores
    after = val_ndcg()
    assert abs(float(logged["val/ndcg@5"]) - after) < 1e-5
    assert after > before
    assert os.listdir(tmp_path) == []  # no logger or checkpoint files


def test_embedding_loss_labels_and_keys_forms(tmp_path):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(2)
    centres = torch.randn(4, 8, generator=generator) * 3
    labels = torch.arange(4).repeat(8)
    inputs = centres[labels] + torch.randn(32, 8, generator=generator)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    module = RankingModule(
        model, SupConLoss(temperature=0.2), metrics=("map",), lr=0.01, train_metrics=True
    )
    loader = DataLoader(list(zip(inputs, labels)), batch_size=16)
    trainer = _trainer(tmp_path)
    trainer.fit(module, loader, loader)
    logged = trainer.callback_metrics
    assert {"train/loss", "train/map", "val/loss", "val/map"} <= set(logged)
    # in-batch retrieval: relevant = same label, itself left out; check one batch by hand
    with torch.no_grad():
        z = torch.nn.functional.normalize(model(inputs[:16]), dim=1)
    similarity = z @ z.T
    expected = []
    for i in range(16):
        order = sorted((j for j in range(16) if j != i), key=lambda j: -similarity[i, j].item())
        hits, precisions = 0, []
        for rank, j in enumerate(order, 1):
            if labels[j] == labels[i]:
                hits += 1
                precisions.append(hits / rank)
        expected.append(sum(precisions) / len(precisions))
    result = trainer.validate(
        module, DataLoader(list(zip(inputs[:16], labels[:16])), batch_size=16)
    )
    assert abs(result[0]["val/map"] - sum(expected) / 16) < 1e-5

    pairs = [{"queries": x, "keys": x + 0.1 * torch.randn(8)} for x in inputs]
    keys_module = RankingModule(model, InfoNCELoss(temperature=0.1), metrics=("mrr",))
    trainer = _trainer(tmp_path, epochs=1)
    trainer.fit(keys_module, DataLoader(pairs, batch_size=8), DataLoader(pairs, batch_size=8))
    assert 0.0 < float(trainer.callback_metrics["val/mrr"]) <= 1.0
    assert os.listdir(tmp_path) == []


@pytest.mark.badinput("losses")
def test_refuses_bad_input():
    with pytest.raises(TypeError, match="RankingModule: loss must be a rankloss list or embedding"):
        RankingModule(_Scorer(), torch.nn.MSELoss())
    with pytest.raises(ValueError, match="parse_metric"):
        RankingModule(_Scorer(), ListNetLoss(), metrics=("ndgc@10",))
    with pytest.raises(ValueError, match="lr must be > 0"):
        RankingModule(_Scorer(), ListNetLoss(), lr=0.0)
    module = RankingModule(_Scorer(), ListNetLoss())
    with pytest.raises(ValueError, match="a list-loss batch is"):
        module.training_step(torch.randn(2, 3), 0)


def test_a_list_scorer_gets_the_mask_so_padding_changes_nothing():
    from rankloss.losses import LambdaLoss
    from rankloss.models import ListAttentionScorer

    torch.manual_seed(0)
    scorer = ListAttentionScorer(
        4, d_model=8, num_heads=2, num_layers=1, dim_feedforward=16, dropout=0.0
    ).eval()
    module = RankingModule(scorer, LambdaLoss())
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    assert module.model_takes_mask
    features = torch.randn(1, 5, 4)
    labels = torch.tensor([[2.0, 1.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False, False]])
    values = []
    for padding in (0.0, 100.0, math.nan):
        padded = features.clone()
        padded[0, 3:] = padding
        values.append(module.training_step((padded, labels, mask), 0).item())
    assert values[0] == values[1] == values[2]
    # a model that takes features only is called with them alone
    plain = RankingModule(
        torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Flatten(-2)), LambdaLoss()
    )
    plain.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    assert not plain.model_takes_mask
    assert math.isfinite(plain.training_step((features, labels, mask), 0).item())


def test_a_keyword_only_mask_is_passed_by_name():
    from rankloss.losses import ListNetLoss

    class KeywordMask(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)

        def forward(self, features, *, mask=None):
            scores = self.linear(features).squeeze(-1)
            return scores if mask is None else scores.masked_fill(~mask, 0.0)

    module = RankingModule(KeywordMask(), ListNetLoss())
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    features = torch.randn(2, 5, 4)
    labels = torch.randint(0, 3, (2, 5)).float()
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    value = module.training_step({"features": features, "labels": labels, "mask": mask}, 0)
    assert math.isfinite(value.item())
