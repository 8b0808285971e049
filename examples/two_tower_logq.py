"""A two-tower recommender trained in-batch with the sampled softmax, with and without log-Q.

Generated data, no downloads, a few seconds on a CPU. Users and items have hidden taste
vectors; a user interacts with an item with probability proportional to
``popularity(item) * exp(affinity(user, item))``, where popularity follows a Zipf law, so the
training stream is dominated by a few popular items. In-batch negatives are then drawn with
that skewed distribution: without a correction, the sampled softmax over-penalises popular
items (they appear as negatives far more often than under the full softmax). The log-Q
correction subtracts each item's log sampling probability (its frequency in the stream) from
its logit (Yi et al., RecSys 2019).

Both models are evaluated by Recall@10 on held-out interactions drawn from the same process,
ranking the whole catalogue (training items of a user are not removed: each test interaction is
a fresh draw). Run: ``python examples/two_tower_logq.py``.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from rankloss.functional import in_batch_scores, sampled_softmax_loss

NUM_USERS, NUM_ITEMS, TASTE = 1000, 1000, 8
TRAIN, TEST = 30_000, 5_000
DIM, BATCH, EPOCHS, LR = 32, 512, 2, 0.01
K = 10


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train [TRAIN, 2], test [TEST, 2], item frequency [NUM_ITEMS])``: (user, item) pairs."""
    g = torch.Generator().manual_seed(seed)
    users = torch.randn(NUM_USERS, TASTE, generator=g)
    items = torch.randn(NUM_ITEMS, TASTE, generator=g)
    popularity = 1.0 / torch.arange(1, NUM_ITEMS + 1).float() ** 1.1  # Zipf
    popularity = popularity[torch.randperm(NUM_ITEMS, generator=g)]
    logits = users @ items.T * 0.6 + popularity.log()  # [users, items]
    probabilities = torch.softmax(logits, dim=-1)

    def draw(count: int) -> torch.Tensor:
        who = torch.randint(0, NUM_USERS, (count,), generator=g)
        draws = torch.bincount(who, minlength=NUM_USERS).tolist()
        pairs = [
            torch.stack(
                [
                    torch.full((n,), user),
                    torch.multinomial(probabilities[user], n, replacement=True, generator=g),
                ],
                dim=-1,
            )
            for user, n in enumerate(draws)
            if n
        ]
        return torch.cat(pairs)

    train, test = draw(TRAIN), draw(TEST)
    frequency = torch.bincount(train[:, 1], minlength=NUM_ITEMS).float() + 1.0
    return train, test, frequency / frequency.sum()


class TwoTower(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.users = nn.Embedding(NUM_USERS, DIM)
        self.items = nn.Embedding(NUM_ITEMS, DIM)
        nn.init.normal_(self.users.weight, std=0.1)
        nn.init.normal_(self.items.weight, std=0.1)


def train(correct: bool, data, seed: int = 0) -> TwoTower:
    train_pairs, _, probability = data
    model = TwoTower(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(seed)
    log_probability = probability.log()
    for _ in range(EPOCHS):
        order = torch.randperm(len(train_pairs), generator=g)
        for start in range(0, len(order) - BATCH + 1, BATCH):
            batch = train_pairs[order[start : start + BATCH]]
            user, item = batch[:, 0], batch[:, 1]
            log_q = log_probability[item] if correct else None
            scores, labels, mask, log_q_matrix = in_batch_scores(
                model.users(user), model.items(item), item, log_q
            )
            loss = sampled_softmax_loss(scores, labels, mask, log_q_matrix, temperature=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model


@torch.no_grad()
def recall_at_k(model: TwoTower, test: torch.Tensor) -> float:
    """The fraction of test interactions whose item is in the user's top K of the catalogue."""
    scores = model.users(test[:, 0]) @ model.items.weight.T  # [TEST, NUM_ITEMS]
    top = scores.topk(K, dim=-1).indices
    return (top == test[:, 1:]).any(-1).float().mean().item()


def main() -> None:
    start = time.perf_counter()
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    data = make_data()
    _, test, probability = data
    popular = probability.topk(K).indices
    baseline = (test[:, 1:] == popular).any(-1).float().mean().item()
    print(f"most-popular baseline      Recall@{K} = {baseline:.4f}")
    for correct in (False, True):
        model = train(correct, data)
        name = "with log-Q correction   " if correct else "without log-Q correction"
        print(f"in-batch sampled softmax {name}: Recall@{K} = {recall_at_k(model, test):.4f}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
