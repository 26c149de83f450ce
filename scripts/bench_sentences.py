"""Sentence splitters on real news text: qa's own rule-based splitter against maintained ones.

The quote of every answer is the sentence(s) around the span, so a splitter that glues a list
into one 900-character "sentence" makes a bad quote. This prints, for each splitter, the
sentence length distribution (median, 95th and 99th percentile, share over 400 characters)
and its time, on a seeded sample of the bundled corpus and the BBC corpus; then, for each
peer, the sentence ends after terminal punctuation ("." "!" "?" or a closing quote, before
the next word) that only qa or only the peer finds, with a few of each.

    pip install pysbd syntok        # the peers; not dependencies of qa
    python scripts/bench_sentences.py [--articles 1500] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
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
    parser.add_argument("--examples", type=int, default=8, help="examples of each disagreement")
    args = parser.parse_args()
    from qa.articles import load_corpus

    articles = load_corpus(ROOT / "corpus").articles
    articles += load_corpus(ROOT.parent / "shared" / "data" / "bbc").articles
    random.Random(args.seed).shuffle(articles)
    articles = articles[: args.articles]
    print(f"{len(articles)} articles (bundled corpus + BBC, seed {args.seed})")
    print(f"{'splitter':<18} {'sentences':>9} {'p50':>5} {'p95':>5} {'p99':>5} {'max':>6} "
          f"{'>400':>7} {'seconds':>8}")  # fmt: skip
    ends: dict[str, list[set[int]]] = {}
    for name, split in splitters().items():
        started = time.perf_counter()
        spans = [split(a.body) for a in articles]
        seconds = time.perf_counter() - started
        # pysbd's spans keep the whitespace after a sentence: compare where the text ends
        ends[name] = [
            {s + len(a.body[s:e].rstrip()) for s, e in article}
            for a, article in zip(articles, spans, strict=True)
        ]
        lengths = sorted(e - s for article in spans for s, e in article)
        n = len(lengths)
        over = sum(length > 400 for length in lengths) / n
        p50, p95, p99 = (lengths[int(n * q)] for q in (0.5, 0.95, 0.99))
        print(
            f"{name:<18} {n:>9,} {p50:>5} {p95:>5} {p99:>5} {lengths[-1]:>6} {over:>7.2%} "
            f"{seconds:>8.1f}"
        )
    ours, *peers = ends
    rng = random.Random(args.seed)
    for peer in peers:
        for label, first, second in (("only qa", ours, peer), (f"only {peer}", peer, ours)):
            found = [
                a.body[max(0, end - 40) : end + 20]
                for a, mine, theirs in zip(articles, ends[first], ends[second], strict=True)
                for end in sorted(mine - theirs)
                if TERMINAL.match(a.body, end - 1)
            ]
            print(f"\nsentence ends after terminal punctuation, {label}: {len(found)}")
            for text in rng.sample(found, min(args.examples, len(found))):
                print(f"  {text!r}")
    return 0


# a sentence end right after terminal punctuation, with a word after it on the same line
TERMINAL = re.compile(r"[.!?\"'”’)][ \t]+\S")


if __name__ == "__main__":
    sys.exit(main())
