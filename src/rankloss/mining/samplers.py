"""Batch samplers for metric learning and ranking: ``torch.utils.data`` ``Sampler``s of index
lists, to pass as ``DataLoader(dataset, batch_sampler=...)``.

Every sampler is deterministic given its ``seed`` (or a ``generator``, from which one seed is
drawn at construction) and the epoch set by :meth:`set_epoch`; no global random state is used.
Under ``torch.distributed`` every rank builds the same global sequence of batches (from the
same seed and epoch), and one of two rules gives each rank its share:

* ``shard=False`` (the default): a global batch is one batch of ``batch_size``; rank ``r``
  takes every ``world_size``-th batch from position ``r`` (the number of batches is rounded
  down to a multiple of ``world_size`` so that ranks stay in step). One optimizer step of
  ``world_size`` processes then sees ``world_size`` batches that one process would have seen
  in ``world_size`` steps.
* ``shard=True``: ``batch_size`` is the batch of one rank, and a global batch of
  ``world_size * batch_size`` is drawn exactly as one process with that batch size would draw
  it, then cut into ``world_size`` consecutive slices, rank ``r`` taking slice ``r``. The
  slices are whole units (an ``m``-sample class block of :class:`MPerClassSampler`, a list of
  :class:`ListSampler`), so every rank keeps the ``m``-per-class structure. ``world_size``
  processes with batch ``b`` then make the same optimizer steps as one process with batch
  ``world_size * b`` (under a loss that averages over the global batch). A last global batch
  of :class:`ListSampler` with fewer lists than ranks is dropped, so that every rank has data.

In both cases every global batch is drawn once per epoch, no index repeats across ranks within
a global step (beyond what one process would repeat), and :meth:`set_epoch` changes the order
deterministically. ``rank`` and ``world_size`` default to the initialised process group, else
0 and 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

from rankloss._core import params

__all__ = ["MPerClassSampler", "ClassBalancedSampler", "ListSampler"]


def _as_long(values: Sequence[int] | Tensor, name: str, where: str) -> Tensor:
    tensor = torch.as_tensor(values)
    if tensor.dim() != 1:
        raise ValueError(f"{where}: {name} must be one-dimensional, got shape {list(tensor.shape)}")
    if tensor.numel() == 0:
        raise ValueError(f"{where}: {name} is empty; a sampler needs at least one item")
    if tensor.dtype.is_floating_point:
        raise ValueError(f"{where}: {name} must be integers, got dtype {tensor.dtype}")
    return tensor.cpu()


class _SeededBatchSampler(Sampler[list[int]]):
    """Seed, epoch and distributed rank handling shared by the samplers."""

    def __init__(
        self,
        seed: int,
        generator: torch.Generator | None,
        rank: int | None,
        world_size: int | None,
        shard: bool = False,
    ) -> None:
        self.shard = params.boolean(type(self).__name__, "shard", shard)
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self.seed = int(seed)
        self.epoch = 0
        if world_size is None or rank is None:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                world_size = dist.get_world_size() if world_size is None else world_size
                rank = dist.get_rank() if rank is None else rank
            else:
                world_size = 1 if world_size is None else world_size
                rank = 0 if rank is None else rank
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
            )
        self.rank, self.world_size = int(rank), int(world_size)

    def set_epoch(self, epoch: int) -> None:
        """Use the batches of epoch ``epoch`` (call before each epoch, as with
        ``DistributedSampler``)."""
        self.epoch = int(epoch)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)

    @property
    def draw_size(self) -> int:
        """How many processes' batches one drawn batch holds: ``world_size`` with
        ``shard=True``, else 1."""
        return self.world_size if self.shard else 1

    def _global_units(self, generator: torch.Generator) -> list[list[list[int]]]:
        """The drawn batches of an epoch, each a list of units (index lists kept together)."""
        raise NotImplementedError

    def _num_global_batches(self) -> int:
        raise NotImplementedError

    def _global_batches(self, generator: torch.Generator) -> list[list[int]]:
        return [[i for unit in units for i in unit] for units in self._global_units(generator)]

    def __len__(self) -> int:
        if self.shard:
            return self._num_global_batches()
        return self._num_global_batches() // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shard:
            batches = self._global_batches(self._generator())
            usable = len(batches) // self.world_size * self.world_size
            yield from batches[self.rank : usable : self.world_size]
            return
        for units in self._global_units(self._generator()):
            if len(units) < self.world_size:
                continue  # too few units for every rank to have one
            # Consecutive slices whose sizes differ by at most one unit.
            share, extra = divmod(len(units), self.world_size)
            start = self.rank * share + min(self.rank, extra)
            mine = units[start : start + share + (self.rank < extra)]
            yield [i for unit in mine for i in unit]


class _Cycler:
    """Draws from a pool without replacement, reshuffling when it runs out."""

    def __init__(self, pool: Tensor, generator: torch.Generator) -> None:
        self.pool, self.generator = pool, generator
        self.order: list[int] = []

    def take(self, count: int) -> list[int]:
        """``count`` draws; distinct whenever the pool holds ``count`` entries or more (a
        reshuffle in the middle of a take puts the entries already taken last)."""
        out: list[int] = []
        while len(out) < count:
            if not self.order:
                order = self.pool[torch.randperm(len(self.pool), generator=self.generator)]
                self.order = order.tolist()
                if out and len(self.pool) >= count:
                    taken = set(out)
                    fresh = [i for i in self.order if i not in taken]
                    self.order = fresh + [i for i in self.order if i in taken]
            need = count - len(out)
            out += self.order[:need]
            self.order = self.order[need:]
        return out


class MPerClassSampler(_SeededBatchSampler):
    """Batches of ``batch_size // m`` classes with ``m`` samples each (P x K sampling).

    Classes are visited in rounds of a fresh random permutation, so over an epoch every class
    appears in the same number of batches (within one), and the classes of a batch are
    distinct; samples of a class are drawn without replacement until the class is exhausted,
    and the ``m`` samples of a class in a batch are distinct (only a class with fewer than
    ``m`` samples repeats one).

    Args:
        labels: ``[n]`` class of each dataset item.
        m: samples per class in a batch; must divide ``batch_size``.
        batch_size: items per batch; ``batch_size // m`` must not exceed the number of classes.
        num_batches: global batches per epoch (default ``n // batch_size``, at least 1).
        seed, generator, rank, world_size, shard: see the module docstring; with ``shard=True``
            ``batch_size`` is the batch of one rank.
    """

    def __init__(
        self,
        labels: Sequence[int] | Tensor,
        m: int,
        batch_size: int,
        *,
        num_batches: int | None = None,
        seed: int = 0,
        generator: torch.Generator | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        shard: bool = False,
    ) -> None:
        super().__init__(seed, generator, rank, world_size, shard)
        where = "MPerClassSampler"
        self.labels = _as_long(labels, "labels", where)
        m = params.positive_int(where, "m", m)
        batch_size = params.positive_int(where, "batch_size", batch_size)
        num_batches = params.cutoff(where, "num_batches", num_batches)
        if batch_size % m:
            raise ValueError(
                f"MPerClassSampler: batch_size ({batch_size}) must be a positive multiple of "
                f"m ({m})"
            )
        self.classes, inverse = torch.unique(self.labels, return_inverse=True)
        self.classes_per_batch = batch_size * self.draw_size // m
        if self.classes_per_batch > len(self.classes):
            raise ValueError(
                f"MPerClassSampler: a batch needs {self.classes_per_batch} classes but labels "
                f"has only {len(self.classes)}"
            )
        self.members = [torch.nonzero(inverse == c)[:, 0] for c in range(len(self.classes))]
        self.m, self.batch_size = m, batch_size
        self.num_batches = num_batches or max(1, len(self.labels) // (batch_size * self.draw_size))

    def _num_global_batches(self) -> int:
        return self.num_batches

    def _global_units(self, generator: torch.Generator) -> list[list[list[int]]]:
        class_cycle = _Cycler(torch.arange(len(self.classes)), generator)
        members = [_Cycler(pool, generator) for pool in self.members]
        batches = []
        for _ in range(self.num_batches):
            chosen: list[int] = []
            deferred: list[int] = []
            while len(chosen) < self.classes_per_batch:
                # A new round may repeat a class of this batch: defer it to the next batch.
                c = class_cycle.take(1)[0]
                (deferred if c in chosen else chosen).append(c)
            class_cycle.order = deferred + class_cycle.order
            batches.append([members[c].take(self.m) for c in chosen])
        return batches


class ClassBalancedSampler(_SeededBatchSampler):
    r"""Batches drawn with probability :math:`\propto n_c^{-\text{power}}` for an item of a class
    with :math:`n_c` items: ``power=1`` makes every class equally likely (inverse frequency),
    ``power=0.5`` is square-root balancing, ``power=0`` is uniform.

    Draws are with replacement across the epoch (a rare class's items repeat). Within a batch
    an item may repeat too (``replacement=True``, the default: every draw is independent);
    ``replacement=False`` draws the items of each batch without replacement, so they are
    distinct (the batch must then not be larger than the data set).

    Args:
        labels: ``[n]`` class of each item.
        batch_size: items per batch.
        num_batches: global batches per epoch (default ``n // batch_size``, at least 1).
        power: exponent of the inverse class frequency.
        replacement: whether an item may repeat within a batch (see above).
        seed, generator, rank, world_size, shard: see the module docstring; with ``shard=True``
            ``batch_size`` is the batch of one rank.
    """

    def __init__(
        self,
        labels: Sequence[int] | Tensor,
        batch_size: int,
        *,
        num_batches: int | None = None,
        power: float = 1.0,
        replacement: bool = True,
        seed: int = 0,
        generator: torch.Generator | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        shard: bool = False,
    ) -> None:
        super().__init__(seed, generator, rank, world_size, shard)
        where = "ClassBalancedSampler"
        self.labels = _as_long(labels, "labels", where)
        batch_size = params.positive_int(where, "batch_size", batch_size)
        num_batches = params.cutoff(where, "num_batches", num_batches)
        power = params.number(where, "power", power)
        _, inverse, counts = torch.unique(self.labels, return_inverse=True, return_counts=True)
        self.item_weights = counts[inverse].double().pow(-power)
        self.replacement = params.boolean(where, "replacement", replacement)
        if not replacement and batch_size * self.draw_size > len(self.labels):
            raise ValueError(
                f"{where}: replacement=False draws {batch_size * self.draw_size} distinct items "
                f"per batch, but there are {len(self.labels)} items"
            )
        self.batch_size = batch_size
        self.num_batches = num_batches or max(1, len(self.labels) // (batch_size * self.draw_size))

    def _num_global_batches(self) -> int:
        return self.num_batches

    def _global_units(self, generator: torch.Generator) -> list[list[list[int]]]:
        size = self.batch_size * self.draw_size
        if self.replacement:
            draws = torch.multinomial(
                self.item_weights, self.num_batches * size, replacement=True, generator=generator
            ).view(self.num_batches, size)
        else:
            draws = torch.stack(
                [
                    torch.multinomial(
                        self.item_weights, size, replacement=False, generator=generator
                    )
                    for _ in range(self.num_batches)
                ]
            )
        return [[[i] for i in batch] for batch in draws.tolist()]


class ListSampler(_SeededBatchSampler):
    """Batches of ranking lists with ``items_per_list`` items of each list, relevant ones kept.

    Items are grouped into lists by ``query_ids``. For each list the sampler keeps every
    relevant item (label >= ``relevance_threshold``, default 1: integer grades > 0) and fills
    up to ``items_per_list`` with non-relevant items drawn at random; a list with more
    relevant items than that keeps a random ``items_per_list`` of them, and a shorter list is
    taken whole. A batch holds ``lists_per_batch`` lists (the last may hold fewer), flattened
    to one index list, list by list, items of a list in dataset order.

    Args:
        query_ids: ``[n]`` list (query) id of each item.
        labels: ``[n]`` graded relevance of each item.
        items_per_list, lists_per_batch: the batch shape.
        shuffle: visit the lists in a random order each epoch.
        seed, generator, rank, world_size, shard: see the module docstring; with ``shard=True``
            ``lists_per_batch`` is the number of lists of one rank.
    """

    def __init__(
        self,
        query_ids: Sequence[int] | Tensor,
        labels: Sequence[float] | Tensor,
        *,
        items_per_list: int,
        lists_per_batch: int,
        relevance_threshold: float = 1.0,
        shuffle: bool = True,
        seed: int = 0,
        generator: torch.Generator | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        shard: bool = False,
    ) -> None:
        super().__init__(seed, generator, rank, world_size, shard)
        ids = _as_long(query_ids, "query_ids", "ListSampler")
        relevance = torch.as_tensor(labels).cpu()
        if relevance.shape != ids.shape:
            raise ValueError(
                f"ListSampler: labels has shape {list(relevance.shape)} but query_ids has shape "
                f"{list(ids.shape)}"
            )
        items_per_list = params.positive_int("ListSampler", "items_per_list", items_per_list)
        lists_per_batch = params.positive_int("ListSampler", "lists_per_batch", lists_per_batch)
        relevance_threshold = params.number(
            "ListSampler", "relevance_threshold", relevance_threshold
        )
        shuffle = params.boolean("ListSampler", "shuffle", shuffle)
        _, inverse = torch.unique(ids, return_inverse=True)
        self.lists = [torch.nonzero(inverse == q)[:, 0] for q in range(int(inverse.max()) + 1)]
        self.relevant = [relevance[members] >= relevance_threshold for members in self.lists]
        self.items_per_list, self.lists_per_batch = items_per_list, lists_per_batch
        self.shuffle = shuffle

    def _num_global_batches(self) -> int:
        per_draw = self.lists_per_batch * self.draw_size
        full, rest = divmod(len(self.lists), per_draw)
        # With shard=True a last batch with fewer lists than ranks is dropped.
        return full + (rest >= self.draw_size)

    def _sample_list(self, q: int, generator: torch.Generator) -> list[int]:
        members, relevant = self.lists[q], self.relevant[q]
        k = self.items_per_list
        if len(members) <= k:
            return members.tolist()
        rel, other = members[relevant], members[~relevant]
        if len(rel) >= k:
            chosen = rel[torch.randperm(len(rel), generator=generator)[:k]]
        else:
            fill = other[torch.randperm(len(other), generator=generator)[: k - len(rel)]]
            chosen = torch.cat([rel, fill])
        return torch.sort(chosen).values.tolist()

    def _global_units(self, generator: torch.Generator) -> list[list[list[int]]]:
        count = len(self.lists)
        order = torch.randperm(count, generator=generator) if self.shuffle else torch.arange(count)
        per_draw = self.lists_per_batch * self.draw_size
        batches = []
        for start in range(0, count, per_draw):
            group = order[start : start + per_draw].tolist()
            batches.append([self._sample_list(q, generator) for q in group])
        return batches
