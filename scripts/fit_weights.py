"""Fit the ranking weights and the reader's calibration on questions nothing is measured on.

    python scripts/fit_weights.py [--passages] [--index-v1 DIR] [--index-v2 DIR]
        [--news FILE=INDEX ...] [--out qa/weights.json] [--rows FILE] [--compare]

1. Passage ranking (only with --passages; otherwise the passage weights of --out are kept):
   for every question about a fit-half article of SQuAD v1.1 dev, the re-ranking candidates
   (with their features) are labelled hit / miss (the chunk covers the gold answer); a linear
   score is fitted with a listwise softmax loss.
2. The reader (`qa.extractor`): every question of SQuAD v2.0 dev's `fit:weights` part (the part
   of the fit half a reader trained with `train_reader.py --stage trust` never saw; --v2-part)
   and of the fit half of each news question set (--news; answerable questions and near
   misses, weighing --news-weight of the fit) is asked; the reader reads the top passages
   and proposes its best few spans in each (its best span alone when the verifier's logit,
   `verify`, is weighed: the verifier reads every proposal here, and the best --verify-top
   of them at question time). Each proposal's `candidate_features` are labelled
   by whether its sentence holds a gold answer (never, for an unanswerable question), and a
   weighted logistic model over them is fitted: it ranks the proposals, and its logit,
   Platt-scaled on each question's best proposal, is the confidence. The number of passages
   read (`read_passages`) is --read-passages (default 8), the spans weighed in each passage
   (`spans`) the fewest within 0.3 points of the best (--spans).
3. Abstention: the threshold on that confidence that turns away the most unanswerable
   questions while the answerable ones lose at most --max-loss of accuracy (weighted alike).

Articles are split by `qa.evaluate.article_half` (a hash of the title, the same in v1.1 and
v2.0); nothing of the held-out half is looked at. Report quality with
`qa eval FILE --half heldout`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from qa.answer_types import TYPE_FEATURES  # noqa: E402
from qa.datasets import (  # noqa: E402
    GoldMapper,
    index_squad,
    load_news_questions,
    load_squad,
    select_questions,
)
from qa.encoders import encoder_factory  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import doc_ids_by_article, select_news  # noqa: E402
from qa.extractor import LEXICAL_FEATURES  # noqa: E402
from qa.index import index_exists  # noqa: E402
from qa.text import contains_answer, normalize_answer  # noqa: E402
from qa.weights import (  # noqa: E402
    PASSAGE_FEATURES,
    READER_FEATURES,
    UNFITTED_PASSAGE,
    UNFITTED_READER,
    SearchSettings,
)

DATA = ROOT.parent / "shared" / "data" / "squad"


def ensure_index(squad_file: Path, index: Path) -> None:
    if index_exists(index):
        return
    print(f"building {index} from {squad_file.name} ...", file=sys.stderr)
    index_squad(load_squad(squad_file), index, encoder_factory(None))


def fit_listwise(
    groups: list[tuple[np.ndarray, np.ndarray]], l2: float = 1e-3, steps: int = 800
) -> np.ndarray:
    """Weights w maximising the softmax likelihood of the positives within each group."""
    groups = [(x, y) for x, y in groups if y.sum() > 0 and len(y) > 1]
    features = np.vstack([x for x, _ in groups])
    target = np.concatenate([y / y.sum() for _, y in groups])
    starts = np.cumsum([0] + [len(y) for _, y in groups[:-1]])
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0
    xs = features / scale
    w = np.zeros(xs.shape[1])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    lr, b1, b2 = 0.05, 0.9, 0.999
    for step in range(1, steps + 1):
        z = xs @ w
        z_max = np.maximum.reduceat(z, starts)
        e = np.exp(z - np.repeat(z_max, np.diff(np.append(starts, len(z)))))
        sums = np.add.reduceat(e, starts)
        p = e / np.repeat(sums, np.diff(np.append(starts, len(z))))
        grad = xs.T @ (p - target) / len(groups) + l2 * w
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        w -= lr * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + 1e-8)
    return w / scale


def fit_platt(
    scores: np.ndarray, labels: np.ndarray, steps: int = 2000, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """a, b such that sigmoid(a * score + b) is the probability of being right (each
    question counted `weights` times, default once)."""
    w = np.ones_like(scores) if weights is None else weights / weights.mean()
    a, b = 1.0, 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a * scores + b)))
        a -= 0.5 * float(np.mean(w * (p - labels) * scores))
        b -= 0.5 * float(np.mean(w * (p - labels)))
    return a, b


def passage_groups(engine: Engine, squad, questions) -> list[tuple[np.ndarray, np.ndarray]]:
    gold = GoldMapper(squad)
    docs = doc_ids_by_article(engine)
    names = list(PASSAGE_FEATURES)
    groups = []
    for q in questions:
        passages = engine.retriever.search(q.question, k=engine.retriever.rerank_k)
        spans = gold.spans(q)
        doc_id = docs[q.article]
        x = np.array([[p.features[n] for n in names] for p in passages])
        y = np.array(
            [
                float(
                    p.doc_id == doc_id
                    and any(p.char_start <= s and e <= p.char_end for s, e in spans)
                )
                for p in passages
            ]
        )
        if len(y):
            groups.append((x, y))
    return groups


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 1e-3,
    steps: int = 3000,
    sample: np.ndarray | None = None,
):
    """Logistic regression of y on x (each row counted `sample` times, default once)."""
    sample = np.ones(len(y)) if sample is None else sample / sample.mean()
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    mean = x.mean(axis=0)
    xs = (x - mean) / scale
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xs @ w + b)))
        w -= 0.5 * (xs.T @ (sample * (p - y)) / len(y) + l2 * w)
        b -= 0.5 * float(np.mean(sample * (p - y)))
    weights = w / scale
    return weights, b - float(mean @ weights)


def best_threshold(
    score: np.ndarray,
    right: np.ndarray,
    impossible: np.ndarray,
    max_loss: float,
    thresholds: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> tuple[float | None, float, float]:
    """The threshold on `score` (abstain below it) that turns away the most unanswerable
    questions while the answerable ones lose at most `max_loss` of accuracy (an abstention
    counts as wrong): (threshold, no-answer accuracy, answered accuracy); the threshold is
    None when none turns any away within that cost. `thresholds`: those to try (default:
    every score); `weights`: how much each question counts (default once)."""
    w = np.ones(len(score)) if weights is None else weights
    answerable = ~impossible

    def mean(values: np.ndarray, inside: np.ndarray) -> float:
        return float((values * w)[inside].sum() / w[inside].sum())

    base = mean(right, answerable)
    best: tuple[float | None, float, float] = (None, 0.0, base)
    for t in np.unique(score) if thresholds is None else thresholds:
        keep = score >= t
        answered = mean(right & keep, answerable)
        no_answer = mean(~keep, impossible)
        if base - answered <= max_loss and no_answer > best[1]:
            best = (float(t), no_answer, answered)
    return best


K_CHOICES = (1, 2, 3, 4, 5, 6, 8)
SPAN_CHOICES = (1, 2, 3, 5)
LEXICAL = LEXICAL_FEATURES
NBEST = ("alt_gap", *TYPE_FEATURES)
VERIFIER = ("verify",)


def reader_rows(engine: Engine, questions, source: str) -> list[dict]:
    """For each question (a SQuAD or a JSONL question): its proposals' features, labels and
    passage ranks; `source` names the set it comes from."""
    from tqdm import tqdm

    rows = []
    for q in tqdm(questions, desc=f"reading {source}", mininterval=20, file=sys.stderr):
        passages = engine.search(q.question)
        candidates = engine.extractor.candidates(q.question, passages)
        golds = [a if isinstance(a, str) else a[0] for a in q.answers]
        rows.append(
            {
                "article": q.article,
                "source": source,
                "impossible": q.impossible,
                "x": np.array(
                    [[c.features.get(n, 0.0) for n in READER_FEATURES] for c in candidates]
                ).reshape(-1, len(READER_FEATURES)),
                "y": np.array(
                    [float(any(contains_answer(c.text, g) for g in golds)) for c in candidates]
                ),
                "rank": np.array([c.passage.rank for c in candidates]),
                "alt": np.array([c.alt_rank for c in candidates]),
                "text": [normalize_answer(c.text) for c in candidates],
                "span": [
                    normalize_answer(c.text[c.span_start - c.start : c.span_end - c.start])
                    for c in candidates
                ],
                "doc": np.array([c.doc_id for c in candidates]),
                "question": q.question,
            }
        )
    return rows


def news_pair(text: str) -> tuple[Path, Path]:
    questions, sep, index = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FILE=INDEX")
    return Path(questions), Path(index)


def open_engine(index: Path, passage_weights: dict, verify: bool) -> Engine:
    """An engine over `index` that reads every passage and span the fit may weigh (each
    passage's best span alone when the verifier's logit is weighed: it runs on every
    proposal)."""
    return Engine.open(
        index,
        passage_weights=passage_weights,
        extractor_options={
            "fitted": UNFITTED_READER,
            "read_passages": max(K_CHOICES),
            "spans": 1 if verify else max(SPAN_CHOICES),
            "verify": verify,
            "all_features": True,
        },
    )


def all_rows(args, passage_weights) -> tuple[list[dict], int, dict[str, int]]:
    """The proposals of every question the reader's weights are fitted on: SQuAD 2.0 dev's
    `--v2-part` and the fit half of each `--news` file; cached in --rows. Also the number of
    SQuAD questions and the count of each news file's questions."""
    if args.rows and args.rows.exists():
        with args.rows.open("rb") as handle:
            cached = pickle.load(handle)  # a file this script wrote (--rows)
        return cached["rows"], cached["squad"], cached["news"]
    ensure_index(args.v2, args.index_v2)
    v2 = load_squad(args.v2)
    fit_v2 = select_questions(v2, args.v2_part)
    print(f"reader: {len(fit_v2)} v2.0 questions ({args.v2_part}) ...", file=sys.stderr)
    engine = open_engine(args.index_v2, passage_weights, "verify" in args.features)
    rows = reader_rows(engine, fit_v2, "squad")
    engine.close()
    news_counts = {}
    for questions_file, index in args.news:
        questions = select_news(load_news_questions(questions_file), "fit")
        engine = open_engine(index, passage_weights, "verify" in args.features)
        rows += reader_rows(engine, questions, f"news:{questions_file.name}")
        engine.close()
        news_counts[questions_file.name] = len(questions)
    if args.rows:
        with args.rows.open("wb") as handle:
            pickle.dump({"rows": rows, "squad": len(fit_v2), "news": news_counts}, handle)
    return rows, len(fit_v2), news_counts


def fit_reader(args, passage_weights) -> dict:
    """The reader's candidate weights, Platt scaling, passages read and threshold."""
    rows, squad_count, news_counts = all_rows(args, passage_weights)
    # the news questions, few but like readers' questions, weigh --news-weight of the whole
    is_news = np.array([r["source"] != "squad" for r in rows])
    share = args.news_weight if is_news.any() else 0.0
    question_weight = np.where(
        is_news, share / max(1, is_news.sum()), (1 - share) / max(1, (~is_news).sum())
    )
    question_weight = question_weight / question_weight.mean()
    impossible = np.array([r["impossible"] for r in rows])
    margin_at = READER_FEATURES.index("margin")
    lead_at = READER_FEATURES.index("lead")

    def read_top(k: int, n: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each question's proposals as if only the top k passages had been read, n spans
        of each (the lead over the best margin recomputed among those)."""
        groups = []
        for r in rows:
            inside = (r["rank"] <= k) & (r.get("alt", np.ones_like(r["rank"])) <= n)
            x = r["x"][inside].copy()
            if len(x):
                x[:, lead_at] = x[:, margin_at] - x[:, margin_at].max()
            groups.append((x, r["y"][inside]))
        return groups

    width = rows[0]["x"].shape[1] if rows else len(READER_FEATURES)
    names = [n for n in READER_FEATURES[:width] if n in args.features]
    columns = [READER_FEATURES.index(n) for n in names]

    def fit(
        k: int, chosen: list[int] | None = None, train: np.ndarray | None = None, n: int = 1
    ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        """Candidate weights for k passages read, n spans each, over the `chosen` feature
        columns (fitted on the `train` questions, default all, each weighed by its
        question's weight); each question's best logit and label."""
        chosen = columns if chosen is None else chosen
        groups = [(x[:, chosen], y) for x, y in read_top(k, n)]
        inside = np.ones(len(groups), dtype=bool) if train is None else train
        fitted = [(g, question_weight[i]) for i, g in enumerate(groups) if inside[i]]
        w, b = fit_logistic(
            np.vstack([x for (x, _), _ in fitted]),
            np.concatenate([y for (_, y), _ in fitted]),
            sample=np.concatenate([np.full(len(y), q) for (_, y), q in fitted]),
        )
        weights = {"bias": round(b, 5)}
        weights.update({READER_FEATURES[c]: round(float(v), 5) for c, v in zip(chosen, w)})
        logits, right = best_proposals(groups, w, b)
        return weights, logits, right

    def calibrated(
        logits: np.ndarray, right: np.ndarray, train: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """Confidence for every question from a Platt scaling and a threshold fitted on the
        `train` questions."""
        a, b_platt = fit_platt(
            logits[train], right[train].astype(float), weights=question_weight[train]
        )
        confidence = 1 / (1 + np.exp(-(a * logits + b_platt)))
        tau, _, _ = best_threshold(
            confidence[train], right[train], impossible[train], args.max_loss,
            np.unique(np.round(confidence[train], 4)), question_weight[train],
        )  # fmt: skip
        return confidence, tau or 0.0

    def report(label: str, confidence: np.ndarray, right: np.ndarray, keep: np.ndarray) -> None:
        """Each source's figures, the questions `keep` marks answered (the rest abstain)."""
        from qa.evaluate import auroc

        parts = []
        for name, members in (("squad", ~is_news), ("news", is_news)):
            if not members.any():
                continue
            answerable, unanswerable = members & ~impossible, members & impossible
            shown = members & keep
            score = auroc(confidence[shown], right[shown] & ~impossible[shown]) or 0.0
            high = shown & (confidence >= 0.8)
            parts.append(
                f"{name}: accuracy {right[answerable].mean():.4f}, answered "
                f"{(right & keep)[answerable].mean():.4f}, no-answer "
                f"{(~keep)[unanswerable].mean() if unanswerable.any() else 0:.4f}, "
                f"AUROC {score:.4f}, >=0.8 right {right[high].mean() if high.any() else 0:.3f}"
                f" covering {high[answerable].mean():.3f}"
            )
        print(f"{label}: " + "; ".join(parts), file=sys.stderr)

    if args.compare:
        # Two folds by article inside the fit data: does a feature set help on articles its
        # weights were not fitted on? (The held-out half stays untouched.)
        import zlib

        fold = np.array([zlib.crc32(str(r["article"]).encode()) % 2 for r in rows])
        plain = [
            n
            for n in READER_FEATURES[:width]
            if n not in LEXICAL and n not in NBEST and n not in VERIFIER
        ]
        variants = [("reader+retrieval", plain, 1)]
        verified = "verify" in READER_FEATURES[:width] and any(
            r["x"][:, READER_FEATURES.index("verify")].any() for r in rows if len(r["x"])
        )
        if verified:  # rows read with the verifier (one span a passage)
            variants.append(("+ verifier", [*plain, *VERIFIER], 1))
            variants.append(("+ answer types + verifier", [*plain, *TYPE_FEATURES, *VERIFIER], 1))
        variants.append(("+ answer types", [*plain, *TYPE_FEATURES], 1))
        variants.append(("+ lexical", [*plain, *LEXICAL], 1))
        variants.append(("+ answer types + lexical", [*plain, *TYPE_FEATURES, *LEXICAL], 1))
        variants += [
            (f"+ alt_gap and answer types, {n} spans a passage", [*plain, *NBEST], n)
            for n in SPAN_CHOICES[1:]
            if not verified
        ]
        for label, chosen_names, n in variants:
            chosen = [READER_FEATURES.index(name) for name in chosen_names]
            confidence = np.zeros(len(rows))
            right = np.zeros(len(rows), dtype=bool)
            taus = np.zeros(len(rows))
            for held in (0, 1):
                train = fold != held
                _, logits, right_k = fit(args.read_passages or 8, chosen, train, n)
                conf_k, tau = calibrated(logits, right_k, train)
                confidence[~train] = conf_k[~train]
                right[~train] = right_k[~train]
                taus[~train] = tau
            report(f"2-fold, {label}", confidence, right, confidence >= taus)

    has_alternatives = any("alt" in r for r in rows)
    answerable_weight = question_weight * ~impossible

    def accuracy(right: np.ndarray) -> float:
        return float((right * answerable_weight).sum() / answerable_weight.sum())

    fits = {}
    for k in K_CHOICES:
        fits[k] = fit(k)
        print(f"read {k} passages: fit answer accuracy {accuracy(fits[k][2]):.4f}", file=sys.stderr)
    accuracy_of = {k: accuracy(fits[k][2]) for k in K_CHOICES}
    best_k = args.read_passages or min(
        k for k in K_CHOICES if accuracy_of[k] >= max(accuracy_of.values()) - 0.003
    )
    # runner-up spans only mean something with the features that tell them apart
    can_weigh_alternatives = has_alternatives and "alt_gap" in names
    if args.spans > 1 and not can_weigh_alternatives:
        sys.exit(
            f"fit_weights: --spans {args.spans} needs the alt_gap feature (--features) and rows "
            "read with runner-up spans (delete an older --rows file)"
        )
    span_fits = {1: fits[best_k]}
    for n in SPAN_CHOICES[1:] if can_weigh_alternatives else ():
        span_fits[n] = fit(best_k, n=n)
    span_accuracy = {n: accuracy(f[2]) for n, f in span_fits.items()}
    for n, value in span_accuracy.items():
        print(f"{n} spans a passage: fit answer accuracy {value:.4f}", file=sys.stderr)
    spans = args.spans or min(
        n for n in span_fits if span_accuracy[n] >= max(span_accuracy.values()) - 0.003
    )
    weights, logits, right = span_fits[spans]
    print(f"candidate weights ({best_k} passages, {spans} spans): {weights}", file=sys.stderr)
    a, b_platt = fit_platt(logits, right.astype(float), weights=question_weight)
    confidence, tau = calibrated(logits, right, np.ones(len(rows), dtype=bool))
    report(f"read_passages {best_k}; abstain below {tau:.4f}", confidence, right, confidence >= tau)
    first_read, read_passages, read_on_below = fit_stages(
        read_top, weights, (a, b_platt), best_k, spans, tau, is_news,
        question_weight * ~impossible, args.max_stage_loss,
    )  # fmt: skip
    return {
        "features": names,
        "weights": weights,
        "platt": [round(a, 5), round(b_platt, 5)],
        "read_passages": read_passages,
        "first_read": first_read,
        "read_on_below": read_on_below,
        "spans": spans,
        "verify_top": args.verify_top if "verify" in names else 0,
        "abstain": round(tau, 4),
        "questions": squad_count,
        "news": news_counts,
    }


def best_proposals(
    groups: list[tuple[np.ndarray, np.ndarray]], w: np.ndarray, b: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each question's best proposal under the linear weights (`w`, `b`) of its feature rows
    (`groups`: rows and labels a question): its logit (-30 for a question with none) and
    whether it is right."""
    logits = np.full(len(groups), -30.0)
    right = np.zeros(len(groups), dtype=bool)
    for number, (x, y) in enumerate(groups):
        if len(x):
            scores = x @ w + b
            best = int(np.argmax(scores))
            logits[number] = scores[best]
            right[number] = bool(y[best])
    return logits, right


def fit_stages(
    read_top, weights, platt, read_passages, spans, tau, is_news, answerable_weight, max_loss,
) -> tuple[int, int, float]:  # fmt: skip
    """How many passages to read: the first k, and up to m (<= `read_passages`) only when
    the best proposal among the first k is below a confidence. Every (k, m) and the lowest
    confidence whose answers (shown at `tau`) lose at most `max_loss` of the answerable
    questions' weighed accuracy against reading all `read_passages`, on the SQuAD and on the
    news questions each; of those, the fewest passages any question reads (m: the slowest
    questions), then the fewest on average. Returns (k, m, confidence); k is 0 when reading
    m at once is best."""
    names = [n for n in weights if n != "bias"]
    columns = [READER_FEATURES.index(n) for n in names]
    vector = np.array([weights[n] for n in names])
    parts = [(name, part) for name, part in (("squad", ~is_news), ("news", is_news)) if part.any()]
    outcome: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in range(1, read_passages + 1):
        groups = [(x[:, columns], y) for x, y in read_top(k, spans)]
        logits, ok = best_proposals(groups, vector, weights["bias"])
        outcome[k] = (1 / (1 + np.exp(-(platt[0] * logits + platt[1]))), ok)

    def answered_accuracy(part: np.ndarray, conf: np.ndarray, ok: np.ndarray) -> float:
        weight = answerable_weight * part
        return float(((ok & (conf >= tau)) * weight).sum() / max(weight.sum(), 1e-9))

    full = {name: answered_accuracy(part, *outcome[read_passages]) for name, part in parts}

    def within(conf: np.ndarray, ok: np.ndarray) -> bool:
        return all(answered_accuracy(part, conf, ok) >= full[n] - max_loss for n, part in parts)

    best: tuple[int, float, int, float] = (read_passages, float(read_passages), 0, 1.0)
    for m in range(1, read_passages + 1):
        if within(*outcome[m]) and (m, float(m)) < best[:2]:
            best = (m, float(m), 0, 1.0)
        for k in range(1, m):
            first_conf, first_right = outcome[k]
            for threshold in np.unique(np.round(first_conf, 3)):
                stop = first_conf >= threshold
                conf = np.where(stop, first_conf, outcome[m][0])
                ok = np.where(stop, first_right, outcome[m][1])
                if within(conf, ok):
                    cost = k + (1 - stop.mean()) * (m - k)
                    print(
                        f"read {k} first, up to {m} below {threshold:.3f}: {stop.mean():.3f} "
                        f"stop, {cost:.2f} passages a question",
                        file=sys.stderr,
                    )
                    if (m, cost) < best[:2]:
                        best = (m, cost, k, float(threshold))
                    break
    m, cost, k, threshold = best
    print(f"chosen: first {k}, up to {m} ({cost:.2f} passages a question)", file=sys.stderr)
    return k, m, round(threshold, 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v1", type=Path, default=DATA / "dev-v1.1.json.zip")
    parser.add_argument("--v2", type=Path, default=DATA / "dev-v2.0.json.zip")
    tmp = Path(tempfile.gettempdir())
    parser.add_argument("--index-v1", type=Path, default=tmp / "qa-squad-v1-index")
    parser.add_argument("--index-v2", type=Path, default=tmp / "qa-squad-v2-index")
    parser.add_argument("--out", type=Path, default=ROOT / "qa" / "weights.json")
    parser.add_argument(
        "--v2-part",
        default="fit:weights",
        choices=("fit", "fit:weights"),
        help="SQuAD 2.0 dev questions to fit the reader's weights on: the part of the fit half "
        "the reader was not trained on (fit:weights), or the whole fit half (a reader trained "
        "without SQuAD 2.0 dev)",
    )
    parser.add_argument(
        "--news",
        type=news_pair,
        action="append",
        default=None,
        help="FILE=INDEX: a JSONL question file and the index of its corpus; the fit half of "
        "its questions joins the fit (repeatable) [default: the news sets of tests/data over "
        "/tmp/bbc-index and /tmp/corpus-index]",
    )
    parser.add_argument(
        "--news-weight",
        type=float,
        default=0.5,
        help="the share of the fit that the news questions weigh, however few they are",
    )
    # 0.04: a wrong answer quoted with a citation costs a newsroom more than a "not found",
    # and news readers ask answerable questions more often than SQuAD 2.0's half-unanswerable
    # mix (docs/reader.md has the trade-off measured on the fit data)
    parser.add_argument(
        "--max-loss",
        type=float,
        default=0.04,
        help="accuracy the threshold may cost answerable questions (default 0.04)",
    )
    parser.add_argument(
        "--features",
        type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
        # the answer types help the news questions (--compare, docs/reader.md); the lexical
        # cues (q_missing, names_missing, numbers_missing) and runner-up spans (alt_gap) did
        # not help on held-out articles of the fit data, so they are not weighed by default
        default=[n for n in READER_FEATURES if n not in LEXICAL and n != "alt_gap"],
        help="comma-separated candidate features to weigh [default: reader, retrieval and "
        "answer types]",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="print a two-fold comparison (inside the fit half) of the reader and retrieval "
        "features alone against them with the chosen ones",
    )
    parser.add_argument(
        "--read-passages",
        type=int,
        choices=(0, *K_CHOICES),
        default=8,
        help="passages the reader reads (0: the fewest within 0.3 points of the best fit-half"
        " accuracy). Default 8: SQuAD's fit half is flat from 3 to 8 (0.8470-0.8490 with the"
        " shipped reader, 2026-12-02) while paraphrased news questions, whose retrieval is"
        " weaker, gain from reading more (tests/data/bbc_paraphrased.jsonl: 55 of 78 right"
        " reading 4, 58 reading 8)",
    )
    parser.add_argument(
        "--spans",
        type=int,
        choices=(0, *SPAN_CHOICES),
        default=0,
        help="spans read in each passage (0: the fewest within 0.3 points of the best fit-half"
        " accuracy)",
    )
    parser.add_argument(
        "--verify-top",
        type=int,
        default=3,
        help="with the verifier weighed: how many of the best proposals it reads at question "
        "time (0: all; it is fitted on all of them). Each costs a model run",
    )
    parser.add_argument(
        "--max-stage-loss",
        type=float,
        default=0.002,
        help="answered accuracy reading in stages may lose against reading every passage, "
        "on the SQuAD and on the news questions each (default 0.002)",
    )
    parser.add_argument(
        "--rows",
        type=Path,
        default=None,
        help="keep the reader's proposals for the fit half in this file (reused when it exists:"
        " refit thresholds without reading again; delete it after retraining the reader)",
    )
    parser.add_argument(
        "--passages", action="store_true", help="refit the passage ranking weights too"
    )
    args = parser.parse_args()
    if args.news is None:
        data = ROOT / "tests" / "data"
        args.news = [
            (data / f"{corpus}_{kind}.jsonl", tmp / f"{index}-index")
            for corpus, index in (("bbc", "bbc"), ("wikinews", "corpus"))
            for kind in ("paraphrased", "nearmiss")
        ]
    missing = [str(index) for _, index in args.news if not index_exists(index)]
    if missing:
        sys.exit(f"fit_weights: no index at {', '.join(sorted(set(missing)))} (qa index build)")
    # the passage weights of --out, else the shipped ones: a new --out file is no reason to
    # rank passages with unfitted weights
    shipped = ROOT / "qa" / "weights.json"
    base = args.out if args.out.exists() else shipped
    weights = json.loads(base.read_text()) if base.exists() else {}
    passage_weights = weights.get("passage") or dict(UNFITTED_PASSAGE)
    if not args.passages:
        print(f"passage weights from {base}", file=sys.stderr)
    fit_v1_count = weights.get("questions", {}).get("v1.1")

    if args.passages:
        ensure_index(args.v1, args.index_v1)
        v1 = load_squad(args.v1)
        fit_v1 = select_questions(v1, "fit")
        engine = Engine.open(args.index_v1, passage_weights=dict(UNFITTED_PASSAGE))
        print(f"passages: {len(fit_v1)} fit-half questions ...", file=sys.stderr)
        w = fit_listwise(passage_groups(engine, v1, fit_v1))
        engine.close()
        passage_weights = {n: round(float(v), 5) for n, v in zip(PASSAGE_FEATURES, w)}
        print(f"passage weights: {passage_weights}", file=sys.stderr)
        fit_v1_count = len(fit_v1)

    reader = fit_reader(args, passage_weights)
    weights = {
        "fitted_on": f"SQuAD v1.1 dev (passages) and v2.0 dev {args.v2_part} with the news "
        "question sets (reader), fit half of the articles only (qa.evaluate.article_half)",
        "fitted_at": dt.date.today().isoformat(),
        "questions": {
            "v1.1": fit_v1_count,
            "v2.0": reader.pop("questions"),
            **reader.pop("news"),
        },
        # what the fit was made with: answering reads these, so a change needs a refit
        "search": dataclasses.asdict(SearchSettings()),
        "passage": passage_weights,
        "reader": reader,
    }
    args.out.write_text(json.dumps(weights, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
