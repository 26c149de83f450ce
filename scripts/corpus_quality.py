"""Count the defects in a corpus' text that readers would meet in quoted answers.

    python scripts/corpus_quality.py [CORPUS] [--show N]

Answers are quoted verbatim, so what an import leaves behind is what users read. Counted,
per article (an article counts once for each kind it shows), are the kinds of defect
`qa.text_defects` describes and finds: a leading prefix, a split suffix, empty parentheses,
doubled commas, holes. Exit status 1 when any defect is found, so the tests can hold
`corpus/` to zero.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from qa.text_defects import KINDS, defects

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, nargs="?", default=ROOT / "corpus")
    parser.add_argument("--show", type=int, default=3, help="examples to show of each kind")
    args = parser.parse_args()
    from qa.articles import load_corpus

    result = load_corpus(args.corpus)
    articles: Counter[str] = Counter()
    examples: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for article in result.articles:
        kinds = set()
        for kind, text in defects(article.body):
            kinds.add(kind)
            if len(examples[kind]) < args.show:
                examples[kind].append(f"{article.ref}: {text!r}")
        articles.update(kinds)
    print(f"{len(result.articles)} articles in {args.corpus}")
    for kind in KINDS:
        print(f"{kind}: {articles[kind]} articles")
        for example in examples[kind]:
            print(f"  {example}")
    return 1 if sum(articles.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
