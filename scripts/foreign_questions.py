"""Write questions a corpus cannot answer, as a JSONL file for `qa eval` (run by hand).

    python scripts/foreign_questions.py [--count 1000] [--seed 0] [-o /tmp/foreign.jsonl]
    qa eval /tmp/foreign.jsonl --index BBC_INDEX      # no_answer_accuracy: the share turned away

The questions are random SQuAD v1.1 dev questions (about the Wikipedia articles of SQuAD:
Super Bowl 50, the Normans, oxygen ...) with no answers, so asked of an index of another
corpus (BBC News, say) every one should be answered "not found": `no_answer_accuracy` is
how often the abstention turns away questions the corpus has nothing about.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from qa.datasets import load_squad, select_questions  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json.zip"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", type=Path, default=Path("/tmp/foreign.jsonl"))
    args = parser.parse_args()
    questions = select_questions(load_squad(args.squad), "all", args.count, args.seed)
    with args.out.open("w", encoding="utf-8") as handle:
        for q in questions:
            handle.write(json.dumps({"question": q.question, "answers": []}) + "\n")
    print(f"wrote {len(questions)} questions to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
