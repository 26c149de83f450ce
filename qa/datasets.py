"""The question sets `qa eval` reads: SQuAD files (v1.1 and v2.0, with their articles as a
corpus and gold answers mapped into our text) and JSONL files of questions about a corpus;
and the article-hash split into a fit half and a held-out half."""

from __future__ import annotations

import json
import random
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.records import clean_paragraph
from qa.text import file_lines


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    article: int
    paragraph: int
    answers: tuple[tuple[str, int], ...]
    """(text, answer_start in the paragraph)."""
    impossible: bool


@dataclass
class SquadSet:
    version: str
    titles: list[str]
    paragraphs: list[list[str]]
    questions: list[SquadQuestion]


def load_squad(path: Path) -> SquadSet:
    """Read a SQuAD JSON file, or a zip holding one."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(".json")]
                if not names:
                    raise InputError(f"{path}: the zip holds no .json file")
                data = json.loads(archive.read(names[0]))
        else:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read a SQuAD file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{path}: not SQuAD format (no top-level 'data' list)")
    squad = SquadSet(str(data.get("version", "")), [], [], [])
    for a_index, article in enumerate(data["data"]):
        squad.titles.append(str(article.get("title", f"article {a_index}")).replace("_", " "))
        contexts = []
        for p_index, paragraph in enumerate(article.get("paragraphs", [])):
            contexts.append(paragraph["context"])
            for qa in paragraph.get("qas", []):
                answers = tuple((a["text"], int(a["answer_start"])) for a in qa.get("answers", []))
                for text, start in answers:
                    if not 0 <= start <= len(paragraph["context"]) - len(text):
                        raise InputError(
                            f"{path}: question {qa.get('id')}: answer_start {start} lies outside "
                            f"its context ({len(paragraph['context'])} characters)"
                        )
                squad.questions.append(
                    SquadQuestion(
                        id=str(qa["id"]),
                        question=qa["question"],
                        article=a_index,
                        paragraph=p_index,
                        answers=answers,
                        impossible=bool(qa.get("is_impossible", False)) or not answers,
                    )
                )
        squad.paragraphs.append(contexts)
    if squad.version.startswith("v2") or any(q.impossible for q in squad.questions):
        squad.version = squad.version or "v2.0"
    return squad


def write_corpus(squad: SquadSet, folder: Path) -> Path:
    """The SQuAD articles as one JSONL corpus file (each record's body: its paragraphs)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "squad.jsonl"
    with target.open("w", encoding="utf-8") as handle:
        for index, (title, contexts) in enumerate(zip(squad.titles, squad.paragraphs)):
            record = {"id": f"a{index:03d}", "title": title, "body": contexts}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return target


def index_squad(
    squad: SquadSet,
    index: Path,
    encoder_factory: Callable[[Any], Any],
    progress: Callable[[Any], None] | None = None,
) -> None:
    """Build an index of the SQuAD articles at `index` (their corpus file lives in a temporary
    folder only while it is indexed)."""
    import tempfile

    from qa.index import sync_index

    with tempfile.TemporaryDirectory(prefix="qa-squad-corpus-") as tmp:
        write_corpus(squad, Path(tmp))
        sync_index(Path(tmp), index, encoder_factory, full=True, progress=progress)


def clean_map(text: str) -> tuple[str, list[int]]:
    """The loader's paragraph cleaning, with a map from each original offset to the cleaned
    text (cleaning only drops or merges whitespace, so a two-pointer walk aligns them)."""
    cleaned = clean_paragraph(text)
    mapping = [0] * (len(text) + 1)
    j = 0
    for i, ch in enumerate(text):
        mapping[i] = j
        if j < len(cleaned) and ch == cleaned[j]:
            j += 1
        elif not ch.isspace() and j < len(cleaned):
            j += 1  # should not happen; keep moving
    mapping[len(text)] = len(cleaned)
    return cleaned, mapping


class GoldMapper:
    """Gold answer ranges in the indexed article bodies."""

    def __init__(self, squad: SquadSet) -> None:
        self.maps: list[list[tuple[int, list[int]]]] = []
        for contexts in squad.paragraphs:
            position = 0
            per_article = []
            for context in contexts:
                cleaned, mapping = clean_map(context)
                per_article.append((position, mapping))
                if cleaned:
                    position += len(cleaned) + 2
            self.maps.append(per_article)

    def spans(self, q: SquadQuestion) -> list[tuple[int, int]]:
        offset, mapping = self.maps[q.article][q.paragraph]
        spans = []
        for text, start in q.answers:
            end = min(start + len(text), len(mapping) - 1)
            spans.append((offset + mapping[start], offset + mapping[end - 1] + 1))
        return spans


def article_half(title: str) -> str:
    """`fit` or `heldout`, by a stable hash of the article title."""
    return "fit" if zlib.crc32(title.encode("utf-8")) % 2 == 0 else "heldout"


HALVES = ("all", "fit", "heldout", "fit:reader", "fit:weights")


def fit_part(title: str) -> str:
    """Inside the fit half, `reader` or `weights`, by another bit of the same hash: the
    reader may train on the `reader` part's questions, and what is fitted on top of it
    (weights, calibration, threshold) is fitted on the `weights` part, which it never saw."""
    return "reader" if (zlib.crc32(title.encode("utf-8")) >> 1) % 2 == 0 else "weights"


def select_questions(
    squad: SquadSet, half: str = "all", sample: int | None = None, seed: int = 0
) -> list[SquadQuestion]:
    """The questions of `half`: all, fit, heldout, or a part of the fit half (`fit:reader`,
    `fit:weights`, see `fit_part`)."""
    if half not in HALVES:
        raise InputError(f"--half must be one of {', '.join(HALVES)}, not {half!r}")

    def inside(title: str) -> bool:
        if half == "all":
            return True
        whole, _, part = half.partition(":")
        return article_half(title) == whole and (not part or fit_part(title) == part)

    questions = [q for q in squad.questions if inside(squad.titles[q.article])]
    if sample is not None and sample < len(questions):
        questions = random.Random(seed).sample(questions, sample)
    return questions


@dataclass(frozen=True)
class NewsQuestion:
    """A question of a JSONL file: gold answers and, optionally, the article that holds them
    (a path ending, e.g. `business/013.txt`)."""

    question: str
    answers: tuple[str, ...]
    article: str | None = None

    @property
    def impossible(self) -> bool:
        return not self.answers


def load_news_questions(path: Path) -> list[NewsQuestion]:
    """A JSONL file of `{"question", "answers": [...], "article"?}` records (answers empty
    for a question the corpus cannot answer)."""
    questions = []
    try:
        lines = file_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the questions ({exc})") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answers = record.get("answers") or []
            if not isinstance(record.get("question"), str) or not isinstance(answers, list):
                raise ValueError("needs a 'question' string and an 'answers' list")
        except (ValueError, AttributeError, RecursionError) as exc:
            raise InputError(f"{path}:{number}: not a question record ({exc})") from exc
        questions.append(
            NewsQuestion(record["question"], tuple(str(a) for a in answers), record.get("article"))
        )
    if not questions:
        raise InputError(f"{path}: no questions")
    return questions


QUESTION_TEMPLATES = (
    "What happened: {title}?",
    "Who is involved in {title}?",
    "When did {title} happen?",
    "How many people were affected by {title}?",
    "Why {title}?",
)


def template_questions(corpus: Path, count: int, seed: int) -> list[str]:
    """`count` questions about random articles of `corpus`, each a template around an
    article's headline (the same for the same seed): about the corpus without copying an
    answer sentence, for the benchmarks (`scripts/bench_query.py`, `scripts/bench_peers.py`)."""
    from qa.articles import load_corpus

    articles = load_corpus(corpus).articles
    rng = random.Random(seed)
    return [
        rng.choice(QUESTION_TEMPLATES).format(title=article.title)
        for article in rng.sample(articles, min(count, len(articles)))
    ]
