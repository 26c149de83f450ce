"""Measure the kinds of twin question one at a time: a verifier trained on a fixed base of
pairs alone, and with the twin pairs of one kind.

    python scripts/measure_twin_kinds.py KIND [KIND ...] [--proposals FILE] [--init DIR]
        [--out DIR] [--base-questions 1000]

KIND is `base` (no twins) or one of `scripts/train_verifier.py`'s twin kinds. The pairs come
from an earlier run's proposals (`--proposals`, a `train_verifier.py --work` folder's
proposals.jsonl, made with `--twins`), so every variant trains on the same base: SQuAD 2.0
dev `fit:reader`, the SQuAD 2.0 train slice and the first `--base-questions` SQuAD v1.1
questions of that run (their gold, deleted-sentence and other-paragraph pairs), plus every
twin pair of the kind in the whole run (a kind the run did not make, such as `why`, is made
here for the same questions, as `train_verifier.py` makes it). Each variant goes on from
`--init` (default the first verifier) for one epoch, is exported to OUT/KIND and checked on
SQuAD 2.0 dev `fit:weights` (never trained on). Then measure each on the held-out halves
with the shipped weights:

    QA_VERIFIER_DIR=OUT/KIND qa eval ... --half heldout

(the four evals of the README's "What to expect"). docs/reader.md keeps what it found.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_verifier as tv

from qa.datasets import clean_map
from qa.encoders import cache_dir
from qa.reader_model import ReaderModel
from qa.training import log


def made_here(
    kind: str, jobs: list[tuple[str, Any, Any]], seed: int, out: Path
) -> list[dict[str, Any]]:
    """The twin pairs of a `kind` the earlier run did not make, for its SQuAD v1.1 questions
    (the same way `train_verifier.py` makes them), kept in OUT/KIND-pairs.json."""
    cache = out / f"{kind}-pairs.json"
    if cache.exists():
        return json.loads(cache.read_text(encoding="utf-8"))
    reader = ReaderModel.load()
    names = tv.question_names(jobs)
    pairs = []
    for number, (source, squad, q) in enumerate(jobs):
        if source != "squad1-train":
            continue
        paragraph, _ = clean_map(squad.paragraphs[q.article][q.paragraph])
        golds = [t for t, _ in q.answers]
        rng = tv.question_rng(seed, number)
        pairs += tv.twin_pairs(reader, source, q.question, paragraph, golds, names, rng, [kind])
    out.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(pairs), encoding="utf-8")
    return pairs


def variant_pairs(
    kind: str,
    header: dict[str, Any],
    jobs: list[tuple[str, Any, Any]],
    per_question: list[list[dict[str, Any]]],
    base_questions: int,
    out: Path,
) -> list[dict[str, Any]]:
    """The base pairs (no twins) and every twin pair of `kind` (none for `base`)."""
    made_by_run = set(header["twin_kinds"])
    pairs = []
    seen = 0
    for (source, _, _), found in zip(jobs, per_question, strict=True):
        if source == "squad1-train":
            seen += 1
            if seen > base_questions:
                continue
        pairs += [f for f in found if f["src"].split(":")[-1] not in made_by_run]
    base = len(pairs)
    if kind == "base":
        twins = []
    elif kind in made_by_run:
        twins = [f for found in per_question for f in found if f["src"].endswith(":" + kind)]
    elif kind in tv.TWIN_KINDS:
        twins = made_here(kind, jobs, header["seed"], out)
    else:
        sys.exit(f"measure_twin_kinds: unknown kind {kind!r}")
    log(f"{kind}: base {base} pairs, {len(twins)} twins")
    return pairs + twins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="+", help="base, or twin kinds")
    parser.add_argument(
        "--proposals", type=Path, default=cache_dir() / "train-verifier-3" / "proposals.jsonl"
    )
    parser.add_argument("--init", type=Path, default=cache_dir() / "train-verifier" / "model")
    parser.add_argument("--out", type=Path, default=cache_dir() / "twin-kinds")
    parser.add_argument("--base-questions", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()
    lines = args.proposals.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    run = tv.parse_args(["--questions", str(header["questions"]), "--seed", str(header["seed"])])
    jobs = tv.question_jobs(run)
    per_question = [json.loads(line) for line in lines[1:]]
    if len(per_question) != len(jobs):
        sys.exit(f"{args.proposals}: {len(per_question)} questions of {len(jobs)}: unfinished")
    for kind in args.kinds:
        pairs = variant_pairs(kind, header, jobs, per_question, args.base_questions, args.out)
        work = args.out / f"work-{kind}"
        work.mkdir(parents=True, exist_ok=True)
        settings = tv.parse_args(
            ["--init", str(args.init), "--lr", str(args.lr), "--work", str(work),
             "--seed", str(args.seed), "--checkpoint-every", "1000000"]
        )  # fmt: skip
        tv.train(settings, work, pairs)
        model = args.out / kind
        tv.export(work, model, settings.max_length)
        checked = [p for p in pairs if p["src"] == "check"]
        verifier = tv.Verifier.load(model)
        scores: list[float] = []
        for p in checked:
            scores += verifier.logits(p["q"], [(p["b"], p["s"], p["a"])])
        log(f"{kind}: check AUROC {tv.auroc(scores, [p['y'] for p in checked])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
