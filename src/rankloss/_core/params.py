"""Hyper-parameter checks with one message form: ``"<where>: <name> must be ..., got ..."``.

Every loss checks its hyper-parameters twice with these helpers: when its module is built
(``where`` is the class name) and when its function is entered (``where`` is the function
name). A value of the wrong type is a ``TypeError``; a value of the right type outside the
allowed range is a ``ValueError``. Each helper returns the value (as ``float``/``int`` where
it checks a number) so that a module can store what it checked in one line.

>>> positive("RankNetLoss", "sigma", 2)
2.0
>>> positive("RankNetLoss", "sigma", -1.0)
Traceback (most recent call last):
    ...
ValueError: RankNetLoss: sigma must be > 0, got -1.0
"""

from __future__ import annotations

import math
from typing import TypeVar

from torch import Tensor

__all__ = [
    "number",
    "positive",
    "nonnegative",
    "in_range",
    "decay",
    "cutoff",
    "positive_int",
    "nonnegative_int",
    "boolean",
    "choice",
    "temperature",
]

S = TypeVar("S", bound=str)


def number(where: str, name: str, value: object) -> float:
    """A finite real number (``bool`` is refused: it is almost always a misplaced flag)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where}: {name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    return float(value)


def positive(where: str, name: str, value: object) -> float:
    """A finite number > 0."""
    x = number(where, name, value)
    if not x > 0:
        raise ValueError(f"{where}: {name} must be > 0, got {value!r}")
    return x


def nonnegative(where: str, name: str, value: object) -> float:
    """A finite number >= 0."""
    x = number(where, name, value)
    if not x >= 0:
        raise ValueError(f"{where}: {name} must be >= 0, got {value!r}")
    return x


def in_range(
    where: str, name: str, value: object, low: float, high: float, *, closed: bool = True
) -> float:
    """A finite number in ``[low, high]`` (or ``(low, high)`` when ``closed=False``)."""
    x = number(where, name, value)
    ok = low <= x <= high if closed else low < x < high
    if not ok:
        bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ValueError(f"{where}: {name} must be in {bounds}, got {value!r}")
    return x


def decay(where: str, name: str, value: object) -> float:
    """A moving average's decay: a finite number in ``[0, 1)``."""
    x = number(where, name, value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {value!r}")
    return x


def positive_int(where: str, name: str, value: object) -> int:
    """An ``int`` >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def nonnegative_int(where: str, name: str, value: object) -> int:
    """An ``int`` >= 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{where}: {name} must be >= 0, got {value!r}")
    return value


def cutoff(where: str, name: str, value: object) -> int | None:
    """A rank cut-off: ``None`` (the whole list) or an ``int`` >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: {name} must be an int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer or None, got {value!r}")
    return value


def boolean(where: str, name: str, value: object) -> bool:
    """A ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{where}: {name} must be a bool, got {type(value).__name__}")
    return value


def choice(where: str, name: str, value: S, choices: tuple[str, ...]) -> S:
    """One of ``choices`` (strings). An empty ``where`` leaves the prefix out."""
    prefix = f"{where}: " if where else ""
    if not isinstance(value, str):
        raise TypeError(f"{prefix}{name} must be a str, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{prefix}{name} must be one of {list(choices)}, got {value!r}")
    return value


def temperature(where: str, name: str, value: object) -> float | Tensor:
    """A temperature: a number > 0, or a scalar tensor (a learnable one is checked by its owner)."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{where}: {name} must be a scalar, got shape {list(value.shape)}")
        return value
    return positive(where, name, value)
