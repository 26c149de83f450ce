"""Score follow-up handling: two-turn conversations asked through `qa.chat.Conversation`.

Each line of the file is `{"turns": [first, ..., last], "answers": [...], "follow_up": bool}`:
about half are true follow-ups (the last question leans on the turn before it), half new
topics (the last stands alone, often with a pronoun that points inside itself, or opening
with "And" or "So" while naming its own subject). The earlier turns are asked in order; the
last counts as right when the top answer's sentence holds a gold answer (SQuAD
normalisation), as in `qa eval`. Prints accuracy on each half and how often a new topic was
searched with words of earlier turns (pollution).

    python scripts/eval_conversations.py --index /tmp/qa-bench-bbc
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="index of the BBC corpus")
    parser.add_argument(
        "--file", type=Path, default=ROOT / "tests" / "data" / "conversations.jsonl"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line a conversation")
    args = parser.parse_args()

    from qa.chat import Conversation
    from qa.engine import Engine
    from qa.text import contains_answer

    conversations = [json.loads(line) for line in args.file.open(encoding="utf-8") if line.strip()]
    engine = Engine.open(args.index)
    engine.warm_up()
    tally = {True: [0, 0], False: [0, 0]}
    polluted = 0
    for item in conversations:
        conversation = Conversation()
        *earlier, last = item["turns"]
        for question in earlier:
            conversation.ask(engine.ask, question)
        result = conversation.ask(engine.ask, last)
        top = result.answers[0].text if result.answers and not result.not_found else ""
        right = any(contains_answer(top, gold) for gold in item["answers"])
        follow_up = bool(item["follow_up"])
        tally[follow_up][0] += right
        tally[follow_up][1] += 1
        if not follow_up and result.query != " ".join(last.split()):
            polluted += 1
        if args.verbose:
            mark = "ok " if right else "BAD"
            print(f"{mark} {'follow-up' if follow_up else 'new topic'}: {last!r} -> "
                  f"searched {result.query!r}; {top[:80]!r}")  # fmt: skip
    engine.close()
    figures = {
        "conversations": len(conversations),
        "follow_up_accuracy": round(tally[True][0] / max(tally[True][1], 1), 3),
        "new_topic_accuracy": round(tally[False][0] / max(tally[False][1], 1), 3),
        "accuracy": round((tally[True][0] + tally[False][0]) / max(len(conversations), 1), 3),
        "new_topics_searched_with_old_words": polluted,
        "follow_ups": tally[True][1],
        "new_topics": tally[False][1],
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:<36} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
