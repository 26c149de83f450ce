"""The `Article` record every corpus format builds, the `Problem` a file can have, and the
cleaning of text all formats share (`qa.articles` reads files, `qa.formats` parses them)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Article:
    """One news article, as parsed from a corpus file."""

    id: str
    """Stable id: derived from the source path (and record key for multi-article files)."""
    path: str
    """Source file, relative to the corpus root, with forward slashes."""
    record: str | None
    """Key of the record inside a multi-article file (JSON/JSONL), else None."""
    title: str
    body: str
    paragraphs: tuple[tuple[int, int], ...]
    """Character range of each paragraph in `body`."""
    byline: str | None = None
    published: str | None = None
    """ISO 8601 date (`2016-11-01`) or date and time (`2016-11-01T11:56`), when known."""
    url: str | None = None
    source: str | None = None
    """Outlet or publisher, when known."""
    categories: tuple[str, ...] = ()
    sha256: str = ""
    """Content hash of title and body: identical texts under different paths share it."""

    @property
    def ref(self) -> str:
        """Where the article came from: `path` or `path#record`."""
        return f"{self.path}#{self.record}" if self.record is not None else self.path

    def paragraph_at(self, offset: int) -> int:
        """Number (1-based) of the paragraph containing body offset `offset`."""
        for number, (_start, end) in enumerate(self.paragraphs, 1):
            if offset < end:
                return number
        return len(self.paragraphs)


@dataclass(frozen=True)
class Problem:
    """Something wrong with one input file (or one record in it)."""

    path: str
    reason: str
    action: str = "skipped"
    """`skipped` (nothing loaded from it) or `repaired` (loaded, with the reason noted)."""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason} ({self.action})"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "action": self.action}


def make_article(
    *,
    path: str,
    record: str | None,
    title: str,
    paragraphs: Iterable[str],
    byline: str | None = None,
    published: str | None = None,
    url: str | None = None,
    source: str | None = None,
    categories: Iterable[str] = (),
) -> Article:
    """Build an `Article`, joining paragraphs into the body and recording their ranges."""
    texts = [p for p in (clean_paragraph(p) for p in paragraphs) if p]
    ranges: list[tuple[int, int]] = []
    position = 0
    for text in texts:
        ranges.append((position, position + len(text)))
        position += len(text) + 2
    body = "\n\n".join(texts)
    title = clean_paragraph(title)
    ref = f"{path}#{record}" if record is not None else path
    return Article(
        id=hashlib.sha256(ref.encode("utf-8")).hexdigest()[:16],
        path=path,
        record=record,
        title=title,
        body=body,
        paragraphs=tuple(ranges),
        byline=none_if_blank(byline),
        published=published,
        url=none_if_blank(url),
        source=none_if_blank(source),
        categories=tuple(str(c) for c in categories if str(c).strip()),
        sha256=content_hash(title, body),
    )


def content_hash(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\n\n{body}".encode()).hexdigest()


class SkipFile(Exception):
    """Internal: the file (or record) cannot give an article, for the stated reason."""


WHITESPACE = re.compile(r"[ \t\u00a0]+")


def clean_paragraph(text: str) -> str:
    lines = [WHITESPACE.sub(" ", line).strip() for line in text.split("\n")]
    return " ".join(line for line in lines if line)


def none_if_blank(value: Any) -> str | None:
    if value is None:
        return None
    text = clean_paragraph(str(value))
    return text or None
