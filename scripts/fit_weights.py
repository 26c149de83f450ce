"""Fit the ranking weights and the reader's calibration on the *fit* half of SQuAD dev.

    python scripts/fit_weights.py [--passages] [--index-v1 DIR] [--index-v2 DIR]
        [--out qa/weights.json]

1. Passage ranking (only with --passages; otherwise the passage weights of --out are kept):
   for every question about a fit-half article of SQuAD v1.1 dev, the re-ranking candidates
   (with their features) are labelled hit / miss (the chunk covers the gold answer); a linear
   score is fitted with a listwise softmax loss.
2. The reader (`qa.reader`): every question about a fit-half article of SQuAD v2.0 dev is
   asked; the trained reader reads the top passages and proposes its best few spans in each
   passage. Each proposal's `candidate_features` are labelled by whether its sentence holds a
   gold answer (never, for an unanswerable question), and a logistic model over them is
   fitted: it ranks the proposals, and its logit, Platt-scaled on each question's best
   proposal, is the confidence. The number of passages read (`read_passages`) is
   --read-passages (default 8; the fit half's accuracy for each K is printed), the spans
   weighed in each passage (`spans`) the fewest within 0.3 points of the best (--spans).
3. Abstention: the threshold on that confidence that turns away the most unanswerable
   questions while the answerable ones lose at most --max-loss of accuracy.

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
from qa.datasets import GoldMapper, index_squad, load_squad, select_questions  # noqa: E402
from qa.encoders import encoder_factory  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import doc_ids_by_article  # noqa: E402
from qa.index import index_exists  # noqa: E402
from qa.reader import Reader  # noqa: E402
from qa.retrieval import Retriever  # noqa: E402
from qa.text import contains_answer  # noqa: E402
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


def fit_platt(scores: np.ndarray, labels: np.ndarray, steps: int = 2000) -> tuple[float, float]:
    """a, b such that sigmoid(a * score + b) is the probability of being right."""
    a, b = 1.0, 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a * scores + b)))
        a -= 0.5 * float(np.mean((p - labels) * scores))
        b -= 0.5 * float(np.mean(p - labels))
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


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000):
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    mean = x.mean(axis=0)
    xs = (x - mean) / scale
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xs @ w + b)))
        w -= 0.5 * (xs.T @ (p - y) / len(y) + l2 * w)
        b -= 0.5 * float(np.mean(p - y))
    weights = w / scale
    return weights, b - float(mean @ weights)


def best_threshold(
    score: np.ndarray,
    right: np.ndarray,
    impossible: np.ndarray,
    max_loss: float,
    thresholds: np.ndarray | None = None,
) -> tuple[float | None, float, float]:
    """The threshold on `score` (abstain below it) that turns away the most unanswerable
    questions while the answerable ones lose at most `max_loss` of accuracy (an abstention
    counts as wrong): (threshold, no-answer accuracy, answered accuracy); the threshold is
    None when none turns any away within that cost. `thresholds`: those to try (default:
    every score)."""
    answerable = ~impossible
    base = float(right[answerable].mean())
    best: tuple[float | None, float, float] = (None, 0.0, base)
    for t in np.unique(score) if thresholds is None else thresholds:
        keep = score >= t
        answered = float((right & keep)[answerable].mean())
        no_answer = float((~keep)[impossible].mean())
        if base - answered <= max_loss and no_answer > best[1]:
            best = (float(t), no_answer, answered)
    return best


K_CHOICES = (1, 2, 3, 4, 5, 6, 8)
SPAN_CHOICES = (1, 2, 3, 5)
LEXICAL = ("q_missing", "names_missing", "numbers_missing")
NBEST = ("alt_gap", *TYPE_FEATURES)


def reader_rows(engine: Engine, questions) -> list[dict]:
    """For each question: its proposals' features, labels and passage ranks."""
    from tqdm import tqdm

    rows = []
    for q in tqdm(questions, desc="reading", mininterval=20, file=sys.stderr):
        _, passages = engine.search(q.question)
        candidates = engine.reader.candidates(q.question, passages)
        golds = [text for text, _ in q.answers]
        rows.append(
            {
                "article": q.article,
                "impossible": q.impossible,
                "x": np.array(
                    [[c.features[n] for n in READER_FEATURES] for c in candidates]
                ).reshape(-1, len(READER_FEATURES)),
                "y": np.array(
                    [float(any(contains_answer(c.text, g) for g in golds)) for c in candidates]
                ),
                "rank": np.array([c.passage.rank for c in candidates]),
                "alt": np.array([c.alt_rank for c in candidates]),
            }
        )
    return rows


def fit_reader(args, passage_weights) -> dict:
    """The reader's candidate weights, Platt scaling, passages read and threshold."""
    ensure_index(args.v2, args.index_v2)
    v2 = load_squad(args.v2)
    fit_v2 = select_questions(v2, "fit")
    engine = Engine.open(args.index_v2)
    engine.retriever = Retriever(engine.index, engine.encoder, weights=passage_weights)
    engine.reader = Reader(
        engine.index,
        fitted=UNFITTED_READER,
        read_passages=max(K_CHOICES),
        spans=max(SPAN_CHOICES),
    )
    if args.rows and args.rows.exists():
        with args.rows.open("rb") as handle:
            rows = pickle.load(handle)  # a file this script wrote (--rows)
    else:
        print(f"reader: {len(fit_v2)} fit-half v2.0 questions ...", file=sys.stderr)
        rows = reader_rows(engine, fit_v2)
        if args.rows:
            with args.rows.open("wb") as handle:
                pickle.dump(rows, handle)
    engine.close()
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
        columns (fitted on the `train` questions, default all); each question's best logit
        and label."""
        chosen = columns if chosen is None else chosen
        groups = [(x[:, chosen], y) for x, y in read_top(k, n)]
        fitted = groups if train is None else [g for g, t in zip(groups, train) if t]
        w, b = fit_logistic(
            np.vstack([x for x, _ in fitted]), np.concatenate([y for _, y in fitted])
        )
        weights = {"bias": round(b, 5)}
        weights.update({READER_FEATURES[c]: round(float(v), 5) for c, v in zip(chosen, w)})
        logits = np.full(len(groups), -30.0)
        right = np.zeros(len(groups), dtype=bool)
        for number, (x, y) in enumerate(groups):
            if len(x):
                scores = x @ w + b
                best = int(np.argmax(scores))
                logits[number] = scores[best]
                right[number] = bool(y[best])
        return weights, logits, right

    if args.compare:
        # Two folds by article inside the fit half: does a feature set help on articles its
        # weights were not fitted on? (The held-out half stays untouched.)
        import zlib

        fold = np.array([zlib.crc32(str(r["article"]).encode()) % 2 for r in rows])
        plain = [n for n in READER_FEATURES[:width] if n not in LEXICAL and n not in NBEST]
        variants = [("reader+retrieval, 1 span a passage", plain, 1)]
        variants += [
            (f"+ alt_gap and answer types, {n} spans a passage", [*plain, *NBEST], n)
            for n in SPAN_CHOICES
        ]
        variants.append(("+ lexical, 1 span a passage", [*plain, *LEXICAL], 1))
        for label, chosen_names, n in variants:
            chosen = [READER_FEATURES.index(name) for name in chosen_names]
            answered = no_answer = accuracy = 0.0
            for held in (0, 1):
                train = fold != held
                _, logits, right = fit(args.read_passages or 8, chosen, train, n)
                a, b_platt = fit_platt(logits[train], right[train].astype(float))
                confidence = 1 / (1 + np.exp(-(a * logits + b_platt)))
                tau, _, _ = best_threshold(
                    confidence[train], right[train], impossible[train], args.max_loss,
                    np.unique(np.round(confidence[train], 4)),
                )  # fmt: skip
                test = ~train
                keep = confidence >= (tau or 0.0)
                accuracy += right[test & ~impossible].mean() / 2
                answered += (right & keep)[test & ~impossible].mean() / 2
                no_answer += (~keep)[test & impossible].mean() / 2
            print(
                f"2-fold within the fit half, {label}: answer accuracy {accuracy:.4f}, "
                f"with abstention: answered {answered:.4f}, no-answer {no_answer:.4f}",
                file=sys.stderr,
            )

    has_alternatives = any("alt" in r for r in rows)
    fits = {}
    for k in K_CHOICES:
        fits[k] = fit(k)
        accuracy = float(fits[k][2][~impossible].mean())
        print(f"read {k} passages: fit-half answer accuracy {accuracy:.4f}", file=sys.stderr)
    accuracy_of = {k: float(fits[k][2][~impossible].mean()) for k in K_CHOICES}
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
    span_accuracy = {n: float(f[2][~impossible].mean()) for n, f in span_fits.items()}
    for n, accuracy in span_accuracy.items():
        print(f"{n} spans a passage: fit-half answer accuracy {accuracy:.4f}", file=sys.stderr)
    spans = args.spans or min(
        n for n in span_fits if span_accuracy[n] >= max(span_accuracy.values()) - 0.003
    )
    weights, logits, right = span_fits[spans]
    accuracy_of[best_k] = span_accuracy[spans]
    print(f"candidate weights ({best_k} passages, {spans} spans): {weights}", file=sys.stderr)
    a, b_platt = fit_platt(logits, right.astype(float))
    confidence = 1 / (1 + np.exp(-(a * logits + b_platt)))
    found, no_answer, answered = best_threshold(
        confidence, right, impossible, args.max_loss, np.unique(np.round(confidence, 4))
    )
    tau = 0.0 if found is None else found
    print(
        f"read_passages {best_k}; abstain below {tau:.4f}: fit-half v2.0 no_answer_accuracy "
        f"{no_answer:.4f}, answered_accuracy {answered:.4f} "
        f"(without abstention {accuracy_of[best_k]:.4f})",
        file=sys.stderr,
    )
    return {
        "features": names,
        "weights": weights,
        "platt": [round(a, 5), round(b_platt, 5)],
        "read_passages": best_k,
        "spans": spans,
        "abstain": round(tau, 4),
        "questions": len(fit_v2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v1", type=Path, default=DATA / "dev-v1.1.json.zip")
    parser.add_argument("--v2", type=Path, default=DATA / "dev-v2.0.json.zip")
    tmp = Path(tempfile.gettempdir())
    parser.add_argument("--index-v1", type=Path, default=tmp / "qa-squad-v1-index")
    parser.add_argument("--index-v2", type=Path, default=tmp / "qa-squad-v2-index")
    parser.add_argument("--out", type=Path, default=ROOT / "qa" / "weights.json")
    # 0.02: news readers ask questions the corpus answers far more often than SQuAD 2.0's
    # half-unanswerable mix; a wrong "not found" costs them more than SQuAD's trade suggests
    parser.add_argument("--max-loss", type=float, default=0.02)
    parser.add_argument(
        "--features",
        type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
        # the lexical cues (q_missing, names_missing, numbers_missing), and the runner-up spans
        # with answer types (alt_gap, <kind>_fits/misfits), did not help on held-out articles
        # of the fit half (--compare), so they are not weighed by default
        default=[n for n in READER_FEATURES if n not in LEXICAL and n not in NBEST],
        help="comma-separated candidate features to weigh [default: reader and retrieval]",
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
    weights = json.loads(args.out.read_text()) if args.out.exists() else {}
    passage_weights = weights.get("passage") or dict(UNFITTED_PASSAGE)
    fit_v1_count = weights.get("questions", {}).get("v1.1")

    if args.passages:
        ensure_index(args.v1, args.index_v1)
        v1 = load_squad(args.v1)
        fit_v1 = select_questions(v1, "fit")
        engine = Engine.open(args.index_v1)
        engine.retriever = Retriever(engine.index, engine.encoder, weights=UNFITTED_PASSAGE)
        print(f"passages: {len(fit_v1)} fit-half questions ...", file=sys.stderr)
        w = fit_listwise(passage_groups(engine, v1, fit_v1))
        engine.close()
        passage_weights = {n: round(float(v), 5) for n, v in zip(PASSAGE_FEATURES, w)}
        print(f"passage weights: {passage_weights}", file=sys.stderr)
        fit_v1_count = len(fit_v1)

    reader = fit_reader(args, passage_weights)
    weights = {
        "fitted_on": "SQuAD v1.1 dev (passages) and v2.0 dev (reader), fit half of the "
        "articles only (qa.evaluate.article_half)",
        "fitted_at": dt.date.today().isoformat(),
        "questions": {"v1.1": fit_v1_count, "v2.0": reader.pop("questions")},
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
