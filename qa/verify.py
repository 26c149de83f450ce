"""`qa verify`: re-check every citation of an answers file against the corpus as it is now.

A citation names an article (`path`, or `path#record` for one record of a JSON/JSONL file)
and a character range of its body, and quotes that range. Verifying reads the article again
and compares: the quote must be exactly `body[char_start:char_end]`. Files it reads:
- `qa ask --json` output (one JSON object) and `qa batch` JSONL (one a line);
- `qa batch` CSV (the `citations` column);
- Markdown from `qa batch --format md` and the chat's `/export` (quotes there are escaped
  for Markdown, so the article's text is escaped the same way before comparing).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qa.articles import Article, load_file
from qa.errors import InputError
from qa.text import file_lines

VERIFIED, CHANGED, MISSING = "verified", "changed", "missing"
STATUSES = (VERIFIED, CHANGED, MISSING)


@dataclass(frozen=True)
class CitationCheck:
    ref: str
    char_start: int
    char_end: int
    status: str
    """`verified`, `changed` (the article is there, the quoted text is not) or `missing`."""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Cited:
    ref: str
    char_start: int
    char_end: int
    quote: str
    markdown: bool = False


def read_citations(path: Path) -> list[_Cited]:
    """Every citation (answers' and related passages') in an answers file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return list(_markdown_citations(text))
    if suffix == ".csv":
        cited = []
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            if row.get("citations"):
                try:
                    citations = json.loads(row["citations"])
                except (json.JSONDecodeError, RecursionError):
                    raise InputError(
                        f"{path}:{reader.line_num}: the citations cell is not JSON"
                    ) from None
                cited += _json_citations({"answers": [{"citations": citations}]})
        return cited
    records: list[Any] = []
    try:
        records = [json.loads(text)]
    except json.JSONDecodeError:
        for number, line in enumerate(file_lines(text), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError):
                raise InputError(f"{path}:{number}: not JSON") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None
    cited = []
    for record in records:
        cited += _json_citations(record)
    return cited


def _json_citations(record: Any) -> list[_Cited]:
    if not isinstance(record, dict):
        return []
    found = []
    items = [c for a in record.get("answers") or [] for c in a.get("citations") or []]
    for citation in items + list(record.get("related") or []):
        try:
            found.append(
                _Cited(
                    str(citation["path"]),
                    int(citation["char_start"]),
                    int(citation["char_end"]),
                    str(citation["quote"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return found


# "   - [2] Title — 2016-11-01 — chosun/seed\.txt:3 (chars 120-180) <https://...>"
_MD_CITATION = re.compile(
    r"^\s*- (?:related )?\[\d+\] .* — (?P<path>.+):\d+ \(chars (?P<start>\d+)-(?P<end>\d+)\)"
)


def _markdown_citations(text: str) -> Iterator[_Cited]:
    lines = file_lines(text)
    for number, line in enumerate(lines):
        match = _MD_CITATION.match(line)
        if match is None:
            continue
        nxt = lines[number + 1].strip() if number + 1 < len(lines) else ""
        quote = nxt[2:] if nxt.startswith("> ") else None
        ref = re.sub(r"\\(.)", r"\1", match.group("path"))
        if quote is None:
            continue  # a related passage without its quote: nothing to compare
        yield _Cited(ref, int(match.group("start")), int(match.group("end")), quote, True)


class _Corpus:
    """Articles of the corpus read on demand, each file once."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[str, dict[str, Article] | None] = {}

    def article(self, ref: str) -> Article | None:
        for path, record in _splits(ref):
            articles = self._load(path)
            if articles is not None:
                return articles.get(record or "")
        return None

    def _load(self, rel: str) -> dict[str, Article] | None:
        if rel not in self._files:
            file = (self.root / rel).resolve()
            if not file.is_relative_to(self.root) or not file.is_file():
                self._files[rel] = None
            else:
                articles, _ = load_file(file, rel)
                self._files[rel] = {a.record or "": a for a in articles}
        return self._files[rel]


def _splits(ref: str) -> Iterator[tuple[str, str | None]]:
    """`path#record` read both ways: a file name may itself hold a `#`."""
    yield ref, None
    if "#" in ref:
        path, record = ref.rsplit("#", 1)
        yield path, record


def verify(path: Path, corpus: Path) -> list[CitationCheck]:
    """Check every citation of the answers file `path` against `corpus`."""
    from qa.batch import markdown_safe

    articles = _Corpus(corpus)
    checks = []
    for cited in read_citations(path):
        article = articles.article(cited.ref)
        if article is None:
            status, detail = MISSING, "no such article in the corpus"
        else:
            current = article.body[cited.char_start : cited.char_end]
            shown = markdown_safe(current) if cited.markdown else current
            if cited.char_end > len(article.body) or shown != cited.quote:
                status, detail = CHANGED, "the article's text at those characters differs"
            else:
                status, detail = VERIFIED, ""
        checks.append(CitationCheck(cited.ref, cited.char_start, cited.char_end, status, detail))
    return checks
