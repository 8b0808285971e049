"""Memory and time of the ranking and embedding losses against size, every contender side by side.

Contenders per loss: a naive PyTorch form written here from the formula (``[B, n, n]`` pair
matrices, ``[N, N]`` similarities and masks), rankloss with ``impl="torch"``, ``"streaming"``
and ``"triton"`` (CUDA only), and the peer libraries that import (pytorch-metric-learning,
sentence-transformers, allRank from ``--allrank-path`` / ``$RANKLOSS_ALLRANK_PATH``, Inf-CL on
CUDA), a plain ``F.cross_entropy(q @ k.T / t, arange)`` for InfoNCE, and rax (JAX, CPU, jit-compiled
``jax.value_and_grad``) for the list losses where rax has the same definition. A contender that
does not exist records ``"n/a"``.

Timing: forward+backward, median of repeats after a warm-up (synchronised on CUDA). Memory:
on CUDA ``max_memory_allocated`` minus the inputs; on CPU each (contender, size) runs in a fresh
subprocess and its peak RSS (``os.wait4``) minus that of a baseline child that only builds the
inputs (the ``hotspots`` preset, small sizes where fixed costs dominate, times in-process with
no memory figure). CPU out-of-memory is predicted for the direct forms
(``"OOM (predicted X GB > limit)"``).
Run:

    python benchmarks/scale.py --preset tiny --device cpu --out /tmp/scale
    python benchmarks/scale.py --preset cpu --suite embedding --losses info_nce,supcon
    python benchmarks/scale.py --preset hotspots --device cpu --threads 1 --out /tmp/hot
    python benchmarks/scale.py --device cuda --preset gpu --dtype bfloat16 --out out/scale-gpu
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

MIB = 1024 * 1024
LIST_LOSSES = ("ranknet", "lambdaloss", "lambdarank", "approx_ndcg", "neural_ndcg", "listnet")
EMB_LOSSES = ("info_nce", "supcon", "multi_similarity", "contrastive", "triplet", "siglip")
TOL = 1e-3  # relative tolerance of the value check (float32); bf16/f16 use 3e-2

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "list": [(4, 16), (4, 48)],
        "embedding": [(64, 16), (128, 16)],
        "info_nce": [(64, 16), (128, 16)],
        "repeats": 2,
        "budget_s": 20.0,
    },
    "cpu": {
        "list": [(64, 256), (64, 1024), (64, 2048), (64, 4096), (64, 8192)],
        "embedding": [(2048, 128), (8192, 128), (16384, 128), (32768, 128)],
        "info_nce": [(2048, 128), (8192, 128), (16384, 128), (32768, 128)],
        "repeats": 3,
        "budget_s": 60.0,
    },
    # CPU fixed-cost hot spots: small sizes, timed in-process (no memory), 1 thread.
    "hotspots": {
        "list": [(32, 32), (64, 128)],
        "embedding": [(256, 128), (1024, 128)],
        "info_nce": [(128, 128), (256, 384)],
        "repeats": 50,
        "budget_s": 120.0,
        "in_process": True,
    },
    "gpu": {
        "list": [(64, 1024), (64, 4096), (64, 8192)],
        "embedding": [(8192, 128), (32768, 128)],
        "info_nce": [(16384, 512), (65536, 512), (131072, 512)],
        "repeats": 3,
        "budget_s": 10.0,
    },
}


class NotAvailable(Exception):
    """The contender does not exist here (records ``"n/a"``)."""


# --------------------------------------------------------------------------- inputs


def make_inputs(loss: str, size: tuple[int, int], device: str, dtype: torch.dtype) -> dict:
    g = torch.Generator().manual_seed(0)
    if loss in LIST_LOSSES:
        b, n = size
        scores = torch.randn(b, n, generator=g).to(device=device, dtype=dtype)
        labels = torch.randint(0, 5, (b, n), generator=g).float().to(device)
        return {"scores": scores.requires_grad_(True), "labels": labels}
    n, d = size
    emb = F.normalize(torch.randn(n, d, generator=g), dim=1).to(device=device, dtype=dtype)
    out = {"emb": emb.requires_grad_(True)}
    if loss in ("info_nce", "siglip"):
        keys = F.normalize(
            emb.detach().float() + 0.5 * torch.randn(n, d, generator=g).to(device), dim=1
        )
        out["keys"] = keys.to(dtype).requires_grad_(True)
    else:
        out["labels"] = torch.randint(0, max(2, n // 8), (n,), generator=g).to(device)
    return out


def grads_of(inputs: dict) -> list[torch.Tensor]:
    return [v for v in inputs.values() if v.requires_grad]


# --------------------------------------------------------------------------- naive forms


def _pairs(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s = scores.float()
    diff = s.unsqueeze(-1) - s.unsqueeze(-2)  # [B, n, n]
    better = labels.unsqueeze(-1) > labels.unsqueeze(-2)
    return diff, better


def _ideal_dcg(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    gains = torch.pow(2.0, labels) - 1.0
    ideal = gains.sort(dim=-1, descending=True).values
    disc = 1.0 / torch.log2(torch.arange(labels.shape[-1], device=labels.device) + 2.0)
    return gains, (ideal * disc).sum(-1)


def naive_ranknet(scores, labels):
    diff, better = _pairs(scores, labels)
    terms = F.softplus(-diff) * better
    count = better.sum((-1, -2))
    per = terms.sum((-1, -2)) / count.clamp_min(1)
    return per[count > 0].mean()


def _ranks(scores):
    order = scores.detach().float().argsort(dim=-1, descending=True)
    return order.argsort(dim=-1).float() + 1.0


def naive_lambdarank(scores, labels):
    diff, better = _pairs(scores, labels)
    gains, idcg = _ideal_dcg(labels)
    disc = 1.0 / torch.log2(1.0 + _ranks(scores))
    delta = (gains.unsqueeze(-1) - gains.unsqueeze(-2)).abs() * (
        disc.unsqueeze(-1) - disc.unsqueeze(-2)
    ).abs()
    delta = delta / idcg.clamp_min(1e-12)[:, None, None]
    return (F.softplus(-diff) * delta * better).sum((-1, -2)).mean()


def naive_lambdaloss(scores, labels, mu: float = 10.0):
    diff, better = _pairs(scores, labels)
    gains, idcg = _ideal_dcg(labels)
    rank = _ranks(scores)
    disc = 1.0 / torch.log2(1.0 + rank)
    gap = (rank.unsqueeze(-1) - rank.unsqueeze(-2)).abs()
    delta = (1.0 / torch.log2(1.0 + gap.clamp_min(1)) - 1.0 / torch.log2(2.0 + gap)).abs()
    delta = torch.where(gap > 0, delta, torch.zeros_like(delta))
    w = ((disc.unsqueeze(-1) - disc.unsqueeze(-2)).abs() + mu * delta) * (
        gains.unsqueeze(-1) - gains.unsqueeze(-2)
    ).abs()
    w = w / idcg.clamp_min(1e-12)[:, None, None]
    return (F.softplus(-diff) * w * better).sum((-1, -2)).mean()


def naive_approx_ndcg(scores, labels, alpha: float = 10.0):
    s = scores.float()
    pair = torch.sigmoid(alpha * (s.unsqueeze(-2) - s.unsqueeze(-1)))  # [B, i, j]: s_j - s_i
    n = s.shape[-1]
    off = ~torch.eye(n, dtype=torch.bool, device=s.device)
    rank = 1.0 + (pair * off).sum(-1)
    gains, idcg = _ideal_dcg(labels)
    return (1.0 - (gains / torch.log2(1.0 + rank)).sum(-1) / idcg.clamp_min(1e-12)).mean()


def naive_neural_ndcg(scores, labels, temperature: float = 1.0, iters: int = 50):
    s = scores.float().unsqueeze(-1)  # [B, n, 1]
    n = s.shape[-2]
    a = (s - s.transpose(-1, -2)).abs()
    bvec = a.sum(-1, keepdim=True)
    scal = (n + 1 - 2 * (torch.arange(n, device=s.device) + 1)).float()
    logits = (s * scal.view(1, 1, -1) - bvec).transpose(-1, -2) / temperature  # [B, rank, item]
    p = torch.softmax(logits, dim=-1)
    for _ in range(iters):
        p = p / p.sum(-2, keepdim=True)
        p = p / p.sum(-1, keepdim=True)
    gains, idcg = _ideal_dcg(labels)
    disc = 1.0 / torch.log2(torch.arange(n, device=s.device) + 2.0)
    dcg = ((p @ gains.unsqueeze(-1)).squeeze(-1) * disc).sum(-1)
    return (1.0 - dcg / idcg.clamp_min(1e-12)).mean()


def naive_listnet(scores, labels):
    target = torch.softmax(labels.float(), dim=-1)
    return -(target * torch.log_softmax(scores.float(), dim=-1)).sum(-1).mean()


def _sim(emb, other=None):
    e = F.normalize(emb.float(), dim=1)
    o = e if other is None else F.normalize(other.float(), dim=1)
    return e @ o.T


def _label_masks(labels):
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def naive_info_nce(emb, keys, temperature: float = 0.07):
    logits = _sim(emb, keys) / temperature
    return F.cross_entropy(logits, torch.arange(len(emb), device=emb.device))


def naive_siglip(emb, keys, scale: float = 10.0, bias: float = -10.0):
    z = 2.0 * torch.eye(len(emb), device=emb.device) - 1.0
    return F.softplus(-z * (scale * _sim(emb, keys) + bias)).sum(1).mean()


def naive_supcon(emb, labels, temperature: float = 0.1):
    pos, neg = _label_masks(labels)
    z = _sim(emb) / temperature
    allowed = pos | neg
    logp = z - torch.logsumexp(z.masked_fill(~allowed, -math.inf), dim=1, keepdim=True)
    npos = pos.sum(1)
    per = -(logp * pos).sum(1) / npos.clamp_min(1)
    return per[npos > 0].mean()


def naive_multi_similarity(emb, labels, alpha=2.0, beta=50.0, base=0.5):
    pos, neg = _label_masks(labels)
    s = _sim(emb)
    p = torch.log1p((torch.exp(-alpha * (s - base)) * pos).sum(1)) / alpha
    n = torch.log1p((torch.exp(beta * (s - base)) * neg).sum(1)) / beta
    return (p + n)[(pos | neg).any(1)].mean()


def naive_contrastive(emb, labels, pos_margin=1.0, neg_margin=0.0):
    pos, neg = _label_masks(labels)
    s = _sim(emb)
    p = (F.relu(pos_margin - s) * pos).sum(1) / pos.sum(1).clamp_min(1)
    n = (F.relu(s - neg_margin) * neg).sum(1) / neg.sum(1).clamp_min(1)
    return (p + n)[(pos | neg).any(1)].mean()


def naive_triplet(emb, labels, margin=0.1):
    pos, neg = _label_masks(labels)
    s = _sim(emb)
    # [N, N, N] every (a, p, n): the plain form of "all triplets"
    t = F.relu(s.unsqueeze(2) * 0 + s.unsqueeze(1) - s.unsqueeze(2) + margin)
    valid = pos.unsqueeze(2) & neg.unsqueeze(1)
    cnt = valid.sum((1, 2))
    per = (t * valid).sum((1, 2)) / cnt.clamp_min(1)
    return per[cnt > 0].mean()


NAIVE: dict[str, Callable[..., torch.Tensor]] = {
    "ranknet": naive_ranknet,
    "lambdaloss": naive_lambdaloss,
    "lambdarank": naive_lambdarank,
    "approx_ndcg": naive_approx_ndcg,
    "neural_ndcg": naive_neural_ndcg,
    "listnet": naive_listnet,
    "info_nce": naive_info_nce,
    "siglip": naive_siglip,
    "supcon": naive_supcon,
    "multi_similarity": naive_multi_similarity,
    "contrastive": naive_contrastive,
    "triplet": naive_triplet,
}


def _call(loss: str, fn: Callable[..., torch.Tensor], inp: dict) -> torch.Tensor:
    if loss in LIST_LOSSES:
        return fn(inp["scores"], inp["labels"])
    if "keys" in inp:
        return fn(inp["emb"], inp["keys"])
    return fn(inp["emb"], inp["labels"])


# --------------------------------------------------------------------------- contenders


FUNCTIONAL = {
    "ranknet": ("ranknet_loss", {}),
    "lambdaloss": ("lambdaloss_loss", {"weighting": "ndcg_loss2pp"}),
    "lambdarank": ("lambdarank_loss", {}),
    "approx_ndcg": ("approx_ndcg_loss", {}),
    "neural_ndcg": ("neural_ndcg_loss", {}),
    "listnet": ("listnet_loss", {}),
}
MODULES = {
    "info_nce": ("InfoNCELoss", {"temperature": 0.07}),
    "siglip": ("SigLIPLoss", {"learnable": False}),
    "supcon": ("SupConLoss", {"temperature": 0.1}),
    "multi_similarity": ("MultiSimilarityLoss", {}),
    "contrastive": ("ContrastiveLoss", {}),
    "triplet": ("TripletLoss", {}),
}


def _rankloss(loss: str, impl: str, device: str) -> Callable[[dict], torch.Tensor]:
    if impl == "triton" and device != "cuda":
        raise NotAvailable("triton needs CUDA")
    if loss in FUNCTIONAL:
        import inspect

        functional = importlib.import_module("rankloss.functional")
        name, kw = FUNCTIONAL[loss]
        fn = getattr(functional, name)
        if "impl" not in inspect.signature(fn).parameters:
            if impl != "torch":
                raise NotAvailable(f"{name} has no impl")
            return lambda inp: fn(inp["scores"], inp["labels"], **kw)
        # build-time rejection: a dry call on a tiny list
        try:
            fn(torch.zeros(1, 2, device=device), torch.zeros(1, 2, device=device), impl=impl, **kw)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise NotAvailable(str(exc).splitlines()[0]) from exc
        return lambda inp: fn(inp["scores"], inp["labels"], impl=impl, **kw)
    losses = importlib.import_module("rankloss.losses")
    name, kw = MODULES[loss]
    cls = getattr(losses, name, None)
    if cls is None:
        raise NotAvailable(f"rankloss.losses.{name} missing")
    try:
        module = cls(impl=impl, **kw).to(device)
    except (ValueError, TypeError, NotImplementedError) as exc:
        if impl == "torch":
            try:
                module = cls(**kw).to(device)
            except (ValueError, TypeError) as exc2:
                raise NotAvailable(str(exc2).splitlines()[0]) from exc2
        else:
            raise NotAvailable(str(exc).splitlines()[0]) from exc
    if loss in ("info_nce", "siglip"):
        return lambda inp: module(inp["emb"], keys=inp["keys"])
    return lambda inp: module(inp["emb"], inp["labels"])


def _pml(loss: str) -> Callable[[dict], torch.Tensor]:
    try:
        pml = importlib.import_module("pytorch_metric_learning.losses")
    except ImportError as exc:
        raise NotAvailable("pytorch-metric-learning not importable") from exc
    if loss == "info_nce":
        ntx = pml.NTXentLoss(temperature=0.07)

        def run(inp):
            n = len(inp["emb"])
            idx = torch.arange(n, device=inp["emb"].device)
            # queries vs keys only: ref_emb form (one direction, like InfoNCE). ref_labels must
            # be another tensor object: when it *is* labels, pytorch-metric-learning takes the
            # call for self-retrieval, drops the diagonal (every positive) and returns 0.
            return ntx(inp["emb"].float(), idx, ref_emb=inp["keys"].float(), ref_labels=idx.clone())

        return run
    table = {
        "supcon": lambda: pml.SupConLoss(temperature=0.1),
        "multi_similarity": lambda: pml.MultiSimilarityLoss(alpha=2.0, beta=50.0, base=0.5),
        "contrastive": lambda: pml.ContrastiveLoss(
            pos_margin=1.0, neg_margin=0.0, distance=_pml_cos()
        ),
        "triplet": lambda: pml.TripletMarginLoss(margin=0.1, distance=_pml_cos()),
    }
    if loss not in table:
        raise NotAvailable("no pytorch-metric-learning counterpart")
    module = table[loss]()
    return lambda inp: module(inp["emb"].float(), inp["labels"])


def _pml_cos():
    return importlib.import_module("pytorch_metric_learning.distances").CosineSimilarity()


def _sentence_transformers(loss: str) -> Callable[[dict], torch.Tensor]:
    if loss != "info_nce":
        raise NotAvailable("no sentence-transformers counterpart")
    try:
        st_util = importlib.import_module("sentence_transformers.util")
        importlib.import_module("sentence_transformers.losses")
    except Exception as exc:  # noqa: BLE001 - any import failure means "not here"
        raise NotAvailable(f"sentence-transformers not importable: {type(exc).__name__}") from exc
    scale = 1.0 / 0.07  # MNRL's `scale` is 1 / temperature; matched to the other contenders
    # MultipleNegativesRankingLoss.forward needs a SentenceTransformer model to embed text; its
    # loss on embeddings is `cross_entropy(similarity_fct(a, b) * scale, arange)`, which this
    # reproduces with the library's own `cos_sim` (the call path, without the model).

    def run(inp):
        scores = st_util.cos_sim(inp["emb"].float(), inp["keys"].float()) * scale
        target = torch.arange(len(scores), device=scores.device)
        return F.cross_entropy(scores, target)

    return run


def _plain_ce(loss: str) -> Callable[[dict], torch.Tensor]:
    if loss != "info_nce":
        raise NotAvailable("info_nce only")
    # The floor of in-batch InfoNCE: one matmul and a cross-entropy (inputs are unit vectors).
    return lambda inp: F.cross_entropy(
        inp["emb"].float() @ inp["keys"].float().T / 0.07,
        torch.arange(len(inp["emb"]), device=inp["emb"].device),
    )


def _rax_loss(loss: str):
    """The rax (JAX) form of a list loss, ``(scores, labels) -> value``, or NotAvailable."""
    try:
        jax = importlib.import_module("jax")
        jnp = importlib.import_module("jax.numpy")
        rax = importlib.import_module("rax")
    except Exception as exc:  # noqa: BLE001
        raise NotAvailable(f"rax/jax not importable: {type(exc).__name__}") from exc

    def per_list(pair_losses, count, by_count):
        per = pair_losses.reshape(pair_losses.shape[0], -1).sum(-1)  # rax flattens the pairs
        return per / jnp.maximum(count, 1) if by_count else per

    def pairwise(lambdaweight=None, by_count=False):
        def fn(s, y):
            kw = {"lambdaweight_fn": lambdaweight} if lambdaweight is not None else {}
            pair = rax.pairwise_logistic_loss(s, y, reduce_fn=None, **kw)
            count = (y[..., :, None] > y[..., None, :]).sum((-1, -2))
            per = per_list(pair, count, by_count)
            # rax's normalised DCG lambda weights come out n times those of the formula
            # (measured: the ratio is exactly the list length), so they are divided by n.
            return jnp.mean(per if lambdaweight is None else per / s.shape[-1])

        return fn

    def lambdaloss_weight(scores, labels, **kw):
        return rax.dcg_lambdaweight(scores, labels, normalize=True) + 10.0 * (
            rax.dcg2_lambdaweight(scores, labels, normalize=True)
        )

    try:  # approx_t12n uses jax.util.wraps, gone from newer JAX
        approx_ndcg = rax.approx_t12n(rax.ndcg_metric, temperature=0.1)
    except AttributeError as exc:
        approx_ndcg = None
        if loss == "approx_ndcg":
            raise NotAvailable(f"rax.approx_t12n fails on this JAX: {exc}") from exc

    forms = {
        "ranknet": pairwise(by_count=True),
        "lambdarank": pairwise(lambda s, y, **kw: rax.dcg_lambdaweight(s, y, normalize=True)),
        "lambdaloss": pairwise(lambdaloss_weight),
        "approx_ndcg": lambda s, y: 1.0 + approx_ndcg(s, y),
        "listnet": lambda s, y: rax.softmax_loss(
            s, y, label_fn=lambda a, where: jax.nn.softmax(a, axis=-1)
        ),
    }
    if loss not in forms:
        raise NotAvailable("no rax counterpart")
    return jax, forms[loss]


def _rax(loss: str) -> Callable[[dict], torch.Tensor]:
    """rax, jit-compiled forward+backward (``jax.value_and_grad``), on CPU arrays made once."""
    if loss not in LIST_LOSSES:
        raise NotAvailable("no rax counterpart")
    jax, form = _rax_loss(loss)
    step = jax.jit(jax.value_and_grad(form))
    cache: dict[int, tuple] = {}

    def run(inp):
        key = id(inp["scores"])
        if key not in cache:  # the conversion is not part of the timed work
            cache.clear()
            cache[key] = (
                jax.numpy.asarray(inp["scores"].detach().float().cpu().numpy()),
                jax.numpy.asarray(inp["labels"].float().cpu().numpy()),
            )
        value, grad = step(*cache[key])
        grad.block_until_ready()
        return torch.tensor(float(value), requires_grad=True)

    return run


def _import_allrank(module: str, path: str | None) -> Any:
    """``allrank.models.losses.<module>`` (allRank 1.4.3: ``pip install --no-deps allRank``, or
    its unpacked wheel or checkout at ``path``).

    allRank's loss files need only torch, but importing them goes through two modules with heavy
    imports (torchvision, scikit-learn, gcsfs) for a padding constant and a device helper. When
    those imports fail, the two modules are replaced by stand-ins (the constant read from
    allRank's own source, the device helper returning CUDA when present) and the loss files
    load unchanged.
    """
    if path and path not in sys.path:
        sys.path.insert(0, path)
    name = f"allrank.models.losses.{module}"
    try:
        return importlib.import_module(name)
    except ImportError:
        pass
    spec = importlib.util.find_spec("allrank")
    if spec is None or not spec.submodule_search_locations:
        raise NotAvailable(
            "allRank not importable (pip install --no-deps allRank, or --allrank-path)"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    padded = None
    for node in ast.parse((root / "data" / "dataset_loading.py").read_text()).body:
        targets = getattr(node, "targets", [])
        if any(isinstance(t, ast.Name) and t.id == "PADDED_Y_VALUE" for t in targets):
            padded = ast.literal_eval(node.value)  # type: ignore[attr-defined]
    if padded is None:
        raise NotAvailable("allRank: PADDED_Y_VALUE not found in its dataset_loading.py")
    for key in [k for k in sys.modules if k == "allrank" or k.startswith("allrank.")]:
        del sys.modules[key]  # the half-imported package of the failed attempt
    loading = types.ModuleType("allrank.data.dataset_loading")
    loading.PADDED_Y_VALUE = padded  # type: ignore[attr-defined]
    loading.PADDED_INDEX_VALUE = padded  # type: ignore[attr-defined]
    utils = types.ModuleType("allrank.models.model_utils")
    utils.get_torch_device = lambda: torch.device(  # type: ignore[attr-defined]
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    sys.modules["allrank.data.dataset_loading"] = loading
    sys.modules["allrank.models.model_utils"] = utils
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        raise NotAvailable(f"allRank not importable: {type(exc).__name__}: {exc}") from exc


def _allrank(loss: str, path: str | None) -> Callable[[dict], torch.Tensor]:
    names = {
        "ranknet": "rankNet",
        "lambdaloss": "lambdaLoss",
        "approx_ndcg": "approxNDCGLoss",
        "neural_ndcg": "neuralNDCG",
        "listnet": "listNet",
    }
    if loss not in names:
        raise NotAvailable("no allRank counterpart")
    module = {"approx_ndcg": "approxNDCG", "neural_ndcg": "neuralNDCG"}.get(loss, names[loss])
    fn = getattr(_import_allrank(module, path), names[loss])
    # Matched to the naive forms: ApproxNDCG's alpha (allRank's default is 1); allRank's
    # approxNDCG and neuralNDCG return -NDCG (1 is added back), its lambdaLoss sums over the
    # lists in log base 2 (divided back by B / ln 2). The time includes these scalar steps.
    extra: dict[str, Any] = {
        "lambdaloss": {"weighing_scheme": "ndcgLoss2PP_scheme"},
        "approx_ndcg": {"alpha": 10.0},
    }.get(loss, {})

    def run(inp: dict) -> torch.Tensor:
        value = fn(inp["scores"].float(), inp["labels"], **extra)
        if loss in ("approx_ndcg", "neural_ndcg"):
            return 1.0 + value
        if loss == "lambdaloss":
            return value * math.log(2.0) / inp["scores"].shape[0]
        return value

    return run


def _inf_cl(loss: str, device: str) -> Callable[[dict], torch.Tensor]:
    if loss != "info_nce":
        raise NotAvailable("no Inf-CL counterpart")
    if device != "cuda":
        raise NotAvailable("Inf-CL needs CUDA")
    try:
        flash = importlib.import_module("inf_cl").cal_inf_loss
    except Exception as exc:  # noqa: BLE001
        raise NotAvailable(f"inf_cl not importable: {type(exc).__name__}") from exc

    def run(inp):
        q = F.normalize(inp["emb"].float(), dim=1)
        k = F.normalize(inp["keys"].float(), dim=1)
        labels = torch.arange(len(q), device=q.device)
        return flash(q, k, labels=labels, scale=torch.tensor(1.0 / 0.07, device=q.device)).mean()

    return run


def contender_names(loss: str, device: str) -> list[str]:
    names = ["naive", "rankloss-torch", "rankloss-streaming", "rankloss-triton"]
    if loss in LIST_LOSSES:
        names += ["allrank", "rax"]
    else:
        if loss in ("info_nce", "supcon", "multi_similarity", "contrastive", "triplet"):
            names.append("pml")
        if loss == "info_nce":
            names += ["sentence-transformers", "plain-ce", "inf-cl"]
    return names


def build(loss: str, contender: str, device: str, allrank_path: str | None):
    if contender == "naive":
        fn = NAIVE[loss]
        return lambda inp: _call(loss, fn, inp)
    if contender.startswith("rankloss-"):
        return _rankloss(loss, contender.split("-", 1)[1], device)
    if contender == "pml":
        return _pml(loss)
    if contender == "sentence-transformers":
        return _sentence_transformers(loss)
    if contender == "allrank":
        return _allrank(loss, allrank_path)
    if contender == "inf-cl":
        return _inf_cl(loss, device)
    if contender == "plain-ce":
        return _plain_ce(loss)
    if contender == "rax":
        if device != "cpu":
            raise NotAvailable("rax contender: CPU only")
        return _rax(loss)
    raise NotAvailable(contender)


# --------------------------------------------------------------------------- measuring


def predicted_bytes(loss: str, contender: str, size: tuple[int, int]) -> int:
    """Bytes the direct forms hold at once (a rough float32 count); 0 for the streaming ones."""
    if contender in ("rankloss-streaming", "rankloss-triton", "inf-cl"):
        return 0
    a, b = size
    if loss == "listnet":  # two softmaxes over the lists: no [B, n, n]
        return 8 * a * b * 4
    if loss in LIST_LOSSES:
        return 8 * a * b * b * 4
    if loss == "triplet" and contender == "naive":
        return 4 * a * a * a * 4
    return 10 * a * a * 4


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure_one(cfg: dict) -> dict:
    """Build the inputs, run one contender's forward+backward, report time, memory and value."""
    device, dtype = cfg["device"], getattr(torch, cfg["dtype"])
    torch.set_num_threads(cfg["threads"])
    size = tuple(cfg["size"])
    inp = make_inputs(cfg["loss"], size, device, dtype)  # type: ignore[arg-type]
    if cfg["contender"] == "baseline":
        return {"status": "ok"}
    try:
        fn = build(cfg["loss"], cfg["contender"], device, cfg.get("allrank_path"))
    except NotAvailable as exc:
        return {"status": "n/a", "why": str(exc)}
    if device == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    times: list[float] = []
    value = math.nan
    try:
        for rep in range(cfg["repeats"] + 1):
            for t in grads_of(inp):
                t.grad = None
            _sync(device)
            start = time.perf_counter()
            out = fn(inp)
            out.backward()
            _sync(device)
            elapsed = time.perf_counter() - start
            value = float(out.detach().float())
            if rep > 0 or cfg["repeats"] == 0:
                times.append(elapsed)
            if rep == 0 and elapsed > cfg.get("slow_s", 5.0):
                times.append(elapsed)  # too slow to repeat: the warm-up is the measurement
                break
    except (NotAvailable, NotImplementedError, ValueError, TypeError, RuntimeError) as exc:
        return _failure(exc)
    res: dict[str, Any] = {"status": "ok", "ms": 1e3 * statistics.median(times), "value": value}
    if device == "cuda":
        res["peak_mb"] = (torch.cuda.max_memory_allocated() - base) / MIB
    return res


def _failure(exc: BaseException) -> dict:
    """The status row of a contender that raised ``exc``."""
    if isinstance(exc, NotAvailable):
        return {"status": "n/a", "why": str(exc)}
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return {"status": "OOM"}
    return {"status": "n/a", "why": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}


def _timed_call(fn: Callable[[dict], torch.Tensor], inp: dict) -> tuple[float, float]:
    """(seconds, value) of one forward+backward of ``fn`` on ``inp`` (CPU)."""
    for t in grads_of(inp):
        t.grad = None
    start = time.perf_counter()
    out = fn(inp)
    out.backward()
    return time.perf_counter() - start, float(out.detach().float())


def measure_interleaved(cfg: dict, names: list[str]) -> dict[str, dict]:
    """In-process CPU timing of several contenders at one size, call by call in turn.

    Each contender gets its own inputs (the same values) and one warm-up call; then every
    round calls each once, starting one further along the list each round, so a drift of the
    machine's speed during the measurement reaches every contender alike (timed one after
    another, the contenders compared in a ratio were seconds or minutes apart). A contender
    whose warm-up takes more than ``slow_s`` keeps that call as its measurement. A measured
    contender's row also holds ``seconds``: the time of all its calls, warm-up included.
    """
    torch.set_num_threads(cfg["threads"])
    dtype = getattr(torch, cfg["dtype"])
    size = tuple(cfg["size"])
    results: dict[str, dict] = {}
    live: dict[str, tuple[Callable[[dict], torch.Tensor], dict]] = {}
    times: dict[str, list[float]] = {}
    values: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for name in names:
        inp = make_inputs(cfg["loss"], size, "cpu", dtype)  # type: ignore[arg-type]
        try:
            fn = build(cfg["loss"], name, "cpu", cfg.get("allrank_path"))
            elapsed, values[name] = _timed_call(fn, inp)
        except (NotAvailable, NotImplementedError, ValueError, TypeError, RuntimeError) as exc:
            results[name] = _failure(exc)
            continue
        seconds[name] = elapsed
        if elapsed > cfg.get("slow_s", 5.0) or cfg["repeats"] == 0:
            times[name] = [elapsed]
        else:
            live[name] = (fn, inp)
            times[name] = []
    order = list(live)
    for rep in range(cfg["repeats"]):
        for i in range(len(order)):
            name = order[(rep + i) % len(order)]
            fn, inp = live[name]
            elapsed, values[name] = _timed_call(fn, inp)
            times[name].append(elapsed)
    for name, spent in times.items():
        results[name] = {
            "status": "ok",
            "ms": 1e3 * statistics.median(spent),
            "value": values[name],
            "seconds": seconds[name] + (sum(spent) if name in live else 0.0),
        }
    return results


def run_child(cfg: dict) -> tuple[dict, float]:
    """Run ``measure_one`` in a fresh interpreter; return its result and its peak RSS in MiB."""
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg["threads"]), MKL_NUM_THREADS=str(cfg["threads"]))
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", json.dumps(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    out, err = proc.communicate()
    # os.wait4 is not possible after communicate(); use the process's own rusage via /proc:
    # the child prints its ru_maxrss (RUSAGE_SELF, KiB on Linux) as part of its JSON line.
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = err.decode().strip().splitlines()[-1:] or ["?"]
        if proc.returncode in (-9, 137) or "MemoryError" in tail[0]:
            return {"status": "OOM"}, math.nan
        return {"status": "n/a", "why": f"child failed: {tail[0][:200]}"}, math.nan
    res = json.loads(lines[-1])
    return res, res.pop("maxrss_kib", math.nan) / 1024


def matmul_rate(device: str) -> float | None:
    """Measured bf16 matmul FLOP/s on CUDA (8192^3), or ``None`` on CPU."""
    if device != "cuda":
        return None
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    return 10 * 2 * 8192**3 / (time.perf_counter() - start)


def floor_flops(loss: str, size: tuple[int, int]) -> float | None:
    """Matmul FLOPs of an embedding loss's forward+backward: S = XY^T, dX = dS Y, dY = dS^T X."""
    if loss in LIST_LOSSES:
        return None
    n, d = size
    return 3 * 2.0 * n * n * d


# --------------------------------------------------------------------------- driver


def sizes_for(loss: str, preset: str) -> list[tuple[int, int]]:
    p = PRESETS[preset]
    if loss in LIST_LOSSES:
        return p["list"]
    return p["info_nce"] if loss == "info_nce" else p["embedding"]


def fmt_size(loss: str, size) -> str:
    return f"{size[0]}x{size[1]}" if loss in LIST_LOSSES else f"N={size[0]},d={size[1]}"


def run_all(args) -> dict:
    device = args.device
    rate = matmul_rate(device)
    mem_limit = args.mem_limit_gb * 1e9
    tol = TOL if args.dtype == "float32" else 3e-2
    results: list[dict] = []
    in_process = args.in_process or PRESETS[args.preset].get("in_process", False)
    for loss in args.losses:
        names = contender_names(loss, device)
        if args.contenders:
            # the naive form stays: every value is checked against it
            names = [n for n in names if n == "naive" or n in args.contenders]
        stopped: dict[str, str] = {}
        spent: dict[str, float] = {name: 0.0 for name in names}
        for size in sizes_for(loss, args.preset):
            cfg = {
                "loss": loss,
                "size": list(size),
                "device": device,
                "dtype": args.dtype,
                "threads": args.threads,
                "repeats": args.repeats
                if args.repeats is not None
                else PRESETS[args.preset]["repeats"],
                "allrank_path": args.allrank_path,
            }
            base_rss = math.nan
            if device == "cpu" and not in_process:
                _, base_rss = run_child(dict(cfg, contender="baseline"))
            interleaved: dict[str, dict] | None = None
            if device == "cpu" and in_process:
                todo = [
                    n
                    for n in names
                    if n not in stopped and predicted_bytes(loss, n, size) <= mem_limit
                ]
                interleaved = measure_interleaved(cfg, todo)
            ref = None
            for name in names:
                row = {
                    "loss": loss,
                    "size": list(size),
                    "label": fmt_size(loss, size),
                    "contender": name,
                }
                if name in stopped:
                    row.update(status=stopped[name])
                    results.append(row)
                    continue
                need = predicted_bytes(loss, name, size)
                if device == "cpu" and need > mem_limit:
                    row.update(status=f"OOM (predicted {need / 1e9:.1f} GB > limit)")
                    stopped[name] = "OOM"
                    results.append(row)
                    continue
                start = time.perf_counter()
                if interleaved is not None:
                    res = dict(interleaved[name])
                    # the time of its own calls in the interleaved rounds
                    start -= res.pop("seconds", 0.0)
                elif device == "cpu" and not in_process:
                    res, rss = run_child(dict(cfg, contender=name))
                    if res.get("status") == "ok":
                        res["peak_mb"] = rss - base_rss
                else:
                    res = measure_one(dict(cfg, contender=name))
                    if device == "cuda":
                        torch.cuda.empty_cache()
                spent[name] += time.perf_counter() - start
                row.update(res)
                if res.get("status") == "ok":
                    flops = floor_flops(loss, size)
                    if rate and flops:
                        row["floor_ratio"] = (res["ms"] / 1e3) / (flops / rate)
                    if name == "naive":
                        ref = res["value"]
                    if ref is not None:
                        err = abs(res["value"] - ref) / max(1.0, abs(ref))
                        row["agrees"] = bool(err <= tol)
                        row["rel_err"] = err
                        if name == "rax" and not row["agrees"]:
                            # rax's definition (normalisation, weights) is not the naive one
                            row["note"] = "definition differs"
                if res.get("status") == "OOM":
                    stopped[name] = "OOM"
                elif res.get("status") == "n/a":
                    stopped[name] = "n/a"
                elif spent[name] > PRESETS[args.preset]["budget_s"]:
                    stopped[name] = "timeout"
                results.append(row)
                print(json.dumps(row), flush=True)
        # Written after every loss, so a run stopped by a time limit keeps what it measured.
        write_outputs(args.out, _report(args, device, rate, tol, results), plots=False)
    return _report(args, device, rate, tol, results)


def _report(args, device: str, rate, tol: float, results: list[dict]) -> dict:
    return {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "torch": torch.__version__,
        "triton": _version("triton"),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor(),
        "threads": args.threads,
        "dtype": args.dtype,
        "preset": args.preset,
        "matmul_flops_per_s": rate,
        "in_process": bool(args.in_process or PRESETS[args.preset].get("in_process", False)),
        "memory": "CUDA max_memory_allocated minus inputs"
        if device == "cuda"
        else "child peak RSS minus a baseline child that only builds the inputs",
        "tolerance": tol,
        "results": results,
    }


def _version(name: str) -> str | None:
    try:
        return importlib.import_module(name).__version__
    except Exception:  # noqa: BLE001
        return None


def _cell(row: dict) -> str:
    if row.get("status") != "ok":
        return str(row.get("status"))
    flag = "" if row.get("agrees", True) else " ≠"
    if "peak_mb" not in row:  # timed in-process: no memory figure
        return f"{row['ms']:.2f}{flag}"
    return f"{row['ms']:.1f} / {row['peak_mb']:.0f}{flag}"


def to_markdown(report: dict) -> str:
    lines = [
        f"Device: {report['device']} ({report['device_name']}), torch {report['torch']}, "
        f"{report['threads']} thread(s), {report['dtype']}. Cells: "
        + ("time ms" if report.get("in_process") else "time ms / peak MB")
        + "; ≠ marks a value that disagrees with the naive form.",
        "",
    ]
    # plain-ce is the floor (no normalisation, no checks), listed but not a library peer
    peers = ("pml", "sentence-transformers", "allrank", "rax", "inf-cl")
    by_loss: dict[str, list[dict]] = {}
    for row in report["results"]:
        by_loss.setdefault(row["loss"], []).append(row)
    for loss, rows in by_loss.items():
        names = list(dict.fromkeys(r["contender"] for r in rows))
        lines += [f"### {loss}", ""]
        lines.append(
            "| size | "
            + " | ".join(names)
            + " | torch/naive | streaming/naive | best rankloss/fastest peer |"
        )
        lines.append("|" + "---|" * (len(names) + 4))
        for label in dict.fromkeys(r["label"] for r in rows):
            cells = {r["contender"]: r for r in rows if r["label"] == label}
            ms = {k: v["ms"] for k, v in cells.items() if v.get("status") == "ok"}

            def ratio(a: float | None, b: float | None) -> str:
                return f"{a / b:.2f}" if a and b else "—"

            ours = [ms[k] for k in ms if k.startswith("rankloss-")]
            peer = [ms[k] for k in ms if k in peers]
            lines.append(
                f"| {label} | "
                + " | ".join(_cell(cells[n]) if n in cells else "" for n in names)
                + f" | {ratio(ms.get('rankloss-torch'), ms.get('naive'))}"
                + f" | {ratio(ms.get('rankloss-streaming'), ms.get('naive'))}"
                + f" | {ratio(min(ours) if ours else None, min(peer) if peer else None)} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9), squeeze=False)
    for col, (family, members) in enumerate((("list", LIST_LOSSES), ("embedding", EMB_LOSSES))):
        for row_i, key in enumerate(("ms", "peak_mb")):
            ax = axes[row_i][col]
            for loss in members:
                for name in dict.fromkeys(r["contender"] for r in report["results"]):
                    pts = [
                        (r["size"][0] * r["size"][1] if family == "list" else r["size"][0], r[key])
                        for r in report["results"]
                        if r["loss"] == loss
                        and r["contender"] == name
                        and r.get("status") == "ok"
                        and isinstance(r.get(key), (int, float))
                        and r[key] > 0
                    ]
                    if pts:
                        xs, ys = zip(*pts)
                        ax.plot(xs, ys, marker="o", label=f"{loss}:{name}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("items (B*n)" if family == "list" else "N")
            ax.set_ylabel("time ms" if key == "ms" else "peak MB")
            ax.set_title(f"{family} losses")
            if ax.lines:
                ax.legend(fontsize=5)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


def write_atomic(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".scale-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_outputs(out: str, report: dict, *, plots: bool) -> None:
    """``scale.json`` and ``scale.md`` (and ``scale.png`` with ``plots``), each atomically."""
    write_atomic(os.path.join(out, "scale.json"), json.dumps(report, indent=1))
    write_atomic(os.path.join(out, "scale.md"), to_markdown(report))
    if plots:
        plot(report, os.path.join(out, "scale.png"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--suite", choices=("list", "embedding", "all"), default="all")
    ap.add_argument("--preset", choices=tuple(PRESETS), default="tiny")
    ap.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    ap.add_argument("--losses", default=None, help="comma-separated subset")
    ap.add_argument(
        "--contenders",
        default=None,
        help="comma-separated subset (e.g. allrank,rax); the naive form always runs",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--mem-limit-gb", type=float, default=None, help="CPU: predicted-OOM limit")
    ap.add_argument("--allrank-path", default=os.environ.get("RANKLOSS_ALLRANK_PATH"))
    ap.add_argument("--out", default="scale-out")
    ap.add_argument("--in-process", action="store_true", help="CPU: no subprocesses (no memory)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        import resource

        res = measure_one(json.loads(args.child))
        res["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(res), flush=True)
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("scale: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    suite = {"list": LIST_LOSSES, "embedding": EMB_LOSSES, "all": LIST_LOSSES + EMB_LOSSES}
    chosen = list(suite[args.suite])
    if args.losses:
        wanted = [x.strip() for x in args.losses.split(",") if x.strip()]
        bad = [x for x in wanted if x not in LIST_LOSSES + EMB_LOSSES]
        if bad:
            print(f"scale: unknown loss(es) {bad}", file=sys.stderr)
            return 2
        chosen = [x for x in wanted if x in chosen]
    args.losses = chosen
    if args.contenders:
        known = {"naive", "rankloss-torch", "rankloss-streaming", "rankloss-triton"}
        known |= {"allrank", "rax", "pml", "sentence-transformers", "plain-ce", "inf-cl"}
        args.contenders = [x.strip() for x in args.contenders.split(",") if x.strip()]
        bad = [x for x in args.contenders if x not in known]
        if bad:
            print(f"scale: unknown contender(s) {bad}; known: {sorted(known)}", file=sys.stderr)
            return 2
    if args.mem_limit_gb is None:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        args.mem_limit_gb = 0.5 * total / 1e9
    os.makedirs(args.out, exist_ok=True)
    report = run_all(args)
    write_outputs(args.out, report, plots=True)
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
