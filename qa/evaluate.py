"""`qa eval`: retrieval and answer quality on a SQuAD-format file (v1.1 or v2.0, zipped or not).

Each SQuAD article's paragraphs, joined by blank lines, become one article of a corpus, which
is indexed like any other; then every question is asked against the whole index:
- a passage is a hit when its character range covers a gold answer's range
  (`recall@k`, `mrr` over the top 20, in the order `qa` ranks the passages: the reader
  re-ranks the ones it reads; `retrieval_recall@5` is retrieval's own order);
- an answer is correct when the shown answer sentence contains a gold answer after SQuAD's
  normalisation (`answer_accuracy`); the highlighted span is scored with SQuAD's exact match
  and token F1 (`span_em`, `span_f1`; the sentence stands in when there is no span);
- for v2.0, `no_answer_accuracy` is the share of unanswerable questions answered "not found",
  `answered_accuracy` the accuracy on answerable ones with abstention on, next to
  `accuracy_without_abstention` on the same questions.

`qa eval --answers FILE` also writes each question's outcome, one JSON object a line
(`Outcome.as_record`): what was shown, its citation and confidence, and how it was scored.

Articles are split in two halves by a hash of their title ("fit" and "heldout"; the same
article falls in the same half in v1.1 and v2.0); weights and thresholds are fitted on the fit
half only (`scripts/fit_weights.py`), so the honest figures are those of `--half heldout`.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from qa.answers import Answer
from qa.datasets import (
    GoldMapper,
    NewsQuestion,
    SquadQuestion,
    SquadSet,
    article_half,
    fit_part,
    index_squad,
    load_news_questions,
    load_squad,
    select_questions,
)
from qa.errors import InputError
from qa.text import contains_answer, exact_match, token_f1

if TYPE_CHECKING:
    from qa.engine import Engine


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


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
    retrieval_hit: int | None = None
    """Best retrieval rank of a hit (`first_hit` is its place after the reader re-ranks)."""
    answer: Answer | None = None
    """The answer the reader rated best (shown unless `abstained`)."""

    def as_record(self, squad: SquadSet | None = None) -> dict[str, Any]:
        """One line of `qa eval --answers`: the question, its gold answers, what qa showed
        (span, sentence, citation, confidence) and how that was scored."""
        q = self.question
        record: dict[str, Any] = {"question": q.question}
        if isinstance(q, SquadQuestion):
            record["id"] = q.id
            record["article"] = squad.titles[q.article] if squad is not None else q.article
            record["gold"] = [text for text, _ in q.answers]
        else:
            record["article"] = q.article
            record["gold"] = list(q.answers)
        top = self.answer
        citation = top.citations[0] if top is not None and top.citations else None
        record.update(
            {
                "span": top.span if top else None,
                "sentence": top.text if top else None,
                "cited": citation.path if citation else None,
                "char_start": citation.char_start if citation else None,
                "char_end": citation.char_end if citation else None,
                "confidence": round(self.confidence, 4),
                "abstained": self.abstained,
                "correct": self.correct,
                "correct_without_abstention": self.correct_without_abstention,
                "span_em": self.span_em,
                "span_f1": round(self.span_f1, 4),
                "first_hit": self.first_hit,
                "retrieval_hit": self.retrieval_hit,
            }
        )
        return record


def evaluate(
    engine: Engine,
    squad: SquadSet,
    questions: list[SquadQuestion],
    progress: Callable[[int, int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Metrics:
    """Ask every question; return the metrics (and, when both halves were asked, the
    held-out half's own, under "heldout": the figures to quote for anything fitted).
    `on_outcome` sees each question's outcome as soon as it is scored."""
    if questions and not set(doc_ids_by_article(engine)) & {q.article for q in questions}:
        raise InputError(
            f"{engine.index.index_dir} holds none of this SQuAD file's articles; pass --index "
            "with an index built from the file (or no --index for a temporary one)"
        )
    outcomes = []
    for outcome in run_questions(engine, squad, questions, progress):
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
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
    engine: Engine,
    questions: list[NewsQuestion],
    progress: Callable[[int, int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Metrics:
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
        if on_outcome is not None:
            on_outcome(outcomes[-1])
        if progress is not None:
            progress(number, len(questions))
    version = "v2.0" if any(q.impossible for q in questions) else ""
    metrics = summarize(outcomes, version)
    halves = {news_half(q) for q in questions}
    if {"fit", "heldout"} <= halves:
        heldout = [o for o in outcomes if news_half(o.question) == "heldout"]
        metrics["heldout"] = summarize(heldout, version)
    return metrics


def news_half(question: SquadQuestion | NewsQuestion) -> str | None:
    """The half of a JSONL question, by its article (as SQuAD's by title); None without
    one."""
    article = getattr(question, "article", None)
    return article_half(article) if isinstance(article, str) else None


def select_news(
    questions: list[NewsQuestion], half: str = "all", sample: int | None = None, seed: int = 0
) -> list[NewsQuestion]:
    """`select_questions` for JSONL questions: their article's half (a question without an
    article is in no half), then a seeded sample."""
    import random

    if half != "all":
        whole, _, part = half.partition(":")
        questions = [
            q
            for q in questions
            if q.article is not None
            and article_half(q.article) == whole
            and (not part or fit_part(q.article) == part)
        ]
    if sample is not None and sample < len(questions):
        questions = random.Random(seed).sample(questions, sample)
    return questions


def doc_ids_by_article(engine: Engine) -> dict[int, int]:
    """SQuAD article index -> document id in the index."""
    return {
        int(record[1:]): doc_id
        for record, doc_id in engine.index.doc_ids_by_record().items()
        if record.startswith("a") and record[1:].isdigit()
    }


def ask_one(
    engine: Engine,
    question: SquadQuestion | NewsQuestion,
    golds: Sequence[str],
    is_hit: Callable[[Any], bool],
) -> Outcome:
    """Ask one question without abstention (so that both ways can be scored), timing the
    retrieval and the reading apart."""
    started = time.perf_counter()
    passages = engine.search(question.question)
    searched = time.perf_counter()
    result = engine.read(question.question, passages, n=1, abstain=False)
    read = time.perf_counter()
    # each hit's place as qa ranks the passages (the reader re-ranks those it reads) and its
    # retrieval rank
    hits = [(place, p.rank) for place, p in enumerate(result.passages, 1) if is_hit(p)]
    first_hit = hits[0][0] if hits else None
    retrieval_hit = min((rank for _, rank in hits), default=None)
    top = result.answers[0] if result.answers else None
    would_abstain = top is None or result.confidence < engine.extractor.abstain_below
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
        retrieval_hit=retrieval_hit,
        answer=top,
    )


def run_questions(
    engine: Engine,
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


class Band(TypedDict):
    """The answers shown in one confidence band."""

    band: str
    answers: int
    share: float | None
    accuracy: float | None


class TrustMetrics(TypedDict):
    """`trust_metrics`: how far the confidence can be trusted."""

    auroc: float | None
    auroc_all: float | None
    bands: list[Band]
    high_coverage: float
    selective_coverage: float
    span_kind_fit: float | None


class CalibrationBin(TypedDict):
    bin: str
    questions: int
    mean_confidence: float | None
    accuracy: float | None


Metrics = TypedDict(
    "Metrics",
    {
        "questions": int,
        "answerable": int,
        "recall@1": float,
        "recall@5": float,
        "recall@20": float,
        "retrieval_recall@5": float,
        "mrr": float,
        "answer_accuracy": float,
        "span_em": float,
        "span_f1": float,
        "answered_accuracy": float,
        "abstained_answerable": float,
        "unanswerable": int,
        "no_answer_accuracy": float,
        "shown_confidence>=0.8": int,
        "accuracy_confidence>=0.8": float,
        "latency_ms_p50": float,
        "latency_ms_p95": float,
        "latency_ms_mean": float,
        "retrieval_ms_p50": float,
        "retrieval_ms_p95": float,
        "reading_ms_p50": float,
        "reading_ms_p95": float,
        "calibration": list[CalibrationBin],
        "trust": TrustMetrics,
        "heldout": "Metrics",
    },
    total=False,
)
"""What `qa eval` measures of a set of questions (`summarize`); `unanswerable` and
`no_answer_accuracy` only where there are unanswerable questions, `heldout` the held-out
half's own when both halves were asked."""


class EvalReport(Metrics, total=False):
    """`evaluate_file`'s answer: the metrics with what was asked and how."""

    file: str
    half: str
    backend: str
    read_passages: int


CONFIDENCE_BANDS = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.0))
"""The bands `qa.answers.confidence_words` names (low, medium, high)."""
SELECTIVE_ACCURACY = 0.9
"""`selective_coverage`: the accuracy the answers shown must keep."""


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of `scores` for telling `labels` True from False: the
    chance that a right answer has a higher confidence than a wrong one (ties count half);
    None when either kind is missing."""
    positives = [s for s, label in zip(scores, labels) if label]
    negatives = [s for s, label in zip(scores, labels) if not label]
    if not positives or not negatives:
        return None
    ordered = sorted(negatives)
    wins = 0.0
    for score in positives:
        below = bisect.bisect_left(ordered, score)
        ties = bisect.bisect_right(ordered, score) - below
        wins += below + ties / 2
    return wins / (len(positives) * len(negatives))


def trust_metrics(outcomes: list[Outcome]) -> TrustMetrics:
    """How far the confidence can be trusted, as a reader meets it: an unanswerable
    question answered is a wrong answer, an abstention is no answer.

    - `auroc`: right against wrong among the answers shown (abstention on); `auroc_all`:
      among every question's best answer (abstention off), the ranking abstention uses;
    - `bands`: the answers shown by confidence band, each with its share and accuracy;
    - `high_coverage`: the share of answerable questions answered at "high" (>= 0.8);
    - `selective_coverage`: the share of answerable questions answered at the lowest
      confidence above which at least 90 % of the answers shown are right (0 when none);
    - `span_kind_fit`: among shown answers to questions that ask for a name, a number, a
      time or a place (`qa.answer_types.question_kind`), the share whose span is of that
      kind (`span_fits`: a whole number, an age only for an age, ...)."""
    shown = [o for o in outcomes if not o.abstained]
    answerable = sum(1 for o in outcomes if not o.question.impossible) or 1
    shown_auroc = auroc([o.confidence for o in shown], [o.correct for o in shown])
    all_auroc = auroc(
        [o.confidence for o in outcomes], [o.correct_without_abstention for o in outcomes]
    )
    return {
        "auroc": None if shown_auroc is None else round(shown_auroc, 4),
        "auroc_all": None if all_auroc is None else round(all_auroc, 4),
        "bands": _confidence_bands(shown),
        "high_coverage": round(
            sum(1 for o in shown if o.confidence >= 0.8 and not o.question.impossible) / answerable,
            4,
        ),
        "selective_coverage": round(_selective_covered(shown) / answerable, 4),
        "span_kind_fit": _span_kind_fit(shown),
    }


def _confidence_bands(shown: list[Outcome]) -> list[Band]:
    """The answers shown in each of `CONFIDENCE_BANDS`: how many, their share, accuracy."""
    bands: list[Band] = []
    for low, high in CONFIDENCE_BANDS:
        inside = [
            o for o in shown if low <= o.confidence < high or (high == 1.0 and o.confidence == 1.0)
        ]
        bands.append(
            {
                "band": f"{low:.1f}-{high:.1f}",
                "answers": len(inside),
                "share": round(len(inside) / len(shown), 4) if shown else None,
                "accuracy": (
                    round(sum(o.correct for o in inside) / len(inside), 4) if inside else None
                ),
            }
        )
    return bands


def _selective_covered(shown: list[Outcome]) -> int:
    """How many answerable questions are answered at the lowest confidence above which at
    least `SELECTIVE_ACCURACY` of the answers shown are right."""
    # walk down from the most confident answer; the last place where the answers so far are
    # right often enough sets the threshold
    ranked = sorted(shown, key=lambda o: -o.confidence)
    right = covered = best = 0
    for number, outcome in enumerate(ranked, 1):
        right += outcome.correct
        covered += not outcome.question.impossible
        nxt = ranked[number].confidence if number < len(ranked) else None
        if nxt != outcome.confidence and right / number >= SELECTIVE_ACCURACY:
            best = covered
    return best


def _span_kind_fit(shown: list[Outcome]) -> float | None:
    """Among shown answers to questions that ask for a kind of thing, the share whose span
    is of that kind (None when no question asks for one)."""
    from qa.answer_types import question_kind, span_fits

    kinds = [
        (kind, o)
        for o in shown
        if (kind := question_kind(o.question.question)) is not None and o.answer is not None
    ]
    fits = 0
    for kind, o in kinds:
        answer = o.answer
        assert answer is not None
        at = answer.span_start if answer.span is not None and answer.span_start is not None else 0
        span = answer.span if answer.span is not None else answer.text
        fits += span_fits(
            kind, span, at == 0, answer.text[:at], answer.text[at + len(span) :],
            o.question.question,
        )  # fmt: skip
    return round(fits / len(kinds), 4) if kinds else None


def calibration_table(outcomes: list[Outcome]) -> list[CalibrationBin]:
    """Confidence bins of the top answer (abstention off) against how often it is right;
    unanswerable questions are never right."""
    table: list[CalibrationBin] = []
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


def summarize(outcomes: list[Outcome], version: str | SquadSet = "") -> Metrics:
    if isinstance(version, SquadSet):
        version = version.version
    answerable = [o for o in outcomes if not o.question.impossible]
    impossible = [o for o in outcomes if o.question.impossible]
    n = len(answerable) or 1

    def recall(k: int, retrieval: bool = False) -> float:
        ranks = (o.retrieval_hit if retrieval else o.first_hit for o in answerable)
        return sum(1 for rank in ranks if rank is not None and rank <= k) / n

    latencies = [o.seconds * 1000 for o in outcomes]
    retrieval = [o.retrieval_seconds * 1000 for o in outcomes]
    reading = [o.reading_seconds * 1000 for o in outcomes]
    confident = [o for o in outcomes if not o.abstained and o.confidence >= 0.8]
    metrics: Metrics = {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "recall@1": _r4(recall(1)),
        "recall@5": _r4(recall(5)),
        "recall@20": _r4(recall(20)),
        "retrieval_recall@5": _r4(recall(5, retrieval=True)),
        "mrr": _r4(sum(1 / o.first_hit for o in answerable if o.first_hit) / n),
        "answer_accuracy": _r4(sum(o.correct_without_abstention for o in answerable) / n),
        "span_em": _r4(sum(o.span_em for o in answerable) / n),
        "span_f1": _r4(sum(o.span_f1 for o in answerable) / n),
        # with abstention on, as users see it: an abstention on an answerable question is wrong
        "answered_accuracy": _r4(sum(o.correct for o in answerable) / n),
        "abstained_answerable": _r4(sum(o.abstained for o in answerable) / n),
    }
    if impossible or version.startswith("v2"):
        metrics["unanswerable"] = len(impossible)
        metrics["no_answer_accuracy"] = _r4(
            sum(o.abstained for o in impossible) / len(impossible) if impossible else 0.0
        )
    metrics["shown_confidence>=0.8"] = len(confident)
    metrics["accuracy_confidence>=0.8"] = _r4(
        sum(o.correct_without_abstention for o in confident) / len(confident) if confident else 0.0
    )
    metrics["latency_ms_p50"] = round(percentile(latencies, 0.5), 2)
    metrics["latency_ms_p95"] = round(percentile(latencies, 0.95), 2)
    metrics["latency_ms_mean"] = round(statistics.fmean(latencies), 2) if latencies else 0.0
    metrics["retrieval_ms_p50"] = round(percentile(retrieval, 0.5), 2)
    metrics["retrieval_ms_p95"] = round(percentile(retrieval, 0.95), 2)
    metrics["reading_ms_p50"] = round(percentile(reading, 0.5), 2)
    metrics["reading_ms_p95"] = round(percentile(reading, 0.95), 2)
    metrics["calibration"] = calibration_table(outcomes)
    metrics["trust"] = trust_metrics(outcomes)
    return metrics


def _r4(value: float) -> float:
    return round(value, 4)


def evaluate_file(
    file: Path | Sequence[Path],
    index_dir: Path | None,
    *,
    backend: str | None = None,
    half: str = "all",
    sample: int | None = None,
    seed: int = 0,
    progress: Callable[[Any], None] | None = None,
    answers_file: Path | None = None,
) -> EvalReport:
    """`qa eval`: ask the questions of a SQuAD file (its articles indexed into `index_dir`,
    or a temporary index when None) or of a JSONL file (over the existing `index_dir`) and
    return the metrics. `progress` receives `qa.index.Progress` reports. With
    `answers_file`, each question's `Outcome.as_record` is written there, a JSON line each
    (into `<name>.part` while asking, renamed when all are asked)."""
    import contextlib
    import os
    import shutil
    import tempfile

    from qa.batch import Writer
    from qa.encoders import encoder_factory
    from qa.engine import Engine
    from qa.index import Progress, index_exists

    files = [file] if isinstance(file, Path) else list(file)
    news_questions, squad, questions = _eval_questions(files, index_dir, half, sample, seed)

    def asked(done: int, total: int) -> None:
        if progress is not None:
            progress(Progress("questions", done, total))

    partial = answers_file.with_name(answers_file.name + ".part") if answers_file else None
    workdir = Path(tempfile.mkdtemp(prefix="qa-eval-"))
    try:
        target = index_dir or workdir / "index"
        if squad is not None and not index_exists(target):
            index_squad(squad, target, encoder_factory(None, backend), progress=progress)
        engine = Engine.open(target)
        try:
            engine.warm_up()
            with contextlib.ExitStack() as stack:
                on_outcome = None
                if partial is not None:
                    try:
                        out = stack.enter_context(partial.open("w", encoding="utf-8"))
                    except OSError as exc:
                        raise InputError(f"{answers_file}: cannot be written ({exc})") from exc
                    writer = Writer(out, "jsonl", header=False)

                    def on_outcome(outcome: Outcome) -> None:
                        writer.write(outcome.as_record(squad))

                if news_questions is not None:
                    metrics = evaluate_news(engine, news_questions, asked, on_outcome)
                else:
                    assert squad is not None
                    metrics = evaluate(engine, squad, questions, asked, on_outcome)
            if partial is not None and answers_file is not None:
                os.replace(partial, answers_file)
            report: EvalReport = {
                "file": ", ".join(str(f) for f in files),
                "half": half,
                "backend": engine.index.settings.backend,
                "read_passages": engine.extractor.read_passages,
            }
        finally:
            engine.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.update(metrics)
    return report


def _eval_questions(
    files: list[Path], index_dir: Path | None, half: str, sample: int | None, seed: int
) -> tuple[list[NewsQuestion] | None, SquadSet | None, list[SquadQuestion]]:
    """The questions `qa eval` asks: of JSONL news files (over an existing index; the
    first item) or of one SQuAD file (the second and third)."""
    from qa.index import index_exists

    if not files:
        raise InputError("qa eval needs a question file")
    if not all(f.suffix.lower() == ".jsonl" for f in files):
        if len(files) > 1:
            raise InputError(
                f"{next(f for f in files if f.suffix.lower() != '.jsonl')}: only JSONL question "
                "files can be asked together; pass a SQuAD file alone"
            )
        squad = load_squad(files[0])
        return None, squad, select_questions(squad, half, sample, seed)
    if index_dir is None or not index_exists(index_dir):
        raise InputError(f"{files[0]}: a JSONL question file needs --index DIR with an index")
    news_questions = select_news(
        [q for f in files for q in load_news_questions(f)], half, sample, seed
    )
    if not news_questions:
        raise InputError(f"{files[0]}: no question of {half!r} to ask")
    return news_questions, None, []


def evaluate_headlines(
    engine: Engine,
    count: int = 100,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The first click's measure: for `count` articles drawn at random from the index, ask
    'What is the story behind "<headline>"?' and check that the answer cites that article
    (or a syndicated copy of it) and quotes its lead (`qa.story.lead_span`). Articles
    without a headline are not drawn. Returns the shares and the misses."""
    import random

    from qa.story import lead_span

    by_ref = engine.index.doc_ids_by_ref()
    documents = engine.index.documents(set(by_ref.values()))
    titled = sorted(
        (ref, doc_id, title)
        for ref, doc_id in by_ref.items()
        for title in [next((a.title for a in documents[doc_id].articles if a.ref == ref), "")]
        if title.strip()
    )
    drawn = random.Random(seed).sample(titled, min(count, len(titled)))
    cites = quotes = 0
    misses = []
    for number, (ref, doc_id, title) in enumerate(drawn, 1):
        result = engine.ask(f"What is the story behind “{title}”?")
        document = documents[doc_id]
        lead = lead_span(document.body, document.paragraphs)
        answer = result.answers[0] if result.answers else None
        shown = {a.ref for a in document.articles}
        cited = answer is not None and answer.cites(shown)
        quoted = answer is not None and any(
            c.path in shown and (c.char_start, c.char_end) == lead for c in answer.citations
        )
        cites += cited
        quotes += quoted
        if not quoted:
            cited_paths = [c.path for c in answer.citations] if answer is not None else []
            misses.append({"article": ref, "title": title, "cited": cited_paths})
        if progress is not None:
            progress(number, len(drawn))
    n = len(drawn) or 1
    return {
        "headlines": len(drawn),
        "cites_the_article": round(cites / n, 4),
        "quotes_its_lead": round(quotes / n, 4),
        "misses": misses,
    }
