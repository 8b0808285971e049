"""Text transforms, on strings and on token-id tensors.

Every transform takes either

* a sentence ``str`` or a batch ``list[str]`` (word level: words are split on white space and
  joined with one space), returning the same kind; the randomness is a ``random.Random``
  seeded from the call's ``torch.Generator``, so string and tensor inputs share one contract;
* or token ids ``[N, L]`` (an integer tensor) where ``pad_id`` marks padding, anywhere in the
  row. The result is ``[N, L]`` too, with the real tokens first and ``pad_id`` after them
  (right padding), so ``mask = out != pad_id``. This path is vectorised (no loop over rows).

Each sentence keeps at least one word or token. :class:`SynonymReplacement` works on strings
only and needs a WordNet database (see :mod:`rankloss.augment.wordnet`).
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Collection, Iterable, Sequence

import torch
from torch import Tensor

from rankloss.augment.base import Transform, check_probability, draw_uniform, python_rng
from rankloss.augment.wordnet import POS_FILES, WordNet

__all__ = [
    "WordDropout",
    "SpanDeletion",
    "LocalShuffle",
    "RandomInsertion",
    "RandomSwap",
    "SynonymReplacement",
    "DEFAULT_STOPWORDS",
]

DEFAULT_STOPWORDS = frozenset(
    """a an the and or but if of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once
    here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now i me my myself we our ours
    you your yours he him his she her hers it its they them their what which who whom this that
    these those am is are was were be been being have has had having do does did doing would
    could""".split()
)

_WORD = re.compile(r"^(\W*)([A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z])(\W*)$")


class _TextTransform(Transform):
    """Dispatch: ``str`` / ``list[str]`` -> :meth:`words`; ``[N, L]`` ints -> :meth:`tokens`."""

    pad_id: int = 0

    def apply(
        self,
        x: str | Sequence[str] | Tensor,
        generator: torch.Generator,
        *,
        mask: Tensor | None = None,
    ) -> str | list[str] | Tensor:
        self._no_mask(mask)
        if isinstance(x, Tensor):
            if x.dim() != 2 or x.dtype.is_floating_point or x.dtype == torch.bool:
                raise ValueError(
                    f"{type(self).__name__}: token ids must be an integer tensor [N, L], "
                    f"got {x.dtype} {list(x.shape)}"
                )
            if x.shape[1] == 0:  # rows without tokens: nothing to drop, swap or insert
                return x.clone()
            return self.tokens(x, generator)
        rng = python_rng(generator)
        if isinstance(x, str):
            return " ".join(self.words(x.split(), rng))
        if isinstance(x, Sequence) and all(isinstance(s, str) for s in x):
            return [" ".join(self.words(s.split(), rng)) for s in x]
        raise TypeError(
            f"{type(self).__name__}: expected a str, a list of str or an [N, L] tensor of "
            f"token ids, got {type(x).__name__}"
        )

    def words(self, words: list[str], rng: random.Random) -> list[str]:
        raise NotImplementedError

    def tokens(self, ids: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError


# ---- helpers for token tensors -------------------------------------------------------------


def _compact(ids: Tensor, keep: Tensor, pad_id: int) -> Tensor:
    """Move the kept tokens to the front (order preserved); fill the rest with ``pad_id``."""
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)
    out = torch.gather(ids, 1, order)
    n_keep = keep.sum(1, keepdim=True)
    cols = torch.arange(ids.shape[1], device=ids.device)
    return torch.where(cols < n_keep, out, torch.full_like(out, pad_id))


def _by_key(ids: Tensor, key: Tensor, real: Tensor, pad_id: int) -> Tensor:
    """Reorder real tokens by ``key`` (padding last)."""
    key = torch.where(real, key, torch.full_like(key, math.inf))
    out = torch.gather(ids, 1, torch.argsort(key, dim=1, stable=True))
    cols = torch.arange(ids.shape[1], device=ids.device)
    return torch.where(cols < real.sum(1, keepdim=True), out, torch.full_like(out, pad_id))


def _rank(real: Tensor) -> Tensor:
    """Index of each real token among the real tokens of its row."""
    return real.long().cumsum(1) - 1


def _u(shape: Sequence[int], generator: torch.Generator, device: torch.device) -> Tensor:
    return draw_uniform(shape, generator, device)


# ---- transforms ----------------------------------------------------------------------------


class WordDropout(_TextTransform):
    """Drop each word (token) with probability ``p``; at least one is kept."""

    def __init__(self, p: float = 0.1, *, pad_id: int = 0) -> None:
        self.p = check_probability("p", p)
        self.pad_id = pad_id

    def words(self, words: list[str], rng: random.Random) -> list[str]:
        kept = [w for w in words if rng.random() >= self.p]
        if words and not kept:
            kept = [words[rng.randrange(len(words))]]
        return kept

    def tokens(self, ids: Tensor, generator: torch.Generator) -> Tensor:
        real = ids != self.pad_id
        keep = real & (_u(ids.shape, generator, ids.device) >= self.p)
        rescue = (keep.sum(1) == 0) & real.any(1)
        first = real.long().argmax(1)
        keep[rescue, first[rescue]] = True
        return _compact(ids, keep, self.pad_id)


class SpanDeletion(_TextTransform):
    """Delete one contiguous span of 1 to ``max_fraction`` of the words; one word remains."""

    def __init__(self, max_fraction: float = 0.3, *, pad_id: int = 0) -> None:
        self.max_fraction = check_probability("max_fraction", max_fraction)
        self.pad_id = pad_id

    def words(self, words: list[str], rng: random.Random) -> list[str]:
        m = len(words)
        if m <= 1 or self.max_fraction == 0:
            return list(words)
        span = min(rng.randint(1, max(1, int(self.max_fraction * m))), m - 1)
        start = rng.randrange(m - span + 1)
        return words[:start] + words[start + span :]

    def tokens(self, ids: Tensor, generator: torch.Generator) -> Tensor:
        real = ids != self.pad_id
        m = real.sum(1)
        u = _u([2, ids.shape[0]], generator, ids.device)
        longest = (self.max_fraction * m).floor().clamp(min=1)
        span = (1 + (u[0] * longest).floor()).clamp(max=longest)
        span = torch.minimum(span, (m - 1).clamp(min=0).to(span.dtype))
        if self.max_fraction == 0:
            span = torch.zeros_like(span)
        start = (u[1] * (m - span + 1)).floor()
        rank = _rank(real)
        delete = real & (rank >= start[:, None]) & (rank < (start + span)[:, None])
        return _compact(ids, real & ~delete, self.pad_id)


class LocalShuffle(_TextTransform):
    """Shuffle words locally: each word moves fewer than ``window`` positions.

    Word ``i`` is sorted by ``i + U(0, window)``; ``window <= 1`` leaves the order unchanged.
    """

    def __init__(self, window: float = 3.0, *, pad_id: int = 0) -> None:
        if window < 0:
            raise ValueError(f"window must be non-negative, got {window}")
        self.window = float(window)
        self.pad_id = pad_id

    def words(self, words: list[str], rng: random.Random) -> list[str]:
        keys = [i + rng.random() * self.window for i in range(len(words))]
        return [w for _, w in sorted(zip(keys, words, strict=True), key=lambda kw: kw[0])]

    def tokens(self, ids: Tensor, generator: torch.Generator) -> Tensor:
        real = ids != self.pad_id
        key = _rank(real).float() + _u(ids.shape, generator, ids.device) * self.window
        return _by_key(ids, key, real, self.pad_id)


class RandomInsertion(_TextTransform):
    """Insert ``n`` words at random positions.

    An inserted word is a copy of a random word of the same sentence or, when ``wordnet`` is
    given (a :class:`~rankloss.augment.wordnet.WordNet` or its path), a synonym of one (EDA).
    Token ids: a copy of a random token of the row; a full row drops its last tokens.
    """

    def __init__(
        self,
        n: int = 1,
        *,
        wordnet: WordNet | str | os.PathLike[str] | None = None,
        pad_id: int = 0,
    ) -> None:
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        self.n = int(n)
        self.wordnet = _as_wordnet(wordnet)
        self.pad_id = pad_id

    def words(self, words: list[str], rng: random.Random) -> list[str]:
        out = list(words)
        if not words:
            return out
        for _ in range(self.n):
            word = words[rng.randrange(len(words))]
            if self.wordnet is not None:
                candidates = [w for w in words if _synonyms(self.wordnet, w)]
                if candidates:
                    word = rng.choice(_synonyms(self.wordnet, rng.choice(candidates)))
            out.insert(rng.randint(0, len(out)), word)
        return out

    def tokens(self, ids: Tensor, generator: torch.Generator) -> Tensor:
        if self.n == 0:
            return _compact(ids, ids != self.pad_id, self.pad_id)
        real = ids != self.pad_id
        n_rows, length = ids.shape
        m = real.sum(1, keepdim=True)
        compact = _compact(ids, real, self.pad_id)
        u = _u([2, n_rows, self.n], generator, ids.device)
        source = (u[0] * m).floor().long().clamp(max=length - 1)
        inserted = torch.gather(compact, 1, source)
        # an inserted token with key k - 0.5 lands just before original token k
        slot = (u[1] * (m + 1)).floor().clamp(max=m) - 0.5
        has_words = (m > 0).expand_as(slot)
        key_new = torch.where(has_words, slot, torch.full_like(slot, math.inf))
        cols = torch.arange(length, device=ids.device).expand(n_rows, length)
        key_old = torch.where(cols < m, cols.float(), torch.full_like(cols, 0).float() + math.inf)
        key = torch.cat([key_old, key_new], 1)
        merged = torch.cat([compact, inserted], 1)
        out = torch.gather(merged, 1, torch.argsort(key, dim=1, stable=True))[:, :length]
        n_real = (m + has_words.sum(1, keepdim=True)).clamp(max=length)
        return torch.where(cols < n_real, out, torch.full_like(out, self.pad_id))


class RandomSwap(_TextTransform):
    """Swap two random words, ``n`` times."""

    def __init__(self, n: int = 1, *, pad_id: int = 0) -> None:
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        self.n = int(n)
        self.pad_id = pad_id

    def words(self, words: list[str], rng: random.Random) -> list[str]:
        out = list(words)
        for _ in range(self.n if len(out) > 1 else 0):
            i, j = rng.randrange(len(out)), rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
        return out

    def tokens(self, ids: Tensor, generator: torch.Generator) -> Tensor:
        real = ids != self.pad_id
        out = _compact(ids, real, self.pad_id)
        m = real.sum(1, keepdim=True)
        u = _u([self.n, 2, ids.shape[0], 1], generator, ids.device)
        for k in range(self.n):
            i = (u[k, 0] * m).floor().long().clamp(max=ids.shape[1] - 1)
            j = (u[k, 1] * m).floor().long().clamp(max=ids.shape[1] - 1)
            ti, tj = torch.gather(out, 1, i), torch.gather(out, 1, j)
            out = out.scatter(1, i, tj).scatter(1, j, ti)
        return out


def _as_wordnet(wordnet: WordNet | str | os.PathLike[str] | None) -> WordNet | None:
    if wordnet is None or isinstance(wordnet, WordNet):
        return wordnet
    if isinstance(wordnet, (str, os.PathLike)):
        return WordNet(wordnet)
    raise TypeError(f"wordnet must be a WordNet, a path or None, got {type(wordnet).__name__}")


def _synonyms(
    wordnet: WordNet, token: str, stopwords: Collection[str] = DEFAULT_STOPWORDS
) -> list[str]:
    match = _WORD.match(token)
    if match is None or match.group(2).lower() in stopwords:
        return []
    return wordnet.synonyms(match.group(2))


class SynonymReplacement(_TextTransform):
    """Replace each word by a random WordNet synonym with probability ``p`` (strings only).

    ``wordnet`` is a :class:`~rankloss.augment.wordnet.WordNet` or the path of a WordNet
    directory (``None``: ``$RANKLOSS_WORDNET`` or ``/usr/share/wordnet``); a missing database
    raises :class:`~rankloss.augment.wordnet.WordNetNotFoundError` here, at construction.
    Words in ``stopwords`` and words without synonyms are kept; leading/trailing punctuation
    and a capital first letter are preserved; ``pos`` restricts the part of speech.
    """

    def __init__(
        self,
        p: float = 0.1,
        *,
        wordnet: WordNet | str | os.PathLike[str] | None = None,
        pos: str | None = None,
        stopwords: Iterable[str] = DEFAULT_STOPWORDS,
    ) -> None:
        self.p = check_probability("p", p)
        self.wordnet: WordNet = _as_wordnet(wordnet) or WordNet()
        if pos is not None and pos not in POS_FILES:
            raise ValueError(
                f"SynonymReplacement: pos must be one of {list(POS_FILES)}, got {pos!r}"
            )
        self.pos = pos
        self.stopwords = frozenset(w.lower() for w in stopwords)

    def words(self, words: list[str], rng: random.Random) -> list[str]:
        out: list[str] = []
        for token in words:
            if rng.random() >= self.p:
                out.append(token)
                continue
            match = _WORD.match(token)
            if match is None or match.group(2).lower() in self.stopwords:
                out.append(token)
                continue
            lead, core, trail = match.groups()
            choices = self.wordnet.synonyms(core, self.pos)
            if not choices:
                out.append(token)
                continue
            new = rng.choice(choices)
            if core[0].isupper():
                new = new[0].upper() + new[1:]
            out.append(f"{lead}{new}{trail}")
        return out

    def tokens(self, ids: Tensor, generator: torch.Generator) -> Tensor:
        raise TypeError("SynonymReplacement works on strings, not on token ids")
