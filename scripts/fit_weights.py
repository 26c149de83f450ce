"""Fit the ranking weights and the abstention threshold on the *fit* half of SQuAD.

    python scripts/fit_weights.py [--index-v1 DIR] [--index-v2 DIR] [--out qa/weights.json]

1. Passage ranking: for every question about a fit-half article of SQuAD v1.1 dev, the
   re-ranking candidates (with their features) are labelled hit / miss (the chunk covers the
   gold answer); a linear score is fitted with a listwise softmax loss.
2. Sentence scoring: with those passage weights, every candidate sentence of the top passages
   is labelled by whether it contains a gold answer (SQuAD normalisation); again a listwise
   fit, then Platt scaling of the top candidate's score into a probability of being right.
3. Abstention: on the fit half of SQuAD v2.0 dev, a logistic answerability model over
   `qa.reader.answerability_features`, labelled by whether the sentence shown is right
   (unanswerable questions never are), and the threshold on its probability that abstains
   on the most unanswerable questions while costing the answerable ones at most --max-loss
   points of accuracy.

Articles are split by `qa.evaluate.article_half` (a hash of the title, the same in v1.1 and
v2.0); nothing of the held-out half is looked at. Report quality with
`qa eval FILE --half heldout`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.embedding import load_encoder  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import (  # noqa: E402
    GoldMapper,
    doc_ids_by_article,
    load_squad,
    select_questions,
    write_corpus,
)
from qa.reader import DEFAULT_SENTENCE_WEIGHTS, Reader  # noqa: E402
from qa.retrieval import DEFAULT_PASSAGE_WEIGHTS, Retriever  # noqa: E402
from qa.store import index_exists, sync_index  # noqa: E402
from qa.text import contains_answer  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "squad"


def ensure_index(squad_file: Path, index: Path) -> None:
    if index_exists(index):
        return
    squad = load_squad(squad_file)
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(squad, Path(tmp))
        encoder = load_encoder()
        print(f"building {index} from {squad_file.name} ...", file=sys.stderr)
        sync_index(Path(tmp), index, lambda _: encoder, full=True)


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
    names = list(DEFAULT_PASSAGE_WEIGHTS)
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


def sentence_groups(engine: Engine, questions) -> tuple[list, list[str]]:
    names = [n for n in DEFAULT_SENTENCE_WEIGHTS if n != "bias"]
    groups = []
    for q in questions:
        terms = engine.retriever.query_terms(q.question)
        passages = engine.retriever.search(q.question, k=20, terms=terms)
        candidates = engine.reader.candidates(q.question, terms, passages)
        golds = [text for text, _ in q.answers]
        x = np.array([[c.features[n] for n in names] for c in candidates])
        y = np.array([float(any(contains_answer(c.text, g) for g in golds)) for c in candidates])
        if len(y):
            groups.append((x, y))
    return groups, names


ANSWERABILITY = [
    "logit", "margin", "missing", "max_missing", "number_missing", "negation", "overlap",
    "sentence_dense", "passage_dense", "type", "terms",
]  # fmt: skip


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


def fit_abstention(args, passage_weights, sentence_weights):
    """Answerability model and threshold on the fit half of SQuAD v2.0."""
    from qa.reader import answerability_features, logistic

    ensure_index(args.v2, args.index_v2)
    v2 = load_squad(args.v2)
    fit_v2 = select_questions(v2, "fit")
    engine = Engine.open(args.index_v2)
    engine.retriever = Retriever(engine.index, engine.encoder, weights=passage_weights)
    engine.reader = Reader(engine.index.conn, weights=sentence_weights, abstain_below=0.0)
    features, impossible, right = [], [], []
    for q in fit_v2:
        terms = engine.retriever.query_terms(q.question)
        passages = engine.retriever.search(q.question, k=20, terms=terms)
        ranked = engine.reader.candidates(q.question, terms, passages)
        if not ranked:
            continue
        f = answerability_features(terms, ranked, q.question)
        features.append([f[n] for n in ANSWERABILITY])
        impossible.append(q.impossible)
        right.append(any(contains_answer(ranked[0].text, t) for t, _ in q.answers))
    engine.close()
    x = np.array(features)
    impossible_arr = np.array(impossible)
    right_arr = np.array(right)
    # the label is "the sentence shown is right", not "answerable": turning away an
    # answerable question whose shown sentence is wrong costs nothing, so the model
    # should learn to doubt those too (`qa eval` v2.0 held-out: no-answer 0.251 -> 0.287,
    # answered 0.755 -> 0.748)
    w, b = fit_logistic(x, (right_arr & ~impossible_arr).astype(float))
    answerability = {"bias": round(b, 5)}
    answerability.update({n: round(float(v), 5) for n, v in zip(ANSWERABILITY, w)})
    print(f"answerability weights: {answerability}", file=sys.stderr)
    conf = np.array([logistic(answerability, dict(zip(ANSWERABILITY, row))) for row in x])
    base = right_arr[~impossible_arr].mean()
    found, no_answer, answered = best_threshold(
        conf, right_arr, impossible_arr, args.max_loss, np.unique(np.round(conf, 4))
    )
    tau = 0.0 if found is None else found  # 0: never abstain
    print(
        f"abstain below {tau:.4f}: fit-half v2.0 no_answer_accuracy {no_answer:.4f}, "
        f"answered_accuracy {answered:.4f} (without abstention {base:.4f})",
        file=sys.stderr,
    )
    return answerability, tau


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v1", type=Path, default=DATA / "dev-v1.1.json.zip")
    parser.add_argument("--v2", type=Path, default=DATA / "dev-v2.0.json.zip")
    tmp = Path(tempfile.gettempdir())
    parser.add_argument("--index-v1", type=Path, default=tmp / "qa-squad-v1-index")
    parser.add_argument("--index-v2", type=Path, default=tmp / "qa-squad-v2-index")
    parser.add_argument("--out", type=Path, default=ROOT / "qa" / "weights.json")
    parser.add_argument("--max-loss", type=float, default=0.04)
    parser.add_argument(
        "--only-abstain",
        action="store_true",
        help="keep the passage and sentence weights of --out; refit only the abstention",
    )
    args = parser.parse_args()

    if args.only_abstain:
        weights = json.loads(args.out.read_text())
        answerability, tau = fit_abstention(args, weights["passage"], weights["sentence"])
        weights["answerability"] = answerability
        weights["abstain"] = round(tau, 4)
        args.out.write_text(json.dumps(weights, indent=2) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
        return 0

    ensure_index(args.v1, args.index_v1)
    v1 = load_squad(args.v1)
    fit_v1 = select_questions(v1, "fit")
    engine = Engine.open(args.index_v1)
    engine.retriever = Retriever(engine.index, engine.encoder, weights=DEFAULT_PASSAGE_WEIGHTS)
    engine.reader = Reader(engine.index.conn, weights=DEFAULT_SENTENCE_WEIGHTS)

    print(f"passages: {len(fit_v1)} fit-half questions ...", file=sys.stderr)
    groups = passage_groups(engine, v1, fit_v1)
    w = fit_listwise(groups)
    passage_weights = {n: round(float(v), 5) for n, v in zip(DEFAULT_PASSAGE_WEIGHTS, w)}
    print(f"passage weights: {passage_weights}", file=sys.stderr)
    engine.retriever = Retriever(engine.index, engine.encoder, weights=passage_weights)

    print("sentences ...", file=sys.stderr)
    groups, names = sentence_groups(engine, fit_v1)
    w = fit_listwise(groups)
    top_scores = np.array([float(x[np.argmax(x @ w)] @ w) for x, _ in groups])
    top_right = np.array([float(y[np.argmax(x @ w)]) for x, y in groups])
    a, b = fit_platt(top_scores, top_right)
    sentence_weights = {"bias": round(b, 5)}
    sentence_weights.update({n: round(float(a * v), 5) for n, v in zip(names, w)})
    print(f"sentence weights: {sentence_weights}", file=sys.stderr)
    print(f"fit-half top-sentence accuracy: {top_right.mean():.4f}", file=sys.stderr)

    engine.close()
    answerability, tau = fit_abstention(args, passage_weights, sentence_weights)
    fit_v2_count = len(select_questions(load_squad(args.v2), "fit"))

    weights = {
        "fitted_on": "SQuAD v1.1 dev (passages, sentences) and v2.0 dev (threshold), "
        "fit half of the articles only (qa.evaluate.article_half)",
        "fitted_at": dt.date.today().isoformat(),
        "questions": {"v1.1": len(fit_v1), "v2.0": fit_v2_count},
        "passage": passage_weights,
        "sentence": sentence_weights,
        "answerability": answerability,
        "abstain": round(tau, 4),
    }
    args.out.write_text(json.dumps(weights, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
