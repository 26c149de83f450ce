"""How far can the passage re-ranker go with cheap features? (run by hand, not in CI)

    python scripts/probe_rerank.py [--index DIR] [--quadratic]

For every SQuAD v1.1 dev question, the re-ranking candidates of `Retriever.search` (top
`rerank_k` after fusion) are labelled hit / miss (the chunk covers the gold answer). Their
features (the 8 in use, plus 9 more computed from the candidates' sentences: the best
sentence by overlap + cosine together, 2-sentence windows, question bigrams, second-best and
mean sentence cosine, the document's best, reciprocal rank) are fitted with
`fit_weights.fit_listwise` on the fit half of the articles and reported on the held-out half,
for the current features, the extended set and, with --quadratic, all pairwise products.
DIR is an index of the SQuAD v1.1 dev articles (`qa eval FILE --index DIR` builds one).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from fit_weights import fit_listwise  # noqa: E402

from qa.datasets import GoldMapper, article_half, load_squad, select_questions  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import doc_ids_by_article  # noqa: E402
from qa.text import span_stems  # noqa: E402
from qa.weights import PASSAGE_FEATURES  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json.zip"
EXTRA = ["comb", "comb_share", "comb_dense", "win2", "bigram", "sd2", "sdmean", "doc_comb",
         "rank_inv"]  # fmt: skip


def candidate_features(engine: Engine, question: str) -> tuple[list, list[list[float]]]:
    """The candidates of one question and each one's current + extra features."""
    retriever = engine.retriever
    terms = retriever.query_terms(question)
    passages = retriever.search(question, k=retriever.rerank_k, terms=terms)
    pairs = terms.pairs
    extras, doc_best = [], {}
    for p in passages:
        sentences = span_stems(
            p.text, [(s - p.char_start, e - p.char_start) for s, e in p.sentences]
        )
        shares = np.array([terms.share(st) for st in sentences] or [0.0])
        dense = np.array(p.sentence_scores or [p.features["dense"]] * len(shares))
        combined = shares + 0.5 * dense
        best = int(np.argmax(combined))
        windows = [terms.share(a | b) for a, b in itertools.pairwise(sentences)] or [
            float(shares.max())
        ]
        bigram = max((sum(1 for a, b in pairs if a in st and b in st) / len(pairs)
                      for st in sentences), default=0.0) if pairs else 0.0  # fmt: skip
        extra = {"comb": float(combined.max()), "comb_share": float(shares[best]),
                 "comb_dense": float(dense[best]), "win2": max(windows), "bigram": bigram,
                 "sd2": float(np.sort(dense)[-2]) if len(dense) > 1 else float(dense[0]),
                 "sdmean": float(dense.mean()), "rank_inv": 1.0 / p.rank}  # fmt: skip
        doc_best[p.doc_id] = max(doc_best.get(p.doc_id, -9.0), extra["comb"])
        extras.append(extra)
    rows = []
    for p, extra in zip(passages, extras):
        extra["doc_comb"] = doc_best[p.doc_id]
        rows.append([p.features[n] for n in PASSAGE_FEATURES] + [extra[n] for n in EXTRA])
    return passages, rows


def recall(groups: list[tuple[np.ndarray, np.ndarray]], w: np.ndarray) -> dict[int, float]:
    hits = {1: 0, 5: 0, 20: 0}
    for x, y in groups:
        found = np.nonzero(y[np.argsort(-(x @ w), kind="stable")])[0]
        for k in hits:
            hits[k] += bool(len(found) and found[0] < k)
    return {k: round(v / len(groups), 4) for k, v in hits.items()}


def quadratic(x: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(x.shape[1])
    return np.hstack([x, x[:, i] * x[:, j]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path(tempfile.gettempdir()) / "qa-squad-v1")
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--quadratic", action="store_true")
    args = parser.parse_args()

    squad = load_squad(args.squad)
    engine = Engine.open(args.index)
    gold, docs = GoldMapper(squad), doc_ids_by_article(engine)
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"fit": [], "heldout": []}
    for number, q in enumerate(select_questions(squad, "all"), 1):
        passages, rows = candidate_features(engine, q.question)
        spans = gold.spans(q)
        labels = [
            float(
                p.doc_id == docs[q.article]
                and any(p.char_start <= s and e <= p.char_end for s, e in spans)
            )
            for p in passages
        ]
        if rows:
            groups[article_half(squad.titles[q.article])].append((np.array(rows), np.array(labels)))
        if number % 1000 == 0:
            print(f"{number} questions ...", file=sys.stderr)
    shipped = engine.retriever.weights
    engine.close()

    base = len(PASSAGE_FEATURES)
    for half, items in groups.items():
        covered = sum(bool(y.sum()) for _, y in items) / len(items)
        print(f"{half}: {len(items)} questions, candidates hold the gold passage: {covered:.4f}")
    current = np.array([shipped.get(n, 0.0) for n in PASSAGE_FEATURES])
    print(f"as shipped (qa/weights.json)  held-out R@1/5/20 "
          f"{recall([(x[:, :base], y) for x, y in groups['heldout']], current)}")  # fmt: skip
    variants = [("current 8 features", lambda x: x[:, :base]), ("+ 9 extra", lambda x: x)]
    if args.quadratic:
        variants += [("current, quadratic", lambda x: quadratic(x[:, :base])),
                     ("+ 9 extra, quadratic", quadratic)]  # fmt: skip
    for name, transform in variants:
        fit = [(transform(x), y) for x, y in groups["fit"]]
        held = [(transform(x), y) for x, y in groups["heldout"]]
        w = fit_listwise(fit, steps=1500)
        print(
            f"{name:<22} refitted on fit half: held-out R@1/5/20 {recall(held, w)}, "
            f"fit half {recall(fit, w)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
