"""Parse corpus files into `Article` records.

A folder (or a single file) goes in; articles and a list of problems come out. One bad file
never stops the others: each problem is a one-line reason naming the file, and the file is
either skipped or repaired (invalid UTF-8 is decoded as far as it can be, and said so).

Formats, chosen by extension:
- `.txt`: the plain-text news layout (headline first, optional byline and date lines, body
  paragraphs separated by blank lines; bullet marks, copyright and navigation lines dropped);
- `.md` / `.markdown`: Markdown with optional YAML front matter;
- `.json`: one article object, a list of them, or `{"articles": [...]}`;
- `.jsonl` / `.ndjson`: one article object a line;
- `.html` / `.htm`: a saved news page; title, date and main text extracted with trafilatura.

The body of an article is normalised text (paragraphs joined by one blank line); every offset
elsewhere in `qa` (chunks, citations) points into this body.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from qa.errors import CorpusError

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
"""Files above this size are skipped: a news corpus file that large is almost surely a mistake."""

TEXT_EXTENSIONS = {".txt", ".text"}
MARKDOWN_EXTENSIONS = {".md", ".markdown"}
JSON_EXTENSIONS = {".json"}
JSONL_EXTENSIONS = {".jsonl", ".ndjson"}
HTML_EXTENSIONS = {".html", ".htm"}
SUPPORTED_EXTENSIONS = (
    TEXT_EXTENSIONS | MARKDOWN_EXTENSIONS | JSON_EXTENSIONS | JSONL_EXTENSIONS | HTML_EXTENSIONS
)

# Files that document a corpus rather than belong to it (corpus/README.md, bbc/README.TXT).
_IGNORED_NAME = re.compile(r"^(readme|license|licence|notice|copying)(\.[a-z0-9]+)?$", re.I)

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"PK\x03\x04", b"\x1f\x8b", b"GIF8", b"\xff\xd8\xff")


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


@dataclass
class LoadResult:
    """What a corpus load produced."""

    root: str
    files: int = 0
    articles: list[Article] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def duplicate_groups(self) -> list[list[str]]:
        """Refs of articles sharing a content hash, each group in load order."""
        groups: dict[str, list[str]] = {}
        for article in self.articles:
            groups.setdefault(article.sha256, []).append(article.ref)
        return [refs for refs in groups.values() if len(refs) > 1]

    @property
    def unique(self) -> int:
        return len({article.sha256 for article in self.articles})


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
    texts = [p for p in (_clean_paragraph(p) for p in paragraphs) if p]
    ranges: list[tuple[int, int]] = []
    position = 0
    for text in texts:
        ranges.append((position, position + len(text)))
        position += len(text) + 2
    body = "\n\n".join(texts)
    title = _clean_paragraph(title)
    ref = f"{path}#{record}" if record is not None else path
    return Article(
        id=hashlib.sha256(ref.encode("utf-8")).hexdigest()[:16],
        path=path,
        record=record,
        title=title,
        body=body,
        paragraphs=tuple(ranges),
        byline=_none_if_blank(byline),
        published=published,
        url=_none_if_blank(url),
        source=_none_if_blank(source),
        categories=tuple(str(c) for c in categories if str(c).strip()),
        sha256=content_hash(title, body),
    )


def content_hash(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\n\n{body}".encode()).hexdigest()


# --------------------------------------------------------------------------- loading


def load_corpus(root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> LoadResult:
    """Load every article file under `root` (a folder, or one file).

    Raises `CorpusError` only when `root` itself cannot be read; problems with single files
    are collected in the result.
    """
    root_path = Path(root)
    if not root_path.exists():
        raise CorpusError(f"{root}: no such corpus folder or file")
    result = LoadResult(root=str(root_path))
    if root_path.is_file():
        files = [root_path]
        base = root_path.parent
    else:
        files = list(iter_corpus_files(root_path, result.problems))
        base = root_path
    for file in files:
        result.files += 1
        rel = file.relative_to(base).as_posix()
        refusal = entry_problem(file, base) if root_path.is_dir() else None
        if refusal is not None:
            result.problems.append(Problem(rel, refusal))
            continue
        articles, problems = load_file(file, rel, max_bytes=max_bytes)
        result.articles.extend(articles)
        result.problems.extend(problems)
    return result


def entry_problem(file: Path, root: Path) -> str | None:
    """Why a file found under the corpus folder `root` must not be read, or None.

    Only regular files are read (a named pipe blocks a reader forever, a device such as
    /dev/zero never ends), and a symbolic link is followed only when its target lies inside
    the corpus: a link to /etc/passwd must not end up in the index, or copied by `qa add`.
    """
    try:
        info = file.stat()
    except OSError as exc:
        if file.is_symlink():
            return "broken symbolic link"
        return f"cannot read file: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file ({_file_kind(info.st_mode)})"
    if file.is_symlink():
        try:
            inside = file.resolve().is_relative_to(root.resolve())
        except OSError:
            inside = False
        if not inside:
            return "symbolic link to a file outside the corpus"
    return None


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"


def read_bounded(file: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file, never more than `max_bytes` (`_SkipFile` otherwise).

    The file is opened without blocking and checked after opening, so a file swapped for a
    pipe or a device between the scan and the read cannot hang or flood the reader.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(file, flags)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _SkipFile(f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > max_bytes:
            raise _SkipFile(f"file too large ({_mib(info.st_size)} > {_mib(max_bytes)} limit)")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _SkipFile(f"file too large (more than the {_mib(max_bytes)} limit)")
    return data


def iter_corpus_files(root: Path, problems: list[Problem] | None = None) -> Iterator[Path]:
    """Files under `root` sorted by path, without hidden files and README/LICENSE files.

    A folder that cannot be listed is reported in `problems` (when given), not passed over.
    """
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        if problems is not None:
            where = Path(exc.filename or root)
            try:
                rel = where.relative_to(root).as_posix()
            except ValueError:
                rel = str(where)
            problems.append(Problem(f"{rel}/", f"cannot read folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(
            Path(dirpath) / name
            for name in filenames
            if not name.startswith(".") and not _IGNORED_NAME.match(name)
        )
    yield from sorted(found, key=lambda p: p.relative_to(root).as_posix())


def load_file(
    file: Path, rel: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[list[Article], list[Problem]]:
    """Parse one file. Never raises for bad content: problems are returned instead."""
    ext = file.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = ext or "(none)"
        return [], [Problem(rel, f"unsupported file type {shown}")]
    try:
        data = read_bounded(file, max_bytes)
    except _SkipFile as exc:
        return [], [Problem(rel, str(exc))]
    except OSError as exc:
        return [], [Problem(rel, f"cannot read file: {exc.strerror or exc}")]
    if not data.strip():
        return [], [Problem(rel, "empty file")]
    if not data.startswith(_UTF16_BOMS) and _looks_binary(data):
        return [], [Problem(rel, "binary file, not text")]

    problems: list[Problem] = []
    text, bad_bytes, first_bad = decode_text(data)
    if bad_bytes:
        problems.append(
            Problem(
                rel,
                f"invalid UTF-8 ({bad_bytes} byte{'s' if bad_bytes > 1 else ''}, first at "
                f"offset {first_bad}); decoded as Windows-1252",
                action="repaired",
            )
        )
    try:
        if ext in TEXT_EXTENSIONS:
            articles = [parse_text(text, rel)]
        elif ext in MARKDOWN_EXTENSIONS:
            articles = [parse_markdown(text, rel, problems)]
        elif ext in JSON_EXTENSIONS:
            articles, record_problems = parse_json(text, rel)
            problems.extend(record_problems)
        elif ext in JSONL_EXTENSIONS:
            articles, record_problems = parse_jsonl(text, rel)
            problems.extend(record_problems)
        else:
            articles = [parse_html(text, rel, problems)]
    except _SkipFile as exc:
        return [], [Problem(rel, str(exc))]
    except RecursionError:
        return [], [Problem(rel, "nested too deeply to parse")]
    except Exception as exc:
        return [], [Problem(rel, f"cannot parse ({type(exc).__name__}: {exc})")]
    kept = []
    for article in articles:
        if not article.body:
            problems.append(Problem(article.ref, "no body text"))
        else:
            kept.append(article)
    return kept, problems


class _SkipFile(Exception):
    """Internal: the file (or record) cannot give an article, for the stated reason."""


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    return b"\x00" in head or head.startswith(_BINARY_MAGIC)


_repairs = threading.local()


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    # Each undecodable byte is read as Windows-1252 (latin-1 where cp1252 has a hole): this
    # recovers the usual culprit, a stray latin-1 byte in otherwise UTF-8 text.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    chunk = exc.object[exc.start : exc.end]
    log = getattr(_repairs, "log", None)
    if log is not None:
        log.append((exc.start, len(chunk)))
    chars = []
    for byte in chunk:
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(bytes([byte]).decode("latin-1"))
    return "".join(chars), exc.end


codecs.register_error("qa-cp1252", _cp1252_fallback)


def decode_text(data: bytes) -> tuple[str, int, int]:
    """Decode bytes as UTF-8, repairing invalid bytes; returns (text, bad bytes, first bad offset).

    Line endings are normalised to `\\n` and a byte order mark is dropped; text with a UTF-16
    byte order mark (what Windows editors call "Unicode") is decoded as UTF-16.
    """
    if data.startswith(_UTF16_BOMS):
        wide = data.decode("utf-16", errors="replace")
        bad = wide.count("\ufffd")
        first = wide.index("\ufffd") * 2 if bad else -1
        return wide.replace("\r\n", "\n").replace("\r", "\n"), bad, first
    skipped = 0
    if data.startswith(codecs.BOM_UTF8):
        skipped = len(codecs.BOM_UTF8)
        data = data[skipped:]
    _repairs.log = []
    try:
        text = data.decode("utf-8", errors="qa-cp1252")
        repairs: list[tuple[int, int]] = _repairs.log
    finally:
        _repairs.log = None
    bad = sum(n for _, n in repairs)
    first = repairs[0][0] + skipped if repairs else -1
    return text.replace("\r\n", "\n").replace("\r", "\n"), bad, first


# --------------------------------------------------------------------------- helpers


_WS = re.compile(r"[ \t\u00a0]+")


def _clean_paragraph(text: str) -> str:
    lines = [_WS.sub(" ", line).strip() for line in text.split("\n")]
    return " ".join(line for line in lines if line)


def _none_if_blank(value: Any) -> str | None:
    if value is None:
        return None
    text = _clean_paragraph(str(value))
    return text or None


_MONTHS = "january february march april may june july august september october november december"
_DATE_FORMATS = (
    "%B %d, %Y %H:%M",
    "%B %d, %Y %I:%M %p",
    "%B %d, %Y",
    "%b %d, %Y %H:%M",
    "%b %d, %Y",
    "%d %B %Y %H:%M",
    "%d %B %Y",
    "%d %b %Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)
_DATE_PREFIX = re.compile(r"^(?:published|updated|posted|date|last updated)\s*:?\s*", re.I)
_WEEKDAY = re.compile(r"^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+", re.I)


def parse_date(value: Any) -> str | None:
    """Normalise a date or date-time to ISO 8601 (`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`).

    Returns None when the value is not recognisably a date.
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return (
            value.strftime("%Y-%m-%dT%H:%M")
            if (value.hour or value.minute)
            else (value.date().isoformat())
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    text = _WS.sub(" ", str(value)).strip()
    text = _WEEKDAY.sub("", _DATE_PREFIX.sub("", text))
    text = re.sub(r"\s*\((?:KST|UTC|GMT)\)$|\s+(?:KST|UTC|GMT)$", "", text)
    if not text or len(text) > 40:
        return None
    try:
        iso = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        has_time = "T" in text or " " in text.strip()
        return iso.strftime("%Y-%m-%dT%H:%M") if has_time else iso.date().isoformat()
    for fmt in _DATE_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return (
            parsed.strftime("%Y-%m-%dT%H:%M")
            if "%H" in fmt or "%I" in fmt
            else (parsed.date().isoformat())
        )
    return None


# --------------------------------------------------------------------------- plain text

_BULLET = re.compile(r"^[•·▪►■◆*]\s*")
# A byline is short and made of capitalised names: "By Kim Myong-song", "By Jane Doe and Al Roe".
_NAME = r"[A-Z][\w.'’-]*"
_NAME_RUN = rf"{_NAME}(?:,?\s+(?:{_NAME}|and|de|van|von|bin|al)){{0,7}}"
_BYLINE = re.compile(rf"^(?i:by|written by|reporter:)\s+(?P<name>{_NAME_RUN})\s*$")
_COPYRIGHT = re.compile(
    r"^(?:copyright\s*(?:©|\(c\)|\d{4})|©)\s*(?:©|\(c\))?\s*(?:\d{4}\s*)?(?P<holder>.*)$", re.I
)
_NAVIGATION = re.compile(
    r"^(?:previous\s*next|previous|next|all headlines\s*back to top|all headlines|back to top|"
    r"share( this( article)?)?|advertisement|print|e-?mail this|related articles?|"
    r"click here to .*|subscribe)$",
    re.I,
)


def parse_text(text: str, rel: str) -> Article:
    """Parse the plain-text news layout."""
    lines = [_WS.sub(" ", line).strip() for line in text.split("\n")]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    if not blocks:
        raise _SkipFile("no text")

    title = _BULLET.sub("", blocks[0][0])
    rest_first = blocks[0][1:]
    blocks = ([rest_first] if rest_first else []) + blocks[1:]

    byline: str | None = None
    published: str | None = None
    source: str | None = None
    # Header lines (byline, date) may follow the headline, each on its own line or block.
    while blocks:
        line = _BULLET.sub("", blocks[0][0])
        match = _BYLINE.match(line)
        date = parse_date(line)
        if match and byline is None:
            byline = match.group("name").strip()
        elif date and published is None:
            published = date
        else:
            break
        blocks[0] = blocks[0][1:]
        if not blocks[0]:
            blocks.pop(0)

    paragraphs: list[str] = []
    for block in blocks:
        kept: list[str] = []
        for raw in block:
            line = _BULLET.sub("", raw)
            copyright_match = _COPYRIGHT.match(line)
            if copyright_match:
                holder = copyright_match.group("holder").strip(" .")
                if holder and source is None:
                    source = re.sub(r"^all rights reserved\.?\s*", "", holder, flags=re.I)
                continue
            if _NAVIGATION.match(line):
                continue
            kept.append(line)
        if kept:
            paragraphs.append(" ".join(kept))
    return make_article(
        path=rel,
        record=None,
        title=title,
        paragraphs=paragraphs,
        byline=byline,
        published=published,
        source=source,
    )


# --------------------------------------------------------------------------- markdown

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<yaml>.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)


@lru_cache(maxsize=1)
def _front_matter_loader() -> Any:
    """A safe YAML loader that leaves dates as text, for `parse_date` to read.

    PyYAML turns `date: 2016-13-45` into a ValueError that fails the whole front matter;
    read as text, a bad date is dropped with a problem line and the article kept.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def parse_markdown(text: str, rel: str, problems: list[Problem] | None = None) -> Article:
    """Parse Markdown with optional YAML front matter (repairs are noted in `problems`)."""
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        import yaml

        try:
            loaded = yaml.load(match.group("yaml"), Loader=_front_matter_loader())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 2}" if mark is not None else ""
            raise _SkipFile(f"malformed YAML front matter{where}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise _SkipFile("front matter is not a mapping of fields")
        meta = loaded or {}
        text = text[match.end() :]

    title = _field(meta, "title", "headline")
    paragraphs: list[str] = []
    tokens = _markdown_parser().parse(text)
    for index, token in enumerate(tokens):
        if token.type != "inline":
            continue  # code blocks, raw HTML and rules hold no article text
        content = _inline_text(token)
        if not content:
            continue
        if tokens[index - 1].type == "heading_open":
            if title is None and not paragraphs:
                title = content
                continue
            if not paragraphs and content == str(title):
                continue  # the headline again under front matter that already gave it
        paragraphs.append(content)
    if title is None:
        title = paragraphs.pop(0) if paragraphs else Path(rel).stem
    return _article_from_meta(meta, rel, None, str(title), paragraphs, problems)


@lru_cache(maxsize=1)
def _markdown_parser() -> Any:
    from markdown_it import MarkdownIt  # rich's dependency: already installed

    return MarkdownIt("commonmark")


def _inline_text(token: Any) -> str:
    """The plain text of an inline token: emphasis and link markup gone, images and inline
    HTML dropped, line breaks as spaces."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split())


# --------------------------------------------------------------------------- JSON

_BODY_KEYS = ("body", "text", "content", "article", "maintext")


def _field(meta: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = meta.get(key)
        if value not in (None, "", []):
            return value
    return None


def _article_from_meta(
    meta: dict[str, Any],
    rel: str,
    record: str | None,
    title: str,
    paragraphs: list[str],
    problems: list[Problem] | None = None,
    where: str | None = None,
) -> Article:
    raw_date = _field(meta, "published", "date", "published_at", "datetime")
    published = parse_date(raw_date)
    if raw_date is not None and published is None and problems is not None:
        shown = str(raw_date)[:40]
        problems.append(
            Problem(where or rel, f"date {shown!r} is not a valid date; dropped", "repaired")
        )
    byline = _field(meta, "byline", "author", "authors")
    if isinstance(byline, list):
        byline = ", ".join(str(b) for b in byline)
    categories = _field(meta, "categories", "tags", "category") or ()
    if isinstance(categories, str):
        categories = [categories]
    source = _field(meta, "source", "publisher", "outlet", "site", "sitename")
    if isinstance(source, dict):
        source = source.get("name")
    return make_article(
        path=rel,
        record=record,
        title=title,
        paragraphs=paragraphs,
        byline=byline,
        published=published,
        url=_field(meta, "url", "link"),
        source=source,
        categories=categories if isinstance(categories, (list, tuple)) else (),
    )


def split_paragraphs(body: str) -> list[str]:
    """Paragraphs of a body string: split on blank lines, or on single newlines if none."""
    body = body.replace("\r\n", "\n")
    parts = re.split(r"\n\s*\n", body) if re.search(r"\n\s*\n", body) else body.split("\n")
    return [p for p in parts if p.strip()]


def article_from_record(
    obj: Any, rel: str, index: int, problems: list[Problem] | None = None, where: str | None = None
) -> Article:
    """One JSON object -> Article; raises `_SkipFile` with the reason when it cannot."""
    if not isinstance(obj, dict):
        raise _SkipFile(f"record is a JSON {type(obj).__name__}, not an object")
    body = _field(obj, *_BODY_KEYS)
    if body is None:
        raise _SkipFile(f"no body field (one of {', '.join(_BODY_KEYS)})")
    if isinstance(body, list):
        paragraphs = [str(p) for p in body]
    elif isinstance(body, str):
        paragraphs = split_paragraphs(body)
    else:
        raise _SkipFile("body is not text")
    key = obj.get("id")
    record = str(key) if key not in (None, "") else str(index)
    title = _field(obj, "title", "headline")
    if title is None:
        title = paragraphs[0][:80] if paragraphs else f"{Path(rel).stem} {record}"
    return _article_from_meta(obj, rel, record, str(title), paragraphs, problems, where)


def parse_json(text: str, rel: str) -> tuple[list[Article], list[Problem]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _SkipFile(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise _SkipFile("JSON nested too deeply to parse") from None
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        records = data["articles"]
    elif isinstance(data, list):
        records = data
    else:
        records = [data]
    return _records(((i, r) for i, r in enumerate(records, 1)), rel, "record")


def parse_jsonl(text: str, rel: str) -> tuple[list[Article], list[Problem]]:
    problems: list[Problem] = []
    numbered: list[tuple[int, Any]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            numbered.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"{rel}:{number}", f"malformed JSON: {exc.msg}"))
        except RecursionError:
            problems.append(Problem(f"{rel}:{number}", "JSON nested too deeply to parse"))
    articles, record_problems = _records(iter(numbered), rel, "line")
    problems.extend(record_problems)
    problems.sort(key=lambda p: _line_of(p.path))
    if not articles and not numbered and problems:
        raise _SkipFile(f"no valid JSON line ({len(problems)} malformed)")
    return articles, problems


def _line_of(path: str) -> int:
    tail = path.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _records(
    numbered: Iterator[tuple[int, Any]], rel: str, what: str
) -> tuple[list[Article], list[Problem]]:
    articles: list[Article] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, obj in numbered:
        where = f"{rel}:{number}" if what == "line" else f"{rel} {what} {number}"
        try:
            article = article_from_record(obj, rel, number, problems, where)
        except _SkipFile as exc:
            problems.append(Problem(where, str(exc)))
            continue
        if article.record in seen:
            problems.append(Problem(where, f"duplicate record id {article.record!r}"))
            continue
        seen.add(article.record or "")
        articles.append(article)
    return articles, problems


# --------------------------------------------------------------------------- HTML


_HTML_BYLINE = re.compile(
    rf"^(?i:posted|written|published|words|story|reporting)?\s*(?i:by)\s+(?P<name>{_NAME_RUN})"
    r"(?:\s*(?:,|on|\||-|—)\s*(?P<date>.{4,40}))?$"
)
_HTML_COMMENTS = re.compile(
    r"^(?:comments?\s*\(\d+\)|\d+\s+comments?|comments|leave a (?:comment|reply)|"
    r"(?:post|add) a comment|show comments)$",
    re.I,
)


def _page_headline(page: str, lines: list[str]) -> str | None:
    """The page's visible headline: its first <h1> (else <h2>) when that is also the first
    lines of the extracted text."""
    try:
        import lxml.html

        tree = lxml.html.fromstring(page)
    except Exception:  # a page lxml cannot read just has no headline
        return None
    for tag in ("h1", "h2"):
        for element in tree.iter(tag):
            heading = _clean_paragraph(element.text_content())
            if heading and heading in lines[:3]:
                return heading
    return None


def parse_html(text: str, rel: str, problems: list[Problem] | None = None) -> Article:
    """Extract title, date, byline and main text from a saved news page (trafilatura)."""
    import trafilatura  # ~0.3 s to import; only corpora with HTML pay it

    try:
        extracted = trafilatura.bare_extraction(
            text,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
            favor_precision=True,
        )
    except Exception as exc:  # trafilatura raises assorted lxml errors on broken pages
        raise _SkipFile(f"cannot parse HTML: {exc}") from None
    # Depending on the version, a Document or a dict: read both the same way.
    doc: Any = SimpleNamespace(**extracted) if isinstance(extracted, dict) else extracted
    if doc is None or not (getattr(doc, "text", None) or "").strip():
        raise _SkipFile("no article text found in the HTML page")
    title = _none_if_blank(getattr(doc, "title", None))
    lines = [_clean_paragraph(line) for line in str(doc.text).split("\n") if line.strip()]
    headline = _page_headline(text, lines)
    if headline is not None and (title is None or title != headline):
        # the visible headline beats a generic <title> ("Local News", "Home")
        title = headline
    if title and lines and lines[0] == title:
        lines = lines[1:]
    author = getattr(doc, "author", None)
    date = getattr(doc, "date", None)
    # "Posted by Jane Smith on March 3, 2021" heading the text is the byline, not the story
    while lines and (byline := _HTML_BYLINE.match(lines[0])):
        author = author or byline.group("name")
        date = date or parse_date(byline.group("date"))
        lines = lines[1:]
    # "Comments (12)": what follows is readers' comments, not the article
    for index, line in enumerate(lines):
        if _HTML_COMMENTS.match(line):
            lines = lines[:index]
            break
    meta = {
        "author": author,
        "date": date,
        "url": getattr(doc, "url", None),
        "source": getattr(doc, "sitename", None),
        "categories": getattr(doc, "categories", None) or [],
    }
    return _article_from_meta(meta, rel, None, title or Path(rel).stem, lines, problems)
