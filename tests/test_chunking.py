"""Chunking: exact offsets, sentence alignment, overlap, the model's window."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from qa.articles import load_corpus
from qa.chunking import Chunker, ChunkSettings, embed_text, split_sentences
from qa.encoders import TorchEncoder
from tests.conftest import BUNDLED_SEED


@pytest.fixture(scope="module")
def word_pieces() -> TorchEncoder:
    # Only the bundled tokenizer is used (no torch): counting needs no model load.
    return TorchEncoder()


def check_chunks(chunker: Chunker, article_id: str, title: str, body: str) -> list:
    chunks = chunker.chunk(article_id, title, body)
    assert chunks, "a non-empty body gives at least one chunk"
    for position, chunk in enumerate(chunks):
        assert chunk.ordinal == position
        assert body[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text == chunk.text.strip()
        for start, end in chunk.sentences:
            assert chunk.char_start <= start < end <= chunk.char_end
    # every character of text is in some chunk
    covered: set[int] = set()
    for chunk in chunks:
        covered.update(range(chunk.char_start, chunk.char_end))
    assert all(i in covered for i, ch in enumerate(body) if not ch.isspace())
    return chunks


def test_seed_chunks_exact_and_within_limits(word_pieces: TorchEncoder) -> None:
    article = load_corpus(BUNDLED_SEED).articles[0]
    chunker = Chunker(ChunkSettings(), word_pieces.count_word_pieces)
    chunks = check_chunks(chunker, article.id, article.title, article.body)
    assert len(chunks) >= 3
    assert all(c.token_count <= 200 for c in chunks)
    pieces = word_pieces.count_word_pieces([embed_text(article.title, c.text) for c in chunks])
    assert max(pieces) <= 256
    # consecutive chunks share exactly one sentence
    for before, after in itertools.pairwise(chunks):
        assert before.sentences[-1] == after.sentences[0]


def test_200_bbc_articles_exact_offsets_and_model_window(
    bbc: Path, word_pieces: TorchEncoder
) -> None:
    articles = load_corpus(bbc).articles[::11][:200]
    assert len(articles) == 200
    chunker = Chunker(ChunkSettings(), word_pieces.count_word_pieces)
    texts = []
    for article in articles:
        for chunk in check_chunks(chunker, article.id, article.title, article.body):
            assert chunk.token_count <= 200
            texts.append(embed_text(article.title, chunk.text))
    assert max(word_pieces.count_word_pieces(texts)) <= 256


def test_long_sentence_is_cut_at_token_boundaries() -> None:
    body = "Intro sentence here. " + " ".join(f"word{i}" for i in range(400)) + ". Last one."
    chunker = Chunker(ChunkSettings(max_tokens=50, overlap_sentences=1))
    chunks = check_chunks(chunker, "a", "T", body)
    assert all(c.token_count <= 50 for c in chunks)
    assert len(chunks) > 10


def test_model_window_splits_chunks_that_fit_tiktoken_but_not_the_model() -> None:
    body = " ".join(["Alpha beta gamma delta."] * 60)

    def pieces(texts: list[str]) -> list[int]:
        return [len(t.split()) * 3 for t in texts]  # a model that sees 3 pieces a word

    settings = ChunkSettings(max_tokens=200, max_word_pieces=60)
    chunks = check_chunks(Chunker(settings, pieces), "a", "Title", body)
    assert max(pieces([embed_text("Title", c.text) for c in chunks])) <= 60


def test_no_overlap_setting() -> None:
    body = " ".join(f"Sentence number {i} is here." for i in range(60))
    chunks = check_chunks(Chunker(ChunkSettings(max_tokens=40, overlap_sentences=0)), "a", "", body)
    for before, after in itertools.pairwise(chunks):
        assert before.char_end < after.char_start


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Mr. Kim left. He returned.", ["Mr. Kim left.", "He returned."]),
        ("It cost U.S. dollars. Then more.", ["It cost U.S. dollars.", "Then more."]),
        ('"Go," he said. "Now!" She went.', ['"Go," he said.', '"Now!"', "She went."]),
        ("Rates rose 1.5 percent. Good.", ["Rates rose 1.5 percent.", "Good."]),
        ("Line one\n\nLine two", ["Line one", "Line two"]),
        ("Is it? Yes. (Really.) Fine", ["Is it?", "Yes.", "(Really.)", "Fine"]),
        # the word before a full stop starts at a letter, after any dots or other characters
        ("He said ...U.S. Army won. Next.", ["He said ...U.S. Army won.", "Next."]),
        ("It was 9-J. Kim said so.", ["It was 9-J. Kim said so."]),
        ("Café. Next one.", ["Café.", "Next one."]),
        ("See www.example.org. Next.", ["See www.example.org.", "Next."]),
        # a letter ending a figure is a unit, not an initial
        ("Profits hit £23m. Shares rose.", ["Profits hit £23m.", "Shares rose."]),
        ("It began in the 1960s. He left.", ["It began in the 1960s.", "He left."]),
        ("She won the 400m. Dibaba was second.", ["She won the 400m.", "Dibaba was second."]),
        ("We didn't. We lost.", ["We didn't.", "We lost."]),
        ("He sold to M&S. Shares fell.", ["He sold to M&S.", "Shares fell."]),
        ("Bush called Calderón. He won.", ["Bush called Calderón.", "He won."]),
        ('"No. Definitely not." He left.', ['"No.', 'Definitely not."', "He left."]),
        ("He lives at No. 10 now. Next.", ["He lives at No. 10 now.", "Next."]),
        ("It was at St Helen’s. Wales won.", ["It was at St Helen’s.", "Wales won."]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert [text[s:e] for s, e in split_sentences(text)] == sentences


def test_embed_text_prefixes_the_title() -> None:
    assert embed_text("Storm hits", "Rain fell.") == "Storm hits. Rain fell."
    assert embed_text("Why now?", "Because.") == "Why now? Because."
    assert embed_text("", "Body.") == "Body."
