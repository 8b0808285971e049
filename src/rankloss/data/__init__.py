"""Data sets for the four application areas: learning to rank, recommendation, image retrieval
and semantic search.

* Named data sets: :func:`load`, :func:`available`, :func:`card`, :func:`imbalanced`.
* Generic loaders for your own files: :func:`read_svmlight`, :func:`read_interactions`,
  :func:`read_labelled`, :func:`read_idx`, :func:`read_text_retrieval`.
* Whole data sets (splits included) from your own files, by format, with a content-hash
  cache: :func:`svmlight_dataset`, :func:`table_dataset`, :func:`trec_dataset`,
  :func:`interactions_dataset`, :func:`vectors_dataset`, :class:`DataSource`
  (:mod:`rankloss.data.formats`).
* Batching: :func:`pad_lists`, :func:`sample_lists`, :func:`normalize_lists`,
  :func:`list_batches` (class-balanced batches: :mod:`rankloss.mining` samplers).

See ``docs/data.md`` for the data set cards.
"""

from rankloss.data._fetch import (
    DataFile,
    DataUnavailableError,
    DebianPackage,
    LocalPath,
    PipPackage,
    URLSource,
    cache_dir,
    fetch,
    sha256sum,
)
from rankloss.data.batching import (
    index_batches,
    list_batches,
    normalize_lists,
    pad_lists,
    sample_lists,
)
from rankloss.data.datasets import (
    DATASETS,
    available,
    card,
    imbalanced,
    load,
    register_dataset,
    reviews_to_retrieval,
    split_interactions,
)
from rankloss.data.formats import (
    FORMATS,
    DataSource,
    data_source,
    interactions_dataset,
    svmlight_dataset,
    table_dataset,
    trec_dataset,
    vectors_dataset,
    vectors_from_arrays,
)
from rankloss.data.loaders import (
    IdMap,
    read_idx,
    read_interactions,
    read_labelled,
    read_svmlight,
    read_text_retrieval,
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
    TextRetrievalDataset,
    TextRetrievalSplit,
)

__all__ = [
    "load",
    "available",
    "card",
    "imbalanced",
    "DATASETS",
    "register_dataset",
    "split_interactions",
    "reviews_to_retrieval",
    "read_svmlight",
    "read_interactions",
    "read_labelled",
    "read_idx",
    "read_text_retrieval",
    "IdMap",
    "FORMATS",
    "DataSource",
    "data_source",
    "svmlight_dataset",
    "table_dataset",
    "trec_dataset",
    "interactions_dataset",
    "vectors_dataset",
    "vectors_from_arrays",
    "pad_lists",
    "sample_lists",
    "normalize_lists",
    "list_batches",
    "index_batches",
    "DataFormatError",
    "DatasetCard",
    "LTRSplit",
    "LTRDataset",
    "LabelledSplit",
    "LabelledDataset",
    "Interactions",
    "RecDataset",
    "TextRetrievalSplit",
    "TextRetrievalDataset",
    "DataFile",
    "DataUnavailableError",
    "LocalPath",
    "URLSource",
    "PipPackage",
    "DebianPackage",
    "cache_dir",
    "fetch",
    "sha256sum",
]
