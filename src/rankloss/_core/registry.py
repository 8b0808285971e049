"""A small registry: name -> component, filled where each component is defined."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "Entry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its name, the object, a family tag and free-form metadata."""

    name: str
    obj: T
    family: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Maps names to components.

    >>> r = Registry("widgets")
    >>> r.register("a", int, family="numbers")
    <class 'int'>
    >>> r.names()
    ['a']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, obj: T, *, family: str = "", **meta: Any) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, obj, family, dict(meta))
        return obj

    def decorator(self, name: str, *, family: str = "", **meta: Any) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            return self.register(name, obj, family=family, **meta)

        return wrap

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}{hint} Available: {', '.join(self.names())}"
            ) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self, family: str | None = None) -> list[str]:
        return [n for n, e in self._entries.items() if family is None or e.family == family]

    def families(self) -> list[str]:
        return sorted({e.family for e in self._entries.values()})

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
