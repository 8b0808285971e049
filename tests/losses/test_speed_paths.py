"""The fast paths: linear-space Sinkhorn in NeuralNDCG, sorted all-triplets hinge, and the
mask-free validation path, against direct float64 references."""

from __future__ import annotations

import itertools

import pytest
import torch

import rankloss.functional as F
from rankloss._core.ranking import normalised_gains


def _neural_ndcg_reference(scores, labels, mask, temperature, iterations, k, gain):
    """Log-space Sinkhorn, one list at a time, over the list's real items only."""
    values, oks = [], []
    for s, y, m in zip(scores, labels, mask, strict=True):
        s_real = s[m]
        n = s_real.numel()
        gains_full, ok = normalised_gains(y.unsqueeze(0), m.unsqueeze(0), gain, k)
        gains_real = gains_full[0][m]
        if n == 0:
            values.append(s.sum() * 0.0)
            oks.append(False)
            continue
        diff = (s_real.unsqueeze(1) - s_real.unsqueeze(0)).abs().sum(1)
        t = torch.arange(1, n + 1, dtype=s.dtype)
        logits = (n + 1 - 2 * t).unsqueeze(1) * s_real.unsqueeze(0) - diff.unsqueeze(0)
        log_p = torch.log_softmax(logits / temperature, dim=1)
        for _ in range(iterations):
            log_p = log_p - torch.logsumexp(log_p, dim=0, keepdim=True)
            log_p = log_p - torch.logsumexp(log_p, dim=1, keepdim=True)
        expected = log_p.exp() @ gains_real
        top = n if k is None else min(k, n)
        discounts = [torch.log2(torch.tensor(r + 2.0, dtype=s.dtype)) for r in range(top)]
        dcg = sum(expected[r] / discounts[r] for r in range(top))
        values.append(1.0 - dcg)
        oks.append(bool(ok[0]))
    kept = [v for v, o in zip(values, oks, strict=True) if o]
    return torch.stack(kept).mean() if kept else scores.sum() * 0.0


@pytest.mark.parametrize(
    ("temperature", "iterations", "k", "gain"),
    [(1.0, 50, None, "exp2"), (0.05, 50, 3, "linear"), (5.0, 7, None, "exp2"), (1.0, 0, 4, "exp2")],
)
def test_neural_ndcg_matches_log_space_reference(temperature, iterations, k, gain):
    g = torch.Generator().manual_seed(iterations)
    scores = torch.randn(4, 9, generator=g, dtype=torch.float64) * 2
    scores[0, :3] = 0.5  # ties
    labels = torch.randint(0, 4, (4, 9), generator=g).double()
    mask = torch.rand(4, 9, generator=g) > 0.3
    mask[:, 0] = True
    mask[2] = False  # an empty list
    garbage = torch.where(mask, scores, torch.full_like(scores, float("nan")))
    a = garbage.clone().requires_grad_()
    b = scores.clone().requires_grad_()
    ours = F.neural_ndcg_loss(
        a, labels, mask, temperature=temperature, sinkhorn_iterations=iterations, k=k, gain=gain
    )
    ref = _neural_ndcg_reference(b, labels, mask, temperature, iterations, k, gain)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(a.grad, torch.where(mask, b.grad, 0.0), rtol=0, atol=1e-10)


def test_neural_ndcg_gradcheck_through_custom_backward():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (2, 5), generator=g).double()
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    assert torch.autograd.gradcheck(
        lambda s: F.neural_ndcg_loss(s, labels, mask, sinkhorn_iterations=5), (scores,)
    )


def _triplet_reference(sim, positive, negative, value):
    per, valid = [], []
    for a in range(sim.shape[0]):
        terms = [
            value(sim[a, p], sim[a, q])
            for p, q in itertools.product(range(sim.shape[1]), repeat=2)
            if positive[a, p] and negative[a, q]
        ]
        per.append(torch.stack(terms).mean() if terms else sim.new_zeros(()))
        valid.append(bool(terms))
    kept = [v for v, ok in zip(per, valid, strict=True) if ok]
    return torch.stack(kept).mean() if kept else sim.sum() * 0.0


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 1, 2, 3], [0] * 5, [0, 1, 2, 3], [0, 0, 0, 1]])
@pytest.mark.parametrize("rounded", [False, True])
def test_sorted_all_triplets_hinge_matches_loop_reference(labels, rounded):
    labels_t = torch.tensor(labels)
    n = len(labels)
    g = torch.Generator().manual_seed(n)
    sim = torch.randn(n, n, generator=g, dtype=torch.float64)
    if rounded:  # ties at the hinge's kink: s_an == s_ap - margin
        sim = (sim * 5).round() / 5
    positive = (labels_t.unsqueeze(1) == labels_t.unsqueeze(0)) & ~torch.eye(n, dtype=torch.bool)
    negative = labels_t.unsqueeze(1) != labels_t.unsqueeze(0)
    for fn, value in (
        (
            lambda s: F.triplet_loss(s, positive, negative, margin=0.2),
            lambda ap, an: torch.relu(an - ap + 0.2),
        ),
        (
            lambda s: F.margin_ranking_loss(s, positive, negative, margin=0.2),
            lambda ap, an: torch.relu(0.2 - ap + an),
        ),
    ):
        a = sim.clone().requires_grad_()
        b = sim.clone().requires_grad_()
        ours, ref = fn(a), _triplet_reference(b, positive, negative, value)
        ours.backward()
        ref.backward()
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-10)
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-10)


def test_soft_margin_triplets_in_blocks_match_reference(monkeypatch):
    import rankloss.functional.embedding as embedding

    monkeypatch.setattr(embedding, "_TRIPLET_BLOCK_ELEMENTS", 40)  # several anchor blocks
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    sim = torch.randn(6, 6, dtype=torch.float64)
    positive = (labels.unsqueeze(1) == labels.unsqueeze(0)) & ~torch.eye(6, dtype=torch.bool)
    negative = labels.unsqueeze(1) != labels.unsqueeze(0)
    ours = F.triplet_loss(sim, positive, negative, soft_margin=True)
    ref = _triplet_reference(
        sim, positive, negative, lambda ap, an: torch.nn.functional.softplus(an - ap)
    )
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_listnet_without_mask_equals_all_true_mask():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(3, 5, generator=g, dtype=torch.float64)
    labels = torch.rand(3, 5, generator=g, dtype=torch.float64)
    weights = torch.rand(3, 5, generator=g, dtype=torch.float64)
    full = torch.ones(3, 5, dtype=torch.bool)
    for reduction in ("mean", "none"):
        torch.testing.assert_close(
            F.listnet_loss(scores, labels, weights=weights, reduction=reduction),
            F.listnet_loss(scores, labels, full, weights=weights, reduction=reduction),
            rtol=0,
            atol=1e-14,
        )
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        F.listnet_loss(scores, labels, reduction="avg")  # type: ignore[arg-type]


def test_written_out_softmax_cross_entropy_gradient_for_any_target():
    # The losses pass a target that sums to 1 (ListNet's softmax, softmax-CE's normalised
    # labels), which would hide a gradient missing its sum(p) factor: here it is 0.3 to 4.
    from rankloss.functional.listwise import _SoftmaxCrossEntropy

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.rand(3, 6, generator=g, dtype=torch.float64) * torch.tensor(
        [[0.1], [0.3], [1.0]]
    )
    assert torch.autograd.gradcheck(lambda s: _SoftmaxCrossEntropy.apply(s, target), (scores,))
    expected = -(target * torch.log_softmax(scores, -1)).sum(-1)
    torch.testing.assert_close(_SoftmaxCrossEntropy.apply(scores, target), expected)


@pytest.mark.parametrize("loss", ["listnet_loss", "softmax_ce_loss"])
def test_written_out_cross_entropy_path_equals_the_autograd_path(loss, monkeypatch):
    import rankloss.functional.listwise as listwise

    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 9, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (4, 9), generator=g).to(torch.float64)
    labels[1] = 0.0  # softmax-CE: a list with nothing to learn from
    results = []
    for above in (10**9, 0):
        monkeypatch.setattr(listwise, "_WRITTEN_OUT_ABOVE", above)
        for reduction in ("mean", "none"):
            s = scores.clone().requires_grad_()
            out = getattr(F, loss)(s, labels, reduction=reduction)
            (out * torch.arange(1, out.numel() + 1).reshape(out.shape)).sum().backward()
            results.append((out.detach(), s.grad))
    for (v0, g0), (v1, g1) in zip(results[:2], results[2:], strict=True):
        torch.testing.assert_close(v1, v0, rtol=0, atol=1e-12)
        torch.testing.assert_close(g1, g0, rtol=0, atol=1e-12)
