"""The formats `qa.articles.load_file` reads: plain text, Markdown (with YAML front matter),
JSON and JSONL records, HTML pages; and the metadata they share (dates, bylines, paragraphs).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from qa.records import (
    WHITESPACE,
    Article,
    Problem,
    SkipFile,
    clean_paragraph,
    make_article,
    none_if_blank,
)

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
    text = WHITESPACE.sub(" ", str(value)).strip()
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
    lines = [WHITESPACE.sub(" ", line).strip() for line in text.split("\n")]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    if not blocks:
        raise SkipFile("no text")

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

MAX_FRONT_MATTER_ALIASES = 20
"""Aliases a front matter may use: a real one uses none or a few."""
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<yaml>.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)


@lru_cache(maxsize=1)
def _front_matter_loader() -> Any:
    """A safe YAML loader that leaves dates as text, for `parse_date` to read.

    PyYAML turns `date: 2016-13-45` into a ValueError that fails the whole front matter;
    read as text, a bad date is dropped with a problem line and the article kept.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            # an alias repeats a node without copying it, but whatever walks the result
            # does not: nine nested aliases of nine make a billion strings ("billion laughs")
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_FRONT_MATTER_ALIASES:
                    raise yaml.YAMLError(
                        f"more than {MAX_FRONT_MATTER_ALIASES} aliases (&anchor / *alias)"
                    )
            return super().compose_node(parent, index)

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
            why = f": {exc}" if type(exc) is yaml.YAMLError else ""
            raise SkipFile(f"malformed YAML front matter{where}{why}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise SkipFile("front matter is not a mapping of fields")
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
    """One JSON object -> Article; raises `SkipFile` with the reason when it cannot."""
    if not isinstance(obj, dict):
        raise SkipFile(f"record is a JSON {type(obj).__name__}, not an object")
    body = _field(obj, *_BODY_KEYS)
    if body is None:
        raise SkipFile(f"no body field (one of {', '.join(_BODY_KEYS)})")
    if isinstance(body, list):
        paragraphs = [str(p) for p in body]
    elif isinstance(body, str):
        paragraphs = split_paragraphs(body)
    else:
        raise SkipFile("body is not text")
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
        raise SkipFile(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise SkipFile("JSON nested too deeply to parse") from None
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
        raise SkipFile(f"no valid JSON line ({len(problems)} malformed)")
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
        except SkipFile as exc:
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
            heading = clean_paragraph(element.text_content())
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
            # a date from the page's metadata, never from its text: htmldate's extensive
            # search turned "in autumn 2019" into 2019-01-01, which then drove --since and
            # citations; no date is better than an invented one
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except Exception as exc:  # trafilatura raises assorted lxml errors on broken pages
        raise SkipFile(f"cannot parse HTML: {exc}") from None
    # Depending on the version, a Document or a dict: read both the same way.
    doc: Any = SimpleNamespace(**extracted) if isinstance(extracted, dict) else extracted
    if doc is None or not (getattr(doc, "text", None) or "").strip():
        raise SkipFile("no article text found in the HTML page")
    title = none_if_blank(getattr(doc, "title", None))
    lines = [clean_paragraph(line) for line in str(doc.text).split("\n") if line.strip()]
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
