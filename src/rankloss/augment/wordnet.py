"""A minimal reader of the WordNet 3.0 database files, for synonym replacement.

It reads the ``index.<pos>`` and ``data.<pos>`` files (``pos`` in noun, verb, adj, adv) of a
WordNet directory directly, e.g. Debian's ``wordnet-base`` package in ``/usr/share/wordnet``
(``apt-get install wordnet-base``). No NLTK is needed. The directory is, in order: the
``path`` argument, the ``RANKLOSS_WORDNET`` environment variable, ``/usr/share/wordnet``.

File format (see ``wndb(5WN)``): an index line is
``lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...``;
a data line starts at byte ``synset_offset`` with
``offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] ...`` where ``w_cnt`` is two
hexadecimal digits. Lines starting with two spaces are the licence header.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["WordNet", "WordNetNotFoundError", "DEFAULT_WORDNET_PATH"]

DEFAULT_WORDNET_PATH = "/usr/share/wordnet"
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}


class WordNetNotFoundError(FileNotFoundError):
    """The WordNet database files are not where they were looked for."""


def _resolve(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        path = os.environ.get("RANKLOSS_WORDNET", DEFAULT_WORDNET_PATH)
    return Path(path)


class WordNet:
    """Synonyms from a WordNet database directory.

    >>> wn = WordNet("/usr/share/wordnet")          # doctest: +SKIP
    >>> wn.synonyms("car")[:3]                      # doctest: +SKIP
    ['auto', 'automobile', 'machine']

    The index files are read on first use (about a second for the full database); data
    lines are read on demand by seeking to their offsets, and cached.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = _resolve(path)
        present = [
            pos
            for pos, name in POS_FILES.items()
            if (self.path / f"index.{name}").is_file() and (self.path / f"data.{name}").is_file()
        ]
        if not present:
            raise WordNetNotFoundError(
                f"no WordNet database in {str(self.path)!r}: expected files index.noun and "
                "data.noun (and verb, adj, adv). Install Debian's wordnet-base "
                "(apt-get install wordnet-base, which fills /usr/share/wordnet), or pass "
                "path= / set RANKLOSS_WORDNET to a directory holding WordNet 3.0's dict files."
            )
        self.parts_of_speech = tuple(present)
        self._index: dict[str, dict[str, tuple[int, ...]]] | None = None
        self._synsets: dict[tuple[str, int], tuple[str, ...]] = {}

    def _load_index(self) -> dict[str, dict[str, tuple[int, ...]]]:
        if self._index is None:
            index: dict[str, dict[str, tuple[int, ...]]] = {}
            for pos in self.parts_of_speech:
                table: dict[str, tuple[int, ...]] = {}
                with open(self.path / f"index.{POS_FILES[pos]}", encoding="utf-8") as f:
                    for line in f:
                        if line.startswith("  "):
                            continue
                        fields = line.split()
                        if len(fields) < 6:
                            continue
                        n_synsets, n_pointers = int(fields[2]), int(fields[3])
                        offsets = fields[6 + n_pointers : 6 + n_pointers + n_synsets]
                        table[fields[0]] = tuple(int(o) for o in offsets)
                index[pos] = table
            self._index = index
        return self._index

    def _synset_words(self, pos: str, offset: int) -> tuple[str, ...]:
        key = (pos, offset)
        if key not in self._synsets:
            with open(self.path / f"data.{POS_FILES[pos]}", "rb") as f:
                f.seek(offset)
                fields = f.readline().decode("utf-8").split()
            n_words = int(fields[3], 16)
            words: list[str] = []
            for k in range(n_words):
                word = fields[4 + 2 * k]
                if word.endswith(")") and "(" in word:  # adjective markers: word(a), word(p)
                    word = word[: word.index("(")]
                words.append(word)
            self._synsets[key] = tuple(words)
        return self._synsets[key]

    def synonyms(self, word: str, pos: str | None = None) -> list[str]:
        """Lemmas sharing a synset with ``word`` (lower-cased), in WordNet's sense order.

        ``pos`` restricts to one part of speech (``"n"``, ``"v"``, ``"a"``, ``"r"``).
        Multi-word lemmas come with spaces (``"domestic dog"``); ``word`` itself is excluded.
        """
        index = self._load_index()
        key = word.lower().replace(" ", "_")
        out: list[str] = []
        seen = {key}
        for p in (pos,) if pos is not None else self.parts_of_speech:
            if p not in POS_FILES:
                raise ValueError(f"pos must be one of {list(POS_FILES)}, got {p!r}")
            for offset in index.get(p, {}).get(key, ()):
                for lemma in self._synset_words(p, offset):
                    low = lemma.lower()
                    if low not in seen:
                        seen.add(low)
                        out.append(lemma.replace("_", " "))
        return out

    def __contains__(self, word: str) -> bool:
        key = word.lower().replace(" ", "_")
        return any(key in table for table in self._load_index().values())

    def __repr__(self) -> str:
        return f"WordNet({str(self.path)!r})"
