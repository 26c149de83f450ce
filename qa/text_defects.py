"""Defects an import can leave in article text, which readers would meet in quoted answers
(counted by `scripts/corpus_quality.py`, mended by `scripts/import_wikinews.py`):

- leading prefix: a portal, category or country label glued to the first sentence
  ("Economy and business Fiat announced ...", "Iraq At least seven ...");
- split suffix: a word cut where a link ended ("Russia n expedition", "Congo 's");
- empty parentheses: "()" or "( , )" where the text inside was removed;
- doubled commas: ",," where a word between them was removed;
- holes: an article with nothing after it ("the President of the, Jose Genoino", "a blockade
  of 's sea ports") where link text was removed.
"""

from __future__ import annotations

import re

# words that begin a sentence and, capitalised after a capitalised word with no punctuation
# between, cannot continue one: "Iraq At least", "Australian news The Centre"
SENTENCE_STARTERS = frozenset(
    "The A An On In At According Today Yesterday Last This It After Following Officials "
    "Two Three Four Several Many Some Since During Earlier While When Despite Although "
    "Over Under From By".split()
)
CATEGORY_LABELS = re.compile(
    r"^(?i:politics and conflicts|economy and business|crime and law|science and technology|"
    r"disasters and accidents|culture and entertainment|health|environment|weather|"
    r"internet|sports|education|obituaries|aviation|[A-Z][\w-]*(?: [A-Z][\w-]*)? news)"
    r"\s+(?=[A-Z0-9\"'])"
)
FUNCTION_WORDS = "the|a|an|of|in|to|by|for|from|with|and|or|at|on|into|as"
SUFFIXES = "n|ns|i|ian|ians|ese|ic|ist|ists|ish|ern"
"""Word endings the import split from a link ("[[Russia]]n" -> "Russia n")."""
SPLIT_SUFFIX = re.compile(
    rf"\b[A-Z][a-z]+ (?:{SUFFIXES})\b|\b(?!(?:{FUNCTION_WORDS}) )[\w.-]*\w 's\b"
)
EMPTY_PARENTHESES = re.compile(r"\(\s*[,;:]?\s*\)")
DOUBLED_COMMAS = re.compile(r",\s*,")
HOLES = re.compile(
    rf"\b(?:[Tt]he|an?)\s*(?:[,;:)]|\.(?!m\.))|(?:^|[(,] ?|\b(?:{FUNCTION_WORDS}) )'s\b", re.M
)
KINDS = ("leading prefix", "split suffix", "empty parentheses", "doubled commas", "holes")


def leading_prefix(body: str) -> str | None:
    """The label glued to the start of `body`, or None."""
    found = CATEGORY_LABELS.match(body)
    if found:
        return found.group().strip()
    words = body.split(" ", 8)[:8]
    for k in range(1, len(words)):
        word, previous = words[k], words[k - 1]
        if word in SENTENCE_STARTERS and previous[:1].isupper() and previous[-1:].isalnum():
            if words[0] not in SENTENCE_STARTERS and all(
                w[:1].isupper() or w[:1].isdigit() or w in ("and", "of") for w in words[:k]
            ):
                return " ".join(words[:k])
            return None
        if not (word[:1].isupper() or word[:1].isdigit() or word in ("and", "of", "news")):
            return None
    return None


def defects(body: str) -> list[tuple[str, str]]:
    """Each defect of one article's text as (kind, the text that shows it)."""
    found: list[tuple[str, str]] = []
    prefix = leading_prefix(body)
    if prefix is not None:
        found.append(("leading prefix", body[: len(prefix) + 30]))
    for kind, pattern in (
        ("split suffix", SPLIT_SUFFIX),
        ("empty parentheses", EMPTY_PARENTHESES),
        ("doubled commas", DOUBLED_COMMAS),
        ("holes", HOLES),
    ):
        for match in pattern.finditer(body):
            found.append((kind, body[max(0, match.start() - 20) : match.end() + 20]))
    return found
