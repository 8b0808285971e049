"""The cheap paths of the in-batch embedding losses agree with the general ones.

Each fast path (the sum-based finiteness pre-check, the unchecked similarity of candidates, the
in-batch masks, the select-free sanitising of a finite similarity, the masked log-sum-exp) is
compared in float64 with the general path or a loop reference, on its condition and just
outside it, values and gradients; bad input keeps its error.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as TF

import rankloss.functional as F
from rankloss._core.candidates import build_candidates
from rankloss._core.similarity import (
    SIMILARITIES,
    pairwise_similarity,
    similarity_of_checked_rows,
)
from rankloss._core.validation import check_embeddings
from rankloss.functional.embedding import _check_inputs, _masked_logsumexp
from rankloss.losses import ContrastiveLoss, InfoNCELoss, NTXentLoss, SupConLoss

from . import reference as R

TOL = {"rtol": 1e-12, "atol": 1e-12}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)


def _masks_from_sets(n: int, m: int, pos: set, neg: set) -> tuple[torch.Tensor, torch.Tensor]:
    positive = torch.zeros(n, m, dtype=torch.bool)
    negative = torch.zeros(n, m, dtype=torch.bool)
    for i, j in pos:
        positive[i, j] = True
    for i, j in neg:
        negative[i, j] = True
    return positive, negative


def _grads(fn, *tensors: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    value = fn(*leaves)
    value.sum().backward()
    return value.detach(), [leaf.grad for leaf in leaves]


# --------------------------------------------------------------------------------------------
# Finiteness pre-check


def test_check_embeddings_passes_finite_input_unchanged():
    x = _rand(5, 3)
    assert check_embeddings(x, "embeddings", "f") is x
    half = x.to(torch.float16)
    out = check_embeddings(half, "embeddings", "f")
    assert out.dtype == torch.float32 and torch.equal(out, half.float())


def test_check_embeddings_sum_overflow_falls_back_and_accepts():
    # Every entry is finite but the float32 sum overflows: the exact search finds nothing.
    x = torch.full((4, 3), 3e38)
    assert not math.isfinite(x.sum().item())
    assert check_embeddings(x, "embeddings", "f") is x
    # A float64 entry that overflows float32 is not at stake: float64 stays float64.
    y = torch.full((2, 2), 1e300, dtype=torch.float64)
    assert check_embeddings(y, "embeddings", "f") is y


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_check_embeddings_names_the_first_non_finite_entry(bad, dtype):
    x = torch.ones(4, 3, dtype=dtype)
    x[2, 1] = bad
    x[3, 0] = float("nan")  # a later bad entry: the first one is named
    shown = "nan" if math.isnan(bad) else ("inf" if bad > 0 else "-inf")
    message = f"f: keys holds {shown} at [2, 1] (embeddings must be finite)"
    with pytest.raises(ValueError) as info:
        check_embeddings(x, "keys", "f")
    assert str(info.value) == message


@pytest.mark.badinput("losses")
def test_in_batch_losses_refuse_nan_with_the_same_message():
    q, k = _rand(6, 4, seed=1).float(), _rand(6, 4, seed=2).float()
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    broken = q.clone()
    broken[1, 3] = float("nan")
    expected = "holds nan at [1, 3] (embeddings must be finite)"
    for module, call in (
        (InfoNCELoss(), lambda m: m(broken, keys=k)),
        (InfoNCELoss(), lambda m: m(q, keys=broken)),
        (SupConLoss(), lambda m: m(broken, labels)),
        (ContrastiveLoss(), lambda m: m(broken, labels)),
    ):
        with pytest.raises(ValueError) as info:
            call(module)
        assert str(info.value).startswith(type(module).__name__ + ": ")
        assert str(info.value).endswith(expected)


# --------------------------------------------------------------------------------------------
# Similarity of checked rows


@pytest.mark.parametrize("kind", SIMILARITIES)
@pytest.mark.parametrize("same", [True, False], ids=["self", "other"])
def test_similarity_of_checked_rows_matches_the_loop_reference(kind, same):
    x = _rand(5, 3, seed=3)
    y = x if same else _rand(4, 3, seed=4)
    expected = R.similarity(x, y, kind)
    out = similarity_of_checked_rows(x, y, kind)
    # neg_euclidean's diagonal is 0 exactly (squared distance clamped), so atol covers rounding
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-7)
    torch.testing.assert_close(pairwise_similarity(x, None if same else y, kind), out, **TOL)


@pytest.mark.parametrize("kind", SIMILARITIES)
def test_shared_rows_give_the_gradient_of_two_separate_copies(kind):
    # y is x computes the norms once; the gradient equals that of two independent copies.
    x = _rand(6, 4, seed=5)
    x[2] = 0.0  # a zero row: the eps clamp of cosine and of the distances
    weight = _rand(6, 6, seed=6)

    def shared(a):
        return (similarity_of_checked_rows(a, a, kind) * weight).sum()

    def separate(a):
        return (similarity_of_checked_rows(a, a.clone(), kind) * weight).sum()

    v1, (g1,) = _grads(shared, x)
    v2, (g2,) = _grads(separate, x)
    torch.testing.assert_close(v1, v2, **TOL)
    torch.testing.assert_close(g1, g2, **TOL)
    assert torch.isfinite(g1).all()


def test_cosine_equals_torch_normalize_values_and_gradients():
    q, k = _rand(7, 5, seed=7), _rand(9, 5, seed=8)
    q[3] = 1e-14  # below eps: the clamp (gradient 1/eps, as torch's normalize)
    weight = _rand(7, 9, seed=9)

    def ours(a, b):
        return (similarity_of_checked_rows(a, b, "cosine") * weight).sum()

    def torch_normalize(a, b):
        return ((TF.normalize(a, dim=1) @ TF.normalize(b, dim=1).T) * weight).sum()

    v1, g1 = _grads(ours, q, k)
    v2, g2 = _grads(torch_normalize, q, k)
    torch.testing.assert_close(v1, v2, **TOL)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Masks


def _general(candidates):
    return dataclasses.replace(candidates, in_batch=False)


@pytest.mark.parametrize("extra", ["none", "refs", "hard", "both"])
@pytest.mark.parametrize("block", [(0, None), (0, 3), (2, 7), (5, 11), (9, 30)])
def test_in_batch_masks_equal_the_label_comparison(extra, block):
    n, d = 6, 3
    q, k = _rand(n, d, seed=10), _rand(n, d, seed=11)
    refs = _rand(2, d, seed=12) if extra in ("refs", "both") else None
    hard = _rand(n, 2, d, seed=13) if extra in ("hard", "both") else None
    candidates = build_candidates(q, keys=k, ref_embeddings=refs, hard_negatives=hard)
    assert candidates.in_batch
    start, stop = block
    fast = candidates.masks(start, stop)
    slow = _general(candidates).masks(start, stop)
    for a, b in zip(fast, slow):
        assert a.dtype == torch.bool and torch.equal(a, b)
    # And the loop reference on the whole matrix.
    extras = [t for t in (refs, None if hard is None else hard.reshape(-1, d)) if t is not None]
    extra_rows = torch.cat(extras) if extras else None
    _, keys, pos, neg = R.candidates_pairs(q, k, extra_rows)
    positive, negative = _masks_from_sets(n, len(keys), pos, neg)
    full = candidates.masks()
    assert torch.equal(full[0], positive) and torch.equal(full[1], negative)


@pytest.mark.parametrize("form", ["labels", "labels_refs", "pairs_mask", "pairs_positive"])
@pytest.mark.parametrize("block", [(0, None), (1, 4), (3, 9)])
def test_diagonal_patch_of_blocks_matches_the_reference(form, block):
    n, d = 6, 3
    x, k = _rand(n, d, seed=14), _rand(n, d, seed=15)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    refs, ref_labels = _rand(3, d, seed=16), torch.tensor([2, 0, 5])
    if form == "labels":
        candidates = build_candidates(x, labels)
        _, _, pos, neg = R.candidates_labels(x, labels)
    elif form == "labels_refs":
        candidates = build_candidates(x, labels, ref_embeddings=refs, ref_labels=ref_labels)
        _, _, pos, neg = R.candidates_labels(x, labels, refs, ref_labels)
    else:
        mode = form.split("_")[1]
        candidates = build_candidates(x, labels, keys=k, false_negatives=mode)
        _, _, pos, neg = R.candidates_pairs(x, k, pair_labels=labels, mode=mode)
    assert not candidates.in_batch
    positive, negative = _masks_from_sets(n, candidates.num_keys, pos, neg)
    start, stop = block
    stop_ = candidates.num_keys if stop is None else min(stop, candidates.num_keys)
    got = candidates.masks(start, stop)
    assert torch.equal(got[0], positive[:, start:stop_])
    assert torch.equal(got[1], negative[:, start:stop_])


# --------------------------------------------------------------------------------------------
# Masked log-sum-exp and the select-free sanitising


def test_masked_logsumexp_matches_loops_and_leaks_nothing():
    x = _rand(5, 6, seed=17) * 4
    mask = torch.rand(5, 6, generator=_gen(18)) > 0.5
    mask[1] = False  # a row without entries
    mask[2] = True
    garbage = torch.where(mask, x, torch.tensor(float("nan"), dtype=torch.float64))
    garbage[0, ~mask[0]] = float("inf")
    leaf = garbage.clone().requires_grad_(True)
    lse, has_any = _masked_logsumexp(leaf, mask)
    values = lse.detach()
    for i in range(5):
        entries = [float(x[i, j]) for j in range(6) if mask[i, j]]
        assert bool(has_any[i]) == bool(entries)
        expected = R._lse(entries) if entries else 0.0
        assert abs(float(values[i]) - expected) < 1e-12
    lse.sum().backward()
    assert torch.isfinite(leaf.grad).all()
    assert (leaf.grad[~mask] == 0).all()
    # The gradient is the softmax over each row's entries.
    soft = torch.softmax(torch.where(mask, x, -math.inf), 1)
    soft = torch.where(mask.any(1, keepdim=True), soft, torch.zeros_like(soft))
    torch.testing.assert_close(leaf.grad, soft, **TOL)


def test_masked_logsumexp_without_candidates():
    lse, has_any = _masked_logsumexp(torch.zeros(3, 0), torch.zeros(3, 0, dtype=torch.bool))
    assert lse.shape == (3,) and has_any.dtype == torch.bool and not has_any.any()


def test_check_inputs_skips_the_select_only_for_a_finite_similarity():
    s = _rand(4, 5, seed=19)
    positive = torch.zeros(4, 5, dtype=torch.bool)
    positive[0, 1] = True
    negative = ~positive
    negative[2, 3] = False  # one entry that is no pair
    sim, _, _ = _check_inputs(s, positive, negative, "mean", "f", masked_later=True)
    assert sim is s  # finite: unchanged
    sim, _, _ = _check_inputs(s, positive, negative, "mean", "f")
    assert sim[2, 3] == 0  # the default always sanitises
    broken = s.clone()
    broken[2, 3] = float("nan")
    sim, _, _ = _check_inputs(broken, positive, negative, "mean", "f", masked_later=True)
    assert sim[2, 3] == 0 and torch.isfinite(sim).all()


LOSSES = {
    "info_nce": (F.info_nce_loss, {"temperature": 0.2}),
    "nt_xent": (F.nt_xent_loss, {"temperature": 0.3}),
    "supcon": (F.supcon_loss, {"temperature": 0.1}),
    "contrastive": (F.contrastive_loss, {"pos_margin": 0.8, "neg_margin": 0.1}),
    "contrastive_squared": (F.contrastive_loss, {"squared": True, "neg_margin": -0.2}),
}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_weights", [False, True])
def test_finite_and_sanitised_similarity_agree(name, reduction, with_weights):
    # The finite similarity skips the select; one NaN, inf or huge value at an entry that is
    # no pair takes the sanitising path. Values and gradients are the same, and the gradient
    # of an entry that is no pair is 0 on both paths.
    fn, hyper = LOSSES[name]
    n = 6
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    s = _rand(n, n, seed=20).tanh()
    positive = (labels[:, None] == labels[None, :]) & ~torch.eye(n, dtype=torch.bool)
    negative = labels[:, None] != labels[None, :]
    negative[0, 3] = False  # a masked false negative besides the diagonal
    weights = torch.rand(3 if name == "nt_xent" else n, generator=_gen(21), dtype=torch.float64)
    kw = dict(hyper, reduction=reduction, weights=weights if with_weights else None)

    def run(sim):
        return fn(sim, positive, negative, **kw)

    value, (grad,) = _grads(run, s)
    not_pair = ~(positive | negative)
    assert (grad[not_pair] == 0).all()
    for bad in (float("nan"), float("inf"), 1e308):
        broken = s.clone()
        broken[not_pair] = bad
        other, (other_grad,) = _grads(run, broken)
        torch.testing.assert_close(other, value, **TOL)
        torch.testing.assert_close(other_grad, grad, **TOL)
    if name in ("info_nce", "supcon", "contrastive"):
        ref = {
            "info_nce": lambda: R.info_nce(s, _set(positive), _set(negative), 0.2)[0],
            "supcon": lambda: R.supcon(s, _set(positive), _set(negative), 0.1),
            "contrastive": lambda: R.contrastive(s, _set(positive), _set(negative), 0.8, 0.1),
        }[name]
        if reduction == "mean" and not with_weights:
            assert abs(float(value) - ref()) < 1e-12


def _set(mask: torch.Tensor) -> set:
    return {(int(i), int(j)) for i, j in mask.nonzero()}


# --------------------------------------------------------------------------------------------
# Modules: the in-batch calls against the general functional path


def _general_value(name, similarity, x, keys, labels, hyper, **extra):
    """The loss of the functional form on pairwise_similarity and loop-built masks."""
    n = len(x)
    if keys is None:
        _, cand, pos, neg = R.candidates_labels(
            x, labels, extra.get("refs"), extra.get("ref_labels")
        )
    else:
        hard = extra.get("hard")
        extras = [t for t in (extra.get("refs"), hard) if t is not None]
        _, cand, pos, neg = R.candidates_pairs(
            x,
            keys,
            torch.cat(extras) if extras else None,
            pair_labels=labels,
            mode=extra.get("mode", "positive"),
        )
        if labels is not None and extra.get("mode") == "mask":
            pos = {(i, j) for (i, j) in pos if i == j}
    positive, negative = _masks_from_sets(n, len(cand), pos, neg)
    sim = pairwise_similarity(x, cand, similarity)
    fn = {"info_nce": F.info_nce_loss, "supcon": F.supcon_loss, "contrastive": F.contrastive_loss}
    return fn[name](
        sim,
        positive,
        negative,
        weights=extra.get("weights"),
        reduction=extra.get("reduction", "mean"),
        **hyper,
    )


def _both(module_call, general_call, *tensors):
    v1, g1 = _grads(module_call, *tensors)
    v2, g2 = _grads(general_call, *tensors)
    torch.testing.assert_close(v1, v2, **TOL)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **TOL)


INFO_NCE_CASES = {
    "in_batch": {},
    "weights": {"weights": True},
    "sum": {"reduction": "sum"},
    "none": {"reduction": "none"},
    "hard_negatives": {"hard": True},
    "refs": {"refs": True},
    "labels_mask": {"labels": [0, 1, 0, 2, 3, 1], "mode": "mask"},
    "labels_positive": {"labels": [0, 1, 0, 2, 3, 1], "mode": "positive"},
    "one_class": {"labels": [4] * 6, "mode": "positive"},
}


@pytest.mark.parametrize("similarity", ["cosine", "dot", "neg_euclidean"])
@pytest.mark.parametrize("case", list(INFO_NCE_CASES))
def test_info_nce_module_equals_the_general_path(case, similarity):
    opts = INFO_NCE_CASES[case]
    n, d = 6, 4
    q, k = _rand(n, d, seed=22), _rand(n, d, seed=23)
    hard = _rand(n, d, seed=24) if opts.get("hard") else None
    refs = _rand(3, d, seed=25) if opts.get("refs") else None
    labels = torch.tensor(opts["labels"]) if "labels" in opts else None
    weights = (
        torch.rand(n, generator=_gen(26), dtype=torch.float64) if opts.get("weights") else None
    )
    reduction = opts.get("reduction", "mean")
    mode = opts.get("mode", "mask")
    module = InfoNCELoss(
        similarity=similarity, temperature=0.3, false_negatives=mode, reduction=reduction
    )

    def module_call(a, b):
        return module(a, labels, keys=b, hard_negatives=hard, ref_embeddings=refs, weights=weights)

    def general_call(a, b):
        return _general_value(
            "info_nce",
            similarity,
            a,
            b,
            labels,
            {"temperature": 0.3},
            hard=hard,
            refs=refs,
            weights=weights,
            reduction=reduction,
            mode=mode,
        )

    _both(module_call, general_call, q, k)


def test_learnable_temperature_gets_the_same_gradient_on_the_in_batch_path():
    q, k = _rand(5, 3, seed=27), _rand(5, 3, seed=28)
    module = InfoNCELoss(learnable_temperature=True, temperature=0.2).double()
    value = module(q, keys=k)
    value.backward()
    grad = module.log_temperature.grad.clone()
    module.log_temperature.grad = None
    positive = torch.eye(5, dtype=torch.bool)
    general = F.info_nce_loss(
        pairwise_similarity(q, k), positive, ~positive, temperature=module.log_temperature.exp()
    )
    general.backward()
    torch.testing.assert_close(value.detach(), general.detach(), **TOL)
    torch.testing.assert_close(grad, module.log_temperature.grad, **TOL)


@pytest.mark.parametrize("name", ["supcon", "contrastive"])
@pytest.mark.parametrize("similarity", ["cosine", "dot", "neg_sq_euclidean"])
@pytest.mark.parametrize("case", ["labels", "weights", "none", "one_class", "singletons", "refs"])
def test_label_losses_module_equals_the_general_path(name, similarity, case):
    n, d = 7, 4
    x = _rand(n, d, seed=29)
    labels = {
        "one_class": torch.zeros(n, dtype=torch.long),
        "singletons": torch.arange(n),
    }.get(case, torch.tensor([0, 1, 0, 2, 1, 0, 3]))
    weights = torch.rand(n, generator=_gen(30), dtype=torch.float64) if case == "weights" else None
    reduction = "none" if case == "none" else "mean"
    refs = _rand(3, d, seed=31) if case == "refs" else None
    ref_labels = torch.tensor([1, 3, 9]) if case == "refs" else None
    if name == "supcon":
        module = SupConLoss(similarity=similarity, temperature=0.2, reduction=reduction)
        hyper = {"temperature": 0.2}
    else:
        module = ContrastiveLoss(
            similarity=similarity, pos_margin=0.7, neg_margin=0.2, reduction=reduction
        )
        hyper = {"pos_margin": 0.7, "neg_margin": 0.2}

    def module_call(a):
        return module(a, labels, weights=weights, ref_embeddings=refs, ref_labels=ref_labels)

    def general_call(a):
        return _general_value(
            name,
            similarity,
            a,
            None,
            labels,
            hyper,
            refs=refs,
            ref_labels=ref_labels,
            weights=weights,
            reduction=reduction,
        )

    _both(module_call, general_call, x)


def test_nt_xent_module_equals_the_functional_path():
    n, d = 5, 3
    u, v = _rand(n, d, seed=32), _rand(n, d, seed=33)
    module = NTXentLoss(temperature=0.4)

    def module_call(a, b):
        return module(a, keys=b)

    def general_call(a, b):
        w = torch.cat([a, b])
        ids = torch.cat([torch.arange(n), torch.arange(n)])
        _, cand, pos, neg = R.candidates_labels(w, ids)
        positive, negative = _masks_from_sets(2 * n, 2 * n, pos, neg)
        return F.nt_xent_loss(pairwise_similarity(w, w), positive, negative, temperature=0.4)

    _both(module_call, general_call, u, v)


@pytest.mark.parametrize("case", ["mixed_dtype", "one_row", "symmetric", "half"])
def test_info_nce_plain_call_just_outside_the_shortcut(case):
    n, d = 1 if case == "one_row" else 5, 3
    q, k = _rand(n, d, seed=34), _rand(n, d, seed=35)
    if case == "mixed_dtype":
        q = q.float()  # promoted to float64 with the keys, as build_candidates does
    if case == "half":
        q, k = q.to(torch.float16), k.to(torch.float16)
    module = InfoNCELoss(temperature=0.5, symmetric=case == "symmetric")
    value = module(q, keys=k)
    dtype = torch.float32 if case == "half" else torch.float64
    qq, kk = q.to(dtype), k.to(dtype)
    positive = torch.eye(n, dtype=torch.bool)
    sim = pairwise_similarity(qq, kk)
    general = F.info_nce_loss(sim, positive, ~positive, temperature=0.5)
    if case == "symmetric":
        other = F.info_nce_loss(sim.T, positive, ~positive, temperature=0.5, reduction="none")
        forward = F.info_nce_loss(sim, positive, ~positive, temperature=0.5, reduction="none")
        general = ((forward + other) / 2).mean()
    assert value.dtype == dtype
    torch.testing.assert_close(value, general, **TOL)


@pytest.mark.badinput("losses")
def test_info_nce_plain_call_keeps_the_shape_errors():
    q, k = torch.randn(5, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"InfoNCELoss: keys has shape \[4, 3\] but embeddings"):
        InfoNCELoss()(q, keys=k)
    with pytest.raises(ValueError, match=r"InfoNCELoss: embeddings must be floating point"):
        InfoNCELoss()(torch.ones(5, 3, dtype=torch.long), keys=torch.ones(5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"InfoNCELoss: embeddings must have shape \[N, d\]"):
        InfoNCELoss()(torch.randn(5), keys=torch.randn(5))


# --------------------------------------------------------------------------------------------
# The exact softplus (a custom autograd function)


def test_softplus_exact_values_and_gradients_match_the_formula():
    from rankloss.functional._chunked_contrastive import softplus_exact

    x = torch.tensor([-800.0, -40.0, -20.5, -1.0, 0.0, 1e-9, 0.7, 19.9, 20.1, 45.0, 800.0])
    x = x.to(torch.float64)
    want = [max(v, 0.0) + math.log1p(math.exp(-abs(v))) for v in x.tolist()]
    slope = [1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0 for v in x.tolist()]
    leaf = x.clone().requires_grad_()
    got = softplus_exact(leaf)
    got.sum().backward()
    torch.testing.assert_close(got.detach(), torch.tensor(want, dtype=torch.float64), **TOL)
    torch.testing.assert_close(leaf.grad, torch.tensor(slope, dtype=torch.float64), **TOL)
    # above 20, unlike F.softplus, the gradient is sigma(x), not 1
    assert leaf.grad[8].item() < 1.0
    # infinities and NaN pass through as the formula gives them
    edge = softplus_exact(torch.tensor([-math.inf, math.inf, math.nan]))
    assert edge[0].item() == 0.0 and edge[1].item() == math.inf and math.isnan(edge[2].item())


def test_softplus_exact_second_derivative():
    from rankloss.functional._chunked_contrastive import softplus_exact

    x = torch.randn(6, dtype=torch.float64, generator=_gen(5), requires_grad=True)
    assert torch.autograd.gradcheck(softplus_exact, (x,))
    assert torch.autograd.gradgradcheck(softplus_exact, (x,))
