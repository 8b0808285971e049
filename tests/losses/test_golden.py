"""rankloss against golden values of two peer libraries, rax and allRank.

``tests/losses/golden/rax.json`` and ``allrank.json`` hold fixed float64 inputs and the values
the peers computed on them; ``tests/losses/golden/make_golden.py`` made them (its docstring
says how, with which versions). This test only reads the JSON: it needs neither JAX nor
allRank. Where a peer's convention differs from rankloss's (a constant factor, a log base,
how padding or an all-zero list is counted, a sign, a reduction), the difference is applied
explicitly below, next to a comment that names it. ``docs/losses.md`` lists them in a table.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import torch

import rankloss.functional as F

pytestmark = pytest.mark.peers

GOLDEN = Path(__file__).parent / "golden"
RAX = json.loads((GOLDEN / "rax.json").read_text())
ALLRANK = json.loads((GOLDEN / "allrank.json").read_text())
LN2 = math.log(2.0)

# Both sides compute in float64 with the same formula.
EXACT = {"rtol": 1e-10, "atol": 1e-12}
# allRank computes part of the loss in float32: the rank discounts log2(1 + r) of
# approxNDCGLoss and lambdaLoss (``pos_idxs.float()``), and the targets of rankNet's
# BCEWithLogitsLoss (its value comes back in float32).
FLOAT32 = {"rtol": 1e-6, "atol": 1e-8}
# allRank's neuralNDCG runs only on float32 inputs, and its Sinkhorn scaling may stop early at
# a tolerance of 1e-6 (rankloss always runs ``sinkhorn_iterations`` rounds).
NEURAL = {"rtol": 0.0, "atol": 1e-6}


def _case(data: dict, name: str) -> dict:
    for case in data["cases"]:
        if case["name"] == name:
            return case
    raise KeyError(f"no golden case {name!r} in {data['peer']}")


def _inputs(data: dict, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch = data["inputs"][name]
    scores = torch.tensor(batch["scores"], dtype=torch.float64)
    labels = torch.tensor(batch["labels"], dtype=torch.float64)
    mask = torch.tensor(batch["mask"], dtype=torch.bool)
    return scores, labels, mask


def _values(case: dict) -> torch.Tensor:
    return torch.tensor(case["values"], dtype=torch.float64)


def _rax_pairs(case: dict) -> torch.Tensor:
    """rax's per-pair values, ``[B, n * n]`` with pair (i, j) at i * n + j, as ``[B, n, n]``."""
    flat = _values(case)
    n = math.isqrt(flat.shape[-1])
    return flat.reshape(*flat.shape[:-1], n, n)


def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def _per_list(case: dict) -> torch.Tensor:
    """allRank's per-list values (one call per list); NaN where allRank gave NaN (``null``)."""
    return torch.tensor(
        [math.nan if v is None else v for v in case["per_list"]], dtype=torch.float64
    )


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: dict, what: str) -> None:
    torch.testing.assert_close(
        actual.to(torch.float64), expected.to(torch.float64), **tol, msg=lambda m: f"{what}: {m}"
    )


def _pair_counts(labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Number of pairs of real items with y_i > y_j in each list (both peers' pair rule)."""
    both = mask.unsqueeze(-1) & mask.unsqueeze(-2)
    return (both & (labels.unsqueeze(-1) > labels.unsqueeze(-2))).sum((-1, -2))


def _ideal_dcg_positive(labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((labels > 0) & mask).any(-1)


def _temperature_kw(fn, value: float) -> dict:
    """rankloss names the label temperature ``label_temperature`` (``temperature`` before)."""
    params = inspect.signature(fn).parameters
    return {"label_temperature" if "label_temperature" in params else "temperature": value}


def _needs_weighting(weighting: str) -> None:
    """Skip a comparison while ``lambdaloss_loss`` does not yet accept ``weighting``."""
    scores = torch.zeros(1, 2, dtype=torch.float64)
    labels = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    try:
        F.lambdaloss_loss(scores, labels, weighting=weighting)
    except ValueError:
        pytest.skip(f"lambdaloss_loss does not accept weighting={weighting!r} yet")


# ------------------------------------------------------------------------------------ rax
# rax with reduce_fn=None returns one value per item ([B, n]), per list ([B]) or per pair
# ([B, n * n]), 0 where masked; rankloss's per-list convention is applied to those here.


@pytest.mark.parametrize(
    ("name", "function", "label_scale"),
    [
        ("mse", F.mse_loss, 1.0),
        ("sigmoid_binary", F.sigmoid_ce_loss, 1.0),
        ("sigmoid_soft", F.sigmoid_ce_loss, 0.25),
    ],
)
def test_rax_pointwise(name, function, label_scale):
    case = _case(RAX, name)
    scores, labels, mask = _inputs(RAX, case["inputs"])
    labels = labels * label_scale  # sigmoid_soft: rax was given labels / 4 (soft targets)
    per_item = _values(case)
    count = mask.sum(-1).to(torch.float64)
    # rankloss's per-list value is the mean over the list's real items.
    expected = per_item.sum(-1) / count
    actual = function(scores, labels, mask, reduction="none")
    _assert_close(actual, expected, EXACT, f"rax {name} per list")
    # rax's default jnp.mean averages over every real item of the batch (longer lists weigh
    # more); rankloss's "mean" averages the per-list values.
    pooled = (actual * count).sum() / count.sum()
    _assert_close(pooled, _scalar(case["default_reduced"]), EXACT, f"rax {name} mean")


def test_rax_softmax_ce():
    case = _case(RAX, "softmax_ce")
    scores, labels, mask = _inputs(RAX, case["inputs"])
    rax_values = _values(case)
    actual = F.softmax_ce_loss(scores, labels, mask, reduction="none")
    positive = (labels * mask).sum(-1) > 0
    # Same target labels / sum(labels) for a list with a positive label sum.
    _assert_close(actual[positive], rax_values[positive], EXACT, "rax softmax_loss per list")
    # A list whose labels are all 0: rax.utils.normalize_probabilities makes the target
    # uniform, so rax gives the cross-entropy to a uniform target, which is rankloss's ListNet
    # on that list; rankloss's softmax_ce_loss leaves the list out (0, not in the mean).
    assert (~positive).any()
    uniform = F.listnet_loss(scores, labels, mask, reduction="none")
    _assert_close(uniform[~positive], rax_values[~positive], EXACT, "rax all-zero list")
    assert torch.all(actual[~positive] == 0)
    # rax's mean counts the all-zero list, rankloss's mean does not.
    _assert_close(rax_values.mean(), _scalar(case["default_reduced"]), EXACT, "rax mean")
    _assert_close(
        F.softmax_ce_loss(scores, labels, mask),
        rax_values[positive].mean(),
        EXACT,
        "rankloss mean over lists with a positive label sum",
    )


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_rax_listnet(temperature):
    # rax has no ListNet function: softmax_loss with label_fn = softmax(labels / T) is it.
    # T divides the labels on both sides.
    case = _case(RAX, f"listnet_T{temperature:g}")
    scores, labels, mask = _inputs(RAX, case["inputs"])
    kw = _temperature_kw(F.listnet_loss, temperature)
    actual = F.listnet_loss(scores, labels, mask, reduction="none", **kw)
    _assert_close(actual, _values(case), EXACT, "rax softmax_loss(label_fn=softmax)")
    _assert_close(
        F.listnet_loss(scores, labels, mask, **kw),
        _scalar(case["default_reduced"]),
        EXACT,
        "mean over lists",
    )


@pytest.mark.parametrize("inputs", ["graded", "holes"])
def test_rax_listmle(inputs):
    # Both break ties in the labels in input order (rax without a PRNG key).
    case = _case(RAX, f"listmle_{inputs}")
    scores, labels, mask = _inputs(RAX, inputs)
    actual = F.listmle_loss(scores, labels, mask, reduction="none")
    _assert_close(actual, _values(case), EXACT, "rax listmle_loss")


@pytest.mark.parametrize(
    ("name", "alpha", "gain"),
    [
        ("approx_ndcg_alpha10", 10.0, "exp2"),
        ("approx_ndcg_alpha1", 1.0, "exp2"),
        ("approx_ndcg_linear", 10.0, "linear"),
    ],
)
def test_rax_approx_ndcg(name, alpha, gain):
    # rax.approx_t12n(rax.ndcg_metric, temperature=T) uses sigmoid(x / T): T = 1 / alpha.
    case = _case(RAX, name)
    scores, labels, mask = _inputs(RAX, case["inputs"])
    actual = F.approx_ndcg_loss(scores, labels, mask, reduction="none", alpha=alpha, gain=gain)
    valid = _ideal_dcg_positive(labels, mask)
    # rax's loss is -approxNDCG, rankloss's is 1 - approxNDCG.
    _assert_close(actual[valid], 1.0 + _values(case)[valid], EXACT, f"rax {name}")
    # An all-zero list: rax gives -0 (ideal DCG 0 replaced by 1); rankloss leaves it out.
    assert (~valid).any() and torch.all(_values(case)[~valid] == 0)
    assert torch.all(actual[~valid] == 0)


@pytest.mark.parametrize("inputs", ["graded", "holes"])
@pytest.mark.parametrize(
    ("peer", "function"),
    [("pairwise_logistic", F.ranknet_loss), ("pairwise_hinge", F.pairwise_hinge_loss)],
)
def test_rax_pairwise(peer, function, inputs):
    # rax.pairwise_logistic_loss is RankNet with sigma = 1 (natural log);
    # rax.pairwise_hinge_loss has margin 1. Both use the pairs y_i > y_j of real items.
    case = _case(RAX, f"{peer}_{inputs}")
    scores, labels, mask = _inputs(RAX, inputs)
    per_pair = _rax_pairs(case)
    count = _pair_counts(labels, mask)
    # rankloss's per-list value is the mean over the list's pairs.
    expected = per_pair.sum((-1, -2)) / count.clamp(min=1)
    actual = function(scores, labels, mask, reduction="none")
    _assert_close(actual, expected, EXACT, f"rax {peer} per list")
    # rax's default jnp.mean averages over every pair of the batch (lists with more pairs weigh
    # more); rankloss's "mean" averages the per-list means over lists with a pair.
    pooled = (actual * count).sum() / count.sum()
    _assert_close(pooled, _scalar(case["default_reduced"]), EXACT, f"rax {peer} mean")


def _rax_lambda_per_list(case: dict, scale_by_width: bool) -> torch.Tensor:
    per_pair = _rax_pairs(case)
    per_list = per_pair.sum((-1, -2))
    if scale_by_width:
        # rax.dcg_lambdaweight and rax.dcg2_lambdaweight multiply every weight by the list
        # size (the padded width n, "to avoid too small values"); rankloss does not.
        per_list = per_list / per_pair.shape[-1]
    return per_list


@pytest.mark.parametrize(
    ("name", "k"),
    [("logistic_dcg_graded", None), ("logistic_dcg_holes", None), ("logistic_dcg_top3", 3)],
)
def test_rax_lambdarank(name, k):
    # pairwise_logistic_loss with dcg_lambdaweight(normalize=True): LambdaRank. rankloss's
    # per-list value is the sum over pairs (no division by the number of pairs). With topn,
    # rax zeroes the discount beyond topn and keeps every pair; a pair with both items beyond
    # topn then has weight 0, which is rankloss's top-k rule exactly.
    case = _case(RAX, name)
    scores, labels, mask = _inputs(RAX, case["inputs"])
    actual = F.lambdarank_loss(scores, labels, mask, reduction="none", k=k)
    expected = _rax_lambda_per_list(case, scale_by_width=True)
    _assert_close(actual, expected, EXACT, f"rax {name}")


@pytest.mark.parametrize(
    ("name", "weighting", "scale_by_width"),
    [
        ("logistic_dcg2", "ndcg_loss2", True),
        ("logistic_dcg_plus_10_dcg2", "ndcg_loss2pp", True),
        ("logistic_labeldiff_graded", "label_diff", False),
        ("logistic_labeldiff_holes", "label_diff", False),
    ],
)
def test_rax_lambdaloss(name, weighting, scale_by_width):
    # dcg2_lambdaweight is NDCG-Loss2's weight; NDCG-Loss2++ (mu = 10) is dcg_lambdaweight +
    # 10 * dcg2_lambdaweight; labeldiff_lambdaweight is ARP's |y_i - y_j| (no width factor).
    # rax's logistic term is the natural log, as rankloss's lambdaloss_loss.
    _needs_weighting(weighting)
    case = _case(RAX, name)
    scores, labels, mask = _inputs(RAX, case["inputs"])
    actual = F.lambdaloss_loss(scores, labels, mask, reduction="none", weighting=weighting, mu=10.0)
    expected = _rax_lambda_per_list(case, scale_by_width)
    _assert_close(actual, expected, EXACT, f"rax {name}")


def test_rax_dcg2_topn_rule_differs():
    # Not compared: with topn, rax.dcg2_lambdaweight keeps every pair and multiplies the weight
    # of a pair whose lower item is ranked beyond topn by 1 / (1 - discount(max rank))
    # (Jagerman et al. 2022), while rankloss keeps only pairs touching the top k. Recorded so
    # the golden file documents the difference; this checks it is real on these inputs.
    case = _case(RAX, "logistic_dcg2_top3")
    scores, labels, mask = _inputs(RAX, case["inputs"])
    actual = F.lambdaloss_loss(scores, labels, mask, reduction="none", weighting="ndcg_loss2", k=3)
    expected = _rax_lambda_per_list(case, scale_by_width=True)
    assert not torch.allclose(actual, expected, **EXACT)


# -------------------------------------------------------------------------------- allRank
# allRank marks padding with the label -1 (PADDED_Y_VALUE) instead of a mask: the golden
# inputs hold a mask, and make_golden.py passed -1 at masked positions. allRank reduces over
# the batch; "per_list" holds one allRank call per list (y_pred[b : b + 1]), "batch" one call on
# the whole batch.


@pytest.mark.parametrize("inputs", ["graded", "holes"])
def test_allrank_ranknet(inputs):
    case = _case(ALLRANK, f"rankNet_{inputs}")
    scores, labels, mask = _inputs(ALLRANK, inputs)
    peer = _per_list(case)
    count = _pair_counts(labels, mask)
    actual = F.ranknet_loss(scores, labels, mask, reduction="none")
    has_pairs = count > 0
    # BCEWithLogitsLoss(mean) over the pairs y_i > y_j is RankNet's mean over pairs.
    _assert_close(actual[has_pairs], peer[has_pairs], FLOAT32, "allRank rankNet per list")
    # A list without a pair: allRank gives NaN (a mean over no pairs); rankloss 0, left out.
    assert torch.all(torch.isnan(peer[~has_pairs])) and torch.all(actual[~has_pairs] == 0)
    # On a batch allRank averages over all pairs of the batch, not per list.
    pooled = (actual * count).sum() / count.sum()
    _assert_close(pooled, _scalar(case["batch"]), FLOAT32, "allRank rankNet batch")


@pytest.mark.parametrize("inputs", ["graded", "holes"])
def test_allrank_binary_listnet(inputs):
    # binary_listNet's target is labels / sum(labels): rankloss's softmax_ce_loss.
    case = _case(ALLRANK, f"binary_listNet_{inputs}")
    scores, labels, mask = _inputs(ALLRANK, inputs)
    actual = F.softmax_ce_loss(scores, labels, mask, reduction="none")
    _assert_close(actual, _per_list(case), EXACT, "allRank binary_listNet per list")
    # An all-zero list gives 0 on both sides, but allRank's batch mean counts it and rankloss's
    # "mean" leaves it out: allRank's batch value is rankloss's sum over all lists / B.
    batch_size = scores.shape[0]
    total = F.softmax_ce_loss(scores, labels, mask, reduction="sum")
    _assert_close(total / batch_size, _scalar(case["batch"]), EXACT, "allRank batch")


@pytest.mark.parametrize("inputs", ["graded", "holes"])
def test_allrank_listnet(inputs):
    # listNet's target is softmax(labels): rankloss's listnet_loss with temperature 1 (allRank
    # has no temperature).
    case = _case(ALLRANK, f"listNet_{inputs}")
    scores, labels, mask = _inputs(ALLRANK, inputs)
    actual = F.listnet_loss(scores, labels, mask, reduction="none")
    _assert_close(actual, _per_list(case), EXACT, "allRank listNet per list")
    mean = F.listnet_loss(scores, labels, mask)
    _assert_close(mean, _scalar(case["batch"]), EXACT, "allRank listNet batch")


@pytest.mark.parametrize(
    ("name", "alpha"),
    [
        ("approxNDCGLoss_graded", 10.0),
        ("approxNDCGLoss_holes", 10.0),
        ("approxNDCGLoss_alpha1", 1.0),
    ],
)
def test_allrank_approx_ndcg(name, alpha):
    case = _case(ALLRANK, name)
    scores, labels, mask = _inputs(ALLRANK, case["inputs"])
    peer = _per_list(case)
    actual = F.approx_ndcg_loss(scores, labels, mask, reduction="none", alpha=alpha)
    valid = _ideal_dcg_positive(labels, mask)
    # allRank's loss is -approxNDCG; rankloss's is 1 - approxNDCG.
    _assert_close(actual[valid], 1.0 + peer[valid], FLOAT32, f"allRank {name} per list")
    # All-zero list: allRank's approxNDCG is 0 (ideal DCG clamped to eps) and its batch mean
    # counts it; rankloss leaves the list out.
    assert torch.all(peer[~valid] == 0) and torch.all(actual[~valid] == 0)
    batch_size = scores.shape[0]
    expected_batch = -(1.0 - actual)[valid].sum() / batch_size
    _assert_close(expected_batch, _scalar(case["batch"]), FLOAT32, f"allRank {name} batch")


def test_allrank_pointwise_rmse():
    # pointwise_rmse(no_of_levels=L) is sqrt(mean over real items of (y - L * s)^2): rankloss's
    # per-list mse_loss on scores L * s, square-rooted.
    case = _case(ALLRANK, "pointwise_rmse")
    levels = case["peer_kwargs"]["no_of_levels"]
    scores, labels, mask = _inputs(ALLRANK, case["inputs"])
    mse = F.mse_loss(levels * scores, labels, mask, reduction="none")
    _assert_close(mse.sqrt(), _per_list(case), EXACT, "allRank pointwise_rmse per list")
    # The batch value is the mean of the per-list RMSEs.
    _assert_close(mse.sqrt().mean(), _scalar(case["batch"]), EXACT, "allRank batch")


def test_allrank_bce():
    # bce is BCELoss on probabilities: make_golden.py passed y_pred = sigmoid(scores). Its
    # per-list value is the SUM over the list's items, rankloss's the mean. Padded items carry
    # the target -1, which torch's BCELoss rejects, so only unpadded lists were computed.
    case = _case(ALLRANK, "bce")
    scores, labels, mask = _inputs(ALLRANK, case["inputs"])
    rows = torch.tensor(case["lists"])
    actual = F.sigmoid_ce_loss(scores, labels, mask, reduction="none")[rows]
    count = mask[rows].sum(-1).to(torch.float64)
    _assert_close(actual * count, _per_list(case), EXACT, "allRank bce")


def test_allrank_listmle():
    # allRank's listMLE breaks ties at random (torch.randperm, then a sort by label); the order
    # it used, recorded in the golden file, is fed to rankloss, which breaks ties in input order.
    case = _case(ALLRANK, "listMLE_graded")
    scores, labels, mask = _inputs(ALLRANK, case["inputs"])
    order = torch.tensor(case["label_order"])
    actual = F.listmle_loss(
        scores.gather(-1, order),
        labels.gather(-1, order),
        mask.gather(-1, order),
        reduction="none",
    )
    _assert_close(actual, _per_list(case), EXACT, "allRank listMLE per list")
    # Without the recorded order (ties in input order), lists with tied labels differ.
    plain = F.listmle_loss(scores, labels, mask, reduction="none")
    assert not torch.allclose(plain, actual, **EXACT)


@pytest.mark.parametrize("k", [None, 3])
def test_allrank_neural_ndcg(k):
    case = _case(ALLRANK, f"neuralNDCG_k{k}")
    scores, labels, mask = _inputs(ALLRANK, case["inputs"])
    peer = _per_list(case)
    # allRank ran in float32 (make_golden.py); rankloss gets the float32 inputs in float64.
    scores = scores.to(torch.float32).to(torch.float64)
    # rankloss's defaults match allRank's call: temperature 1 on the scores, 50 Sinkhorn rounds.
    actual = F.neural_ndcg_loss(scores, labels, mask, reduction="none", k=k)
    valid = _ideal_dcg_positive(labels, mask)
    # allRank's loss is -NeuralNDCG; rankloss's is 1 - NeuralNDCG. Both cut the discounts and
    # the ideal DCG at k, and both leave lists with ideal DCG 0 out of the batch mean.
    _assert_close(actual[valid], 1.0 + peer[valid], NEURAL, f"allRank neuralNDCG k={k}")
    assert torch.all(peer[~valid] == 0) and torch.all(actual[~valid] == 0)
    mean = F.neural_ndcg_loss(scores, labels, mask, k=k)
    _assert_close(mean - 1.0, _scalar(case["batch"]), NEURAL, "allRank neuralNDCG batch")


LAMBDALOSS_SCHEMES = {
    "ndcgLoss2PP_scheme": "ndcg_loss2pp",
    "ndcgLoss2_scheme": "ndcg_loss2",
    "lambdaRank_scheme": "lambdarank",
    "rankNetWeightedByGTDiff_scheme": "label_diff",  # ARP: |y_i - y_j|, no discount involved
}


@pytest.mark.parametrize("inputs", ["graded", "holes"])
@pytest.mark.parametrize("scheme", sorted(LAMBDALOSS_SCHEMES))
def test_allrank_lambdaloss(scheme, inputs):
    weighting = LAMBDALOSS_SCHEMES[scheme]
    _needs_weighting(weighting)
    case = _case(ALLRANK, f"lambdaLoss_{scheme}_{inputs}")
    scores, labels, mask = _inputs(ALLRANK, inputs)
    kwargs = {"weighting": weighting, "sigma": 1.0, "mu": 10.0}
    # The float32 discounts of allRank do not enter the label-difference weight.
    tol = EXACT if weighting == "label_diff" else FLOAT32
    actual = F.lambdaloss_loss(scores, labels, mask, reduction="none", **kwargs)
    # allRank's lambdaLoss uses log2 (reduction_log="binary"); rankloss the natural log: the
    # same weights and pairs give allRank = rankloss / ln 2. Per list it sums over pairs.
    _assert_close(actual, LN2 * _per_list(case), tol, f"allRank {scheme} per list")
    # reduction="sum" sums over the batch's pairs: rankloss's "sum" over lists.
    total = F.lambdaloss_loss(scores, labels, mask, reduction="sum", **kwargs)
    _assert_close(total, LN2 * _scalar(case["batch"]), tol, f"allRank {scheme} batch")


def test_allrank_lambdaloss_sigma():
    case = _case(ALLRANK, "lambdaLoss_lambdaRank_scheme_sigma2")
    scores, labels, mask = _inputs(ALLRANK, case["inputs"])
    actual = F.lambdaloss_loss(
        scores, labels, mask, reduction="none", weighting="lambdarank", sigma=2.0
    )
    _assert_close(actual, LN2 * _per_list(case), FLOAT32, "allRank lambdaRank sigma=2")


def _ndcg_of_current_ranking(scores, labels, mask) -> torch.Tensor:
    """NDCG (gain 2^y - 1) of each list ranked by its scores; 0 where the ideal DCG is 0."""
    gains = torch.where(mask, torch.exp2(labels) - 1.0, torch.zeros_like(labels))
    keyed = torch.where(mask, scores, torch.full_like(scores, -math.inf))
    order = torch.sort(keyed, dim=-1, descending=True, stable=True).indices
    ideal = torch.sort(gains, dim=-1, descending=True).values
    positions = torch.arange(1, scores.shape[-1] + 1, dtype=torch.float64)
    discounts = 1.0 / torch.log2(1.0 + positions)
    dcg = (gains.gather(-1, order) * discounts).sum(-1)
    idcg = (ideal * discounts).sum(-1)
    return torch.where(idcg > 0, dcg / torch.where(idcg > 0, idcg, 1.0), 0.0)


@pytest.mark.parametrize("inputs", ["graded", "holes"])
def test_allrank_lambdaloss_ndcg_loss1(inputs):
    _needs_weighting("ndcg_loss1")
    case = _case(ALLRANK, f"lambdaLoss_ndcgLoss1_scheme_{inputs}")
    scores, labels, mask = _inputs(ALLRANK, inputs)
    actual = F.lambdaloss_loss(scores, labels, mask, reduction="none", weighting="ndcg_loss1")
    # allRank's ndcgLoss1_scheme sums over every ordered pair of real items INCLUDING j = i;
    # each j = i term is -(G_i / D_i) log2 sigmoid(0) = G_i / log2(1 + r_i), and their sum is
    # the NDCG of the current ranking. rankloss leaves out j = i. Besides that, log2 vs ln.
    diagonal = _ndcg_of_current_ranking(scores, labels, mask)
    expected = LN2 * (_per_list(case) - diagonal)
    _assert_close(actual, expected, FLOAT32, "allRank ndcgLoss1 per list")


@pytest.mark.parametrize(
    ("scheme", "weighting"),
    [
        ("lambdaRank_scheme", "lambdarank"),
        ("ndcgLoss2PP_scheme", "ndcg_loss2pp"),
        ("ndcgLoss2_scheme", "ndcg_loss2"),
    ],
)
def test_allrank_lambdaloss_top_k(scheme, weighting):
    # The top-k rules differ. allRank keeps the pairs where BOTH items are in the current top
    # k; rankloss keeps the pairs where AT LEAST ONE is (and zeroes the discount beyond k). Both
    # cut the ideal DCG at k. rankloss's pluggable pair weight restricted to allRank's pairs
    # reproduces allRank; rankloss's own rule adds the pairs with exactly one item in the top k.
    k = 3
    case = _case(ALLRANK, f"lambdaLoss_{scheme}_k{k}")
    scores, labels, mask = _inputs(ALLRANK, case["inputs"])
    try:
        from rankloss.functional.lambdaweights import PAIR_WEIGHTS
    except ImportError:
        pytest.skip("rankloss.functional.lambdaweights is not available")
    pairwise_loss = getattr(F, "pairwise_loss", None)
    if pairwise_loss is None:
        pytest.skip("rankloss.functional.pairwise_loss is not available")
    base = PAIR_WEIGHTS[weighting].fn

    def both_in_top_k(ctx):
        in_top = ctx.ranks <= k
        return base(ctx) * (in_top.unsqueeze(-1) & in_top.unsqueeze(-2))

    restricted = pairwise_loss(
        scores,
        labels,
        mask,
        reduction="none",
        weight=both_in_top_k,
        pair_reduction="sum",
        k=k,
        mu=10.0,
    )
    _assert_close(restricted, LN2 * _per_list(case), FLOAT32, f"allRank {scheme} k={k}")
    own = F.lambdaloss_loss(scores, labels, mask, reduction="none", weighting=weighting, k=k)
    assert torch.all(own >= restricted - 1e-12)
    assert (own > restricted + 1e-6).any(), "the inputs should show the two top-k rules differ"
