"""Generic loaders for users' own data.

* :func:`read_svmlight` - SVMlight / LETOR files with ``qid`` (scikit-learn's reader);
* :func:`read_interactions` - parquet / CSV / TSV interaction logs (user, item, rating, time);
* :func:`read_labelled` - labelled arrays (images or embeddings) from ``.npz`` or CSV;
* :func:`read_idx` - IDX files (MNIST layout), optionally gzipped;
* :func:`read_text_retrieval` - queries, corpus and qrels in the BEIR or TREC layout.

A malformed line raises :class:`~rankloss.data.types.DataFormatError` whose message starts with
``file:line:``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from rankloss._core import params
from rankloss.data.types import (
    DataFormatError,
    Interactions,
    LabelledSplit,
    LTRSplit,
    TextRetrievalDataset,
    TextRetrievalSplit,
)
from rankloss.lists import ListLayout

__all__ = [
    "read_svmlight",
    "read_interactions",
    "read_labelled",
    "read_idx",
    "read_text_retrieval",
    "IdMap",
]

PathLike = str | os.PathLike


def _open_text(path: PathLike) -> io.TextIOBase:
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


_DECOMPRESS_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _text_lines(path: PathLike) -> Iterator[str]:
    """The lines of a text file (gzipped when it ends in ``.gz``), decoded as UTF-8; a byte
    order mark at the start of the file is dropped (``utf-8-sig``), so it never becomes part of
    the first header name.

    Invalid UTF-8 and a truncated or corrupt ``.gz`` raise :class:`DataFormatError` naming
    the file and line, instead of a bare ``UnicodeDecodeError`` / ``EOFError``.
    """
    opener = gzip.open if Path(path).suffix == ".gz" else open
    lineno = 0
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    yield raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as err:
                    raise DataFormatError(
                        path, lineno, f"invalid UTF-8 at byte {err.start} of the line"
                    ) from None
    except _DECOMPRESS_ERRORS as err:
        raise DataFormatError(
            path, None, f"compressed data is truncated or corrupt after line {lineno} ({err})"
        ) from None


# ----------------------------------------------------------------------------- SVMlight / LETOR
#: The default bound on the number of features of an SVMlight file (``max_features``): a
#: typo'd index such as ``300000000:1`` is refused instead of allocating gigabytes.
MAX_FEATURES = 100_000


def _svmlight_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """``(line number, data part)`` of each line (the text before ``#``), decoded as UTF-8.

    Invalid UTF-8 and a truncated or corrupt ``.gz`` raise :class:`DataFormatError`.
    """
    opener = gzip.open if Path(path).suffix == ".gz" else open
    lineno = 0
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                data = raw.split(b"#", 1)[0]
                try:
                    yield lineno, data.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataFormatError(
                        path, lineno, f"invalid UTF-8 at byte {err.start} of the line"
                    ) from None
    except _DECOMPRESS_ERRORS as err:
        raise DataFormatError(
            path, None, f"compressed data is truncated or corrupt after line {lineno} ({err})"
        ) from None


#: The largest finite float32 (features and labels are stored as float32) and int64's range.
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT64 = np.iinfo(np.int64)


def _find_svmlight_error(
    path: PathLike, *, limit: int, zero_based: bool | str, bound_name: str
) -> DataFormatError | None:
    """Scan an SVMlight file line by line; the first malformed line as an error.

    ``limit`` is the number of features allowed (``num_features`` or ``max_features``).
    """
    for lineno, line in _svmlight_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        try:
            label = float(tokens[0])
        except ValueError:
            return DataFormatError(path, lineno, f"label {tokens[0]!r} is not a number")
        if not abs(label) <= _FLOAT32_MAX:
            return DataFormatError(
                path, lineno, f"label {tokens[0]!r} is not a finite number in float32's range"
            )
        if len(tokens) < 2 or not tokens[1].startswith("qid:"):
            return DataFormatError(path, lineno, "missing 'qid:<id>' after the label")
        try:
            query = int(tokens[1][4:])
        except ValueError:
            return DataFormatError(path, lineno, f"query id {tokens[1]!r} is not an integer")
        if not _INT64.min <= query <= _INT64.max:
            return DataFormatError(path, lineno, f"query id {tokens[1]!r} is out of int64's range")
        previous = -1
        for tok in tokens[2:]:
            index, sep, value = tok.partition(":")
            try:
                if not sep:
                    raise ValueError
                i = int(index)
                v = float(value)
            except ValueError:
                return DataFormatError(path, lineno, f"feature {tok!r} is not '<index>:<value>'")
            if not abs(v) <= _FLOAT32_MAX:
                return DataFormatError(
                    path, lineno, f"feature {tok!r} is not a finite number in float32's range"
                )
            lowest = 0 if zero_based is True or zero_based == "auto" else 1
            if i < lowest:
                return DataFormatError(path, lineno, f"feature index {i} is below {lowest}")
            highest = limit - 1 if zero_based is True else limit
            if i > highest:
                return DataFormatError(
                    path,
                    lineno,
                    f"feature index {i} is over the bound of {limit} features "
                    f"({bound_name}={limit}; pass a larger {bound_name}= to allow more)",
                )
            if i <= previous:
                return DataFormatError(
                    path, lineno, f"feature indices must increase ({i} after {previous})"
                )
            previous = i
    return None


def read_svmlight(
    path: PathLike,
    *,
    num_features: int | None = None,
    zero_based: bool | str = "auto",
    max_features: int = MAX_FEATURES,
) -> LTRSplit:
    """Read an SVMlight/LETOR file (``<label> qid:<id> <i>:<v> ...``) into padded lists.

    Lists are ordered by ascending query id, documents in file order. Labels and feature
    values must be finite numbers; the file must be UTF-8 (a ``.gz`` must be complete).

    Args:
        path: the file (may be gzipped).
        num_features: number of features (default: the largest index in the file).
        zero_based: whether feature indices start at 0 (``"auto"``: guessed by scikit-learn).
        max_features: the most features accepted when ``num_features`` is not given (default
            100,000): a larger index is refused before any dense array is allocated.

    Raises:
        DataFormatError: naming the file and line of the first malformed line (a non-number,
            a ``nan``/``inf`` label or value, invalid UTF-8, a feature index over the bound), or
            the file when a ``.gz`` is truncated.
    """
    from sklearn.datasets import load_svmlight_file

    where = "read_svmlight"
    max_features = params.positive_int(where, "max_features", max_features)
    if num_features is not None:
        num_features = params.positive_int(where, "num_features", num_features)
    if not (isinstance(zero_based, bool) or zero_based == "auto"):
        raise ValueError(f"{where}: zero_based must be True, False or 'auto', got {zero_based!r}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist")
    limit, bound_name = (
        (num_features, "num_features")
        if num_features is not None
        else (max_features, "max_features")
    )

    def locate(fallback: str) -> DataFormatError:
        found = _find_svmlight_error(
            path, limit=limit, zero_based=zero_based, bound_name=bound_name
        )
        return found or DataFormatError(path, None, fallback)

    try:
        x, y, qid = load_svmlight_file(
            str(path),
            n_features=num_features,
            query_id=True,
            zero_based=zero_based,
            dtype=np.float32,
        )
    except (ValueError, UnicodeDecodeError, OverflowError, *_DECOMPRESS_ERRORS) as err:
        raise locate(f"{type(err).__name__}: {err}") from err
    if len(qid) != len(y):
        raise locate("some lines have no 'qid:'")
    if x.shape[1] > limit:
        raise locate(f"{x.shape[1]} features, over {bound_name}={limit}")
    if not (np.abs(y).max(initial=0.0) <= _FLOAT32_MAX and np.isfinite(x.data).all()):
        raise locate("a label or feature value is not a finite number in float32's range")
    if len(y) == 0:
        raise DataFormatError(path, None, "no data lines")
    layout = ListLayout.from_query_ids(torch.from_numpy(qid.astype(np.int64)))
    features = layout.pad(torch.from_numpy(np.asarray(x.todense(), dtype=np.float32)))
    labels = layout.pad(torch.from_numpy(y.astype(np.float32)))
    return LTRSplit(features, labels, layout.mask, layout.query_ids.long())


# ----------------------------------------------------------------------------- interactions
class IdMap:
    """Raw ids -> contiguous ``0..n-1`` (in order of first sight or sorted)."""

    def __init__(self, raw: Sequence[object] | np.ndarray) -> None:
        self.ids = np.asarray(raw)
        self.index = {v: i for i, v in enumerate(self.ids.tolist())}

    def __len__(self) -> int:
        return len(self.ids)

    def encode(self, values: Sequence[object] | np.ndarray) -> np.ndarray:
        return np.fromiter((self.index[v] for v in np.asarray(values).tolist()), np.int64)


_DEFAULT_COLUMNS = {
    "user": ("user", "user_id", "userid", "userId"),
    "item": ("item", "item_id", "itemid", "movie_id", "movieId"),
    "rating": ("rating", "score", "label"),
    "time": ("time", "timestamp", "ts"),
}


def _strip_type(name: str) -> str:
    """RecBole headers look like ``user_id:token``; keep ``user_id``."""
    return name.split(":", 1)[0].strip()


def _pick(
    path: Path, line: int | None, header: list[str], role: str, given: str | None
) -> int | None:
    """The index of ``role``'s column: ``given``, else the first of its usual names (None
    when there is none).

    Raises:
        DataFormatError: ``given`` is not in ``header`` (the file, ``line`` (the header's;
            None for parquet), the name and the columns).
    """
    if given is not None:
        if given not in header:
            raise DataFormatError(path, line, f"no {role} column {given!r}; columns are {header}")
        return header.index(given)
    for candidate in _DEFAULT_COLUMNS[role]:
        if candidate in header:
            return header.index(candidate)
    return None


def read_interactions(
    path: PathLike,
    *,
    user: str | None = None,
    item: str | None = None,
    rating: str | None = None,
    time: str | None = None,
    sep: str | None = None,
    header: bool = True,
) -> tuple[Interactions, IdMap, IdMap]:
    """Read an interaction log (user, item, rating, time) from parquet, CSV or TSV.

    Column names default to the usual ones (``user``/``user_id``/``userId``, ``item``/
    ``item_id``/``movieId``, ``rating``, ``time``/``timestamp``); RecBole's ``name:type``
    headers are understood. Without ``rating`` every interaction gets 1; without ``time`` the
    row number is the time. Without a header (``header=False``) the columns are user, item,
    [rating, [time]].

    Returns:
        ``(interactions, user_map, item_map)``: ids are contiguous, in sorted raw-id order.

    Raises:
        DataFormatError: a line with the wrong number of fields, a rating/time that is not a
            finite number (``nan``, ``inf``), invalid UTF-8 or a truncated/corrupt ``.gz``, naming
            the file and line (parquet: the row); a null user or item id (parquet: the row); a
            column named by ``user``/``item``/``rating``/``time`` that the header lacks.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    names = {"user": user, "item": item, "rating": rating, "time": time}
    if path.suffix == ".parquet" or ".parquet" in path.suffixes:
        import pandas as pd

        frame = pd.read_parquet(path)
        cols = [_strip_type(str(c)) for c in frame.columns]
        rows = [
            frame.iloc[:, i].to_numpy() if i is not None else None
            for i in (_pick(path, None, cols, r, names[r]) for r in names)
        ]
        if rows[0] is None or rows[1] is None:
            raise DataFormatError(path, None, f"no user/item column among {cols}")
        for r, values in zip(("user", "item"), rows[:2]):
            missing = np.flatnonzero(pd.isna(values))
            if len(missing):
                raise DataFormatError(path, None, f"row {missing[0] + 1}: {r} id is missing (null)")
        for r, values in zip(("rating", "time"), rows[2:]):
            if values is None:
                continue
            if not np.issubdtype(np.asarray(values).dtype, np.number):
                raise DataFormatError(path, None, f"column {r} is not numeric")
            bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=np.float64)))
            if len(bad):
                raise DataFormatError(
                    path,
                    None,
                    f"row {bad[0] + 1}: {r} {float(values[bad[0]])!r} is not a finite number",
                )
        raw_user, raw_item, ratings, times = rows
    else:
        if sep is None:
            sep = "," if path.suffix in (".csv",) or path.name.endswith(".csv.gz") else "\t"
        raw_user, raw_item, ratings, times = _read_delimited(path, sep, header, names)
    assert raw_user is not None and raw_item is not None  # checked above for every format
    n = len(raw_user)
    ratings = np.ones(n, np.float32) if ratings is None else np.asarray(ratings, np.float32)
    times = np.arange(n, dtype=np.float64) if times is None else np.asarray(times, np.float64)
    user_map = IdMap(np.unique(np.asarray(raw_user)))
    item_map = IdMap(np.unique(np.asarray(raw_item)))
    inter = Interactions(
        torch.from_numpy(user_map.encode(raw_user)),
        torch.from_numpy(item_map.encode(raw_item)),
        torch.from_numpy(ratings),
        torch.from_numpy(times),
    )
    return inter, user_map, item_map


def _read_delimited(path: Path, sep: str, header: bool, names: dict[str, str | None]):
    reader = csv.reader(_text_lines(path), delimiter=sep)
    first = next(reader, None)
    if first is None:
        raise DataFormatError(path, 1, "empty file")
    if header:
        cols = [_strip_type(c) for c in first]
        index = {r: _pick(path, 1, cols, r, names[r]) for r in names}
        if index["user"] is None or index["item"] is None:
            raise DataFormatError(path, 1, f"header has no user/item column: {cols}")
        rows: list[list[str]] = []
        width = len(cols)
    else:
        width = len(first)
        index = {
            "user": 0,
            "item": 1,
            "rating": 2 if width > 2 else None,
            "time": 3 if width > 3 else None,
        }
        rows = [first]
    out: dict[str, list] = {r: [] for r in names}
    numeric = [r for r in ("rating", "time") if index[r] is not None]
    columns = {r: i for r, i in index.items() if i is not None}

    def take(fields: list[str], lineno: int) -> None:
        if len(fields) != width:
            raise DataFormatError(path, lineno, f"expected {width} fields, got {len(fields)}")
        for r in ("user", "item"):
            out[r].append(fields[columns[r]])
        for r in numeric:
            try:
                value = float(fields[columns[r]])
            except ValueError:
                raise DataFormatError(
                    path, lineno, f"{r} {fields[columns[r]]!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise DataFormatError(
                    path, lineno, f"{r} {fields[columns[r]]!r} is not a finite number"
                )
            out[r].append(value)

    for fields in rows:
        take(fields, 1)
    end = reader.line_num  # the last line of the header (or first record)
    for fields in reader:
        # a quoted field may span lines: a record starts after the previous one ends
        lineno, end = end + 1, reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        take(fields, lineno)
    users, items = _as_ids(out["user"]), _as_ids(out["item"])
    return (
        users,
        items,
        out["rating"] if numeric.count("rating") else None,
        out["time"] if "time" in numeric else None,
    )


def _exact_int(value: object) -> int:
    """``value`` as the integer it is exactly (``3``, ``3.0``, ``"3"``); a ``ValueError`` for
    anything else (``1.5``, ``"01"``, ``"+3"``, ``"q1"``), so distinct ids never merge."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and str(number := int(value)) == value:
        return number
    raise ValueError(f"{value!r} is not an integer id")


def _as_ids(values: list[str]) -> np.ndarray:
    """Integer ids when every value is exactly an integer's text in int64's range (``"7"``,
    not ``"07"``, ``"+7"``, ``"7_0"`` or ``" 7"``), else the strings, so that two ids are one
    only when they are written the same."""
    try:
        return np.asarray([_exact_int(v) for v in values], dtype=np.int64)
    except (ValueError, OverflowError):
        return np.asarray(values)


# ----------------------------------------------------------------------------- labelled arrays
def read_labelled(
    path: PathLike,
    *,
    x_key: str = "x",
    y_key: str = "y",
    label_column: int = -1,
    shape: Sequence[int] | None = None,
    scale: float = 1.0,
    header: bool = False,
) -> LabelledSplit:
    """Read labelled arrays: ``.npz`` (arrays ``x_key`` and ``y_key``) or CSV (one row per
    sample, the label in ``label_column``, every other column a value).

    Args:
        shape: reshape each sample to this (e.g. ``(1, 28, 28)`` for images).
        scale: divide values by this (e.g. 255 for pixels).

    Raises:
        DataFormatError: a CSV row with a different number of fields, a non-numeric or
            non-finite value, a label that is not a finite integer, a ``label_column`` outside
            the row, invalid UTF-8 or a truncated ``.gz`` (file and line); an unreadable
            ``.npz``, arrays that do not pair one label per sample, a one-dimensional or
            non-numeric ``x``, a non-finite value, or a ``shape`` that does not hold a sample's
            values (file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                for key in (x_key, y_key):
                    if key not in data:
                        raise DataFormatError(path, None, f"no array {key!r}; has {list(data)}")
                x, y = data[x_key], data[y_key]
        except DataFormatError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise DataFormatError(path, None, f"not a readable .npz file ({err})") from None
        if x.ndim == 0 or y.ndim != 1 or len(x) != len(y):
            raise DataFormatError(
                path,
                None,
                f"{x_key!r} {tuple(x.shape)} and {y_key!r} {tuple(y.shape)} "
                "do not pair one label with each sample",
            )
        if x.ndim == 1:
            raise DataFormatError(
                path,
                None,
                f"{x_key!r} {tuple(x.shape)} has one value per sample; give samples as rows "
                "[N, features] or images [N, C, H, W]",
            )
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise DataFormatError(path, None, f"{x_key!r} holds {x.dtype}, not numbers")
        finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise DataFormatError(
                path, None, f"{x_key!r}: sample {row} has a value that is not finite"
            )
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
            raise DataFormatError(
                path, None, f"labels {y_key!r} hold {y.dtype}, not integers (number the classes)"
            )
        if not np.all(np.isfinite(y)):
            raise DataFormatError(path, None, f"labels {y_key!r} are not all finite")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.equal(np.mod(y, 1), 0)):
                raise DataFormatError(path, None, f"labels {y_key!r} are not integers")
    else:
        x, y = _read_labelled_csv(path, label_column, header)
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) / scale
    return LabelledSplit(reshape_samples(path, x, shape), torch.from_numpy(np.asarray(y, np.int64)))


def reshape_samples(path: PathLike, x: torch.Tensor, shape: Sequence[int] | None) -> torch.Tensor:
    """Each sample (row) of ``x [N, ...]`` from the file ``path`` reshaped to ``shape`` (``x``
    itself when ``shape`` is None).

    Raises:
        DataFormatError: ``shape`` does not hold as many values as a sample (the file, the shape
            and both counts).
    """
    if shape is None:
        return x
    size, per_sample = math.prod(shape), math.prod(x.shape[1:])
    if size != per_sample:
        raise DataFormatError(
            path,
            None,
            f"shape {list(shape)} holds {size} values, but each sample has {per_sample}",
        )
    return x.reshape(x.shape[0], *shape)


def _read_labelled_csv(path: Path, label_column: int, header: bool):
    xs, ys, width = [], [], None
    for lineno, raw in enumerate(_text_lines(path), 1):
        if header and lineno == 1:
            continue
        line = raw.strip()
        if not line:
            continue
        fields = line.split(",")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise DataFormatError(path, lineno, f"expected {width} fields, got {len(fields)}")
        try:
            values = [float(v) for v in fields]
        except ValueError:
            bad = next(v for v in fields if not _is_float(v))
            raise DataFormatError(path, lineno, f"value {bad!r} is not a number") from None
        if not -len(values) <= label_column < len(values):
            raise DataFormatError(
                path, lineno, f"label_column {label_column} is outside the {len(values)} fields"
            )
        label = values.pop(label_column)
        if not math.isfinite(label) or label != int(label):
            raise DataFormatError(path, lineno, f"label {label} is not an integer")
        bad_value = next((v for v in values if not math.isfinite(v)), None)
        if bad_value is not None:
            raise DataFormatError(path, lineno, f"value {bad_value} is not finite")
        xs.append(values)
        ys.append(int(label))
    if not xs:
        raise DataFormatError(path, None, "no data rows")
    return np.asarray(xs, np.float32), np.asarray(ys, np.int64)


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (``*-ubyte`` or ``*-ubyte.gz``, the MNIST format) into an array.

    Raises:
        DataFormatError: a bad magic number or data type, a header cut short, a size that does
            not match the header, or a truncated/corrupt ``.gz``, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except _DECOMPRESS_ERRORS as err:
        message = f"compressed data is truncated or corrupt ({err})"
        raise DataFormatError(path, None, message) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataFormatError(path, None, "not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise DataFormatError(path, None, f"unknown IDX data type 0x{data[2]:02x}")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataFormatError(
            path,
            None,
            f"header is cut short: {ndim} dimensions need {4 + 4 * ndim} bytes, "
            f"the file has {len(data)}",
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    dtype = np.dtype(dtypes[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - offset != expected:
        raise DataFormatError(
            path, None, f"header says {dims} ({expected} bytes) but {len(data) - offset} follow"
        )
    return np.frombuffer(data, dtype, offset=offset).reshape(dims).astype(dtype.newbyteorder("="))


# ----------------------------------------------------------------------------- text retrieval
def _read_jsonl(path: Path, key_field: str = "_id") -> dict[str, dict]:
    out = {}
    with _open_text(path) as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataFormatError(path, lineno, f"invalid JSON: {err.msg}") from None
            if not isinstance(row, dict) or key_field not in row:
                raise DataFormatError(path, lineno, f"record has no {key_field!r} field")
            out[str(row[key_field])] = row
    return out


def _read_qrels(path: Path) -> dict[str, dict[str, int | float]]:
    """BEIR TSV (``query-id corpus-id score`` with a header) or TREC (``qid 0 docid rel``).

    A relevance is an ``int`` when it is written as one, else a ``float``. A relevance that is
    not a finite number, a second judgment of a document for the same query, invalid UTF-8 or
    a truncated ``.gz`` is a :class:`DataFormatError` naming the file and the line (and the
    earlier line).
    """
    qrels: dict[str, dict[str, int | float]] = {}
    lines: dict[tuple[str, str], int] = {}
    for lineno, raw in enumerate(_text_lines(path), 1):
        fields = raw.split()
        if not fields:
            continue
        if lineno == 1 and not _is_float(fields[-1]) and "query" in fields[0].lower():
            continue  # BEIR header: query-id corpus-id score
        if len(fields) == 3:
            q, d, r = fields
        elif len(fields) == 4:
            q, _, d, r = fields
        else:
            raise DataFormatError(
                path, lineno, f"expected 3 (BEIR) or 4 (TREC) fields, got {len(fields)}"
            )
        if not _is_float(r) or not math.isfinite(float(r)):
            raise DataFormatError(path, lineno, f"relevance {r!r} is not a finite number")
        if (q, d) in lines:
            raise DataFormatError(
                path,
                lineno,
                f"a second judgment of document {d!r} for query {q!r} (the first is at "
                f"line {lines[q, d]})",
            )
        lines[q, d] = lineno
        value = float(r)
        qrels.setdefault(q, {})[d] = int(value) if value.is_integer() else value
    return qrels


def _read_topics(path: Path) -> dict[str, str]:
    """Queries: BEIR ``queries.jsonl`` or a TSV ``qid<TAB>text``."""
    if path.suffix == ".jsonl" or path.name.endswith(".jsonl.gz"):
        return {k: str(v.get("text", "")) for k, v in _read_jsonl(path).items()}
    out = {}
    with _open_text(path) as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            q, sep, text = raw.rstrip("\n").partition("\t")
            if not sep:
                raise DataFormatError(path, lineno, "expected '<query id>\\t<text>'")
            out[q] = text
    return out


def read_text_retrieval(folder: PathLike) -> TextRetrievalDataset:
    """Read a text retrieval collection in the BEIR layout::

        folder/corpus.jsonl     {"_id": ..., "title": ..., "text": ...} per line
        folder/queries.jsonl    {"_id": ..., "text": ...} per line (or queries.tsv)
        folder/qrels/{train,dev,test}.tsv   query-id, corpus-id, score (TREC 4-column also ok)

    Documents' text is ``title + " " + text``. Query splits come from the qrels files present
    (``dev`` is returned as ``validation``); a split holds the queries that have qrels there.
    """
    folder = Path(folder)
    corpus_path = next(
        (p for p in (folder / "corpus.jsonl", folder / "corpus.jsonl.gz") if p.is_file()), None
    )
    if corpus_path is None:
        raise FileNotFoundError(f"no corpus.jsonl in {folder}")
    corpus = {
        k: " ".join(filter(None, (str(v.get("title") or ""), str(v.get("text") or ""))))
        for k, v in _read_jsonl(corpus_path).items()
    }
    query_path = next(
        (p for p in (folder / "queries.jsonl", folder / "queries.tsv") if p.is_file()), None
    )
    if query_path is None:
        raise FileNotFoundError(f"no queries.jsonl or queries.tsv in {folder}")
    queries = _read_topics(query_path)
    splits: dict[str, TextRetrievalSplit] = {}
    for name, key in (("train", "train"), ("dev", "validation"), ("test", "test")):
        for qrel_path in (folder / "qrels" / f"{name}.tsv", folder / "qrels" / f"{name}.txt"):
            if qrel_path.is_file():
                qrels = _read_qrels(qrel_path)
                missing = [q for q in qrels if q not in queries]
                if missing:
                    raise DataFormatError(qrel_path, None, f"unknown query id {missing[0]!r}")
                unknown = [d for docs in qrels.values() for d in docs if d not in corpus]
                if unknown:
                    raise DataFormatError(qrel_path, None, f"unknown document id {unknown[0]!r}")
                splits[key] = TextRetrievalSplit({q: queries[q] for q in qrels}, qrels)
                break
    if "test" not in splits:
        raise FileNotFoundError(f"no qrels/test.tsv in {folder}")
    return TextRetrievalDataset(
        corpus, splits.get("train"), splits["test"], validation=splits.get("validation")
    )
