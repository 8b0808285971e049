"""Text transforms on strings and token ids; WordNet synonyms from a fake database."""

import os
from pathlib import Path

import pytest
import torch

import rankloss.augment as A

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a happy car drives fast",
    "one",
    "",
]
PAD = 0


def token_batch():
    # padding anywhere; real ids are >= 1
    return torch.tensor(
        [
            [5, 6, 7, 8, 9, 10, 0, 0],
            [0, 3, 4, 0, 5, 6, 0, 0],
            [11, 12, 13, 14, 15, 16, 17, 18],
            [7, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
        ]
    )


TEXT_TRANSFORMS = [
    A.WordDropout(0.3),
    A.SpanDeletion(0.5),
    A.LocalShuffle(3),
    A.RandomInsertion(2),
    A.RandomSwap(2),
]


@pytest.mark.parametrize("transform", TEXT_TRANSFORMS, ids=lambda t: type(t).__name__)
def test_strings_seeded(transform):
    out = transform(SENTENCES, generator=3)
    assert out == transform(SENTENCES, generator=3)
    assert isinstance(out, list) and len(out) == len(SENTENCES)
    assert all(isinstance(s, str) for s in out)
    assert transform(SENTENCES[0], generator=3) == transform(SENTENCES[0], generator=3)
    assert isinstance(transform(SENTENCES[0], generator=3), str)
    for before, after in zip(SENTENCES, out, strict=True):
        words = set(before.split())
        assert set(after.split()) <= words  # nothing invented (no WordNet)
        if before:
            assert after  # at least one word kept


@pytest.mark.parametrize("transform", TEXT_TRANSFORMS, ids=lambda t: type(t).__name__)
def test_tokens_seeded_shape_and_padding(transform):
    ids = token_batch()
    out = transform(ids, generator=4)
    assert torch.equal(out, transform(ids, generator=4))
    assert out.shape == ids.shape and out.dtype == ids.dtype
    real = out != PAD
    # right padding: once a pad appears, only pads follow
    assert (real.long().cummin(1).values == real.long()).all()
    for row_in, row_out in zip(ids.tolist(), out.tolist(), strict=True):
        before = [t for t in row_in if t != PAD]
        after = [t for t in row_out if t != PAD]
        assert set(after) <= set(before)
        assert bool(after) == bool(before)


def test_order_preserving_transforms_keep_order():
    ids = token_batch()
    for t in (A.WordDropout(0.5), A.SpanDeletion(0.5)):
        for row_in, row_out in zip(ids.tolist(), t(ids, generator=0).tolist(), strict=True):
            before = [x for x in row_in if x != PAD]
            after = [x for x in row_out if x != PAD]
            it = iter(before)
            assert all(tok in it for tok in after)  # a subsequence


def test_permutations_keep_the_multiset():
    ids = token_batch()
    for t in (A.LocalShuffle(4), A.RandomSwap(3)):
        out = t(ids, generator=1)
        for row_in, row_out in zip(ids.tolist(), out.tolist(), strict=True):
            assert sorted(x for x in row_in if x) == sorted(x for x in row_out if x)
        for s_in, s_out in zip(SENTENCES, t(SENTENCES, generator=1), strict=True):
            assert sorted(s_in.split()) == sorted(s_out.split())


def test_local_shuffle_moves_less_than_window():
    ids = torch.arange(1, 41).repeat(50, 1)
    out = A.LocalShuffle(3)(ids, generator=0)
    position = torch.argsort(out, dim=1)  # where token k+1 ended up
    assert (position - torch.arange(40)).abs().max() < 3
    assert not torch.equal(out, ids)


def test_insertion_lengths():
    ids = token_batch()
    out = A.RandomInsertion(2)(ids, generator=0)
    n_in = (ids != PAD).sum(1)
    n_out = (out != PAD).sum(1)
    expected = torch.where(n_in > 0, (n_in + 2).clamp(max=ids.shape[1]), n_in)
    assert torch.equal(n_out, expected)
    words = A.RandomInsertion(3)(SENTENCES, generator=0)
    assert [len(s.split()) for s in words] == [12, 8, 4, 0]


@pytest.mark.parametrize(
    "transform",
    [
        A.WordDropout(0.0),
        A.SpanDeletion(0.0),
        A.LocalShuffle(0.0),
        A.RandomInsertion(0),
        A.RandomSwap(0),
        A.RandomApply(A.RandomSwap(3), p=0.0),
    ],
    ids=repr,
)
def test_probability_zero_is_identity(transform):
    assert transform(SENTENCES, generator=0) == SENTENCES
    right_padded = A.WordDropout(0.0)(token_batch())
    assert torch.equal(transform(right_padded, generator=0), right_padded)


def test_word_dropout_rate():
    ids = torch.randint(1, 100, (200, 50), generator=torch.Generator().manual_seed(0))
    out = A.WordDropout(0.2)(ids, generator=0)
    kept = (out != PAD).float().mean().item()
    assert abs(kept - 0.8) < 0.02


def test_token_errors():
    with pytest.raises(ValueError, match="integer tensor"):
        A.WordDropout(0.1)(torch.rand(2, 3))
    with pytest.raises(TypeError, match="list of str"):
        A.WordDropout(0.1)([1, 2, 3])


# ---- WordNet ------------------------------------------------------------------------------

HEADER = "  1 This software and database is being provided to you, the LICENSEE  \n"


def write_fake_wordnet(root: Path) -> Path:
    """A two-synset WordNet in the real file format (offsets are byte offsets)."""
    root.mkdir(parents=True, exist_ok=True)
    synsets = {
        "noun": [
            ("car auto automobile", "n", "| a motor vehicle"),
            ("dog domestic_dog Canis_familiaris", "n", "| a member of the genus Canis"),
        ],
        "adj": [("happy(a) felicitous", "a", "| enjoying well-being")],
        "verb": [("drive motor", "v", "| travel in a vehicle")],
        "adv": [("fast quickly", "r", "| quickly")],
    }
    for pos_name, entries in synsets.items():
        data = HEADER
        index_entries: dict[str, list[int]] = {}
        for words, ss_type, gloss in entries:
            offset = len(data.encode())
            lemmas = words.split()
            body = " ".join(f"{w} 0" for w in lemmas)
            line = f"{offset:08d} 05 {ss_type} {len(lemmas):02x} {body} 000 {gloss}  \n"
            data += line
            for w in lemmas:
                key = w.split("(")[0].lower()
                index_entries.setdefault(key, []).append(offset)
        (root / f"data.{pos_name}").write_text(data)
        lines = [HEADER]
        for lemma, offsets in sorted(index_entries.items()):
            pos = entries[0][1]
            offs = " ".join(f"{o:08d}" for o in offsets)
            lines.append(f"{lemma} {pos} {len(offsets)} 1 @ {len(offsets)} 0 {offs}  \n")
        (root / f"index.{pos_name}").write_text("".join(lines))
    return root


@pytest.fixture
def fake_wordnet(tmp_path):
    return A.WordNet(write_fake_wordnet(tmp_path / "wn"))


def test_fake_wordnet_synonyms(fake_wordnet):
    assert fake_wordnet.synonyms("car") == ["auto", "automobile"]
    assert fake_wordnet.synonyms("Dog") == ["domestic dog", "Canis familiaris"]
    assert fake_wordnet.synonyms("happy") == ["felicitous"]
    assert fake_wordnet.synonyms("happy", pos="n") == []
    assert fake_wordnet.synonyms("zebra") == []
    assert "auto" in fake_wordnet and "zebra" not in fake_wordnet


def test_synonym_replacement(fake_wordnet):
    t = A.SynonymReplacement(1.0, wordnet=fake_wordnet)
    out = t("The Car and the dog, happy.", generator=0)
    words = out.split()
    assert words[0] == "The" and words[2] == "and"  # stop words kept
    assert words[1] in ("Auto", "Automobile")  # capital kept
    assert out.endswith(("felicitous.",))  # punctuation kept
    assert t("The Car", generator=5) == t("The Car", generator=5)
    assert A.SynonymReplacement(0.0, wordnet=fake_wordnet)(SENTENCES, generator=0) == SENTENCES
    with pytest.raises(TypeError, match="strings"):
        t(token_batch())


def test_synonym_replacement_by_path_and_env(tmp_path, monkeypatch):
    root = write_fake_wordnet(tmp_path / "wn")
    by_path = A.SynonymReplacement(1.0, wordnet=str(root))
    assert by_path("car", generator=0) in ("auto", "automobile")
    monkeypatch.setenv("RANKLOSS_WORDNET", str(root))
    assert A.SynonymReplacement(1.0)("car", generator=0) in ("auto", "automobile")


def test_insertion_with_wordnet(fake_wordnet):
    out = A.RandomInsertion(1, wordnet=fake_wordnet)("my car", generator=0).split()
    assert len(out) == 3 and ({"auto", "automobile"} & set(out))


def test_missing_wordnet_is_a_clear_error(tmp_path):
    with pytest.raises(A.WordNetNotFoundError, match="wordnet-base"):
        A.SynonymReplacement(0.5, wordnet=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="index.noun"):
        A.WordNet(tmp_path)


REAL_WORDNET = Path(os.environ.get("RANKLOSS_WORDNET", "/usr/share/wordnet"))


@pytest.mark.skipif(not (REAL_WORDNET / "index.noun").is_file(), reason="no WordNet installed")
def test_real_wordnet():
    wn = A.WordNet(REAL_WORDNET)
    assert "automobile" in wn.synonyms("car", pos="n")
    assert "domestic dog" in wn.synonyms("dog")
    t = A.SynonymReplacement(1.0, wordnet=wn)
    out = t("The car was fast.", generator=0)
    assert out != "The car was fast." and out.startswith("The ") and out.endswith(".")


def test_one_of_on_one_sentence_returns_a_sentence():
    t = A.OneOf([A.WordDropout(0.3), A.RandomSwap(1)])
    for seed in range(5):
        out = t("the quick brown fox", generator=seed)
        assert isinstance(out, str)
        assert sorted(out.split()) == sorted(out.split()) and set(out.split()) <= {
            "the",
            "quick",
            "brown",
            "fox",
        }
    # The same picks as on a batch of that one sentence.
    assert t("the quick brown fox", generator=3) == t(["the quick brown fox"], generator=3)[0]


def test_a_bad_part_of_speech_is_refused_when_built(fake_wordnet):
    with pytest.raises(ValueError, match=r"SynonymReplacement: pos must be one of \['n'"):
        A.SynonymReplacement(0.05, pos="noun", wordnet=fake_wordnet)
    assert A.SynonymReplacement(1.0, pos="n", wordnet=fake_wordnet)("car", generator=0) in (
        "auto",
        "automobile",
    )


@pytest.mark.parametrize(
    "transform",
    [A.WordDropout(0.1), A.RandomSwap(1), A.RandomInsertion(1), A.SpanDeletion(), A.LocalShuffle()],
    ids=lambda t: type(t).__name__,
)
def test_token_rows_without_tokens_stay_empty(transform):
    ids = torch.zeros(2, 0, dtype=torch.long)
    out = transform(ids, generator=0)
    assert out.shape == (2, 0) and out.dtype == torch.long
