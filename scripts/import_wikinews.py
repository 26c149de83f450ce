"""Convert the unflagged Wikinews articles of ../shared/data into the bundled corpus.

Re-runnable: the output is a pure function of the input (one JSONL file a year of
publication, records in input order, undated articles in `wikinews-undated.jsonl`), written
atomically, so running it twice changes nothing.

    python scripts/import_wikinews.py [--source ../shared/data/wikinews/wikinews.jsonl]
                                      [--out corpus/wikinews]
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from qa.text_defects import (  # noqa: E402
    FUNCTION_WORDS,
    SENTENCE_STARTERS,
    SUFFIXES,
    defects,
    leading_prefix,
)

DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "wikinews" / "wikinews.jsonl"
DEFAULT_OUT = ROOT / "corpus" / "wikinews"

# --------------------------------------------------------------------------- cleaning
# The source bodies are one line each, wiki markup stripped by regular expressions upstream;
# what those left behind is removed here, and the text is cut into paragraphs.

_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_BLOCK_TAG = re.compile(r"</?(?:p|br|div|li|ul|ol|table|tr|h\d)\b[^>]*>", re.I)
_TAG = re.compile(r"</?[a-zA-Z][\w:-]*(?:\s[^<>]{0,300})?/?>")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}|\{\{|\}\}|\{\||\|\}")
_LINK = re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]")
_EMPHASIS = re.compile(r"'{2,}")
_HEADING = re.compile(r"(={2,6})\s*([^=]{1,120}?)\s*\1")
# sections that list links to other stories, not part of this one: cut to the next heading
_LINK_SECTION = re.compile(
    r"^(?:related(?: \w+)*|see also|previous related news|sources?|external links|"
    r"references|more images|gallery|latest in this section)$",
    re.I,
)
_CATEGORY_NAMES = (
    "Politics and conflicts|Economy and business|Crime and law|Science and technology|"
    "Disasters and accidents|Culture and entertainment|Health|Environment|Weather|"
    "Internet|Sports|Education|Foreign and Commonwealth Office"
)
_CATEGORY = re.compile(
    rf"\bCategory:(?:{_CATEGORY_NAMES}|[^:]*?(?=\s+Category:)|[A-Z0-9][\w-]*(?:\s[A-Z][\w-]*)*)"
)
_INFOBOX = re.compile(r"^(?:[\w.'’-]+\s+){0,4}[\w.'’-]*infobox\s+", re.I)
_INFOBOX_INSIDE = re.compile(r"(?:\b[\w'’-]+\s+){0,3}[\w'’-]*infobox\s+")
_IMAGE_LEFTOVER = re.compile(r"^(?:(?:thumb|right|left|center|frame)\s+)+", re.I)
_EMPTY_PARENS = re.compile(r"\s*\(\s*[,;]?\s*\)")
_MARKS = re.compile(r"\s*(?:^|\s)(?:publish|Archive-unreviewed|archive)(?=\s|$)")


def clean_body(body: str) -> list[str]:
    """Paragraphs of one Wikinews body, without the markup the upstream extraction left."""
    text = html.unescape(html.unescape(body)).replace("&ndasp;", "–")  # a typo in one source
    text = _COMMENT.sub(" ", text)
    text = _BLOCK_TAG.sub("\n\n", text)
    text = _TAG.sub(" ", text)
    text = _TEMPLATE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    text = _CATEGORY.sub(" ", text)
    text = _IMAGE_LEFTOVER.sub("", _INFOBOX.sub("", text.strip()))
    text = _INFOBOX_INSIDE.sub("", text)
    text = _EMPTY_PARENS.sub("", text)
    text = _MARKS.sub(" ", text)
    blocks: list[str] = []
    position = 0
    skipping = False
    for match in _HEADING.finditer(text):
        if not skipping:
            blocks.append(text[position : match.start()])
        heading = match.group(2).strip()
        skipping = bool(_LINK_SECTION.match(heading))
        if not skipping:
            blocks.append("\n\n" + heading + "\n\n")
        position = match.end()
    if not skipping:
        blocks.append(text[position:])
    text = "".join(blocks).replace("=", " ") if "==" in "".join(blocks) else "".join(blocks)
    # list items become paragraphs of their own
    text = re.sub(r"(?:^|\s)\*+\s+", "\n\n", text)
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split()).strip(" *")
        if block:
            paragraphs.extend(_split_long(block))
    return paragraphs


def _split_long(paragraph: str, sentences_a_paragraph: int = 3, min_chars: int = 320) -> list[str]:
    """A run of text cut into paragraphs of about three sentences (the source has no breaks,
    so every citation would otherwise be paragraph 1), at the sentence boundaries `qa` uses."""
    from qa.chunking import split_sentences

    spans = split_sentences(paragraph)
    if len(spans) <= sentences_a_paragraph:
        return [paragraph]
    out, start, count = [], spans[0][0], 0
    for index, (_, end) in enumerate(spans):
        count += 1
        last = index == len(spans) - 1
        if last or (count >= sentences_a_paragraph and end - start >= min_chars):
            out.append(paragraph[start:end].strip())
            if not last:
                start, count = spans[index + 1][0], 0
    return [p for p in out if p]


# --------------------------------------------------------------------------- repairs
# What the upstream extraction broke across the whole corpus, repaired with what the corpus
# itself shows: the labels of portal and category boxes that it glued to first sentences,
# and the suffixes it split from a link ("[[Russia]]n" -> "Russia n").

_SUFFIX = re.compile(rf"\b([A-Z][a-z]+) ({SUFFIXES})\b")
_POSSESSIVE = re.compile(rf"\b(?!(?:{FUNCTION_WORDS}) )([\w.-]*\w) 's\b")
_COMMAS = re.compile(r",(?:\s*,)+")


def box_labels(bodies: list[str]) -> set[str]:
    """Phrases of 1-5 words that begin at least two articles directly followed by a word
    that only begins sentences ("Iraq At least", "Australian news The"): the labels of the
    boxes upstream flattened into the text."""
    seen: dict[str, int] = {}
    for body in bodies:
        words = body.split(" ", 8)[:8]
        for k in range(1, min(6, len(words))):
            if words[k] in SENTENCE_STARTERS and words[k - 1][-1:].isalnum():
                phrase = " ".join(words[:k])
                seen[phrase] = seen.get(phrase, 0) + 1
    return {p for p, n in seen.items() if n >= 2 and p.split(" ")[0] not in SENTENCE_STARTERS}


def strip_labels(body: str, labels: set[str], text: str) -> str:
    """`body` without the box labels before its first sentence. A label followed by a name
    stays when that pair also occurs inside sentences of the corpus (`text`): "New Zealand
    Prime Minister ..." is a sentence, "USA Sheila Dixon ..." is not."""
    while True:
        found = leading_prefix(body)
        if found is None:
            words = body.split(" ", 6)
            for k in range(min(5, len(words) - 1), 0, -1):
                phrase, following = " ".join(words[:k]), words[k]
                if phrase in labels and following[:1].isupper():
                    junction = re.escape(f"{words[k - 1]} {following}")
                    if not re.search(rf"[a-z,] {junction}", text):
                        found = phrase
                        break
        if found is None or len(found) >= len(body):
            return body
        body = body[len(found) :].lstrip()


def join_split_words(body: str, vocabulary: set[str]) -> str:
    """'Russia n' -> 'Russian' where the joined word occurs in the corpus, 'Congo 's' ->
    "Congo's", and a run of commas (a removed word) -> one comma."""
    body = _SUFFIX.sub(
        lambda m: m.group(1) + m.group(2) if m.group(1) + m.group(2) in vocabulary else m.group(),
        body,
    )
    body = _POSSESSIVE.sub(r"\1's", body)
    return _COMMAS.sub(",", body)


def repair(bodies: list[str]) -> list[str]:
    """Every body with the corpus-wide repairs applied."""
    joined = "\n".join(bodies)
    vocabulary = set(re.findall(r"[A-Za-z]+", joined))
    labels = box_labels(bodies)
    repaired = []
    for body in bodies:
        first, sep, rest = body.partition("\n\n")
        first = strip_labels(first, labels, joined)
        if first in labels:  # a paragraph of its own that is only a label
            first, sep, rest = rest.partition("\n\n")
        repaired.append(join_split_words(first + sep + rest, vocabulary))
    return repaired


def convert(source: Path, out: Path) -> dict[str, int]:
    by_year: dict[str, list[str]] = {}
    skipped = damaged = 0
    records = []
    with source.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("flags"):
                skipped += 1
                continue
            records.append(record)
    bodies = repair(["\n\n".join(clean_body(r["body"])) for r in records])
    for record, body in zip(records, bodies, strict=True):
        if defects(body):  # a hole where a link was, a prefix left: quotes would show it
            damaged += 1
            continue
        year = (record.get("date") or "")[:4] or "undated"
        kept = {
            "id": record["id"],
            "title": record["title"],
            "date": record.get("date"),
            "url": record["url"],
            "categories": record.get("categories") or [],
            "source": "Wikinews",
            "body": body,
        }
        by_year.setdefault(year, []).append(json.dumps(kept, ensure_ascii=False))
    out.mkdir(parents=True, exist_ok=True)
    wanted = {f"wikinews-{year}.jsonl" for year in by_year}
    for stale in out.glob("wikinews-*.jsonl"):
        if stale.name not in wanted:
            stale.unlink()
    counts = {}
    for year, lines in sorted(by_year.items()):
        target = out / f"wikinews-{year}.jsonl"
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(tmp, target)
        counts[target.name] = len(lines)
    counts["skipped (flagged)"] = skipped
    counts["left out (damaged text)"] = damaged
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not args.source.is_file():
        print(f"import_wikinews: {args.source}: no such file", file=sys.stderr)
        return 1
    counts = convert(args.source, args.out)
    for name, count in counts.items():
        print(f"{name}: {count}")
    print(f"articles: {sum(v for k, v in counts.items() if k.endswith('.jsonl'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
