"""One trainer for every application area.

The :class:`Trainer` owns the loop (seeding, device, mixed precision, gradient clipping,
validation, early stopping, logging, atomic checkpoints and exact resume); a *task* owns the
data and the maths: how to iterate training batches, how to turn a batch into a loss, and how to
evaluate a split (see :mod:`rankloss.train.tasks`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from rankloss._io import atomic_write

__all__ = [
    "Task",
    "Trainer",
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
    torch.manual_seed(seed)


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

    def truncate(self, last_epoch: int) -> None:
        """Drop rows after epoch ``last_epoch`` (a run that stopped mid-epoch and resumes)."""
        if self.dir is None:
            return
        for kind in ("steps", "epochs"):
            csv_path, jsonl_path = self._paths(kind)
            if not jsonl_path.exists():
                continue
            rows = [
                json.loads(line)
                for line in jsonl_path.read_text("utf-8").splitlines()
                if line.strip()
            ]
            rows = [r for r in rows if r.get("epoch", 0) <= last_epoch]
            jsonl_path.unlink()
            csv_path.unlink(missing_ok=True)
            self._fields.pop(kind, None)
            for r in rows:
                self.write(kind, r)


def _atomic_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle))


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
        log_dir: where ``steps.csv/jsonl`` and ``epochs.csv/jsonl`` are written.
        checkpoint_dir: where ``last.pt`` is written atomically after every epoch (model,
            optimizer, scaler, RNG states, early-stopping state, best weights, history).
        resume: continue from ``checkpoint_dir/last.pt`` if it exists; the result equals an
            uninterrupted run with the same seed.
        progress: show tqdm bars (default: only when stderr is a terminal).
        restore_best: load the best validation weights at the end (with early stopping).
        log_every: write one step row every ``log_every`` steps.
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
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device)
        self.task = task
        self.loss = build_loss(loss, **dict(loss_options or {}))
        _check_task_loss(task, self.loss)
        if isinstance(self.loss, nn.Module):
            self.loss = self.loss.to(self.device)
        self.optimizer = self._build_optimizer(optimizer, lr, weight_decay, optimizer_options)
        self.epochs, self.seed = int(epochs), int(seed)
        self.amp, self.grad_clip = bool(amp), grad_clip
        if isinstance(early_stopping, Mapping):
            early_stopping = EarlyStopping(**early_stopping)
        self.early_stopping = early_stopping
        self.validation_split = validation_split
        self.logs = _Logs(log_dir)
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

    # ------------------------------------------------------------------ setup
    def _build_optimizer(
        self,
        optimizer: str | Callable[..., torch.optim.Optimizer],
        lr: float,
        weight_decay: float,
        options: Mapping[str, Any] | None,
    ) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
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
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)

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
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
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

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is not None:
            _atomic_save(self.state_dict(), self.checkpoint_path)

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        """Train until ``epochs`` or early stopping; returns a :class:`TrainResult`."""
        resumed_from = None
        path = self.checkpoint_path
        if self.resume and path is not None and path.exists():
            state = torch.load(path, map_location=self.device, weights_only=False)
            if state.get("seed", self.seed) != self.seed:
                raise ValueError(
                    f"resume: checkpoint was written with seed {state['seed']}, not {self.seed}"
                )
            self.load_state_dict(state)
            self.logs.truncate(self.epoch)
            resumed_from = self.epoch
        else:
            seed_everything(self.seed)
        while self.epoch < self.epochs and not self.stopped_early:
            self._train_epoch()
        if self.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
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
        self.model.train()
        start = time.perf_counter()
        total, count = 0.0, 0
        batches = self.task.train_batches(self._epoch_generator(epoch))
        bar = self._bar(batches, desc=f"epoch {epoch}/{self.epochs}")
        for step, batch in enumerate(bar, 1):
            batch = move_to_device(batch, self.device)
            with self._autocast():
                value = self.task.training_step(self.model, batch, self.loss)
            if not torch.isfinite(value):
                raise FloatingPointError(f"loss is {value.item()} at epoch {epoch}, step {step}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(value).backward()
            grad_norm = None
            if self.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.grad_clip))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.global_step += 1
            loss_value = float(value.detach())
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
        metrics: dict[str, float] = {}
        if self.validation_split is not None:
            metrics = self.evaluate(self.validation_split)
        row = {
            "epoch": epoch,
            "train_loss": total / max(count, 1),
            "steps": count,
            "seconds": round(time.perf_counter() - start, 3),
        }
        row.update({f"{self.validation_split}/{k}": v for k, v in metrics.items()})
        self.epoch = epoch
        self._early_stopping(metrics)
        row["best_epoch"] = self.best_epoch
        self.history.append(row)
        self.logs.write("epochs", row)
        self.save_checkpoint()

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
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= es.patience:
                self.stopped_early = True

    @torch.no_grad()
    def evaluate(self, split: str = "test") -> dict[str, float]:
        """The task's metrics of the current model on ``split``."""
        was = self.model.training
        self.model.eval()
        try:
            with self._autocast():
                return {k: float(v) for k, v in self.task.evaluate(self.model, split).items()}
        finally:
            self.model.train(was)
