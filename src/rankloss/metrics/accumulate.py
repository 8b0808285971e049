"""Streaming accumulation of ranking metrics over many batches.

An accumulator keeps the per-list values (``[B]`` floats per batch), never the scores or labels,
or with ``keep_per_list=False`` only a running sum and count per metric, so that millions of
lists are evaluated in bounded memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

import torch
from torch import Tensor

from rankloss.metrics.names import metric_options, parse_metric

__all__ = ["MetricAccumulator"]


class MetricAccumulator:
    """Accumulate ranking metrics over batches of lists.

    Args:
        metrics: names such as ``"ndcg@10"``, ``"map"``, ``"mrr"`` (see
            :func:`rankloss.metrics.parse_metric`).
        keep_per_list: keep every list's value (``float64``, 8 bytes a list and metric) so that
            :meth:`per_list` can return them; ``False`` keeps only sums and counts.
        **options: metric options (``ties``, ``empty``, ``relevance_threshold``, ...); each
            metric receives the options it accepts. The gain of ``ndcg``/``dcg`` (linear) and
            ``ndcg_burges``/``dcg_burges`` (exp2) comes from the name; a ``gain`` that
            contradicts a name is a ``ValueError``.

    Lists whose value is NaN (``empty="skip"``) are left out of the means.

    >>> acc = MetricAccumulator(["ndcg@2", "mrr"])
    >>> _ = acc.update(torch.tensor([[2.0, 1.0]]), torch.tensor([[0.0, 1.0]]))
    >>> _ = acc.update(torch.tensor([[2.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    >>> {name: round(value, 4) for name, value in acc.compute().items()}
    {'ndcg@2': 0.8155, 'mrr': 0.75}
    """

    def __init__(
        self, metrics: Iterable[str], *, keep_per_list: bool = True, **options: object
    ) -> None:
        self.specs = [parse_metric(name) for name in metrics]
        if not self.specs:
            raise ValueError("MetricAccumulator: give at least one metric")
        self.keep_per_list = keep_per_list
        accepted = {
            spec.name: {k: v for k, v in options.items() if k in metric_options(spec.function)}
            for spec in self.specs
        }
        unknown = set(options) - {key for opts in accepted.values() for key in opts}
        if unknown:
            raise ValueError(f"MetricAccumulator: no metric takes the options {sorted(unknown)}")
        # The gain of ndcg/dcg comes from the name (ndcg_burges: exp2); a contradiction is refused.
        self.options = {
            spec.name: spec.options(accepted[spec.name], "MetricAccumulator") for spec in self.specs
        }
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._sum = {spec.name: 0.0 for spec in self.specs}
        self._count = {spec.name: 0 for spec in self.specs}
        self._seen = 0
        self._values: dict[str, list[Tensor]] = {spec.name: [] for spec in self.specs}

    def update(
        self, scores: Tensor, labels: Tensor, mask: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Add a batch ``[..., n]``; returns this batch's per-list values ``{name: [...]}``."""
        batch_values: dict[str, Tensor] = {}
        for spec in self.specs:
            values = spec.function(scores, labels, mask, k=spec.k, **self.options[spec.name])
            flat = values.detach().reshape(-1).to("cpu", torch.float64)
            keep = ~torch.isnan(flat)
            self._sum[spec.name] += float(flat[keep].sum())
            self._count[spec.name] += int(keep.sum())
            if self.keep_per_list:
                self._values[spec.name].append(flat)
            batch_values[spec.name] = values
        self._seen += int(scores.shape[:-1].numel())  # lists of no item count too
        return batch_values

    def merge(self, other: MetricAccumulator) -> MetricAccumulator:
        """Add the state of ``other`` (same metrics), e.g. from another process."""
        if [s.name for s in other.specs] != [s.name for s in self.specs]:
            raise ValueError("MetricAccumulator.merge: the accumulators track different metrics")
        self._check_per_list("MetricAccumulator.merge", other._values, other._seen)
        for spec in self.specs:
            self._sum[spec.name] += other._sum[spec.name]
            self._count[spec.name] += other._count[spec.name]
            if self.keep_per_list:
                self._values[spec.name].extend(other._values[spec.name])
        self._seen += other._seen
        return self

    def state_dict(self) -> dict[str, object]:
        """The accumulated state as plain types and CPU tensors (sums, counts, lists seen and,
        with ``keep_per_list``, every list's values), e.g. to send to another process."""
        return {
            "metrics": [spec.name for spec in self.specs],
            "sum": dict(self._sum),
            "count": dict(self._count),
            "seen": self._seen,
            "values": {name: list(chunks) for name, chunks in self._values.items()},
        }

    def merge_state_dict(self, state: dict[str, object]) -> MetricAccumulator:
        """Add a state from :meth:`state_dict` (same metrics), as :meth:`merge` adds an
        accumulator."""
        if state.get("metrics") != [spec.name for spec in self.specs]:
            raise ValueError(
                "MetricAccumulator.merge_state_dict: the state tracks different metrics "
                f"({state.get('metrics')!r}, not {[spec.name for spec in self.specs]!r})"
            )
        sums, counts = cast(dict, state["sum"]), cast(dict, state["count"])
        values = cast(dict, state["values"])
        self._check_per_list(
            "MetricAccumulator.merge_state_dict", values, int(cast(int, state["seen"]))
        )
        for spec in self.specs:
            self._sum[spec.name] += float(sums[spec.name])
            self._count[spec.name] += int(counts[spec.name])
            if self.keep_per_list:
                self._values[spec.name].extend(values[spec.name])
        self._seen += int(cast(int, state["seen"]))
        return self

    def _check_per_list(self, where: str, values: dict, seen: int) -> None:
        """With ``keep_per_list``, the other side must hold every one of its ``seen`` lists'
        values, or :meth:`per_list` would silently miss them."""
        if not self.keep_per_list:
            return
        for spec in self.specs:
            held = sum(int(chunk.numel()) for chunk in values.get(spec.name, []))
            if held != seen:
                raise ValueError(
                    f"{where}: this accumulator keeps per-list values, but the other holds "
                    f"{held} of its {seen} lists' {spec.name!r} values (built with "
                    "keep_per_list=False?); merge into an accumulator with keep_per_list=False"
                )

    @property
    def num_lists(self) -> int:
        """Lists seen so far (skipped ones included)."""
        return self._seen

    def counts(self) -> dict[str, int]:
        """Lists that entered each mean (not skipped)."""
        return dict(self._count)

    def compute(self) -> dict[str, float]:
        """Mean of each metric over the lists that were not skipped (NaN if none)."""
        return {
            name: (self._sum[name] / self._count[name]) if self._count[name] else math.nan
            for name in self._sum
        }

    def per_list(self) -> dict[str, Tensor]:
        """Every list's value, in the order seen (``float64``, NaN for skipped lists)."""
        if not self.keep_per_list:
            raise RuntimeError("per_list() needs MetricAccumulator(keep_per_list=True)")
        return {
            name: torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.float64)
            for name, chunks in self._values.items()
        }
