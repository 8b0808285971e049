"""One trainer for every application area.

The :class:`Trainer` owns the loop (seeding, device, mixed precision, gradient clipping,
validation, early stopping, logging, atomic checkpoints and exact resume); a *task* owns the
data and the maths: how to iterate training batches, how to turn a batch into a loss, and how to
evaluate a split (see :mod:`rankloss.train.tasks`).
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import io
import json
import math
import os
import pickle
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from rankloss._core import params as check
from rankloss._io import atomic_write_keeping_previous, atomic_write_text
from rankloss.distributed import DistributedLoss
from rankloss.distributed import training as _dist
from rankloss.losses.base import ListLoss

__all__ = [
    "Task",
    "Trainer",
    "UnsafeCheckpointError",
    "EarlyStopping",
    "TrainResult",
    "seed_everything",
    "build_loss",
    "move_to_device",
]


@runtime_checkable
class Task(Protocol):
    """What the trainer needs from an application area.

    A task may also define ``check_loss(loss) -> None``, which the trainer calls once when it
    is built: it raises ``TypeError`` for a loss the task cannot call (see
    :func:`rankloss.train.check_loss_kind`).
    """

    def train_batches(self, generator: torch.Generator) -> Iterable[Any]:
        """The training batches of one epoch; all randomness from ``generator``."""

    def training_step(self, model: nn.Module, batch: Any, loss: Callable[..., Tensor]) -> Tensor:
        """The scalar loss of one batch."""

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Metrics of ``model`` on split ``split`` (called under ``no_grad`` in eval mode)."""


def _check_task_loss(task: object, loss: Callable[..., Tensor]) -> None:
    """Call ``task.check_loss(loss)`` when the task has one (an optional part of :class:`Task`:
    it raises ``TypeError`` for a loss of a kind the task cannot use)."""
    check = getattr(task, "check_loss", None)
    if callable(check):
        check(loss)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators (for model initialisation and
    dropout; data order uses its own generator)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - user code may use the legacy global
    torch.manual_seed(_torch_seed(seed))


def _torch_seed(value: int) -> int:
    """``value`` where ``torch.manual_seed`` takes it (``-2**63 .. 2**64 - 1``), else reduced
    modulo ``2**64`` (any int seed works; seeds in range keep their streams)."""
    return value if -(2**63) <= value < 2**64 else value % 2**64


def build_loss(
    loss: str | nn.Module | Callable[..., Tensor], **hyper: Any
) -> Callable[..., Tensor]:
    """A loss from a registered name (``rankloss.losses.get(name, **hyper)``), a module or a
    callable (then ``hyper`` must be empty).

    A name builds the module at once, so an unknown name (``KeyError``), an unknown
    hyper-parameter (``TypeError``) or a bad value (``ValueError``/``TypeError``, in the form
    ``"<Class>: <parameter> must be ..., got ..."``) fails before any training."""
    if isinstance(loss, str):
        from rankloss.losses import get

        return get(loss, **hyper)
    if hyper:
        raise TypeError("build_loss: hyper-parameters are only taken with a loss name")
    if not callable(loss):
        raise TypeError(f"build_loss: expected a name, module or callable, got {type(loss)}")
    return loss


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) batch of tensors, dicts, lists, tuples and dataclasses."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    if is_dataclass(batch) and not isinstance(batch, type):
        return replace(
            batch,
            **{
                f.name: move_to_device(getattr(batch, f.name), device)
                for f in fields(batch)
                if f.init
            },
        )
    return batch


@dataclass
class EarlyStopping:
    """Stop when ``metric`` (a key of the validation metrics) has not improved by more than
    ``min_delta`` for ``patience`` epochs; the best weights are restored at the end."""

    metric: str
    mode: str = "max"
    patience: int = 5
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"EarlyStopping: mode must be 'max' or 'min', got {self.mode!r}")

    def improved(self, value: float, best: float | None) -> bool:
        if best is None or math.isnan(best):
            return not math.isnan(value)
        if self.mode == "max":
            return value > best + self.min_delta
        return value < best - self.min_delta


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns. ``history`` has one dict per epoch."""

    history: list[dict[str, Any]]
    best_epoch: int | None
    best_value: float | None
    stopped_early: bool
    epochs_run: int
    resumed_from: int | None = None

    @property
    def best_metrics(self) -> dict[str, Any]:
        if self.best_epoch is None:
            return self.history[-1] if self.history else {}
        return next(h for h in self.history if h["epoch"] == self.best_epoch)


class _Logs:
    """Per-step and per-epoch rows to ``steps.{csv,jsonl}`` and ``epochs.{csv,jsonl}``."""

    def __init__(self, log_dir: str | os.PathLike | None) -> None:
        self.dir = Path(log_dir) if log_dir is not None else None
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self._fields: dict[str, list[str]] = {}

    def _paths(self, kind: str) -> tuple[Path, Path]:
        assert self.dir is not None
        return self.dir / f"{kind}.csv", self.dir / f"{kind}.jsonl"

    def write(self, kind: str, row: dict[str, Any]) -> None:
        if self.dir is None:
            return
        csv_path, jsonl_path = self._paths(kind)
        with open(jsonl_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        names = self._fields.get(kind)
        if names is None:
            if csv_path.exists() and csv_path.stat().st_size:
                with open(csv_path, encoding="utf-8", newline="") as f:
                    names = next(csv.reader(f))
            else:
                names = list(row)
                with open(csv_path, "w", encoding="utf-8", newline="") as f:
                    csv.writer(f).writerow(names)
            self._fields[kind] = names
        with open(csv_path, "a", encoding="utf-8", newline="") as f:
            csv.DictWriter(f, names, extrasaction="ignore").writerow(row)

    def truncate(self, last_epoch: int, last_global_step: int | None = None) -> None:
        """Keep only the rows of what a checkpoint holds: epoch rows up to ``last_epoch`` and
        step rows up to ``last_global_step`` (``None``: up to ``last_epoch``).

        A run killed mid-epoch, or before its first checkpoint, leaves rows of steps that the
        resumed run does again; dropping them makes the resumed log equal the uninterrupted
        one. A torn last line (a kill during a write) is dropped with a warning. Both files are
        rewritten atomically.
        """
        if self.dir is None:
            return
        for kind in ("steps", "epochs"):
            csv_path, jsonl_path = self._paths(kind)
            self._fields.pop(kind, None)
            if not jsonl_path.exists():
                csv_path.unlink(missing_ok=True)
                continue
            rows = _read_log_rows(jsonl_path)
            if kind == "steps" and last_global_step is not None:
                rows = [r for r in rows if r.get("global_step", 0) <= last_global_step]
            else:
                rows = [r for r in rows if r.get("epoch", 0) <= last_epoch]
            if not rows:
                jsonl_path.unlink()
                csv_path.unlink(missing_ok=True)
                continue
            atomic_write_text(jsonl_path, "".join(json.dumps(r) + "\n" for r in rows))
            names = list(rows[0])
            table = io.StringIO(newline="")
            writer = csv.DictWriter(table, names, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
            atomic_write_text(csv_path, table.getvalue())
            self._fields[kind] = names


def _read_log_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``.jsonl`` log. A last line that is not a JSON object (torn by a kill) is
    dropped with a warning; a bad line before the last is a ``ValueError`` naming it."""
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    rows: list[dict[str, Any]] = []
    numbered = [(i, line) for i, line in enumerate(lines, 1) if line.strip()]
    for position, (number, line) in enumerate(numbered):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
        except ValueError as error:
            if position == len(numbered) - 1:
                warnings.warn(
                    f"resume: {path}:{number}: dropping a torn last line "
                    f"(an interrupted write): {line[:60]!r}",
                    RuntimeWarning,
                    stacklevel=4,
                )
                break
            raise ValueError(
                f"resume: {path}:{number}: not a log row ({error}); only a torn last line "
                "is dropped, so fix or remove this line"
            ) from None
        rows.append(row)
    return rows


class UnsafeCheckpointError(ValueError):
    """A checkpoint that ``torch.load(weights_only=True)`` refuses: it asks to build Python
    objects other than tensors and plain types, which a rankloss checkpoint never holds.
    Nothing in it was run."""


class _TornCheckpoint(Exception):
    """A checkpoint that cannot be read at all (empty, or cut short by an interrupted write)."""


_CHECKPOINT_FORMAT = "rankloss.trainer/2"
_CHECKPOINT_KEYS = ("epoch", "global_step", "model", "optimizer", "rng", "history")


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a trainer checkpoint without running code from it (``weights_only=True``).

    Raises :class:`UnsafeCheckpointError` for a file the safe loader refuses,
    :class:`_TornCheckpoint` for one that cannot be read, and ``ValueError`` for a readable
    file that is not a trainer checkpoint.
    """
    if path.stat().st_size == 0:
        raise _TornCheckpoint("the file is empty")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error)
        reason = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0]
        reason = reason.split(" was not an allowed global")[0].split(". ")[0]
        raise UnsafeCheckpointError(
            f"resume: refusing to load checkpoint {path}: the safe loader "
            f"(torch.load(weights_only=True)) rejects it ({reason[:200]}). A rankloss checkpoint "
            "holds only tensors and plain types, so this file was written by something else "
            "(or by rankloss 0.2 or older) or was tampered with; nothing in it was run. "
            "Move it aside to start the run afresh."
        ) from None
    except (EOFError, RuntimeError, KeyError, OSError, ValueError) as error:
        first = str(error).split(". ")[0][:120]
        raise _TornCheckpoint(f"{type(error).__name__}: {first}") from None
    if not isinstance(state, dict) or any(key not in state for key in _CHECKPOINT_KEYS):
        found = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"resume: {path} is not a rankloss trainer checkpoint (it needs the keys "
            f"{list(_CHECKPOINT_KEYS)}, found {found}); move it aside to start afresh"
        )
    return state


def _copy_state(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of ``model.state_dict()``."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _rng_state() -> dict[str, Any]:
    """Every global generator's state as tensors and plain types (safe to load with
    ``weights_only=True``, and restored bit-identically by :func:`_set_rng_state`)."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()  # noqa: NPY002
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (
            str(name),
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            int(position),
            int(has_gauss),
            float(cached_gaussian),
        ),
        "python": {"version": int(version), "state": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    keys = keys.cpu().numpy().astype(np.uint32)
    np.random.set_state((name, keys, position, has_gauss, cached_gaussian))  # noqa: NPY002
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _global_embedding_loss(loss: nn.Module) -> nn.Module:
    """``DistributedLoss(loss, mode="global")``: the embedding loss over every rank's batch
    (a loss it cannot wrap, e.g. a combination, is used on each rank's batch, with a
    warning)."""
    try:
        wrapped: nn.Module = DistributedLoss(cast(Any, loss), mode="global")
    except TypeError as error:
        warnings.warn(
            f"Trainer: {error}; under torch.distributed this loss sees only each rank's own "
            "batch, not the global one",
            RuntimeWarning,
            stacklevel=3,
        )
        return loss
    return wrapped


class Trainer:
    """Train ``model`` on ``task`` with ``loss``.

    Args:
        model: any ``nn.Module`` the task knows how to call.
        task: an object with ``train_batches(generator)``, ``training_step(model, batch,
            loss)`` and ``evaluate(model, split)`` (see :class:`Task`; ready-made ones in
            :mod:`rankloss.train.tasks`).
        loss: a registered loss name (built with ``rankloss.losses.get(name, **loss_options)``),
            a loss module or any callable.
        loss_options: hyper-parameters of a named loss.
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"`` or a callable ``params -> Optimizer``.
        lr, weight_decay, optimizer_options: optimizer settings.
        epochs: maximum number of epochs.
        seed: seeds the global generators when training starts (dropout) and, with the epoch
            number, the generator each epoch's batches are drawn from.
        device: ``"cuda"`` when available, else ``"cpu"`` (default), or any device.
        amp: mixed precision: float16 autocast with a gradient scaler on CUDA, bfloat16
            autocast on CPU.
        grad_clip: clip the global gradient norm to this value.
        early_stopping: an :class:`EarlyStopping`, a dict of its fields, or ``None``.
        validation_split: split evaluated after every epoch (``None``: no validation).
        log_dir: where ``steps.csv/jsonl`` and ``epochs.csv/jsonl`` are written. Without
            ``resume`` (or with nothing to resume from) the logs start afresh: rows of an
            earlier run in the same folder are removed.
        checkpoint_dir: where ``last.pt`` is written atomically after every epoch (model,
            optimizer, scaler, RNG states, early-stopping state, best weights, history); the
            one before it is kept as ``previous.pt``. A checkpoint holds only tensors and
            plain types and is loaded with ``torch.load(weights_only=True)``.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists; the result, and the
            step and epoch logs, equal an uninterrupted run with the same seed. A file the
            safe loader refuses raises :class:`UnsafeCheckpointError` (nothing in it is run);
            an empty or torn ``last.pt`` is moved aside to ``last.pt.torn`` with a warning and
            the run resumes from ``previous.pt``, or starts afresh (warning) when neither can
            be read. Log rows past the checkpoint, and a torn last log line, are dropped.
        progress: show tqdm bars (default: only when stderr is a terminal).
        restore_best: load the best validation weights at the end (with early stopping).
        ema_decay: keep an exponential moving average of the model's weights (Polyak
            averaging): after every optimizer step, ``average = d * average + (1 - d) * w``
            for each floating-point parameter and buffer (others are copied), starting from the
            initial weights. Validation, the choice of the best epoch, the best weights and the
            weights left in the model after :meth:`fit` are the average's; the optimizer steps
            the raw weights. ``0 <= d < 1`` (``0``: the raw weights); ``None`` (default): no
            average. The average is in the checkpoints, so a resumed run equals an
            uninterrupted one. Cost: one copy of the weights and one pass over them per step.
        log_every: write one step row every ``log_every`` steps.
        distributed: train with ``DistributedDataParallel`` across the processes of the
            initialised ``torch.distributed`` group (``None``, the default: when one is
            initialised with more than one process, as under ``torchrun``; ``True`` without
            one is a ``ValueError``).

    Under ``torch.distributed`` (``docs/distributed.md``) every rank builds the same trainer:
    the model is wrapped in ``DistributedDataParallel`` (on CUDA, ``device="cuda"`` or the
    default means ``cuda:LOCAL_RANK``); a task whose ``train_batches``/``evaluate`` take
    ``rank`` and ``world_size`` (:class:`~rankloss.train.LTRTask`,
    :class:`~rankloss.train.EmbeddingTask`) gives each rank its slice of every global batch
    of ``world_size * batch_size`` and merges evaluation across ranks, so that ``N``
    processes with batch ``b`` train as one process with batch ``N * b`` (a list loss of
    :mod:`rankloss.losses` is wrapped in :class:`~rankloss.distributed.DistributedLoss`: each
    rank's sum over the global count of the lists the loss counts, exact however the lists
    and the ones it skips fall on the ranks; another callable's loss is weighted by the rank's
    share of an uneven global batch, :class:`~rankloss.train.tasks.ShardOfLists`, exact when
    it averages over every list); another task's
    batches are dealt out in turn (rank ``r`` takes batches ``r, r + N, ...``) and its
    evaluation runs whole on every rank (rank 0's numbers are used). The task must call the
    model through ``forward`` (the wrapper synchronises gradients there).
    An embedding loss (kind ``"embedding"``) is wrapped in
    :class:`rankloss.distributed.DistributedLoss` (``mode="global"``: the loss sees every
    rank's embeddings); the gradients of a loss's own parameters are averaged across ranks.
    Rank 0 writes the logs and checkpoints while the others wait at a barrier; every rank
    resumes from the same checkpoint; the logged loss is the mean over ranks; a non-finite
    loss on any rank stops every rank, and early stopping is decided the same on all.

    Training stops with ``FloatingPointError`` (naming the epoch, step and parameter) at the
    first non-finite loss, non-finite gradient (checked before the optimizer step, so the
    weights are not updated; skipped under float16 AMP on CUDA, where the gradient scaler
    skips such steps itself) or non-finite weight after an optimizer step.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        loss: str | nn.Module | Callable[..., Tensor],
        *,
        loss_options: Mapping[str, Any] | None = None,
        optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer_options: Mapping[str, Any] | None = None,
        epochs: int = 10,
        seed: int = 0,
        device: str | torch.device | None = None,
        amp: bool = False,
        grad_clip: float | None = None,
        early_stopping: EarlyStopping | Mapping[str, Any] | None = None,
        validation_split: str | None = "validation",
        log_dir: str | os.PathLike | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
        progress: bool | None = None,
        restore_best: bool = True,
        log_every: int = 1,
        distributed: bool | None = None,
        ema_decay: float | None = None,
    ) -> None:
        # Checked before the model is moved or anything is built.
        check.positive_int("Trainer", "epochs", epochs)
        check.positive("Trainer", "lr", lr)
        check.nonnegative("Trainer", "weight_decay", weight_decay)
        if grad_clip is not None:
            check.positive("Trainer", "grad_clip", grad_clip)
        check.positive_int("Trainer", "log_every", log_every)
        if ema_decay is not None:
            ema_decay = check.decay("Trainer", "ema_decay", ema_decay)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"Trainer: seed must be an int, got {type(seed).__name__}")
        if distributed is None:
            distributed = _dist.is_distributed()
        elif check.boolean("Trainer", "distributed", distributed) and not _dist.is_distributed():
            raise ValueError(
                "Trainer: distributed=True needs an initialised torch.distributed process group "
                "with more than one process (run under torchrun), got none"
            )
        self.distributed = bool(distributed)
        self.rank = _dist.get_rank() if self.distributed else 0
        self.world_size = _dist.get_world_size() if self.distributed else 1
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.distributed and self.device.type == "cuda" and self.device.index is None:
            local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
            self.device = torch.device("cuda", local_rank % torch.cuda.device_count())
        if self.distributed and self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.model = model.to(self.device)
        self.task = task
        # Modules of the task that train beside the model (a text task's query tower): their
        # weights are optimised, switched to eval mode, checkpointed, averaged and restored
        # with the model's, as parts of one module (``_weights``).
        extra = tuple(getattr(task, "trainable_modules", lambda: ())())
        for module in extra:
            module.to(self.device)
        self._weights: nn.Module = nn.ModuleList([self.model, *extra]) if extra else self.model
        self.loss = build_loss(loss, **dict(loss_options or {}))
        _check_task_loss(task, self.loss)
        if isinstance(self.loss, nn.Module):
            self.loss = self.loss.to(self.device)
        #: What training calls: the model itself, or its DistributedDataParallel wrapper (whose
        #: construction copies rank 0's weights to every rank), and the loss itself, or an
        #: embedding loss wrapped to see every rank's embeddings.
        self.train_model: nn.Module = self.model
        self.train_loss: Callable[..., Tensor] = self.loss
        if self.distributed and extra:
            raise ValueError(
                f"Trainer: {type(task).__name__} trains modules beside the model (a "
                "query_model), which distributed training does not synchronise; train one "
                "model, or run in one process"
            )
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=ids)
            if getattr(self.loss, "kind", None) == "embedding":
                self.train_loss = _global_embedding_loss(cast(nn.Module, self.loss))
            elif isinstance(self.loss, ListLoss) and self.loss.reduction != "none":
                # Each rank's sum over the global count of valid lists: the mean over ranks
                # that DDP takes is the global batch's mean, whatever each rank holds.
                self.train_loss = DistributedLoss(self.loss)
        self.optimizer = self._build_optimizer(optimizer, lr, weight_decay, optimizer_options)
        self.epochs, self.seed = int(epochs), int(seed)
        self.amp, self.grad_clip = bool(amp), grad_clip
        if isinstance(early_stopping, Mapping):
            early_stopping = EarlyStopping(**early_stopping)
        self.early_stopping = early_stopping
        self.validation_split = validation_split
        self.logs = _Logs(log_dir if self.rank == 0 else None)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.resume = resume
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.restore_best, self.log_every = restore_best, max(1, int(log_every))
        use_scaler = self.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        # state
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.best_state: dict[str, Tensor] | None = None
        self.stopped_early = False
        self.ema_decay = ema_decay
        #: The moving average of the model's state (``ema_decay``), or ``None``.
        self.ema_state: dict[str, Tensor] | None = (
            None if ema_decay is None else _copy_state(self._weights)
        )

    # ------------------------------------------------------------------ setup
    def _build_optimizer(
        self,
        optimizer: str | Callable[..., torch.optim.Optimizer],
        lr: float,
        weight_decay: float,
        options: Mapping[str, Any] | None,
    ) -> torch.optim.Optimizer:
        params = [p for p in self._weights.parameters() if p.requires_grad]
        if isinstance(self.loss, nn.Module):
            params += [p for p in self.loss.parameters() if p.requires_grad]
        options = dict(options or {})
        if callable(optimizer) and not isinstance(optimizer, str):
            return optimizer(params)
        kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
        if optimizer not in kinds:
            raise ValueError(f"unknown optimizer {optimizer!r}; use one of {sorted(kinds)}")
        return kinds[optimizer](params, lr=lr, weight_decay=weight_decay, **options)

    def _autocast(self) -> torch.autocast:
        if not self.amp:
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(_torch_seed(self.seed * 1_000_003 + epoch))

    def _bar(self, iterable: Iterable[Any], **kwargs: Any) -> Iterable[Any]:
        if not self.progress:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, leave=False, dynamic_ncols=True, **kwargs)

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / "last.pt" if self.checkpoint_dir is not None else None

    def state_dict(self) -> dict[str, Any]:
        """The whole training state, as tensors and plain types only."""
        return {
            "format": _CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self._weights.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "loss": self.loss.state_dict() if isinstance(self.loss, nn.Module) else None,
            "rng": _rng_state(),
            "history": self.history,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
            "stopped_early": self.stopped_early,
            "seed": self.seed,
            "ema": self.ema_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._weights.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if state.get("loss") is not None and isinstance(self.loss, nn.Module):
            self.loss.load_state_dict(state["loss"])
        _set_rng_state(state["rng"])
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.history = list(state["history"])
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]
        self.stopped_early = state["stopped_early"]
        if self.ema_decay is not None:
            if state.get("ema") is None:
                raise ValueError(
                    "resume: the checkpoint was written without ema_decay, so it holds no "
                    "moving average to continue; resume with ema_decay=None or start afresh"
                )
            # the checkpoint loads on the CPU: keep each average beside its weight
            weights = self._weights.state_dict()
            self.ema_state = {k: v.to(weights[k].device) for k, v in state["ema"].items()}

    def save_checkpoint(self) -> None:
        """Write ``last.pt`` atomically, keeping the one before as ``previous.pt``."""
        path = self.checkpoint_path
        if path is not None and self.rank == 0:
            state = self.state_dict()
            previous = path.with_name("previous.pt")
            atomic_write_keeping_previous(path, lambda handle: torch.save(state, handle), previous)
        if path is not None and self.distributed:
            _dist.barrier()  # no rank runs ahead of (or resumes from) a half-written checkpoint

    def _resume_state(self) -> dict[str, Any] | None:
        """The newest readable checkpoint (``last.pt``, else ``previous.pt``), or ``None``.

        An unreadable (empty or torn) file is renamed to ``<name>.torn`` with a warning, so the
        good one is not rotated away by the next save. A file the safe loader refuses raises.
        """
        path = self.checkpoint_path
        if path is None:
            return None
        previous = path.with_name("previous.pt")
        last_was_missing = not path.exists()
        seen = False
        for candidate in (path, previous):
            if not candidate.exists():
                continue
            seen = True
            try:
                state = _load_checkpoint(candidate)
            except _TornCheckpoint as error:
                torn = candidate.with_name(candidate.name + ".torn")
                os.replace(candidate, torn)
                fallback = (
                    f"trying {previous.name}"
                    if candidate == path and previous.exists()
                    else "no older checkpoint"
                )
                warnings.warn(
                    f"resume: checkpoint {candidate} cannot be read ({error}); it looks cut "
                    f"short by an interrupted write. Moved it to {torn.name}; {fallback}.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                continue
            if candidate == previous and last_was_missing:
                warnings.warn(
                    f"resume: resuming from {previous} (epoch {state['epoch']}): {path.name} is "
                    "missing or unreadable",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return state
        if seen:
            warnings.warn(
                f"resume: no readable checkpoint in {path.parent}; starting the run afresh",
                RuntimeWarning,
                stacklevel=3,
            )
        return None

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        """Train until ``epochs`` or early stopping; returns a :class:`TrainResult`."""
        resumed_from = None
        state = None
        if self.resume:
            # Under torch.distributed rank 0 reads first (moving a torn file aside), then the
            # others read the same checkpoint.
            state = self._resume_state() if self.rank == 0 else None
            if self.distributed:
                _dist.barrier()
                if self.rank != 0:
                    state = self._resume_state()
        if state is not None:
            if state.get("seed", self.seed) != self.seed:
                raise ValueError(
                    f"resume: checkpoint was written with seed {state['seed']}, not {self.seed}"
                )
            self.load_state_dict(state)
            self.logs.truncate(self.epoch, self.global_step)
            resumed_from = self.epoch
        else:
            # A fresh start: rows of an attempt killed before its first checkpoint, or of an
            # earlier run in the same log_dir, are removed.
            self.logs.truncate(0, 0)
            seed_everything(self.seed)
        while self.epoch < self.epochs and not self.stopped_early:
            self._train_epoch()
        if self.restore_best and self.best_state is not None:
            self._weights.load_state_dict(self.best_state)
        elif self.ema_state is not None:
            self._weights.load_state_dict(self.ema_state)
        return TrainResult(
            self.history,
            self.best_epoch,
            self.best_value,
            self.stopped_early,
            self.epoch,
            resumed_from,
        )

    def _train_epoch(self) -> None:
        epoch = self.epoch + 1
        self._weights.train()
        start = time.perf_counter()
        total, count = 0.0, 0
        batches = self._train_batches(epoch)
        bar = self._bar(batches, desc=f"epoch {epoch}/{self.epochs}")
        for step, batch in enumerate(bar, 1):
            batch = move_to_device(batch, self.device)
            with self._autocast():
                value = self.task.training_step(self.train_model, batch, self.train_loss)
            if self.distributed:
                # One all-reduce: the mean loss over ranks, non-finite if any rank's is.
                loss_value = _dist.sum_over_ranks(float(value.detach())) / self.world_size
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"loss is {loss_value} (mean over ranks; {value.item()} on rank "
                        f"{self.rank}) at epoch {epoch}, step {step}"
                    )
            elif not torch.isfinite(value):
                raise FloatingPointError(f"loss is {value.item()} at epoch {epoch}, step {step}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(value).backward()
            if self.distributed:
                self._average_loss_gradients()
            else:
                loss_value = float(value.detach())
            where = f"epoch {epoch}, step {step} (global step {self.global_step + 1})"
            if not self.scaler.is_enabled():  # the scaler skips non-finite steps itself
                self._check_finite("gradient", where, loss_value)
            grad_norm = None
            if self.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.grad_clip))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self._check_finite("weight", where, loss_value)
            self._update_average()
            self.global_step += 1
            total, count = total + loss_value, count + 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss_value:.4f}")
            if self.global_step % self.log_every == 0:
                row = {
                    "epoch": epoch,
                    "step": step,
                    "global_step": self.global_step,
                    "loss": loss_value,
                    "lr": self.optimizer.param_groups[0]["lr"],
                }
                if grad_norm is not None:
                    row["grad_norm"] = grad_norm
                self.logs.write("steps", row)
        with self._averaged_weights():
            metrics: dict[str, float] = {}
            if self.validation_split is not None:
                metrics = self.evaluate(self.validation_split)
            self.epoch = epoch
            self._early_stopping(metrics)  # keeps the weights validated as the best ones
        row = {
            "epoch": epoch,
            "train_loss": total / max(count, 1),
            "steps": count,
            "seconds": round(time.perf_counter() - start, 3),
        }
        row.update({f"{self.validation_split}/{k}": v for k, v in metrics.items()})
        if self.distributed:  # the same metrics give the same decision; make sure of it
            self.stopped_early = _dist.any_rank(self.stopped_early)
        row["best_epoch"] = self.best_epoch
        self.history.append(row)
        self.logs.write("epochs", row)
        self.save_checkpoint()

    @torch.no_grad()
    def _update_average(self) -> None:
        """One step of the moving average of the weights (``ema_decay``)."""
        if self.ema_state is None or self.ema_decay is None:
            return
        for name, value in self._weights.state_dict().items():
            average = self.ema_state[name]
            if average.is_floating_point():
                average.lerp_(value, 1.0 - self.ema_decay)
            else:
                average.copy_(value)

    @contextlib.contextmanager
    def _averaged_weights(self) -> Iterator[None]:
        """The model holds the moving average inside the block (nothing changes without
        ``ema_decay``), and its raw weights again after it."""
        if self.ema_state is None:
            yield
            return
        raw = _copy_state(self._weights)
        self._weights.load_state_dict(self.ema_state)
        try:
            yield
        finally:
            self._weights.load_state_dict(raw)

    def _train_batches(self, epoch: int) -> Iterable[Any]:
        """This rank's batches of epoch ``epoch`` (all of them in one process)."""
        generator = self._epoch_generator(epoch)
        if not self.distributed:
            return self.task.train_batches(generator)
        wanted = {"rank", "world_size"}
        try:
            takes = wanted <= set(inspect.signature(self.task.train_batches).parameters)
        except (TypeError, ValueError):
            takes = False
        if takes:
            return cast(Any, self.task).train_batches(
                generator, rank=self.rank, world_size=self.world_size
            )
        return self._dealt(self.task.train_batches(generator))

    def _dealt(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Batches ``rank, rank + N, ...``, only from whole groups of ``N`` (ranks stay in
        step), read lazily."""
        group: list[Any] = []
        for batch in batches:
            group.append(batch)
            if len(group) == self.world_size:
                yield group[self.rank]
                group = []

    def _average_loss_gradients(self) -> None:
        """Average the gradients of the loss's own parameters (proxies, ...) over ranks, as
        DistributedDataParallel does for the model's."""
        if not isinstance(self.loss, nn.Module):
            return
        import torch.distributed as dist

        for parameter in self.loss.parameters():
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
                parameter.grad.div_(self.world_size)

    def _check_finite(self, what: str, where: str, loss_value: float) -> None:
        """Raise ``FloatingPointError`` naming the first parameter whose gradient (``what ==
        "gradient"``) or value (``"weight"``) holds NaN or inf."""
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        tensors = [(p.grad if what == "gradient" else p) for p in params]
        present = [(p, t) for p, t in zip(params, tensors) if t is not None]
        if not present:
            return
        finite = torch.stack([torch.isfinite(t).all() for _, t in present])
        if bool(finite.all()):
            return
        bad_param, bad = present[int((~finite).nonzero()[0])]
        names = {id(p): n for n, p in self._weights.named_parameters()}
        if isinstance(self.loss, nn.Module):
            names.update({id(p): f"loss.{n}" for n, p in self.loss.named_parameters()})
        name = names.get(id(bad_param), f"#{[id(p) for p, _ in present].index(id(bad_param))}")
        detail = bad.detach()
        count = int((~torch.isfinite(detail)).sum())
        kind = "NaN" if bool(torch.isnan(detail).any()) else "inf"
        if what == "gradient":
            raise FloatingPointError(
                f"Trainer: non-finite gradient ({count} {kind} of {detail.numel()}) in "
                f"parameter {name!r} at {where}, although the loss was {loss_value:.6g}; the "
                "weights were not updated. Look for NaN or inf in this batch's labels, scores "
                "or features."
            )
        raise FloatingPointError(
            f"Trainer: parameter {name!r} became non-finite ({count} {kind} of "
            f"{detail.numel()}) after the optimizer step at {where}; the loss was "
            f"{loss_value:.6g}. Lower the learning rate or clip gradients (grad_clip=...)."
        )

    def _early_stopping(self, metrics: dict[str, float]) -> None:
        es = self.early_stopping
        if es is None:
            return
        if es.metric not in metrics:
            raise KeyError(
                f"early stopping metric {es.metric!r} not among validation metrics "
                f"{sorted(metrics)}"
            )
        value = float(metrics[es.metric])
        if es.improved(value, self.best_value):
            self.best_value, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            self.best_state = _copy_state(self._weights)
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= es.patience:
                self.stopped_early = True

    @torch.no_grad()
    def evaluate(self, split: str = "test") -> dict[str, float]:
        """The task's metrics of the current model on ``split``."""
        was = self._weights.training
        self._weights.eval()
        try:
            with self._autocast():
                return self._evaluate(split)
        finally:
            self._weights.train(was)

    def _evaluate(self, split: str) -> dict[str, float]:
        if not self.distributed:
            return {k: float(v) for k, v in self.task.evaluate(self.model, split).items()}
        try:
            parameters = inspect.signature(self.task.evaluate).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        if {"rank", "world_size"} <= set(parameters):
            merged = cast(Any, self.task).evaluate(
                self.model, split, rank=self.rank, world_size=self.world_size
            )
            return {k: float(v) for k, v in merged.items()}
        # A task that cannot merge across ranks evaluates everything on every rank.
        values = {k: float(v) for k, v in self.task.evaluate(self.model, split).items()}
        return cast(dict[str, float], _dist.broadcast_object(values))
