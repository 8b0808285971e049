"""Make the golden values of rax and allRank losses that ``tests/losses/test_golden.py`` reads.

CI never runs this script: it needs JAX, rax and allRank, which rankloss does not depend on.
The test only reads the two JSON files written here (``rax.json``, ``allrank.json``).

How to run it (Python 3.11, CPU only, a separate virtual environment outside the repository)::

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install torch==2.13.0  # the CPU build: 2.13.0+cpu
    /tmp/peers-venv/bin/pip install "jax[cpu]==0.5.3" rax==0.4.0
    /tmp/peers-venv/bin/pip install --no-deps allRank==1.4.3
    /tmp/peers-venv/bin/python tests/losses/golden/make_golden.py

Peers used:

The values in the JSON files were made with Python 3.11.7, torch 2.13.0+cpu and numpy 2.4.6
(pulled in by jax).

* rax 0.4.0 with jax and jaxlib 0.5.3 (``jax_enable_x64`` on, so every rax value is float64).
  rax 0.4.0 calls ``jax.util.wraps``, which JAX removed in 0.7 (deprecated in 0.6), hence 0.5.3.
* allRank 1.4.3 from PyPI. Its ``allrank/models/losses/*.py``, ``allrank/models/metrics.py``
  and ``allrank/data/dataset_loading.py`` are byte-identical to the GitHub repository
  allegro/allRank at commit c88475661cb72db292d13283fdbc4f2ae6498ee4 (2023-09-29).
  allRank 1.4.3 pins ``torch<=1.8.0`` and cloud-storage packages, hence ``--no-deps``. Its loss
  modules need only torch and numpy, but they import two modules that pull in torchvision,
  scikit-learn and gcsfs: ``allrank.data.dataset_loading`` (for the constant ``PADDED_Y_VALUE``)
  and ``allrank.models.model_utils`` (for ``get_torch_device``). This script puts two small
  stand-ins for those modules into ``sys.modules`` before importing the losses:
  ``PADDED_Y_VALUE`` read from the installed ``dataset_loading.py`` (it is -1) and a
  ``get_torch_device`` that returns the CPU. Every loss, metric and Sinkhorn routine called is
  allRank's own, unchanged.

The peers are only called here, to produce numbers; nothing of their code is copied into
rankloss. The inputs are fixed float64 batches built from a seeded generator; they are written
into the JSON files next to every value, so the test never regenerates them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SEED = 20240611
ALLRANK_COMMIT = "c88475661cb72db292d13283fdbc4f2ae6498ee4"
# allRank's losses take an ``eps`` added inside logs and clamps (default 1e-10). A float64
# number this small changes no finite value, yet keeps 0 * log(0 + eps) = 0 at padded items.
TINY_EPS = 1e-300


# --------------------------------------------------------------------------------- inputs
def make_inputs() -> dict[str, dict[str, list]]:
    """Fixed batches: graded labels 0..4 with ties, an all-zero list, padded lists."""
    rng = np.random.default_rng(SEED)
    pad = None  # a padded position: label 0 and a random score in the JSON, mask False
    graded_labels = [
        [3, 1, 0, 4, 1, 2, 0],  # full list, ties at 1 and 0
        [2, 2, 0, 1, 4, pad, pad],  # 5 real items, padding at the tail
        [0, 0, 0, 0, 0, 0, 0],  # all-zero labels
        [1, 0, 3, 3, 0, 2, pad],  # 6 real items, padding at the tail
    ]
    holes_labels = [
        [2, pad, 0, 1, pad, 2],  # padding inside the list
        [pad, 4, 4, 0, 1, 3],
        [1, 0, pad, pad, 3, 0],
    ]
    binary_labels = [
        [1, 0, 0, 1, 0, 1],
        [0, 1, 0, 0, pad, pad],
        [0, 0, 0, 0, 0, 0],  # no positive
    ]
    out = {}
    for name, rows, scale in (
        ("graded", graded_labels, 1.5),
        ("holes", holes_labels, 1.0),
        ("binary", binary_labels, 2.0),
    ):
        mask = [[v is not None for v in row] for row in rows]
        labels = [[0.0 if v is None else float(v) for v in row] for row in rows]
        scores = (scale * rng.standard_normal((len(rows), len(rows[0])))).tolist()
        out[name] = {"scores": scores, "labels": labels, "mask": mask}
    return out


def tensors(batch: dict, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    scores = torch.tensor(batch["scores"], dtype=dtype)
    labels = torch.tensor(batch["labels"], dtype=dtype)
    mask = torch.tensor(batch["mask"], dtype=torch.bool)
    return scores, labels, mask


# ------------------------------------------------------------------------------------ rax
def rax_golden(inputs: dict) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import rax

    def arrays(name: str, transform=None):
        b = inputs[name]
        labels = np.asarray(b["labels"], dtype=np.float64)
        if transform is not None:
            labels = transform(labels)
        return (
            jnp.asarray(b["scores"], dtype=jnp.float64),
            jnp.asarray(labels),
            jnp.asarray(b["mask"], dtype=bool),
        )

    def values(x) -> list:
        return np.asarray(x, dtype=np.float64).tolist()

    cases = []

    def add(name, fn_name, fn, inputs_name, kwargs, kind, label_transform=None, transform_doc=None):
        s, y, w = arrays(inputs_name, label_transform)
        unreduced = fn(s, y, where=w, reduce_fn=None)
        default = fn(s, y, where=w)  # rax's default reduce_fn=jnp.mean
        case = {
            "name": name,
            "inputs": inputs_name,
            "peer_function": fn_name,
            "peer_kwargs": {**kwargs, "where": "mask", "reduce_fn": None},
            # "per_item" [B, n], "per_list" [B] or "per_pair" [B, n * n]: rax puts pair (i, j) at
            # i * n + j of the last axis (rax.utils.compute_pairs)
            "kind": kind,
            "values": values(unreduced),
            "default_reduced": float(default),
            "default_reduce_fn": "jnp.mean",
        }
        if transform_doc is not None:
            case["label_transform"] = transform_doc
        cases.append(case)

    add("mse", "rax.pointwise_mse_loss", rax.pointwise_mse_loss, "graded", {}, "per_item")
    add(
        "sigmoid_binary",
        "rax.pointwise_sigmoid_loss",
        rax.pointwise_sigmoid_loss,
        "binary",
        {},
        "per_item",
    )
    add(
        "sigmoid_soft",
        "rax.pointwise_sigmoid_loss",
        rax.pointwise_sigmoid_loss,
        "graded",
        {},
        "per_item",
        label_transform=lambda y: y / 4.0,
        transform_doc="labels / 4 (soft targets in [0, 1])",
    )
    add(
        "softmax_ce",
        "rax.softmax_loss",
        lambda s, y, **kw: rax.softmax_loss(s, y, label_fn=rax.utils.normalize_probabilities, **kw),
        "graded",
        {"label_fn": "rax.utils.normalize_probabilities"},
        "per_list",
    )
    for temperature in (1.0, 2.0):
        add(
            f"listnet_T{temperature:g}",
            "rax.softmax_loss",
            lambda s, y, t=temperature, **kw: rax.softmax_loss(
                s, y, label_fn=lambda a, where: jax.nn.softmax(a / t, where=where), **kw
            ),
            "graded",
            {"label_fn": f"lambda a, where: jax.nn.softmax(a / {temperature!r}, where=where)"},
            "per_list",
        )
    for name in ("graded", "holes"):
        add(f"listmle_{name}", "rax.listmle_loss", rax.listmle_loss, name, {}, "per_list")
    for alpha in (10.0, 1.0):
        add(
            f"approx_ndcg_alpha{alpha:g}",
            "rax.approx_t12n(rax.ndcg_metric, temperature=1/alpha)",
            rax.approx_t12n(rax.ndcg_metric, temperature=1.0 / alpha),
            "graded",
            {"temperature": 1.0 / alpha},
            "per_list",
        )
    add(
        "approx_ndcg_linear",
        "rax.approx_t12n(rax.ndcg_metric, temperature=1/alpha)",
        lambda s, y, **kw: rax.approx_t12n(rax.ndcg_metric, temperature=0.1)(
            s, y, gain_fn=lambda label: label, **kw
        ),
        "graded",
        {"temperature": 0.1, "gain_fn": "lambda label: label"},
        "per_list",
    )
    for name in ("graded", "holes"):
        add(
            f"pairwise_logistic_{name}",
            "rax.pairwise_logistic_loss",
            rax.pairwise_logistic_loss,
            name,
            {},
            "per_pair",
        )
        add(
            f"pairwise_hinge_{name}",
            "rax.pairwise_hinge_loss",
            rax.pairwise_hinge_loss,
            name,
            {},
            "per_pair",
        )

    def logistic_with(weight_fn):
        return lambda s, y, **kw: rax.pairwise_logistic_loss(s, y, lambdaweight_fn=weight_fn, **kw)

    def dcg(topn=None):
        return lambda s, y, **kw: rax.dcg_lambdaweight(s, y, topn=topn, normalize=True, **kw)

    def dcg2(topn=None):
        return lambda s, y, **kw: rax.dcg2_lambdaweight(s, y, topn=topn, normalize=True, **kw)

    def dcg_plus_mu_dcg2(mu):
        return lambda s, y, **kw: dcg()(s, y, **kw) + mu * dcg2()(s, y, **kw)

    for name in ("graded", "holes"):
        add(
            f"logistic_dcg_{name}",
            "rax.pairwise_logistic_loss",
            logistic_with(dcg()),
            name,
            {"lambdaweight_fn": "functools.partial(rax.dcg_lambdaweight, normalize=True)"},
            "per_pair",
        )
    add(
        "logistic_dcg_top3",
        "rax.pairwise_logistic_loss",
        logistic_with(dcg(3)),
        "graded",
        {"lambdaweight_fn": "functools.partial(rax.dcg_lambdaweight, topn=3, normalize=True)"},
        "per_pair",
    )
    add(
        "logistic_dcg2",
        "rax.pairwise_logistic_loss",
        logistic_with(dcg2()),
        "graded",
        {"lambdaweight_fn": "functools.partial(rax.dcg2_lambdaweight, normalize=True)"},
        "per_pair",
    )
    add(
        "logistic_dcg2_top3",
        "rax.pairwise_logistic_loss",
        logistic_with(dcg2(3)),
        "graded",
        {"lambdaweight_fn": "functools.partial(rax.dcg2_lambdaweight, topn=3, normalize=True)"},
        "per_pair",
    )
    add(
        "logistic_dcg_plus_10_dcg2",
        "rax.pairwise_logistic_loss",
        logistic_with(dcg_plus_mu_dcg2(10.0)),
        "graded",
        {
            "lambdaweight_fn": "lambda *a, **k: rax.dcg_lambdaweight(*a, normalize=True, **k)"
            " + 10.0 * rax.dcg2_lambdaweight(*a, normalize=True, **k)"
        },
        "per_pair",
    )
    for name in ("graded", "holes"):
        add(
            f"logistic_labeldiff_{name}",
            "rax.pairwise_logistic_loss",
            logistic_with(rax.labeldiff_lambdaweight),
            name,
            {"lambdaweight_fn": "rax.labeldiff_lambdaweight"},
            "per_pair",
        )
    return {
        "peer": "rax",
        "version": importlib.metadata.version("rax"),
        "jax_version": importlib.metadata.version("jax"),
        "jaxlib_version": importlib.metadata.version("jaxlib"),
        "x64": True,
        "cases": cases,
    }


# -------------------------------------------------------------------------------- allRank
def import_allrank_losses():
    """Import ``allrank.models.losses`` with stand-ins for its two heavy imports."""
    spec = importlib.util.find_spec("allrank")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("allRank is not installed: pip install --no-deps allRank==1.4.3")
    root = Path(next(iter(spec.submodule_search_locations)))
    source = (root / "data" / "dataset_loading.py").read_text()
    padded = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PADDED_Y_VALUE" for t in node.targets
        ):
            padded = ast.literal_eval(node.value)
    if padded is None:
        raise SystemExit("PADDED_Y_VALUE not found in allrank/data/dataset_loading.py")
    loading = types.ModuleType("allrank.data.dataset_loading")
    loading.PADDED_Y_VALUE = padded
    loading.PADDED_INDEX_VALUE = padded
    model_utils = types.ModuleType("allrank.models.model_utils")
    model_utils.get_torch_device = lambda: torch.device("cpu")
    sys.modules["allrank.data.dataset_loading"] = loading
    sys.modules["allrank.models.model_utils"] = model_utils
    import allrank.models.losses as losses

    return losses, padded


def allrank_golden(inputs: dict) -> dict:
    losses, padded = import_allrank_losses()
    cases = []

    def marked(name: str, dtype=torch.float64):
        scores, labels, mask = tensors(inputs[name], dtype)
        return scores, torch.where(mask, labels, torch.full_like(labels, padded))

    def add(name, fn_name, fn, inputs_name, kwargs, *, dtype=torch.float64, lists=None, note=None):
        scores, y_true = marked(inputs_name, dtype)
        rows = range(scores.shape[0]) if lists is None else lists
        per_list = []
        for b in rows:
            per_list.append(_number(fn(scores[b : b + 1], y_true[b : b + 1], **kwargs)))
        case = {
            "name": name,
            "inputs": inputs_name,
            "peer_function": fn_name,
            "peer_kwargs": kwargs,
            "peer_dtype": str(dtype).removeprefix("torch."),
            "lists": list(rows),
            "per_list": per_list,  # one call per list, y_pred[b : b + 1]
        }
        if lists is None:
            case["batch"] = float(fn(scores, y_true, **kwargs))  # one call on the whole batch
        if note is not None:
            case["note"] = note
        cases.append(case)

    for name in ("graded", "holes"):
        add(
            f"rankNet_{name}",
            "allrank.models.losses.rankNet",
            losses.rankNet,
            name,
            {},
            note="per_list is null where allRank returns NaN (a list without a pair)",
        )
        add(
            f"binary_listNet_{name}",
            "allrank.models.losses.binary_listNet",
            losses.binary_listNet,
            name,
            {"eps": TINY_EPS},
        )
        add(
            f"listNet_{name}",
            "allrank.models.losses.listNet",
            losses.listNet,
            name,
            {"eps": TINY_EPS},
        )
        add(
            f"approxNDCGLoss_{name}",
            "allrank.models.losses.approxNDCGLoss",
            losses.approxNDCGLoss,
            name,
            {"eps": TINY_EPS, "alpha": 10.0},
        )
    add(
        "approxNDCGLoss_alpha1",
        "allrank.models.losses.approxNDCGLoss",
        losses.approxNDCGLoss,
        "graded",
        {"eps": TINY_EPS, "alpha": 1.0},
    )
    add(
        "pointwise_rmse",
        "allrank.models.losses.pointwise_rmse",
        losses.pointwise_rmse,
        "graded",
        {"no_of_levels": 4},
    )
    # BCELoss on probabilities: y_pred = sigmoid(scores). Padded items carry the target -1,
    # which torch's BCELoss rejects, so only the unpadded lists are used.
    add(
        "bce",
        "allrank.models.losses.bce",
        lambda s, y: losses.bce(torch.sigmoid(s), y),
        "binary",
        {},
        lists=[0, 2],
        note="y_pred = torch.sigmoid(scores); lists without padding only",
    )

    # ListMLE shuffles items with torch.randperm (random tie-breaking) before a sort by label.
    # Each per-list call is seeded; the order allRank used is recorded as ``label_order``.
    scores, y_true = marked("graded")
    per_list, orders = [], []
    for b in range(scores.shape[0]):
        seed = SEED + b
        torch.manual_seed(seed)
        per_list.append(float(losses.listMLE(scores[b : b + 1], y_true[b : b + 1], eps=TINY_EPS)))
        torch.manual_seed(seed)
        perm = torch.randperm(scores.shape[1])
        order = perm[torch.sort(y_true[b, perm], descending=True).indices]
        orders.append(order.tolist())
    cases.append(
        {
            "name": "listMLE_graded",
            "inputs": "graded",
            "peer_function": "allrank.models.losses.listMLE",
            "peer_kwargs": {"eps": TINY_EPS},
            "peer_dtype": "float64",
            "lists": list(range(scores.shape[0])),
            "per_list": per_list,
            "seeds": [SEED + b for b in range(scores.shape[0])],
            "label_order": orders,
            "note": "torch.manual_seed(seed) before each call; label_order is the item order "
            "after allRank's shuffle and sort by label (torch.randperm with the same seed, then "
            "torch.sort(descending=True))",
        }
    )

    # NeuralNDCG builds float32 tensors inside (torch.ones(..., dtype=torch.float32)) and
    # multiplies them with y_pred, so it only runs on float32 inputs. Its neural sort masks
    # rank positions with the item mask, so padding must sit at the tail ("graded").
    for k in (None, 3):
        add(
            f"neuralNDCG_k{k}",
            "allrank.models.losses.neuralNDCG",
            losses.neuralNDCG,
            "graded",
            {"temperature": 1.0, "powered_relevancies": True, "k": k},
            dtype=torch.float32,
        )

    schemes = {
        "ndcgLoss2PP_scheme": {"mu": 10.0},
        "ndcgLoss2_scheme": {},
        "lambdaRank_scheme": {},
        "ndcgLoss1_scheme": {},
        "rankNetWeightedByGTDiff_scheme": {},
    }
    for scheme, extra in schemes.items():
        for name in ("graded", "holes"):
            add(
                f"lambdaLoss_{scheme}_{name}",
                "allrank.models.losses.lambdaLoss",
                losses.lambdaLoss,
                name,
                {
                    "eps": TINY_EPS,
                    "weighing_scheme": scheme,
                    "k": None,
                    "sigma": 1.0,
                    **extra,
                    "reduction": "sum",
                    "reduction_log": "binary",
                },
            )
    add(
        "lambdaLoss_lambdaRank_scheme_sigma2",
        "allrank.models.losses.lambdaLoss",
        losses.lambdaLoss,
        "graded",
        {
            "eps": TINY_EPS,
            "weighing_scheme": "lambdaRank_scheme",
            "k": None,
            "sigma": 2.0,
            "reduction": "sum",
            "reduction_log": "binary",
        },
    )
    for scheme in ("lambdaRank_scheme", "ndcgLoss2PP_scheme", "ndcgLoss2_scheme"):
        add(
            f"lambdaLoss_{scheme}_k3",
            "allrank.models.losses.lambdaLoss",
            losses.lambdaLoss,
            "graded",
            {
                "eps": TINY_EPS,
                "weighing_scheme": scheme,
                "k": 3,
                "sigma": 1.0,
                "mu": 10.0,
                "reduction": "sum",
                "reduction_log": "binary",
            },
        )
    return {
        "peer": "allRank",
        "version": importlib.metadata.version("allRank"),
        "source_commit": ALLRANK_COMMIT,
        "torch_version": torch.__version__,
        "padded_value_indicator": padded,
        "cases": cases,
    }


def _number(value) -> float | None:
    """A peer's value as a float; NaN (allRank's RankNet on a list without a pair) as None."""
    value = float(value)
    return None if math.isnan(value) else value


def _check_finite(obj) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite golden value {obj}")
    if isinstance(obj, dict):
        for value in obj.values():
            _check_finite(value)
    if isinstance(obj, list):
        for value in obj:
            _check_finite(value)


def main() -> None:
    inputs = make_inputs()
    common = {
        "generated_by": "tests/losses/golden/make_golden.py (see its docstring)",
        "seed": SEED,
        "inputs": inputs,
    }
    for filename, make in (("rax.json", rax_golden), ("allrank.json", allrank_golden)):
        payload = {**make(inputs), **common}
        _check_finite(payload["cases"])
        path = HERE / filename
        path.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {path} ({len(payload['cases'])} cases)")


if __name__ == "__main__":
    main()
