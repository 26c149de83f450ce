"""The first click's measure: does "What is the story behind <headline>?" get that story?

    python scripts/eval_headlines.py --index /tmp/bbc-index [--count 100] [--seed 0]

Draws `--count` articles at random from the index, asks the question the chat's welcome
suggests for each, and prints the share whose answer cites that article (or a syndicated
copy) and the share that also quotes its lead (`qa.evaluate.evaluate_headlines`), then
the misses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qa.engine import Engine
from qa.evaluate import evaluate_headlines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="index to ask")
    parser.add_argument("--count", type=int, default=100, help="headlines to draw")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = Engine.open(args.index)
    try:
        engine.warm_up()
        figures = evaluate_headlines(engine, args.count, args.seed)
    finally:
        engine.close()
    misses = figures.pop("misses")
    print(json.dumps({"index": str(args.index), **figures}, indent=1))
    for miss in misses:
        print(f"miss: {miss['article']}: {miss['title']!r} -> {miss['cited']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
