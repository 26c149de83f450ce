"""Small text utilities shared by retrieval, reading and evaluation: terms, stems, SQuAD norms."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from functools import lru_cache

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves also many much one s t""".split()
)
QUESTION_WORDS = frozenset("what when where which who whom whose why how".split())

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    if text.isascii():  # lower-casing first is the same then, and one call instead of many
        return _WORD.findall(text.lower())
    return [w.lower() for w in _WORD.findall(text)]


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light suffix stripper: enough to match "purged"/"purge", "officers"/"officer"."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 3:
        return w
    for suffix, replacement, minimum in (
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "", 5),
        ("s", "", 4),
    ):
        if w.endswith(suffix) and len(w) >= minimum:
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                continue
            if suffix == "es" and not w.endswith(("ses", "xes", "ches", "shes", "zes")):
                w = w[:-1]
                break
            w = w[: len(w) - len(suffix)] + replacement
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def span_stems(text: str, spans: Sequence[tuple[int, int]]) -> list[set[str]]:
    """The distinct stems of each span of `text`."""
    return [set(map(stem, words(text[s:e]))) for s, e in spans]


def sentence_stems(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`span_stems` as stored with a chunk: stems joined by spaces, spans by newlines (stems
    hold neither)."""
    return "\n".join(" ".join(sorted(stems)) for stems in span_stems(text, spans))


def parse_sentence_stems(stored: str) -> list[frozenset[str]]:
    """`sentence_stems` read back: one set per span."""
    return [frozenset(line.split()) for line in stored.split("\n")]


# --------------------------------------------------------------------------- SQuAD metrics

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common: dict[str, int] = {}
    for token in expected:
        common[token] = common.get(token, 0) + 1
    same = 0
    for token in predicted:
        if common.get(token, 0) > 0:
            same += 1
            common[token] -= 1
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(expected)
    return 2 * precision * recall / (precision + recall)


def contains_answer(sentence: str, gold: str) -> bool:
    """The shown sentence contains the gold answer, after SQuAD normalisation."""
    needle = normalize_answer(gold)
    if not needle:
        return False
    haystack = f" {normalize_answer(sentence)} "
    return f" {needle} " in haystack


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Article text made inert for a terminal: control characters (ANSI escapes included) and
    bidi overrides are shown as visible `\\xNN` / `\\uNNNN` escapes instead of acting."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escape, text.replace("\t", " "))


def one_line(text: str) -> str:
    """A file name or report line from the corpus made inert *and* kept on one line: as
    `terminal_safe`, and newlines and tabs shown as `\\n` / `\\t`, so a file named
    "a\\nindex built" cannot forge a line of a report."""
    return terminal_safe(text.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n"))


def file_lines(text: str) -> list[str]:
    """The lines of a file qa reads line by line (JSONL, question lists, answers files),
    split at "\\n" only: `str.splitlines` also splits at U+2028, U+0085 and other separators
    that article text and JSON strings may hold raw, which cut one record in two. A "\\r"
    before the "\\n" stays and is white space to JSON and to `strip`."""
    return text.split("\n")


_SENTENCE_END = re.compile(r"[.!?][\"'’”)\]]*(?=\s)")


def excerpt(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters for a preview, never mid-word: at the
    last sentence end in the second half of the limit, else at the last space, with "…"
    (the whole text when it fits). A preview only: a quote that a citation points at is
    never shortened."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(head + " ") if m.end() >= limit // 2]
    if ends:
        return head[: ends[-1]] + " …"
    space = head.rstrip().rfind(" ")
    cut = head[:space] if space > 0 else head
    return cut.rstrip(" ,;:-–—") + "…"
