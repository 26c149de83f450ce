"""Parse corpus files into `Article` records.

A folder (or a single file) goes in; articles and a list of problems come out. One bad file
never stops the others: each problem is a one-line reason naming the file, and the file is
either skipped or repaired (invalid UTF-8 is decoded as far as it can be, and said so).

Formats, chosen by extension (parsed in `qa.formats`):
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
import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusError
from qa.formats import parse_html, parse_json, parse_jsonl, parse_markdown, parse_text
from qa.records import (
    Article,
    Problem,
    SkipFile,
)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_ARTICLE_CHARS = 2_000_000
"""One article's text at most (a news article is rarely 20,000 characters): a 49 MB text
read as one article took minutes of chunking in silence and 2.5 GB of memory."""
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
# checked first: UTF-32 LE's mark begins with UTF-16 LE's
_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
_WIDE_BOMS = _UTF32_BOMS + _UTF16_BOMS
_INVISIBLE = re.compile(r"[\s\u00ad\u200b-\u200f\u2060-\u2064\ufeff]+")
"""White space and the characters that show nothing (zero-width spaces and joiners, word
joiners, soft hyphens, byte order marks)."""
_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"PK\x03\x04", b"\x1f\x8b", b"GIF8", b"\xff\xd8\xff")


@dataclass
class LoadResult:
    """What a corpus load produced."""

    root: str
    file_count: int = 0
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
        result.file_count += 1
        rel = relative_name(file, base)
        refusal = entry_problem(file, base) if root_path.is_dir() else None
        if refusal is not None:
            result.problems.append(Problem(rel, refusal))
            continue
        articles, problems = load_file(file, rel, max_bytes=max_bytes)
        result.articles.extend(articles)
        result.problems.extend(problems)
    return result


def relative_name(file: Path, base: Path) -> str:
    """`file`'s path under `base` as text that can be stored and printed: a name that is not
    valid UTF-8 (`caf\\xe9.txt` from a Latin-1 system) keeps its odd bytes as `\\xe9`."""
    rel = file.relative_to(base).as_posix()
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def entry_problem(file: Path, root: Path) -> str | None:
    """Why a file found under the corpus folder `root` must not be read, or None.

    Only regular files are read (a named pipe blocks a reader forever, a device such as
    /dev/zero never ends), and a symbolic link is followed only when its target lies inside
    the corpus: a link to /etc/passwd must not end up in the index, or copied by `qa add`.
    A name that is not valid UTF-8 cannot be stored or cited: the file is skipped, the
    others indexed.
    """
    try:
        str(file).encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename the file to index it)"
    try:
        info = file.stat()
    except OSError as exc:
        if file.is_symlink():
            return "broken symbolic link"
        return f"cannot read file: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file ({file_kind(info.st_mode)})"
    if file.is_symlink():
        try:
            inside = file.resolve().is_relative_to(root.resolve())
        except OSError:
            inside = False
        if not inside:
            return "symbolic link to a file outside the corpus"
    return None


def file_kind(mode: int) -> str:
    """ "named pipe", "device", ... for a file mode that is not a regular file's."""
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
    """The bytes of a regular file, never more than `max_bytes` (`SkipFile` otherwise).

    The file is opened without blocking and checked after opening, so a file swapped for a
    pipe or a device between the scan and the read cannot hang or flood the reader.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(file, flags)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SkipFile(f"not a regular file ({file_kind(info.st_mode)})")
        if info.st_size > max_bytes:
            raise SkipFile(f"file too large ({_mib(info.st_size)} > {_mib(max_bytes)} limit)")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SkipFile(f"file too large (more than the {_mib(max_bytes)} limit)")
    return data


def iter_corpus_files(root: Path, problems: list[Problem] | None = None) -> Iterator[Path]:
    """Files under `root` sorted by path, without hidden files and README/LICENSE files.

    A folder that cannot be listed, or a symbolic link to a folder (never followed), is
    reported in `problems` (when given), not passed over.
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
        if problems is not None:
            # a linked folder is not walked (it may loop, or lead out of the corpus): say so
            for name in dirnames:
                folder = Path(dirpath) / name
                if folder.is_symlink():
                    rel = folder.relative_to(root).as_posix()
                    problems.append(
                        Problem(f"{rel}/", "symbolic link to a folder: not followed (copy or "
                                "move the folder into the corpus to index it)")
                    )  # fmt: skip
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
    except SkipFile as exc:
        return [], [Problem(rel, str(exc))]
    except OSError as exc:
        return [], [Problem(rel, f"cannot read file: {exc.strerror or exc}")]
    if not data.strip():
        return [], [Problem(rel, "empty file")]
    if not data.startswith(_WIDE_BOMS) and _looks_binary(data):
        return [], [Problem(rel, "binary file, not text")]

    problems: list[Problem] = []

    text, bad_bytes, first_bad = decode_text(data)
    if not _INVISIBLE.sub("", text):
        return [], [
            Problem(rel, "empty file (nothing visible, only spaces or zero-width characters)")
        ]
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
        articles = _parse(ext, text, rel, problems)
    except SkipFile as exc:
        return [], [Problem(rel, str(exc))]
    except RecursionError:
        return [], [Problem(rel, "nested too deeply to parse")]
    except Exception as exc:
        return [], [Problem(rel, f"cannot parse ({type(exc).__name__}: {exc})")]
    return _kept(articles, problems), problems


def _parse(ext: str, text: str, rel: str, problems: list[Problem]) -> list[Article]:
    """The articles of one file's text by its format; problems of its records are added to
    `problems`."""
    if ext in TEXT_EXTENSIONS:
        return [parse_text(text, rel)]
    if ext in MARKDOWN_EXTENSIONS:
        return [parse_markdown(text, rel, problems)]
    if ext in JSON_EXTENSIONS or ext in JSONL_EXTENSIONS:
        parse = parse_json if ext in JSON_EXTENSIONS else parse_jsonl
        articles, record_problems = parse(text, rel)
        problems.extend(record_problems)
        return articles
    return [parse_html(text, rel, problems)]


def _kept(articles: list[Article], problems: list[Problem]) -> list[Article]:
    """The articles with a body of an article's size; each left out is a problem."""
    kept = []
    for article in articles:
        if not article.body:
            problems.append(Problem(article.ref, "no body text"))
        elif len(article.body) > MAX_ARTICLE_CHARS:
            problems.append(
                Problem(
                    article.ref,
                    f"{len(article.body):,} characters of text, more than the "
                    f"{MAX_ARTICLE_CHARS:,} one article may have: a dump or a book, not an "
                    "article; split it into articles",
                )
            )
        else:
            kept.append(article)
    return kept


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
    byte order mark (what Windows editors call "Unicode") is decoded as UTF-16, with a UTF-32
    one as UTF-32.
    """
    if data.startswith(_WIDE_BOMS):
        width, codec = (4, "utf-32") if data.startswith(_UTF32_BOMS) else (2, "utf-16")
        wide = data.decode(codec, errors="replace")
        bad = wide.count("\ufffd")
        first = wide.index("\ufffd") * width if bad else -1
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
