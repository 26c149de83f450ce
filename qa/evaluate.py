"""`qa eval`: retrieval and answer quality on a SQuAD-format file (v1.1 or v2.0, zipped or not).

Each SQuAD article's paragraphs, joined by blank lines, become one article of a corpus, which
is indexed like any other; then every question is asked against the whole index:
- a passage is a hit when its character range covers a gold answer's range
  (`recall@k`, `mrr` over the top 20);
- an answer is correct when the shown answer sentence contains a gold answer after SQuAD's
  normalisation (`answer_accuracy`); the highlighted span is scored with SQuAD's exact match
  and token F1 (`span_em`, `span_f1`; the sentence stands in when there is no span);
- for v2.0, `no_answer_accuracy` is the share of unanswerable questions answered "not found",
  `answered_accuracy` the accuracy on answerable ones with abstention on, next to
  `accuracy_without_abstention` on the same questions.

Articles are split in two halves by a hash of their title ("fit" and "heldout"; the same
article falls in the same half in v1.1 and v2.0); weights and thresholds are fitted on the fit
half only (`scripts/fit_weights.py`), so the honest figures are those of `--half heldout`.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import statistics
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.articles import clean_paragraph
from qa.errors import InputError
from qa.text import contains_answer, exact_match, token_f1


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


def _clean_map(text: str) -> tuple[str, list[int]]:
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
                cleaned, mapping = _clean_map(context)
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


def select_questions(
    squad: SquadSet, half: str = "all", sample: int | None = None, seed: int = 0
) -> list[SquadQuestion]:
    if half not in ("all", "fit", "heldout"):
        raise InputError(f"--half must be all, fit or heldout, not {half!r}")
    questions = [
        q for q in squad.questions if half == "all" or article_half(squad.titles[q.article]) == half
    ]
    if sample is not None and sample < len(questions):
        questions = random.Random(seed).sample(questions, sample)
    return questions


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


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
        lines = path.read_text(encoding="utf-8").splitlines()
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


@dataclass
class Outcome:
    question: SquadQuestion | NewsQuestion
    first_hit: int | None
    correct: bool
    correct_without_abstention: bool
    abstained: bool
    span_em: float
    span_f1: float
    seconds: float
    confidence: float = 0.0
    retrieval_seconds: float = 0.0
    reading_seconds: float = 0.0


def evaluate(
    engine: Any,
    squad: SquadSet,
    questions: list[SquadQuestion],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Ask every question; return the metrics (and, when both halves were asked, the
    held-out half's own, under "heldout": the figures to quote for anything fitted)."""
    if questions and not set(doc_ids_by_article(engine)) & {q.article for q in questions}:
        raise InputError(
            f"{engine.index.index_dir} holds none of this SQuAD file's articles; pass --index "
            "with an index built from the file (or no --index for a temporary one)"
        )
    outcomes = list(run_questions(engine, squad, questions, progress))
    metrics = summarize(outcomes, squad.version)
    halves = {article_half(squad.titles[q.article]) for q in questions}
    if len(halves) == 2:
        heldout = [
            o
            for o in outcomes
            if isinstance(o.question, SquadQuestion)
            and article_half(squad.titles[o.question.article]) == "heldout"
        ]
        metrics["heldout"] = summarize(heldout, squad.version)
    return metrics


def evaluate_news(
    engine: Any,
    questions: list[NewsQuestion],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Ask every question of a JSONL file; a passage is a hit when it comes from the named
    article and holds a gold answer."""
    paths = engine.index.doc_ids_by_ref()

    def hit(q: NewsQuestion, docs: set[int], passage: Any) -> bool:
        return passage.doc_id in docs and any(contains_answer(passage.text, a) for a in q.answers)

    named = [q.article for q in questions if q.article]
    if named and not any(ref == a or ref.endswith("/" + a) for a in set(named) for ref in paths):
        raise InputError(
            f"{engine.index.index_dir} holds none of the articles the questions name "
            f"(e.g. {named[0]}); pass --index with the index of their corpus"
        )
    outcomes = []
    for number, q in enumerate(questions, 1):
        article = q.article
        docs = (
            {d for ref, d in paths.items() if ref == article or ref.endswith("/" + article)}
            if article is not None
            else set()
        )
        outcomes.append(ask_one(engine, q, q.answers, functools.partial(hit, q, docs)))
        if progress is not None:
            progress(number, len(questions))
    return summarize(outcomes, "v2.0" if any(q.impossible for q in questions) else "")


def doc_ids_by_article(engine: Any) -> dict[int, int]:
    """SQuAD article index -> document id in the index."""
    return {
        int(record[1:]): doc_id
        for record, doc_id in engine.index.doc_ids_by_record().items()
        if record.startswith("a") and record[1:].isdigit()
    }


def ask_one(
    engine: Any,
    question: SquadQuestion | NewsQuestion,
    golds: Sequence[str],
    is_hit: Callable[[Any], bool],
) -> Outcome:
    """Ask one question without abstention (so that both ways can be scored), timing the
    retrieval and the reading apart."""
    started = time.perf_counter()
    terms, passages = engine.search(question.question)
    searched = time.perf_counter()
    result = engine.reader.read(question.question, terms, passages, n=1, abstain=False)
    read = time.perf_counter()
    first_hit = next((p.rank for p in result.passages if is_hit(p)), None)
    top = result.answers[0] if result.answers else None
    would_abstain = top is None or result.confidence < engine.reader.abstain_below
    correct_raw = top is not None and any(contains_answer(top.text, g) for g in golds)
    shown = (top.span or top.text) if top else ""
    return Outcome(
        question=question,
        first_hit=first_hit,
        correct=correct_raw and not would_abstain,
        correct_without_abstention=correct_raw,
        abstained=would_abstain,
        span_em=max((exact_match(shown, g) for g in golds), default=0.0),
        span_f1=max((token_f1(shown, g) for g in golds), default=0.0),
        seconds=read - started,
        confidence=result.confidence,
        retrieval_seconds=searched - started,
        reading_seconds=read - searched,
    )


def run_questions(
    engine: Any,
    squad: SquadSet,
    questions: list[SquadQuestion],
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Outcome]:
    gold = GoldMapper(squad)
    docs = doc_ids_by_article(engine)
    for number, q in enumerate(questions, 1):
        spans = gold.spans(q) if not q.impossible else []
        doc_id = docs.get(q.article)

        def is_hit(passage: Any, spans: list[tuple[int, int]] = spans, doc: Any = doc_id) -> bool:
            return passage.doc_id == doc and any(
                passage.char_start <= s and e <= passage.char_end for s, e in spans
            )

        yield ask_one(engine, q, [text for text, _ in q.answers], is_hit)
        if progress is not None:
            progress(number, len(questions))


CALIBRATION_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def calibration_table(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Confidence bins of the top answer (abstention off) against how often it is right;
    unanswerable questions are never right."""
    table = []
    for low, high in itertools.pairwise(CALIBRATION_BINS):
        inside = [
            o
            for o in outcomes
            if low <= o.confidence < high or (high == 1.0 and o.confidence == 1.0)
        ]
        right = sum(o.correct_without_abstention for o in inside)
        table.append(
            {
                "bin": f"{low:.1f}-{high:.1f}",
                "questions": len(inside),
                "mean_confidence": (
                    round(statistics.fmean(o.confidence for o in inside), 4) if inside else None
                ),
                "accuracy": round(right / len(inside), 4) if inside else None,
            }
        )
    return table


def summarize(outcomes: list[Outcome], version: str | SquadSet = "") -> dict[str, Any]:
    if isinstance(version, SquadSet):
        version = version.version
    answerable = [o for o in outcomes if not o.question.impossible]
    impossible = [o for o in outcomes if o.question.impossible]
    n = len(answerable) or 1

    def recall(k: int) -> float:
        return sum(1 for o in answerable if o.first_hit is not None and o.first_hit <= k) / n

    latencies = [o.seconds * 1000 for o in outcomes]
    retrieval = [o.retrieval_seconds * 1000 for o in outcomes]
    reading = [o.reading_seconds * 1000 for o in outcomes]
    confident = [o for o in outcomes if not o.abstained and o.confidence >= 0.8]
    metrics: dict[str, Any] = {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "recall@1": recall(1),
        "recall@5": recall(5),
        "recall@20": recall(20),
        "mrr": sum(1 / o.first_hit for o in answerable if o.first_hit) / n,
        "answer_accuracy": sum(o.correct_without_abstention for o in answerable) / n,
        "span_em": sum(o.span_em for o in answerable) / n,
        "span_f1": sum(o.span_f1 for o in answerable) / n,
    }
    # With abstention on, as users see it: an abstention on an answerable question is wrong.
    metrics["answered_accuracy"] = sum(o.correct for o in answerable) / n
    metrics["abstained_answerable"] = sum(o.abstained for o in answerable) / n
    if impossible or version.startswith("v2"):
        metrics["unanswerable"] = len(impossible)
        metrics["no_answer_accuracy"] = (
            sum(o.abstained for o in impossible) / len(impossible) if impossible else 0.0
        )
    metrics["shown_confidence>=0.8"] = len(confident)
    metrics["accuracy_confidence>=0.8"] = (
        sum(o.correct_without_abstention for o in confident) / len(confident) if confident else 0.0
    )
    for key, value in metrics.items():
        if isinstance(value, float):
            metrics[key] = round(value, 4)
    metrics.update(
        {
            "latency_ms_p50": round(percentile(latencies, 0.5), 2),
            "latency_ms_p95": round(percentile(latencies, 0.95), 2),
            "latency_ms_mean": round(statistics.fmean(latencies), 2) if latencies else 0.0,
            "retrieval_ms_p50": round(percentile(retrieval, 0.5), 2),
            "retrieval_ms_p95": round(percentile(retrieval, 0.95), 2),
            "reading_ms_p50": round(percentile(reading, 0.5), 2),
            "reading_ms_p95": round(percentile(reading, 0.95), 2),
            "calibration": calibration_table(outcomes),
        }
    )
    return metrics


def evaluate_file(
    file: Path,
    index_dir: Path | None,
    *,
    backend: str | None = None,
    half: str = "all",
    sample: int | None = None,
    seed: int = 0,
    progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """`qa eval`: ask the questions of a SQuAD file (its articles indexed into `index_dir`,
    or a temporary index when None) or of a JSONL file (over the existing `index_dir`) and
    return the metrics. `progress` receives `qa.index.Progress` reports."""
    import shutil
    import tempfile

    from qa.embedding import encoder_factory
    from qa.engine import Engine
    from qa.index import Progress, index_exists

    news = file.suffix.lower() == ".jsonl"
    if news:
        if index_dir is None or not index_exists(index_dir):
            raise InputError(f"{file}: a JSONL question file needs --index DIR with an index")
        news_questions = load_news_questions(file)
    else:
        squad = load_squad(file)
        questions = select_questions(squad, half, sample, seed)

    def asked(done: int, total: int) -> None:
        if progress is not None:
            progress(Progress("questions", done, total))

    workdir = Path(tempfile.mkdtemp(prefix="qa-eval-"))
    try:
        target = index_dir or workdir / "index"
        if not news and not index_exists(target):
            index_squad(squad, target, encoder_factory(None, backend), progress=progress)
        engine = Engine.open(target)
        try:
            engine.warm_up()
            if news:
                metrics = evaluate_news(engine, news_questions, progress=asked)
            else:
                metrics = evaluate(engine, squad, questions, progress=asked)
            settings = {
                "backend": engine.index.settings.backend,
                "read_passages": engine.reader.read_passages,
            }
        finally:
            engine.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"file": str(file), "half": "all" if news else half, **settings, **metrics}
