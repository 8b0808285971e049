"""AP-Loss, aLRP loss and Rank & Sort loss against float64 loop references of their value and
of the papers' error-driven update (the backward), plus the papers' worked cases.

The registry-wide list suites (padding, masking, permutations, extreme logits, half precision)
pick these losses up from the registry; gradcheck does not apply (``exact_gradient=False``).
"""

from __future__ import annotations

import pytest
import torch

import rankloss
from rankloss.functional import alrp_loss, ap_loss, rank_sort_loss
from rankloss.losses import ALRPLoss, APLoss, RankSortLoss

NAMES = ("ap_loss", "alrp_loss", "rank_sort")


def _step(x, delta):
    return min(1.0, max(0.0, x / (2 * delta) + 0.5))


def ref_list(name, scores, labels, weights=None, *, delta=None, min_positive_iou=0.5):
    """(value, update) of one list by plain loops, as in the papers."""
    if delta is None:
        delta = 1.0 if name == "ap_loss" else 0.5
    n = len(scores)
    w = [1.0] * n if weights is None else list(weights)
    pos = [i for i in range(n) if labels[i] > 0]
    neg = [j for j in range(n) if labels[j] <= 0]
    q = [min(1.0, max(0.0, y)) for y in labels]
    grad = [0.0] * n
    if not pos:
        return 0.0, grad, False

    def h(i, j):  # H(s_j - s_i)
        return _step(scores[j] - scores[i], delta)

    value = 0.0
    for i in pos:
        fp = sum(h(i, j) for j in neg)
        rank_pos = 1.0 + sum(h(i, k) for k in pos if k != i)
        rank = rank_pos + fp
        if name == "ap_loss":
            value += w[i] * fp / rank
            error = fp / rank
        elif name == "alrp_loss":
            e = [min(1.0, (1.0 - q[k]) / (1.0 - min_positive_iou)) for k in range(n)]
            value += w[i] * fp / rank
            error = (fp + sum(h(i, k) * e[k] for k in pos if k != i)) / rank
        else:
            ranking = fp / rank

            def ht(i, k):
                return 1.0 if k == i else h(i, k)

            current = sum(ht(i, k) * (1 - q[k]) for k in pos) / rank_pos
            target_set = [k for k in pos if q[k] >= q[i]]
            target = sum(ht(i, k) * (1 - q[k]) for k in target_set) / sum(
                ht(i, k) for k in target_set
            )
            sorting = current - target
            value += w[i] * (ranking + sorting)
            error = ranking
            missorted = [k for k in pos if q[k] < q[i]]
            denominator = sum(h(i, k) for k in missorted)
            if denominator > 0:
                grad[i] -= w[i] * sorting
                for k in missorted:
                    grad[k] += w[i] * sorting * h(i, k) / denominator
        if fp > 0:
            grad[i] -= w[i] * error
            for j in neg:
                grad[j] += w[i] * error * h(i, j) / fp
    return value / len(pos), [g / len(pos) for g in grad], True


FUNCS = {"ap_loss": ap_loss, "alrp_loss": alrp_loss, "rank_sort": rank_sort_loss}


def _batch(seed, b=4, n=9):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, n, generator=g, dtype=torch.float64)
    ious = torch.rand(b, n, generator=g, dtype=torch.float64)
    labels = torch.where(ious > 0.55, ious, 0.0)
    labels[0, 0] = 0.8  # at least one positive in the first list
    labels[-1] = 0.0  # a list with no positive
    mask = torch.rand(b, n, generator=g) < 0.85
    mask[0, 0] = True
    weights = torch.rand(b, n, generator=g, dtype=torch.float64) + 0.5
    return scores, labels, mask, weights


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("use_weights", [False, True])
def test_value_and_update_match_loop_reference(name, seed, use_weights):
    scores, labels, mask, weights = _batch(seed)
    hyper = {"delta": 0.7} if seed == 2 else {}
    s = scores.clone().requires_grad_(True)
    w = weights if use_weights else None
    per = FUNCS[name](s, labels, mask, weights=w, reduction="none", **hyper)
    upstream = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    (per * upstream).sum().backward()
    want_values, want_grad = [], torch.zeros_like(scores)
    for b in range(scores.shape[0]):
        idx = [i for i in range(scores.shape[1]) if mask[b, i]]
        value, grad, _ = ref_list(
            name,
            [scores[b, i].item() for i in idx],
            [labels[b, i].item() for i in idx],
            [weights[b, i].item() for i in idx] if use_weights else None,
            **hyper,
        )
        want_values.append(value)
        for slot, i in enumerate(idx):
            want_grad[b, i] = upstream[b] * grad[slot]
    torch.testing.assert_close(per, torch.tensor(want_values, dtype=torch.float64))
    torch.testing.assert_close(s.grad, want_grad)


@pytest.mark.parametrize("name", NAMES)
def test_mean_is_over_lists_with_a_positive_and_the_module_agrees(name):
    scores, labels, mask, _ = _batch(3)
    per = FUNCS[name](scores, labels, mask, reduction="none")
    assert per[-1] == 0
    torch.testing.assert_close(FUNCS[name](scores, labels, mask), per[:-1].mean())
    module = rankloss.losses.get(name)
    torch.testing.assert_close(module(scores, labels, mask), per[:-1].mean())
    # No positive anywhere: a connected zero with a zero update.
    s = scores.clone().requires_grad_(True)
    value = module(s, torch.zeros_like(labels), mask)
    value.backward()
    assert value.item() == 0 and (s.grad == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_the_update_is_handed_on_so_it_sums_to_zero(name):
    # Every error taken from a positive is given to the anchors that caused it.
    scores, labels, mask, _ = _batch(4)
    s = scores.clone().requires_grad_(True)
    FUNCS[name](s, labels, mask, reduction="sum").backward()
    torch.testing.assert_close(s.grad.sum(1), torch.zeros(4, dtype=torch.float64))
    assert (s.grad[~mask] == 0).all()


def test_ap_loss_worked_example():
    # One positive and one negative with equal logits: H(0) = 1/2, so N_FP = 1/2, rank = 3/2,
    # AP-Loss = 1/3, and the update moves the positive up and the negative down by 1/3.
    s = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    value = ap_loss(s, torch.tensor([1.0, 0.0]))
    value.backward()
    torch.testing.assert_close(value, torch.tensor(1 / 3, dtype=torch.float64))
    torch.testing.assert_close(s.grad, torch.tensor([-1 / 3, 1 / 3], dtype=torch.float64))
    # Separated by more than delta: the step is 0 and so are loss and update.
    s = torch.tensor([2.5, 0.0, -1.0], dtype=torch.float64, requires_grad=True)
    value = ap_loss(s, torch.tensor([0.7, 0.0, 0.0]))
    value.backward()
    assert value.item() == 0 and (s.grad == 0).all()


def test_alrp_localisation_quality_changes_the_update_not_the_value():
    # Two positives tied with a negative: a poorly localised positive ranked with the other
    # adds its localisation error to what the other hands to the negative.
    s = torch.zeros(3, dtype=torch.float64)
    good = torch.tensor([0.95, 0.95, 0.0], dtype=torch.float64)
    poor = torch.tensor([0.95, 0.55, 0.0], dtype=torch.float64)
    grads = []
    for labels in (good, poor):
        x = s.clone().requires_grad_(True)
        value = alrp_loss(x, labels)
        value.backward()
        grads.append(x.grad)
        # value: N_FP = 1/2, rank = 1 + 1/2 + 1/2 = 2 for each positive: 1/4
        torch.testing.assert_close(value, torch.tensor(0.25, dtype=torch.float64))
    assert grads[1][2] > grads[0][2] > 0


def test_rank_sort_perfect_ranking_and_sorting_is_zero():
    s = torch.tensor([5.0, 3.0, -2.0, -4.0], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0.9, 0.6, 0.0, 0.0], dtype=torch.float64)
    value = rank_sort_loss(s, labels)
    value.backward()
    assert value.item() == 0 and (s.grad == 0).all()
    # Swap the positives' logits: the better-localised one is now below; only a sorting error,
    # handed from it to the missorted positive above it.
    s = torch.tensor([3.0, 5.0, -2.0, -4.0], dtype=torch.float64, requires_grad=True)
    value = rank_sort_loss(s, labels)
    value.backward()
    # positive 0 (q = 0.9): current (0.1 + 0.4) / 2 = 0.25, target 0.1: error 0.15 (over 2)
    torch.testing.assert_close(value, torch.tensor(0.15 / 2, dtype=torch.float64))
    torch.testing.assert_close(s.grad, torch.tensor([-0.075, 0.075, 0, 0], dtype=torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_training_with_the_update_improves_the_ranking(name):
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 12, generator=g, dtype=torch.float64).requires_grad_(True)
    labels = torch.zeros(3, 12, dtype=torch.float64)
    labels[:, :3] = torch.tensor([0.9, 0.7, 0.55], dtype=torch.float64)
    optimiser = torch.optim.SGD([scores], lr=2.0)
    first = FUNCS[name](scores, labels).item()
    for _ in range(60):
        optimiser.zero_grad()
        FUNCS[name](scores, labels).backward()
        optimiser.step()
    assert FUNCS[name](scores, labels).item() < 0.2 * first


@pytest.mark.badinput("losses")
def test_bad_inputs_and_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match="APLoss: delta must be > 0, got 0"):
        APLoss(delta=0.0)
    with pytest.raises(ValueError, match=r"ALRPLoss: min_positive_iou must be in \[0, 1\)"):
        ALRPLoss(min_positive_iou=1.0)
    with pytest.raises(ValueError, match="RankSortLoss: delta must be > 0"):
        RankSortLoss(delta=-1.0)
    with pytest.raises(ValueError, match="rank_sort_loss: delta must be > 0"):
        rank_sort_loss(torch.zeros(3), torch.zeros(3), delta=0.0)
    for name in NAMES:
        with pytest.raises(ValueError, match=r"labels must be >= 0 \(IoU targets"):
            FUNCS[name](torch.zeros(3), torch.tensor([0.5, -0.5, 0.0]))
        # a negative label at a padded position is padding, not an error
        FUNCS[name](torch.zeros(3), torch.tensor([0.5, -0.5, 0.0]), torch.tensor([1, 0, 1]) > 0)
