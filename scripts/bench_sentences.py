"""Sentence splitters on real news text: qa's own rule-based splitter against maintained ones.

The quote of every answer is the sentence(s) around the span, so a splitter that glues a list
into one 900-character "sentence" makes a bad quote. This prints, for each splitter, the
sentence length distribution (median, 95th and 99th percentile, share over 400 characters)
and its time, on a seeded sample of the bundled corpus and the BBC corpus.

    pip install pysbd syntok        # the peers; not dependencies of qa
    python scripts/bench_sentences.py [--articles 1500] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Spans = list[tuple[int, int]]


def splitters() -> dict[str, Callable[[str], Spans]]:
    from qa.chunking import split_sentences

    found: dict[str, Callable[[str], Spans]] = {"qa (regex rules)": split_sentences}
    try:
        import pysbd

        segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
        found["pysbd"] = lambda text: [(s.start, s.end) for s in segmenter.segment(text)]
    except ImportError:
        print("pysbd is not installed: skipped", file=sys.stderr)
    try:
        import syntok.segmenter as syntok

        def by_syntok(text: str) -> Spans:
            spans = []
            for paragraph in syntok.analyze(text):
                for sentence in paragraph:
                    tokens = list(sentence)
                    spans.append((tokens[0].offset, tokens[-1].offset + len(tokens[-1].value)))
            return spans

        found["syntok"] = by_syntok
    except ImportError:
        print("syntok is not installed: skipped", file=sys.stderr)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from qa.articles import load_corpus

    articles = load_corpus(ROOT / "corpus").articles
    articles += load_corpus(ROOT.parent / "shared" / "data" / "bbc").articles
    random.Random(args.seed).shuffle(articles)
    articles = articles[: args.articles]
    print(f"{len(articles)} articles (bundled corpus + BBC, seed {args.seed})")
    print(f"{'splitter':<18} {'sentences':>9} {'p50':>5} {'p95':>5} {'p99':>5} {'max':>6} "
          f"{'>400':>7} {'seconds':>8}")  # fmt: skip
    for name, split in splitters().items():
        started = time.perf_counter()
        lengths = sorted(e - s for a in articles for s, e in split(a.body))
        seconds = time.perf_counter() - started
        n = len(lengths)
        over = sum(length > 400 for length in lengths) / n
        p50, p95, p99 = (lengths[int(n * q)] for q in (0.5, 0.95, 0.99))
        print(
            f"{name:<18} {n:>9,} {p50:>5} {p95:>5} {p99:>5} {lengths[-1]:>6} {over:>7.2%} "
            f"{seconds:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
