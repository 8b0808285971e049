"""Your own data as a whole data set: one loader per file format, and a content-hash cache.

A format loader turns files into the same typed data set a named data set gives, splits
included, so the benchmark and the trainer run on it unchanged:

* ``svmlight``: LETOR text ``<label> qid:<id> <i>:<v> ...`` (``path``, optional ``valid`` and
  ``test`` files) -> :class:`LTRDataset`;
* ``table``: parquet / CSV / TSV, one row per document (a query column, a label column,
  features) -> :class:`LTRDataset`;
* ``trec``: TREC qrels ``qid 0 docid rel`` + a features table keyed by (query, document) ->
  :class:`LTRDataset`;
* ``interactions``: parquet / CSV / TSV interaction log (user, item, rating, time) ->
  :class:`RecDataset`;
* ``vectors``: ``.npz`` (``x``, ``y``) or parquet / CSV with a label column ->
  :class:`LabelledDataset`.

The named data sets are presets of these loaders: ``mslr10k-sample`` calls
:func:`svmlight_dataset`, ``movielens-100k`` :func:`interactions_dataset` and ``digits``
:func:`vectors_from_arrays`.

A :class:`DataSource` names a format, its files and its options. :meth:`DataSource.load`
parses the files once: the parsed data set is stored under ``$RANKLOSS_DATA/parsed`` (see
:func:`rankloss.data.cache_dir`), keyed by the SHA-256 of every file and of the options, and
written atomically; a later load with the same bytes and options reads it back without
parsing, and a changed file (or option) is parsed again.

Malformed files raise :class:`~rankloss.data.types.DataFormatError` (``file:line: message``).
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rankloss._core import params
from rankloss._io import atomic_write
from rankloss.data._fetch import DataFile, PipPackage, URLSource, cache_dir, fetch, sha256sum
from rankloss.data.batching import normalize_lists
from rankloss.data.datasets import (
    _carve,
    _image_dataset,
    _sources,
    register_dataset,
    split_interactions,
)
from rankloss.data.loaders import (
    MAX_FEATURES,
    _exact_int,
    _read_qrels,
    _text_lines,
    read_interactions,
    read_labelled,
    read_svmlight,
    reshape_samples,
)
from rankloss.data.types import (
    DataFormatError,
    DatasetCard,
    Interactions,
    LabelledDataset,
    LabelledSplit,
    LTRDataset,
    LTRSplit,
    RecDataset,
)
from rankloss.lists import ListLayout

__all__ = [
    "FORMATS",
    "FORMAT_TASKS",
    "DataSource",
    "data_source",
    "svmlight_dataset",
    "table_dataset",
    "trec_dataset",
    "interactions_dataset",
    "vectors_dataset",
    "vectors_from_arrays",
]

logger = logging.getLogger("rankloss.data")

PathLike = str | os.PathLike
#: Bumped when the stored form of a parsed data set changes (old entries are then ignored).
CACHE_VERSION = 1
#: The ``normalize`` values of the learning-to-rank formats (``"none"``: no normalisation).
NORMALIZE = ("none", "standardize", "log1p", "minmax", "log1p+standardize")
#: The ``split`` rules of :func:`rankloss.data.split_interactions`.
SPLIT_RULES = ("random", "leave-last-out", "ratio")
#: The benchmark tasks each format serves.
FORMAT_TASKS: dict[str, tuple[str, ...]] = {
    "svmlight": ("ltr",),
    "table": ("ltr",),
    "trec": ("ltr",),
    "interactions": ("recsys",),
    "vectors": ("retrieval", "imbalanced"),
}


# ============================================================================ splitting helpers
def _fraction(where: str, name: str, value: object) -> float:
    """A number in ``[0, 1)``."""
    x = params.number(where, name, value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {value!r}")
    return x


def _ltr_splits(
    train: LTRSplit,
    valid: LTRSplit | None,
    test: LTRSplit | None,
    *,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    normalize: str | None,
    card: DatasetCard | None,
) -> LTRDataset:
    """Carve what is not given from ``train`` (queries; seeded), then normalise each split.

    The test split (when no test file) is carved first with ``seed + 1``; the validation split
    (when no validation file) is then carved from the rest with ``seed``.
    """
    if test is None:
        if test_fraction <= 0:
            raise ValueError("no test file and test_fraction = 0: nothing to test on")
        kept, carved = _carve(len(train), test_fraction, seed + 1)
        train, test = train.subset(kept), train.subset(carved)
    if valid is None and validation_fraction > 0:
        kept, carved = _carve(len(train), validation_fraction, seed)
        train, valid = train.subset(kept), train.subset(carved)
    if len(train) == 0 or len(test) == 0 or (valid is not None and len(valid) == 0):
        sizes = f"train {len(train)}, validation {len(valid or [])}, test {len(test)}"
        raise ValueError(f"a split holds no query ({sizes} queries); give more queries")
    if normalize not in (None, "none"):
        method = str(normalize)
        train, test = (
            s.map_features(lambda f, m: normalize_lists(f, m, method)) for s in (train, test)
        )
        if valid is not None:
            valid = valid.map_features(lambda f, m: normalize_lists(f, m, method))
    return LTRDataset(train, test, valid, card=card)


def _pad_features(split: LTRSplit, width: int) -> LTRSplit:
    extra = width - split.num_features
    if extra <= 0:
        return split
    features = torch.nn.functional.pad(split.features, (0, extra))
    return LTRSplit(features, split.labels, split.mask, split.query_ids)


def _check_ltr_options(where: str, options: dict[str, Any]) -> None:
    for name in ("test_fraction", "validation_fraction"):
        _fraction(where, name, options[name])
    params.nonnegative_int(where, "seed", options["seed"])
    if options["normalize"] is not None:
        params.choice(where, "normalize", options["normalize"], NORMALIZE)


# ============================================================================ svmlight
def svmlight_dataset(
    path: PathLike,
    *,
    valid: PathLike | None = None,
    test: PathLike | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    seed: int = 0,
    num_features: int | None = None,
    zero_based: bool | str = "auto",
    max_features: int = MAX_FEATURES,
    normalize: str | None = None,
    card: DatasetCard | None = None,
) -> LTRDataset:
    """Learning-to-rank data from SVMlight / LETOR files (``<label> qid:<id> <i>:<v> ...``).

    Args:
        path: the training file (or the only file, split by queries).
        valid, test: optional validation and test files; what is not given is carved from
            ``path``'s queries: the test split, ``test_fraction`` of them with ``seed + 1``,
            then the validation split, ``validation_fraction`` of the rest with ``seed``.
        num_features: the number of features (default: the largest index in any file).
        zero_based: whether feature indices start at 0; ``"auto"`` decides over every file at
            once (one-based unless some file uses index 0).
        max_features: the bound on feature indices when ``num_features`` is not given.
        normalize: a per-list feature normalisation (:func:`rankloss.data.normalize_lists`),
            ``None``/``"none"`` for none.

    Returns:
        An :class:`LTRDataset`; every split has the same number of features.

    Raises:
        DataFormatError: a malformed line, naming the file and line.
    """
    where = "svmlight_dataset"
    _check_ltr_options(
        where,
        {
            "test_fraction": test_fraction,
            "validation_fraction": validation_fraction,
            "seed": seed,
            "normalize": normalize,
        },
    )
    files = {"train": path, "valid": valid, "test": test}
    given = {role: p for role, p in files.items() if p is not None}
    if zero_based == "auto":
        bound = max_features if num_features is None else num_features
        # index 0 is allowed here; whether it is used decides the base for every file at once
        read = {
            role: read_svmlight(p, zero_based=True, max_features=bound + 1)
            for role, p in given.items()
        }
        width = max(s.num_features for s in read.values())
        read = {role: _pad_features(s, width) for role, s in read.items()}
        used = any(bool((s.features[..., 0][s.mask] != 0).any()) for s in read.values())
        if not used and width > 1:
            read = {
                role: LTRSplit(s.features[..., 1:], s.labels, s.mask, s.query_ids)
                for role, s in read.items()
            }
            width -= 1
        if num_features is not None:
            if width > num_features:
                raise DataFormatError(
                    path, None, f"{width} features, over num_features={num_features}"
                )
            width = num_features
    else:
        read = {
            role: read_svmlight(
                p, num_features=num_features, zero_based=zero_based, max_features=max_features
            )
            for role, p in given.items()
        }
        width = max(s.num_features for s in read.values())
    read = {role: _pad_features(s, width) for role, s in read.items()}
    return _ltr_splits(
        read["train"],
        read.get("valid"),
        read.get("test"),
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        normalize=normalize,
        card=card,
    )


# ============================================================================ tables
@dataclass
class _Table:
    """The columns of a parquet / CSV / TSV file, with where each row came from."""

    path: Path
    columns: list[str]
    values: dict[str, np.ndarray]
    lines: np.ndarray | None  # the line of each row (text files); None: parquet rows
    missing: dict[str, np.ndarray] = field(default_factory=dict)  # parquet nulls by column

    def __len__(self) -> int:
        return len(next(iter(self.values.values()))) if self.values else 0

    def error(self, row: int, message: str) -> DataFormatError:
        if self.lines is None:
            return DataFormatError(self.path, None, f"row {row + 1}: {message}")
        return DataFormatError(self.path, int(self.lines[row]), message)

    def where(self, row: int) -> str:
        """``"line N"`` (text files) or ``"row N"`` (parquet) of ``row``."""
        return f"row {row + 1}" if self.lines is None else f"line {int(self.lines[row])}"

    def header_error(self, message: str) -> DataFormatError:
        """An error about the columns: at line 1 (the header) of a text file."""
        return DataFormatError(self.path, None if self.lines is None else 1, message)

    def same_columns(self, reference: _Table) -> None:
        """Refuse unless this table has the columns of ``reference`` (in any order).

        Raises:
            DataFormatError: naming this file, the columns it lacks and those it adds.
        """
        missing = [c for c in reference.columns if c not in self.values]
        extra = [c for c in self.columns if c not in reference.values]
        if missing or extra:
            raise self.header_error(
                f"columns differ from those of {reference.path.name}: missing {missing}, "
                f"extra {extra} (columns are matched by name)"
            )

    def column(self, name: str, role: str) -> np.ndarray:
        if name not in self.values:
            raise DataFormatError(
                self.path, None, f"no {role} column {name!r}; columns are {self.columns}"
            )
        return self.values[name]

    def ids(self, name: str, role: str) -> np.ndarray:
        """The column ``name`` as ids: every value present (no parquet null, no NaN).

        Raises:
            DataFormatError: a missing column, or the first row without an id (file and
                line; parquet: file and row).
        """
        raw = self.column(name, role)
        missing = self.missing.get(name)
        if missing is None:
            missing = np.isnan(raw) if raw.dtype.kind == "f" else np.zeros(len(raw), bool)
        bad = np.flatnonzero(missing)
        if len(bad):
            raise self.error(int(bad[0]), f"{role} {name!r} is missing (null)")
        return raw

    def numeric(self, name: str, role: str) -> np.ndarray:
        raw = self.column(name, role)
        if raw.dtype.kind in "biuf":
            out = raw.astype(np.float64)
        else:
            out = np.empty(len(raw), np.float64)
            for i, v in enumerate(raw.tolist()):
                try:
                    out[i] = float(v)
                except (TypeError, ValueError):
                    raise self.error(i, f"{role} {name!r} value {v!r} is not a number") from None
        bad = np.flatnonzero(~np.isfinite(out))
        if len(bad):
            value = raw[bad[0]].item()
            raise self.error(int(bad[0]), f"{role} {name!r} value {value!r} is not finite")
        return out

    def is_numeric(self, name: str) -> bool:
        raw = self.values[name]
        if raw.dtype.kind in "biuf":
            return True
        if raw.dtype.kind != "U" or len(raw) == 0:
            return False
        try:
            float(raw[0])
        except ValueError:
            return False
        return True


def _unique_columns(path: Path, line: int | None, columns: list[str]) -> None:
    """Refuse a header that names a column twice (the second would hide the first).

    Raises:
        DataFormatError: the file, ``line`` (the header's; None for parquet) and the name.
    """
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise DataFormatError(path, line, f"column {name!r} appears twice in the header")
        seen.add(name)


def _read_table(path: PathLike, sep: str | None = None) -> _Table:
    """A parquet file, or a delimited text file with a header line (``,`` for ``.csv``,
    ``.csv.gz``, else tab unless ``sep``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".parquet" or ".parquet" in path.suffixes:
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # noqa: BLE001 - pyarrow raises many types
            raise DataFormatError(path, None, f"not a readable parquet file ({error})") from None
        columns = [str(c) for c in frame.columns]
        _unique_columns(path, None, columns)
        values = {c: frame.iloc[:, i].to_numpy() for i, c in enumerate(columns)}
        missing = {c: frame.iloc[:, i].isna().to_numpy() for i, c in enumerate(columns)}
        values = {c: v.astype(str) if v.dtype == object else v for c, v in values.items()}
        return _Table(path, columns, values, None, missing)
    if sep is None:
        sep = "," if path.name.endswith((".csv", ".csv.gz")) else "\t"
    reader = csv.reader(_text_lines(path), delimiter=sep)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise DataFormatError(path, 1, "empty file (a header line is expected)")
    columns = [h.strip() for h in header]
    _unique_columns(path, 1, columns)
    rows, lines = [], []
    end = reader.line_num  # the header's last line
    for fields in reader:
        # a quoted field may span lines: a record starts after the previous one ends
        lineno, end = end + 1, reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != len(columns):
            raise DataFormatError(
                path, lineno, f"expected {len(columns)} fields (the header's), got {len(fields)}"
            )
        rows.append([f.strip() for f in fields])
        lines.append(lineno)
    if not rows:
        raise DataFormatError(path, None, "no data rows")
    table = np.asarray(rows, dtype=str)
    values = {c: table[:, i] for i, c in enumerate(columns)}
    return _Table(path, columns, values, np.asarray(lines))


def _ids(values: np.ndarray) -> np.ndarray:
    """Integer ids when every value is exactly an integer, else the ids' positions in sorted
    order of their text (two ids are one query only when they are the same)."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    try:
        return np.asarray([_exact_int(v) for v in values.tolist()], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        return np.unique(values.astype(str), return_inverse=True)[1].astype(np.int64)


def _feature_names(
    table: _Table, *, query: str, label: str, features: Sequence[str] | None, skip: Sequence[str]
) -> list[str]:
    """``features``, or every numeric column of ``table`` but the query, label and ``skip``
    columns, in the table's order.

    Raises:
        DataFormatError: no numeric feature column (the file).
    """
    if features is not None:
        return list(features)
    names = [c for c in table.columns if c not in (query, label, *skip) and table.is_numeric(c)]
    if not names:
        raise DataFormatError(table.path, None, f"no numeric feature column in {table.columns}")
    return names


def _table_split(
    table: _Table, *, query: str, label: str, features: Sequence[str] | None, skip: Sequence[str]
) -> LTRSplit:
    qid = _ids(table.ids(query, "query"))
    labels = table.numeric(label, "label")
    names = _feature_names(table, query=query, label=label, features=features, skip=skip)
    x = np.stack([table.numeric(c, "feature") for c in names], axis=1).astype(np.float32)
    layout = ListLayout.from_query_ids(torch.from_numpy(qid))
    return LTRSplit(
        layout.pad(torch.from_numpy(x)),
        layout.pad(torch.from_numpy(labels.astype(np.float32))),
        layout.mask,
        layout.query_ids.long(),
    )


def table_dataset(
    path: PathLike,
    *,
    valid: PathLike | None = None,
    test: PathLike | None = None,
    query: str = "qid",
    label: str = "label",
    features: Sequence[str] | None = None,
    sep: str | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    seed: int = 0,
    normalize: str | None = None,
    card: DatasetCard | None = None,
) -> LTRDataset:
    """Learning-to-rank data from a table: one row per document (parquet, or CSV/TSV with a
    header line).

    Args:
        path, valid, test: the files; splits not given are carved as in
            :func:`svmlight_dataset`.
        query: the query-id column (integers, or any strings).
        label: the relevance column (finite numbers).
        features: the feature columns; default every other numeric column of ``path`` (for a
            text file, every other column whose first value is a number). The ``valid`` and
            ``test`` files' columns are matched to these by name, in any order.
        sep: the delimiter of a text file (default ``,`` for ``.csv``, else tab).

    Raises:
        DataFormatError: a missing column, a column named twice in a header, a value that is
            not a finite number, a row with the wrong number of fields (file and line; parquet:
            file and row); without
            ``features``, a ``valid`` or ``test`` file whose columns are not those of ``path``
            (the file and the columns).
    """
    where = "table_dataset"
    _check_ltr_options(
        where,
        {
            "test_fraction": test_fraction,
            "validation_fraction": validation_fraction,
            "seed": seed,
            "normalize": normalize,
        },
    )
    train = _read_table(path, sep)
    names = _feature_names(train, query=query, label=label, features=features, skip=())
    splits = {"train": _table_split(train, query=query, label=label, features=names, skip=())}
    for role, p in (("valid", valid), ("test", test)):
        if p is None:
            continue
        table = _read_table(p, sep)
        if features is None:  # the training file's feature columns, matched by name
            table.same_columns(train)
        splits[role] = _table_split(table, query=query, label=label, features=names, skip=())
    return _ltr_splits(
        splits["train"],
        splits.get("valid"),
        splits.get("test"),
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        normalize=normalize,
        card=card,
    )


def _unique_candidates(table: _Table, queries: np.ndarray, docs: np.ndarray) -> None:
    """Refuse a second row of one (query, document) pair.

    Raises:
        DataFormatError: the second row (file and line; parquet: row) and the first.
    """
    first: dict[tuple[str, str], int] = {}
    for row, pair in enumerate(zip(queries.tolist(), docs.tolist())):
        if pair in first:
            raise table.error(
                row,
                f"a second row of query {pair[0]!r}, document {pair[1]!r} (the first is at "
                f"{table.where(first[pair])})",
            )
        first[pair] = row


def trec_dataset(
    path: PathLike,
    *,
    qrels: PathLike,
    query: str = "qid",
    doc: str = "docid",
    features: Sequence[str] | None = None,
    sep: str | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    seed: int = 0,
    normalize: str | None = None,
    card: DatasetCard | None = None,
) -> LTRDataset:
    """Learning-to-rank data from TREC relevance judgements and a features table.

    Layout accepted: ``qrels`` is a TREC qrels file (``qid 0 docid relevance`` per line,
    whitespace-separated; BEIR's three-column TSV with a header also works); ``path`` is a
    table (parquet, or CSV/TSV with a header) with one row per (query, document) candidate:
    a ``query`` column, a ``doc`` column and the feature columns. A candidate's label is its
    relevance in the qrels, 0 when unjudged; queries without any judgement are dropped;
    judgements of documents without a row are ignored, but a judged query must have a row.
    Splits are carved from the queries as in :func:`svmlight_dataset`.

    Raises:
        DataFormatError: a malformed qrels line or table row (file and line), a missing
            column, a second row of one (query, document) pair (file and line, and the first
            row's), or a judged query without any candidate row (the table and the queries).
    """
    where = "trec_dataset"
    _check_ltr_options(
        where,
        {
            "test_fraction": test_fraction,
            "validation_fraction": validation_fraction,
            "seed": seed,
            "normalize": normalize,
        },
    )
    judged = _read_qrels(Path(qrels))
    table = _read_table(path, sep)
    queries = table.ids(query, "query").astype(str)
    docs = table.ids(doc, "document").astype(str)
    _unique_candidates(table, queries, docs)
    keep = np.asarray([q in judged for q in queries.tolist()], dtype=bool)
    if not keep.any():
        raise DataFormatError(path, None, f"no candidate of any query judged in {qrels}")
    absent = sorted(set(judged) - set(queries.tolist()))
    if absent:
        shown = ", ".join(repr(q) for q in absent[:5]) + (", ..." if len(absent) > 5 else "")
        raise DataFormatError(
            path,
            None,
            f"{len(absent)} quer{'y' if len(absent) == 1 else 'ies'} judged in {qrels} "
            f"without any candidate row: {shown} (remove their judgements or add their rows)",
        )
    relevance = np.asarray(
        [judged.get(q, {}).get(d, 0) for q, d in zip(queries.tolist(), docs.tolist())],
        dtype=np.float64,
    )
    rows = np.flatnonzero(keep)
    values = {c: v[rows] for c, v in table.values.items()}
    values["__label__"] = relevance[rows]
    kept = _Table(
        table.path,
        [*table.columns, "__label__"],
        values,
        None if table.lines is None else table.lines[rows],
        {c: m[rows] for c, m in table.missing.items()},
    )
    split = _table_split(kept, query=query, label="__label__", features=features, skip=(doc,))
    return _ltr_splits(
        split,
        None,
        None,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        normalize=normalize,
        card=card,
    )


# ============================================================================ interactions
def _split_options() -> set[str]:
    """The split-rule keywords :func:`rankloss.data.split_interactions` takes."""
    skip = {"inter", "num_users", "num_items", "user_ids", "item_ids", "card"}
    return set(inspect.signature(split_interactions).parameters) - skip


def interactions_dataset(
    path: PathLike,
    *,
    user: str | None = None,
    item: str | None = None,
    rating: str | None = None,
    time: str | None = None,
    sep: str | None = None,
    header: bool = True,
    card: DatasetCard | None = None,
    **split: Any,
) -> RecDataset:
    """Recommendation data from an interaction log (parquet, CSV or TSV; see
    :func:`rankloss.data.read_interactions` for the columns).

    Args:
        user, item, rating, time: column names (default: the usual names).
        sep, header: the delimiter and whether a text file has a header line.
        split: the feedback and split rule, passed to :func:`rankloss.data.split_interactions`
            (``feedback``, ``rating_threshold``, ``split``, ``test_fraction``,
            ``validation_fraction``, ``seed``, ...).

    Raises:
        DataFormatError: a malformed line (file and line; parquet: the row), no interaction,
            no interaction left by the implicit feedback's ``rating_threshold``, or split
            fractions the rule cannot use (the file and the reason).
        TypeError: a split option :func:`~rankloss.data.split_interactions` does not take.
    """
    unknown = sorted(set(split) - _split_options())
    if unknown:
        raise TypeError(
            f"interactions_dataset: unknown option(s) {unknown}; "
            f"split options: {sorted(_split_options())}"
        )
    if "feedback" in split:
        params.choice("interactions_dataset", "feedback", split["feedback"], ("implicit", "graded"))
    if "split" in split:
        params.choice("interactions_dataset", "split", split["split"], SPLIT_RULES)
    inter, users, items = read_interactions(
        path, user=user, item=item, rating=rating, time=time, sep=sep, header=header
    )
    if len(inter) == 0:
        raise DataFormatError(path, None, "no interactions")
    try:
        return split_interactions(
            inter,
            len(users),
            len(items),
            user_ids=users.ids,
            item_ids=items.ids,
            card=card,
            **split,
        )
    except ValueError as error:  # no interaction left by the filter, or bad fractions
        raise DataFormatError(path, None, str(error)) from None


# ============================================================================ vectors
def vectors_from_arrays(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    test_fraction: float = 0.25,
    validation_fraction: float = 0.1,
    seed: int = 0,
    class_names: list[str] | None = None,
    card: DatasetCard | None = None,
) -> LabelledDataset:
    """Labelled samples split by class (stratified, seeded): ``test_fraction`` of each class is
    the test split (unless ``test`` is given), then ``validation_fraction`` of the rest
    (seed ``seed + 1``).

    Labels are renumbered ``0..C-1`` in sorted order of the given labels (``class_names``
    defaults to the given labels as text), so the retrieval task's class-disjoint cut (train on
    classes ``< train_classes``, retrieve the others) follows the label order.

    Raises:
        ValueError: a fraction outside ``[0, 1)``, or an empty training or test split (too few
            samples per class for the fractions; the message gives every split's size).
    """
    where = "vectors_from_arrays"
    _fraction(where, "test_fraction", test_fraction)
    _fraction(where, "validation_fraction", validation_fraction)
    params.nonnegative_int(where, "seed", seed)
    ys = [y] if test is None else [y, test[1]]
    classes, inverse = torch.unique(torch.cat(ys), return_inverse=True)
    if class_names is None:
        class_names = [str(c) for c in classes.tolist()]
    y = inverse[: len(y)]
    if test is not None:
        test = (test[0], inverse[len(ys[0]) :])
    data = _image_dataset(
        x,
        y,
        test=test,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        card=card,  # type: ignore[arg-type]
        class_names=class_names,
    )
    _check_samples(data)
    return data


def _check_samples(data: LabelledDataset) -> None:
    """Refuse a data set whose training or test split is empty (nothing to train on or to
    evaluate; each class's share of a split is rounded, so few samples per class can leave a
    split empty).

    Raises:
        ValueError: naming every split's number of samples.
    """
    valid = data.validation
    if len(data.train.y) and len(data.test.y):
        return
    sizes = (
        f"train {len(data.train.y)}, validation {0 if valid is None else len(valid.y)}, "
        f"test {len(data.test.y)}"
    )
    raise ValueError(
        f"a split holds no sample ({sizes} samples; each class's share is rounded); "
        "give more samples per class, larger fractions or a test file"
    )


def _read_vectors(
    path: Path,
    *,
    label: str,
    x_key: str,
    header: bool,
    shape: Sequence[int] | None,
    scale: float,
    reference: _Table | None = None,
) -> tuple[LabelledSplit, _Table | None]:
    """The samples of one file, and its table when it has named columns.

    Args:
        reference: the training file's table; this file's value columns are then matched to
            its columns by name (in any order).

    Returns:
        ``(samples, table)``; ``table`` is None for ``.npz`` and headerless CSV files.

    Raises:
        DataFormatError: a malformed file; a file whose columns are not those of
            ``reference`` (the file and the columns).
    """
    if path.suffix == ".npz":
        split = read_labelled(path, x_key=x_key, y_key=label, shape=shape, scale=scale)
        return split, None
    if header or path.suffix == ".parquet" or ".parquet" in path.suffixes:
        table = _read_table(path)
        y = table.numeric(label, "label")
        bad = np.flatnonzero(y != np.round(y))
        if len(bad):
            raise table.error(int(bad[0]), f"label {float(y[bad[0]])!r} is not an integer")
        if reference is not None:
            table.same_columns(reference)
        names = [c for c in (reference or table).columns if c != label]
        x = np.stack([table.numeric(c, "value") for c in names], axis=1).astype(np.float32)
        xt = reshape_samples(path, torch.from_numpy(x) / scale, shape)
        return LabelledSplit(xt, torch.from_numpy(y.astype(np.int64))), table
    column = int(label) if label.lstrip("-").isdigit() else -1
    return read_labelled(path, label_column=column, shape=shape, scale=scale), None


def vectors_dataset(
    path: PathLike,
    *,
    test: PathLike | None = None,
    label: str | None = None,
    x_key: str = "x",
    header: bool = True,
    shape: Sequence[int] | None = None,
    scale: float = 1.0,
    test_fraction: float = 0.25,
    validation_fraction: float = 0.1,
    seed: int = 0,
    card: DatasetCard | None = None,
) -> LabelledDataset:
    """Labelled vectors or images: ``.npz`` with arrays ``x_key`` and ``label`` (default
    ``"x"`` and, for ``.npz``, ``"y"``), or parquet / CSV with a label column (``label``,
    default ``"label"``; a CSV without a header line, ``header=False``, has its label last
    unless ``label`` is a column number), every other column a value.

    Args:
        label: the label array (``.npz``) or column; None for the defaults above. A name
            given explicitly is used as given, also ``"label"`` in a ``.npz``.
        test: an optional test file (else a stratified ``test_fraction`` of ``path``); its
            columns (parquet, CSV with a header) are matched to ``path``'s by name.
        shape: reshape each sample (e.g. ``[1, 28, 28]`` for images).
        scale: divide every value by this (255 for pixels).

    Returns:
        A :class:`LabelledDataset` split as :func:`vectors_from_arrays` says.

    Raises:
        DataFormatError: a malformed file (the file, and the line where there is one).
        ValueError: an empty training or test split (see :func:`vectors_from_arrays`).
    """
    where = "vectors_dataset"
    params.positive(where, "scale", scale)
    path = Path(path)
    if label is None:
        label = "y" if path.suffix == ".npz" else "label"
    train, columns = _read_vectors(
        path, label=label, x_key=x_key, header=header, shape=shape, scale=scale
    )
    read = {"train": train}
    if test is not None:  # named columns are matched to the training file's by name
        read["test"] = _read_vectors(
            Path(test),
            label=label,
            x_key=x_key,
            header=header,
            shape=shape,
            scale=scale,
            reference=columns,
        )[0]
    test_split = read.get("test")
    if (
        test is not None
        and test_split is not None
        and test_split.x.shape[1:] != read["train"].x.shape[1:]
    ):
        raise DataFormatError(
            test,
            None,
            f"samples of shape {list(test_split.x.shape[1:])}, but those of {path} have "
            f"shape {list(read['train'].x.shape[1:])}",
        )
    return vectors_from_arrays(
        read["train"].x,
        read["train"].y,
        test=None if test_split is None else (test_split.x, test_split.y),
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        card=card,
    )


# ============================================================================ presets
# The named data sets whose files are in one of these formats load through the same loaders:
# only where the files come from (fetched, checked by SHA-256) and their options are fixed.

_MSLR_FILES = {
    "msn1.fold1.train.5k.txt": "6d1721de961a35fbaef7085dc5b41e2940f0ddb04bab5f7a8566cf7db4158fa6",
    "msn1.fold1.test.5k.txt": "13d3c638edd23e482c38f4316c2680c938c2eaedbe096970ab30a48e364463d3",
}
_MSLR_CARD = DatasetCard(
    name="mslr10k-sample",
    area="ltr",
    description="Two 5,000-row samples of MSLR-WEB10K Fold1 (web search learning to rank), as "
    "shipped in the rankeval 0.8.2 source package.",
    size="train 5,000 documents / 43 queries; test 5,000 documents / 43 queries; 136 features; "
    "labels 0-4 (the last query of each file may be cut short)",
    license="MSLR-WEB10K terms of Microsoft Research (research use)",
    source="local path -> https://raw.githubusercontent.com/hpclab/rankeval/master/rankeval/"
    "test/data/ -> PyPI source package rankeval==0.8.2 "
    "(rankeval/test/data/msn1.fold1.{train,test}.5k.txt)",
    split="train / test as shipped; validation = a seeded fraction of the train queries "
    "(validation_fraction=0.2)",
    files=_MSLR_FILES,
    citation="Qin & Liu, Introducing LETOR 4.0 Datasets, arXiv:1306.2597 (2013)",
)


@register_dataset(_MSLR_CARD)
def _load_mslr(
    *,
    path: str | Path | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    normalize: str | None = None,
    verify: bool = True,
) -> LTRDataset:
    files = [DataFile(n, s) for n, s in _MSLR_FILES.items()]
    base = "https://raw.githubusercontent.com/hpclab/rankeval/master/rankeval/test/data/"
    members = {n: f"rankeval-0.8.2/rankeval/test/data/{n}" for n in _MSLR_FILES}
    paths = fetch(
        "mslr10k-sample",
        files,
        _sources(
            "mslr10k-sample",
            path,
            URLSource({n: base + n for n in _MSLR_FILES}),
            PipPackage(members, requirement="rankeval==0.8.2", source_dist=True),
        ),
        verify=verify,
    )
    return svmlight_dataset(
        paths["msn1.fold1.train.5k.txt"],
        test=paths["msn1.fold1.test.5k.txt"],
        num_features=136,
        zero_based=False,
        validation_fraction=validation_fraction,
        seed=seed,
        normalize=normalize,
        card=_MSLR_CARD,
    )


_ML_FILES = {"ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"}
_ML_CARD = DatasetCard(
    name="movielens-100k",
    area="recsys",
    description="MovieLens 100k ratings (RecBole atomic file ml-100k.inter). Loads as implicit "
    "feedback (rating >= rating_threshold, default 4) or graded lists (the rating is the gain).",
    size="100,000 ratings 1-5 from 943 users on 1,682 items (implicit, rating >= 4: 55,375)",
    license="GroupLens research-use terms (no commercial use; cite Harper & Konstan 2015)",
    source="local path -> https://raw.githubusercontent.com/RUCAIBox/RecBole/master/recbole/"
    "dataset_example/ml-100k/ml-100k.inter -> PyPI wheel recbole==1.2.1 "
    "(recbole/dataset_example/ml-100k/ml-100k.inter)",
    split="'random' (seeded, test_fraction=0.2 of interactions; validation_fraction=0.1 of the "
    "rest) or 'leave-last-out' (per user: last interaction by time -> test, second last -> "
    "validation) or 'ratio' (per user, seeded 8:1:1 as RecBole's RS split; users with 3 or "
    "more interactions have some in every split). Evaluation ranks the full catalogue, "
    "excluding the user's training items.",
    files=_ML_FILES,
    citation="Harper & Konstan, The MovieLens Datasets, ACM TiiS 5(4), 2015",
)


@register_dataset(_ML_CARD)
def _load_movielens(
    *,
    path: str | Path | None = None,
    feedback: str = "implicit",
    rating_threshold: float = 4.0,
    split: str = "random",
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    seed: int = 0,
    verify: bool = True,
) -> RecDataset:
    if feedback not in ("implicit", "graded"):
        raise ValueError(f"feedback must be 'implicit' or 'graded', got {feedback!r}")
    if split not in ("random", "leave-last-out", "ratio"):
        raise ValueError(f"split must be 'random', 'leave-last-out' or 'ratio', got {split!r}")
    member = "recbole/dataset_example/ml-100k/ml-100k.inter"
    paths = fetch(
        "movielens-100k",
        [DataFile(n, s) for n, s in _ML_FILES.items()],
        _sources(
            "movielens-100k",
            path,
            URLSource(
                {
                    "ml-100k.inter": "https://raw.githubusercontent.com/RUCAIBox/RecBole/"
                    "master/" + member
                }
            ),
            PipPackage({"ml-100k.inter": member}, requirement="recbole==1.2.1"),
        ),
        verify=verify,
    )
    return interactions_dataset(
        paths["ml-100k.inter"],
        feedback=feedback,
        rating_threshold=rating_threshold,
        split=split,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        card=_ML_CARD,
    )


_DIGITS_CARD = DatasetCard(
    name="digits",
    area="image",
    description="scikit-learn's copy of the UCI optical handwritten digits (always offline).",
    size="1,797 images, 8x8 grey levels 0-16 (scaled to [0, 1]), 10 classes",
    license="CC BY 4.0 (UCI Machine Learning Repository)",
    source="scikit-learn (sklearn.datasets.load_digits), bundled",
    split="stratified, seeded: test_fraction=0.25, then validation_fraction=0.1 of the rest",
    citation="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI (1998)",
)


@register_dataset(_DIGITS_CARD)
def _load_digits(
    *,
    test_fraction: float = 0.25,
    validation_fraction: float = 0.1,
    seed: int = 0,
    flatten: bool = False,
) -> LabelledDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    if flatten:
        x = x.flatten(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return vectors_from_arrays(
        x,
        y,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        card=_DIGITS_CARD,
    )


# ============================================================================ the formats
def _string(where: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{where}: {name} must be a non-empty string, got {value!r}")
    return value


def _strings(where: str, name: str, value: object) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{where}: {name} must be a non-empty list of column names, got {value!r}")
    return list(value)


def _zero_based(where: str, name: str, value: object) -> bool | str:
    if isinstance(value, bool):
        return value
    if value == "auto":
        return "auto"
    raise ValueError(f"{where}: {name} must be true, false or 'auto', got {value!r}")


def _split_rule(where: str, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where}: {name} must be one of {list(SPLIT_RULES)}, got {value!r}")
    return params.choice(where, name, value, SPLIT_RULES)


def _shape(where: str, name: str, value: object) -> list[int]:
    if not isinstance(value, list) or not value:
        raise TypeError(f"{where}: {name} must be a list of positive integers, got {value!r}")
    return [params.positive_int(where, f"{name}[{i}]", v) for i, v in enumerate(value)]


def _normalize(where: str, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where}: {name} must be one of {list(NORMALIZE)}, got {value!r}")
    return params.choice(where, name, value, NORMALIZE)


def _nonnegative_int(where: str, name: str, value: object) -> int:
    return params.nonnegative_int(where, name, value)


def _positive_int(where: str, name: str, value: object) -> int:
    return params.positive_int(where, name, value)


def _number(where: str, name: str, value: object) -> float:
    return params.number(where, name, value)


def _positive(where: str, name: str, value: object) -> float:
    return params.positive(where, name, value)


def _bool(where: str, name: str, value: object) -> bool:
    return params.boolean(where, name, value)


def _any(where: str, name: str, value: object) -> object:
    return value


Check = Callable[[str, str, object], object]

_LTR_SPLIT: dict[str, Check] = {
    "test_fraction": _fraction,
    "validation_fraction": _fraction,
    "seed": _nonnegative_int,
    "normalize": _normalize,
}


@dataclass(frozen=True)
class Format:
    """A file format: its loader, its file roles (``path`` first) and its checked options."""

    name: str
    loader: Callable[..., Any]
    files: tuple[str, ...]
    required: tuple[str, ...]
    options: Mapping[str, Check] = field(default_factory=dict)


FORMATS: dict[str, Format] = {
    "svmlight": Format(
        "svmlight",
        svmlight_dataset,
        ("path", "valid", "test"),
        ("path",),
        {
            **_LTR_SPLIT,
            "num_features": _positive_int,
            "zero_based": _zero_based,
            "max_features": _positive_int,
        },
    ),
    "table": Format(
        "table",
        table_dataset,
        ("path", "valid", "test"),
        ("path",),
        {**_LTR_SPLIT, "query": _string, "label": _string, "features": _strings, "sep": _string},
    ),
    "trec": Format(
        "trec",
        trec_dataset,
        ("path", "qrels"),
        ("path", "qrels"),
        {**_LTR_SPLIT, "query": _string, "doc": _string, "features": _strings, "sep": _string},
    ),
    "interactions": Format(
        "interactions",
        interactions_dataset,
        ("path",),
        ("path",),
        {
            "user": _string,
            "item": _string,
            "rating": _string,
            "time": _string,
            "sep": _string,
            "header": _bool,
            "feedback": _string,
            "rating_threshold": _number,
            "split": _split_rule,
            "test_fraction": _fraction,
            "validation_fraction": _fraction,
            "seed": _nonnegative_int,
        },
    ),
    "vectors": Format(
        "vectors",
        vectors_dataset,
        ("path", "test"),
        ("path",),
        {
            "label": _string,
            "x_key": _string,
            "header": _bool,
            "shape": _shape,
            "scale": _positive,
            "test_fraction": _fraction,
            "validation_fraction": _fraction,
            "seed": _nonnegative_int,
        },
    ),
}


def _format_options(fmt: Format) -> dict[str, Check]:
    """The options of ``fmt``; ``interactions`` also takes every split option of
    :func:`rankloss.data.split_interactions`, which the split function then checks."""
    if fmt.name != "interactions":
        return dict(fmt.options)
    return {**{name: _any for name in _split_options()}, **fmt.options}


# ============================================================================ sources and cache
@dataclass(frozen=True)
class DataSource:
    """A data set in the user's files: a format, its files (absolute paths by role:
    ``path``, ``valid``, ``test``, ``qrels``) and the format's options."""

    format: str
    files: Mapping[str, str]
    options: Mapping[str, Any] = field(default_factory=dict)

    def spec(self) -> str:
        """The source as one line of JSON (what a benchmark suite stores as its data set)."""
        return json.dumps(
            {"format": self.format, "files": dict(self.files), "options": dict(self.options)},
            sort_keys=True,
        )

    @classmethod
    def from_spec(cls, text: str) -> DataSource:
        value = json.loads(text)
        return cls(value["format"], dict(value["files"]), dict(value["options"]))

    @staticmethod
    def is_spec(text: str) -> bool:
        """Whether ``text`` is a :meth:`spec` (and not a registered data set's name)."""
        return text.startswith("{") and '"format"' in text

    @property
    def path(self) -> Path:
        """The main file."""
        return Path(self.files["path"])

    def _file_keys(self) -> list[str]:
        """One entry per file: its role, the suffixes of its name (which decide how it is
        parsed: ``.csv`` is comma-separated, ``.tsv`` tab-separated, ``.gz`` gzipped) and the
        SHA-256 of its bytes, in sorted role order."""
        return [
            f"{role}\0{''.join(Path(self.files[role]).suffixes)}\0{sha256sum(self.files[role])}\0"
            for role in sorted(self.files)
        ]

    def digest(self, options: Mapping[str, Any] | None = None) -> str:
        """SHA-256 over the format, every file's role, name suffixes and bytes, and the
        options: everything that decides the parsed data."""
        h = hashlib.sha256()
        h.update(f"rankloss-parsed-{CACHE_VERSION}\0{self.format}\0".encode())
        for key in self._file_keys():
            h.update(key.encode())
        merged = dict(self.options if options is None else options)
        h.update(json.dumps(merged, sort_keys=True, default=str).encode())
        return h.hexdigest()

    def label(self) -> str:
        """``"name.ext (format, sha256 1a2b3c4d5e6f)"``: which file, and which bytes of it;
        with options, ``"name.ext (format, sha256 1a2b3c4d5e6f, options 9f8e7d)"`` (the first 6
        hex digits of the SHA-256 of the options), so other options (a split, a threshold, a
        seed) make another label. The file hash covers every file with its role and name
        suffixes, so the same file given as ``test`` or as ``valid`` (or as ``.csv`` or as
        ``.tsv``) makes another label."""
        digest = hashlib.sha256()
        for key in self._file_keys():
            digest.update(key.encode())
        options = ""
        if self.options:
            text = json.dumps(dict(self.options), sort_keys=True, default=str)
            options = f", options {hashlib.sha256(text.encode()).hexdigest()[:6]}"
        return f"{self.path.name} ({self.format}, sha256 {digest.hexdigest()[:12]}{options})"

    def cache_path(self, digest: str) -> Path:
        return cache_dir("parsed") / f"{self.format}-{digest[:40]}.pt"

    def load(self, *, cache: bool = True, **defaults: Any) -> Any:
        """The data set, parsed once and then read from the cache while the files and options
        stay the same. ``defaults`` are options the caller (a benchmark task) suggests; the
        source's own options win over them. ``None`` values are left out."""
        fmt = FORMATS[self.format]
        allowed = _format_options(fmt)
        options = {k: v for k, v in defaults.items() if k in allowed and v is not None}
        options.update(self.options)
        if not cache:
            return self._parse(options)
        digest = self.digest(options)
        where = self.cache_path(digest)
        if where.is_file():
            try:
                state = torch.load(where, weights_only=True)
                data = _from_state(state)
                logger.info("%s: using the parsed copy %s", self.path, where)
                return data
            except Exception as error:  # noqa: BLE001 - a bad cache entry is parsed again
                logger.warning("%s: cannot read %s (%s); parsing again", self.path, where, error)
        data = self._parse(options)
        try:
            atomic_write(where, lambda handle: torch.save(_to_state(data), handle))
        except OSError as error:  # a read-only cache folder: parse again next time
            logger.warning("%s: cannot store the parsed copy in %s (%s)", self.path, where, error)
        else:
            logger.info("%s: parsed and stored as %s", self.path, where)
        return data

    def _parse(self, options: Mapping[str, Any]) -> Any:
        fmt = FORMATS[self.format]
        files = dict(self.files)
        main = files.pop("path")
        return fmt.loader(main, **files, **options)


def data_source(
    table: Mapping[str, Any], *, base: PathLike = ".", where: str = "dataset"
) -> DataSource:
    """A checked :class:`DataSource` from a table such as a benchmark config's
    ``dataset = { path = "my.svmlight", format = "svmlight", test = "test.svmlight" }``.

    Relative paths are taken from ``base`` (the config file's folder). Every key is checked:
    an unknown key, a missing file or a bad option value raises ``ValueError`` naming
    ``where``, the key and the allowed keys. The files are not parsed here
    (:meth:`DataSource.load` does that).
    """
    if "format" not in table:
        raise ValueError(f"{where}: needs 'format', one of {list(FORMATS)}")
    name = table["format"]
    if name not in FORMATS:
        raise ValueError(f"{where}: unknown format {name!r}; known: {', '.join(FORMATS)}")
    fmt = FORMATS[name]
    checks = _format_options(fmt)
    allowed = {"format", *fmt.files, *checks}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown} for format {name!r}; allowed: {sorted(allowed)}"
        )
    files: dict[str, str] = {}
    for role in fmt.files:
        if role not in table:
            if role in fmt.required:
                raise ValueError(f"{where}: format {name!r} needs '{role}' (a file)")
            continue
        value = table[role]
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where}: {role} must be a file path (a string), got {value!r}")
        file = Path(value).expanduser()
        if not file.is_absolute():
            file = Path(base) / file
        if not file.is_file():
            raise ValueError(f"{where}: {role} {str(file)!r} is not a file")
        files[role] = str(file.resolve())
    options: dict[str, Any] = {}
    for key, check in checks.items():
        if key in table:
            try:
                check(where, key, table[key])
            except TypeError as error:
                raise ValueError(str(error)) from None
            options[key] = table[key]
    return DataSource(name, files, options)


# ----------------------------------------------------------------------------- stored form
def _ltr_state(split: LTRSplit | None) -> dict[str, Any] | None:
    if split is None:
        return None
    return {k: getattr(split, k) for k in ("features", "labels", "mask", "query_ids")}


def _inter_state(split: Interactions | None) -> dict[str, Any] | None:
    if split is None:
        return None
    return {k: getattr(split, k) for k in ("user", "item", "rating", "time")}


def _ids_state(ids: np.ndarray | None) -> list[Any] | None:
    return None if ids is None else np.asarray(ids).tolist()


def _to_state(data: Any) -> dict[str, Any]:
    """Tensors, lists and strings only: read back with ``torch.load(weights_only=True)``."""
    splits = ("train", "validation", "test")
    if isinstance(data, LTRDataset):
        return {"type": "ltr", **{s: _ltr_state(getattr(data, s)) for s in splits}}
    if isinstance(data, RecDataset):
        return {
            "type": "rec",
            **{s: _inter_state(getattr(data, s)) for s in splits},
            "num_users": data.num_users,
            "num_items": data.num_items,
            "feedback": data.feedback,
            "user_ids": _ids_state(data.user_ids),
            "item_ids": _ids_state(data.item_ids),
        }
    if isinstance(data, LabelledDataset):
        return {
            "type": "labelled",
            **{
                s: None
                if getattr(data, s) is None
                else {"x": getattr(data, s).x, "y": getattr(data, s).y}
                for s in splits
            },
            "class_names": data.class_names,
        }
    raise TypeError(f"cannot store a {type(data).__name__}")


def _from_state(state: dict[str, Any]) -> Any:
    kind = state["type"]
    if kind == "ltr":
        parts = {
            s: None if state[s] is None else LTRSplit(**state[s])
            for s in ("train", "validation", "test")
        }
        return LTRDataset(parts["train"], parts["test"], parts["validation"])  # type: ignore[arg-type]
    if kind == "rec":
        inter = {
            s: None if state[s] is None else Interactions(**state[s])
            for s in ("train", "validation", "test")
        }
        ids = {
            k: None if state[k] is None else np.asarray(state[k]) for k in ("user_ids", "item_ids")
        }
        return RecDataset(
            state["num_users"],
            state["num_items"],
            inter["train"],  # type: ignore[arg-type]
            inter["test"],  # type: ignore[arg-type]
            inter["validation"],
            feedback=state["feedback"],
            user_ids=ids["user_ids"],
            item_ids=ids["item_ids"],
        )
    if kind == "labelled":
        samples = {
            s: None if state[s] is None else LabelledSplit(state[s]["x"], state[s]["y"])
            for s in ("train", "validation", "test")
        }
        return LabelledDataset(
            samples["train"],  # type: ignore[arg-type]
            samples["test"],  # type: ignore[arg-type]
            samples["validation"],
            state["class_names"],
        )
    raise ValueError(f"unknown stored data set type {kind!r}")
