"""DistributedLoss, the gathers and ring SigLIP on 2 gloo ranks against one process (float64)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from rankloss import losses
from rankloss.distributed import (
    DistributedCrossBatchMemory,
    DistributedLoss,
    all_gather_tensors,
    all_gather_with_grad,
    ring_siglip_loss,
)
from tests.distributed._spawn import run_on_ranks

ROWS = (7, 5)  # uneven shards
D = 5
# Rank 1's shard holds no positive pair (its labels are distinct); label 3 pairs across ranks.
LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7, 3])
# Proxy losses hold their own parameters and take no candidates: DistributedLoss refuses them
# (each rank's value is already the local mean); tests/embedding/test_proxy.py covers them.
EMBEDDING_LOSSES = [
    n for n in losses.available(kind="embedding") if n not in losses.available("proxy")
]
TOL = 1e-10


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = sum(ROWS)
    return {
        "x": torch.randn(n, D, generator=g, dtype=torch.float64),
        "keys": torch.randn(n, D, generator=g, dtype=torch.float64),
        "hn": torch.randn(n, 2, D, generator=g, dtype=torch.float64),
        "w": torch.rand(n, generator=g, dtype=torch.float64) + 0.5,
        "labels": LABELS,
        "scores": torch.randn(5, 6, generator=g, dtype=torch.float64),
        "grades": torch.randint(0, 3, (5, 6), generator=g),
        "mask": torch.rand(5, 6, generator=g) > 0.2,
    }


def _cases() -> list[tuple[str, str, str]]:
    """(loss name, mode, input form) to check."""
    cases = []
    for name in EMBEDDING_LOSSES:
        local = name != "nt_xent" and losses.LOSSES.entry(name).meta["info"].anchor_local
        modes = ("global", "local") if local else ("global",)
        takes_hn = losses.get(name).takes_hard_negatives
        for mode in modes:
            cases.append((name, mode, "labels"))
            if takes_hn:
                cases.append((name, mode, "keys"))
    return cases


def _call(loss: Any, form: str, parts: dict[str, torch.Tensor]) -> torch.Tensor:
    if form == "labels":
        return loss(parts["x"], parts["labels"], weights=parts["w"])
    return loss(parts["x"], keys=parts["keys"], hard_negatives=parts["hn"], weights=parts["w"])


def _leaves(data: dict[str, torch.Tensor], lo: int, hi: int) -> dict[str, torch.Tensor]:
    parts = {k: data[k][lo:hi].clone() for k in ("x", "keys", "hn", "w", "labels")}
    for k in ("x", "keys", "hn"):
        parts[k].requires_grad_(True)
    return parts


def _grads(parts: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    return {
        k: (parts[k].grad / scale if parts[k].grad is not None else torch.zeros_like(parts[k]))
        for k in ("x", "keys", "hn")
    }


def _worker(rank: int, world: int, data: dict[str, torch.Tensor]) -> dict[str, Any]:
    lo = sum(ROWS[:rank])
    hi = lo + ROWS[rank]
    out: dict[str, Any] = {}
    # gathers: order and gradient
    x = data["x"][lo:hi].clone().requires_grad_(True)
    gathered = all_gather_with_grad(x)
    weight = torch.arange(gathered.numel(), dtype=torch.float64).reshape(gathered.shape)
    (gathered * weight * (rank + 1)).sum().backward()
    out["gather"] = (gathered.detach(), x.grad, all_gather_tensors(data["labels"][lo:hi]))
    for name, mode, form in _cases():
        parts = _leaves(data, lo, hi)
        value = _call(DistributedLoss(losses.get(name), mode=mode), form, parts)
        value.backward()
        out[(name, mode, form)] = (value.detach(), _grads(parts, world))
    # list losses: lists sharded 3 + 2
    list_rows = (3, 2)
    llo = sum(list_rows[:rank])
    lhi = llo + list_rows[rank]
    for name in ("ranknet", "listnet"):
        for reduction in ("mean", "sum"):
            for padded in (True, False):  # False: no mask, the losses' unpadded fast path
                scores = data["scores"][llo:lhi].clone().requires_grad_(True)
                loss = DistributedLoss(losses.get(name, reduction=reduction))
                mask = data["mask"][llo:lhi] if padded else None
                value = loss(scores, data["grades"][llo:lhi], mask)
                value.backward()
                assert scores.grad is not None
                out[(name, reduction, padded)] = (value.detach(), scores.grad / world)
    # ring SigLIP on equal shards of 5
    for similarity in ("cosine", "dot"):
        q = data["x"][5 * rank : 5 * rank + 5].clone().requires_grad_(True)
        k = data["keys"][5 * rank : 5 * rank + 5].clone().requires_grad_(True)
        value = ring_siglip_loss(q, k, scale=3.0, bias=-2.0, similarity=similarity)
        value.backward()
        assert q.grad is not None and k.grad is not None
        out[("ring", similarity)] = (value.detach(), q.grad / world, k.grad / world)
    # bad use: the same clear error on every rank instead of a hang
    x = data["x"][lo:hi]
    bad = {
        "width": (x[:, : D - rank], LABELS[lo:hi]),
        "dtype": (x.float() if rank else x, LABELS[lo:hi]),
    }
    for what, (emb, lab) in bad.items():
        try:
            DistributedLoss(losses.get("contrastive"))(emb, lab)
            out[("error", what)] = "no error"
        except ValueError as err:
            out[("error", what)] = str(err)
    try:
        ring_siglip_loss(x, data["keys"][lo:hi])
        out[("error", "rows")] = "no error"
    except ValueError as err:
        out[("error", "rows")] = str(err)
    dist.barrier()  # every rank is still in step after the errors
    # local mode refuses nt_xent
    try:
        DistributedLoss(losses.get("nt_xent"), mode="local")
        out["nt_xent_local"] = "accepted"
    except ValueError as err:
        out["nt_xent_local"] = str(err)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_on_ranks(_worker, tmp_path_factory.mktemp("losses"), args=(_data(),))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) if a.numel() else 0.0


def test_gather_order_and_gradient(results: list[dict[str, Any]]) -> None:
    data = _data()
    n = sum(ROWS)
    weight = torch.arange(n * D, dtype=torch.float64).reshape(n, D)
    for rank, res in enumerate(results):
        gathered, grad, labels = res["gather"]
        assert torch.equal(gathered, data["x"])  # rank 0's rows first
        assert torch.equal(labels, LABELS)
        lo = sum(ROWS[:rank])
        # every rank's loss sends weight * (r + 1) to this rank's rows: summed over ranks
        expected = (weight * 3)[lo : lo + ROWS[rank]]
        assert torch.allclose(grad, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: "-".join(c))
def test_embedding_loss_equals_one_process(
    results: list[dict[str, Any]], case: tuple[str, str, str]
) -> None:
    name, _, form = case
    data = _data()
    parts = _leaves(data, 0, sum(ROWS))
    expected = _call(losses.get(name), form, parts)
    expected.backward()
    grads = _grads(parts, 1.0)
    value = sum(res[case][0] for res in results) / len(results)
    assert abs(float(value - expected.detach())) < TOL
    for rank, res in enumerate(results):
        lo = sum(ROWS[:rank])
        for key, grad in res[case][1].items():
            if form == "labels" and key != "x":
                continue
            assert _max_diff(grad, grads[key][lo : lo + ROWS[rank]]) < TOL, (rank, key)


@pytest.mark.parametrize("name", ["ranknet", "listnet"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("padded", [True, False])
def test_list_loss_equals_one_process(
    results: list[dict[str, Any]], name: str, reduction: str, padded: bool
) -> None:
    data = _data()
    scores = data["scores"].clone().requires_grad_(True)
    mask = data["mask"] if padded else None
    expected = losses.get(name, reduction=reduction)(scores, data["grades"], mask)
    expected.backward()
    assert scores.grad is not None
    key = (name, reduction, padded)
    value = sum(res[key][0] for res in results) / len(results)
    assert abs(float(value - expected.detach())) < TOL
    grad = torch.cat([res[key][1] for res in results])
    assert _max_diff(grad, scores.grad) < TOL


def test_local_mode_refuses_nt_xent(results: list[dict[str, Any]]) -> None:
    assert all("NTXentLoss" in res["nt_xent_local"] for res in results)


def test_single_process_is_the_plain_loss() -> None:
    data = _data()
    loss = losses.get("contrastive")
    x = data["x"]
    assert torch.equal(DistributedLoss(loss)(x, LABELS), loss(x, LABELS))
    assert all_gather_with_grad(x) is x


def test_report(results: list[dict[str, Any]], tmp_path: Path) -> None:
    """Print the largest difference per loss and mode (run with -s to see it)."""
    data = _data()
    for case in _cases():
        parts = _leaves(data, 0, sum(ROWS))
        expected = _call(losses.get(case[0]), case[2], parts)
        expected.backward()
        grads = _grads(parts, 1.0)
        value = sum(res[case][0] for res in results) / len(results)
        worst = 0.0
        for rank, res in enumerate(results):
            lo = sum(ROWS[:rank])
            worst = max(worst, _max_diff(res[case][1]["x"], grads["x"][lo : lo + ROWS[rank]]))
        print("max-diff", *case, f"loss={float((value - expected).abs()):.2e}", f"grad={worst:.2e}")


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_ring_siglip_equals_one_process(results: list[dict[str, Any]], similarity: str) -> None:
    data = _data()
    q = data["x"][:10].clone().requires_grad_(True)
    k = data["keys"][:10].clone().requires_grad_(True)
    loss = losses.get("siglip", scale=3.0, bias=-2.0, similarity=similarity)
    expected = loss(q, keys=k)
    expected.backward()
    assert q.grad is not None and k.grad is not None
    value = sum(res[("ring", similarity)][0] for res in results) / len(results)
    assert abs(float(value - expected.detach())) < TOL
    grad_q = torch.cat([res[("ring", similarity)][1] for res in results])
    grad_k = torch.cat([res[("ring", similarity)][2] for res in results])
    assert _max_diff(grad_q, q.grad) < TOL
    assert _max_diff(grad_k, k.grad) < TOL


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(
    ("what", "needle"),
    [("width", "same embedding width"), ("dtype", "one dtype"), ("rows", "same number of rows")],
)
def test_bad_use_raises_on_every_rank(
    results: list[dict[str, Any]], what: str, needle: str
) -> None:
    messages = [res[("error", what)] for res in results]
    assert messages[0] == messages[1]
    assert needle in messages[0]


def _empty_ring(rank: int, world_size: int) -> list[float]:
    q = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    k = torch.zeros(0, 4, dtype=torch.float64)
    mean = ring_siglip_loss(q, k)
    mean.backward()
    return [float(mean), float(ring_siglip_loss(q.detach(), k, reduction="sum"))]


def test_ring_siglip_with_no_row_on_any_rank_is_zero(tmp_path: Path) -> None:
    """As one process: the mean over no pair is 0 (it was 0 / 0)."""
    assert float(ring_siglip_loss(torch.zeros(0, 4), torch.zeros(0, 4))) == 0.0
    assert run_on_ranks(_empty_ring, tmp_path) == [[0.0, 0.0], [0.0, 0.0]]


def _streaming_and_misuse(rank: int, world_size: int) -> dict[str, Any]:
    """On uneven shards: local mode on the streaming path, a list loss with an inner
    per-sample reduction, and inputs of the wrong row count (refused on the rank)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(sum(ROWS), D, generator=g, dtype=torch.float64)
    lo = sum(ROWS[:rank])
    mine = slice(lo, lo + ROWS[rank])
    out: dict[str, Any] = {}
    for name in ("contrastive", "multi_similarity", "triplet", "siglip"):
        streaming = losses.get(name, impl="streaming", chunk_size=3).double()
        value = DistributedLoss(streaming, mode="local")(x[mine], LABELS[mine])
        mean = value.detach().clone()
        dist.all_reduce(mean)  # DDP's mean over ranks of world_size * (sum here / count)
        direct = losses.get(name, impl="torch").double()(x, LABELS)
        out[("local-streaming", name)] = (float(mean) / world_size, float(direct))
    scores = torch.randn(4, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (4, 6), generator=g).double()
    gumbel = DistributedLoss(losses.get("gumbel_approx_ndcg"))
    out["gumbel"] = float(gumbel(scores, labels, generator=torch.Generator().manual_seed(0)))
    short = LABELS[mine][:-1]  # one label too few, on every rank
    try:
        DistributedLoss(losses.get("supcon"))(x[mine], short)
    except ValueError as error:
        out["short labels"] = str(error)
    try:
        ring_siglip_loss(x[:4], x[4:8], scale=torch.nn.Parameter(torch.tensor(10.0)))
    except TypeError as error:
        out["ring scale"] = str(error)
    try:
        DistributedCrossBatchMemory(size=16, dim=D).enqueue(x[mine], LABELS[mine][:2])
    except ValueError as error:
        out["memory labels"] = str(error)
    return out


def test_local_streaming_inner_reductions_and_wrong_rows(tmp_path: Path) -> None:
    for result in run_on_ranks(_streaming_and_misuse, tmp_path):
        for name in ("contrastive", "multi_similarity", "triplet", "siglip"):
            local, direct = result[("local-streaming", name)]
            assert local == pytest.approx(direct, rel=1e-9, abs=1e-12), name
        assert torch.isfinite(torch.tensor(result["gumbel"]))
        assert "labels has 6 rows but embeddings has 7" in result["short labels"] or (
            "labels has 4 rows but embeddings has 5" in result["short labels"]
        )
        assert "scale is a tensor that requires grad" in result["ring scale"]
        assert "labels has shape [2] but embeddings has" in result["memory labels"]


def test_the_wrapper_is_called_as_the_loss_it_wraps() -> None:
    """Tasks choose the call form from ``kind``: the wrapper reports the wrapped loss's."""
    assert DistributedLoss(losses.get("listnet")).kind == "list"
    assert DistributedLoss(losses.get("supcon")).kind == "embedding"


def test_a_list_loss_takes_its_generator_through_the_wrapper() -> None:
    scores, labels = torch.randn(2, 5), torch.randint(0, 3, (2, 5)).float()
    plain = losses.get("listmle")(scores, labels, generator=torch.Generator().manual_seed(0))
    wrapped = DistributedLoss(losses.get("listmle"))(
        scores, labels, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(plain, wrapped)
