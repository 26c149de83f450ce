"""Questions that ask for a story, not a fact: "What happened to Ring?", "What is the story
behind "Amazon to buy Ring"?", "Tell me about the Sensex crash".

No single span answers them, and the reader, asked for one, quotes a side sentence of the
right article. What a news reader wants is the article's lead: its first sentences, which
say what happened, verbatim and cited. `story_subject` recognises such a question and
returns what it is about (the text to search); `lead_span` finds the lead in an article's
body; `subject_cover` says how much of the subject an article's headline and lead name,
which is how sure `qa` can be that it is the story meant.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.chunking import split_sentences
from qa.text import STOPWORDS, stem, words

_QUOTES = "\"'“”‘’«»"
_STORY = re.compile(
    r"^\s*(?:"
    r"what(?:'s|’s|\s+is|\s+was|\s+are|\s+were)\s+(?:the\s+)?(?:(?:full|whole|latest|real)\s+)?"
    r"(?:story|news|background)\s+(?:behind|about|of|on|with|from|in)\s+"
    r"|(?:tell|show)\s+me\s+(?:more\s+)?(?:about|the\s+story\s+(?:of|behind))\s+"
    r"|what(?:'s|’s|\s+is)\s+(?:going\s+on|happening)\s+(?:with|at|in)\s+"
    r"|what\s+happened\s+(?:to|with)\s+"
    r"|(?:give\s+me\s+)?(?:the\s+)?(?:story|news|background)\s+(?:behind|about|of|on)\s+"
    r")(?P<subject>.+?)\s*[?.!]*\s*$",
    re.IGNORECASE | re.DOTALL,
)
LEAD_SENTENCES = 3
"""At most this many sentences of the first paragraph make the lead."""
LEAD_CHARS = 200
"""The lead stops at the first sentence end past this many characters."""


def story_subject(question: str) -> str | None:
    """What a story question is about ("Ring" for "What happened to Ring?"), quotes around a
    headline removed; None for any other question."""
    found = _STORY.match(question)
    if found is None:
        return None
    subject = found.group("subject").strip().strip(_QUOTES).strip()
    return subject if any(w not in STOPWORDS for w in words(subject)) else None


def lead_span(body: str, paragraphs: Sequence[Sequence[int]]) -> tuple[int, int] | None:
    """Offsets in `body` of its lead: the first paragraph's first sentences, up to
    `LEAD_SENTENCES` of them, ending at the first sentence end past `LEAD_CHARS`
    characters; None for an empty body."""
    for start, end in paragraphs or [(0, len(body))]:
        sentences = split_sentences(body[start:end], start)
        if not sentences:
            continue
        lead_end = sentences[0][1]
        for _, sentence_end in sentences[1:LEAD_SENTENCES]:
            if lead_end - sentences[0][0] >= LEAD_CHARS:
                break
            lead_end = sentence_end
        return sentences[0][0], lead_end
    return None


def subject_cover(subject: str, text: str) -> float:
    """The share of the subject's content words (stemmed) that `text` holds: 1.0 when the
    headline and lead name everything the question names."""
    wanted = {stem(w) for w in words(subject) if w not in STOPWORDS}
    if not wanted:
        return 0.0
    return len(wanted & {stem(w) for w in words(text)}) / len(wanted)
