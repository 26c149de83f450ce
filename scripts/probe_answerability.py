"""Would a cross-encoder trained here abstain better than the lexical model? (by hand, not CI)

    python scripts/probe_answerability.py [--index DIR] [--input sentence|passage]
        [--max-length N] [--epochs E] [--latency]

Every SQuAD v2.0 dev question is asked without abstention; the shown sentence is labelled
"answers it" when it contains a gold answer (never for unanswerable questions). A
cross-encoder, all-MiniLM-L6-v2's bundled weights with a linear head on the mean-pooled
tokens, is fine-tuned on (question, shown sentence or top passage) pairs of the fit half of
the articles and scored on the held-out half, next to the shipped lexical answerability model
(`qa/weights.json`). Reported per model: the most unanswerable questions it can turn away
("no-answer accuracy") while the answerable ones keep within 5 points of their accuracy
without abstention, with the threshold chosen on the held-out half itself (an upper bound,
kept optimistic on purpose), and the ROC AUC of "answers it" against "unanswerable".

--latency times what re-ranking K candidate passages with a cross-encoder of this size would
cost per question: K (question, passage) texts through the index's own ONNX encoder (same
layers, same lengths), one text a call, one call per core, as in a build.
DIR is an index of the SQuAD v2.0 dev articles (`qa eval FILE --index DIR` builds one).

--foreign DIR2 [--weights FILE ...] instead asks 1,000 random SQuAD v1.1 dev questions (about
Wikipedia's topics) of DIR2, an index of another corpus (BBC News, say), and prints the share
answered "not found" with each weights file (default: the shipped `qa/weights.json`): how
often the abstention turns away questions the corpus has nothing about.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fit_weights import best_threshold  # noqa: E402

from qa.embedding import bundled_model_dir  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import article_half, load_squad, select_questions  # noqa: E402
from qa.reader import Reader  # noqa: E402
from qa.retrieval import Retriever  # noqa: E402
from qa.text import contains_answer  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "squad" / "dev-v2.0.json.zip"
SQUAD_V1 = SQUAD.with_name("dev-v1.1.json.zip")


def ask_all(engine: Engine, squad: Any) -> list[dict[str, Any]]:
    rows = []
    for number, q in enumerate(select_questions(squad, "all"), 1):
        result = engine.ask(q.question, n=1, abstain=False)
        top = result.answers[0] if result.answers else None
        golds = [text for text, _ in q.answers]
        rows.append(
            {
                "question": q.question,
                "half": article_half(squad.titles[q.article]),
                "impossible": q.impossible,
                "sentence": top.text if top else "",
                "passage": result.passages[0].text if result.passages else "",
                "correct": bool(top and any(contains_answer(top.text, g) for g in golds)),
                "confidence": result.confidence,
            }
        )
        if number % 2000 == 0:
            print(f"{number} questions asked ...", file=sys.stderr)
    return rows


def train_and_score(
    fit: list[dict[str, Any]], held: list[dict[str, Any]], args: argparse.Namespace
) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model_dir = bundled_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir)
    head = torch.nn.Linear(model.config.hidden_size, 1)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = int(len(fit) * args.epochs / args.batch_size)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps)
    )

    def logits(batch: list[dict[str, Any]]) -> Any:
        encoded = tokenizer(
            [r["question"] for r in batch],
            [r[args.input] or "." for r in batch],
            truncation="only_second",
            max_length=args.max_length,
            padding=True,
            return_tensors="pt",
        )
        hidden = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).float()
        return head((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)

    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    started, step = time.perf_counter(), 0
    while step < steps:
        order = fit[:]
        rng.shuffle(order)
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            if step >= steps:
                break
            batch = order[i : i + args.batch_size]
            labels = torch.tensor([float(r["correct"]) for r in batch])
            loss = loss_fn(logits(batch), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 100 == 0:
                elapsed = time.perf_counter() - started
                print(
                    f"step {step}/{steps} loss {loss.item():.3f} {elapsed:.0f} s", file=sys.stderr
                )
    print(f"trained {steps} steps in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    model.eval()
    scores: list[float] = []
    with torch.no_grad():
        for i in range(0, len(held), 64):
            scores.extend(logits(held[i : i + 64]).tolist())
    return np.array(scores)


def auc(score: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half."""
    pos, neg = np.sort(score[positive]), np.sort(score[negative])
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def latency(engine: Engine, squad: Any, count: int) -> None:
    minilm = engine.encoder._minilm  # the index's own encoder, loaded by warm_up
    if minilm is None or not hasattr(minilm, "encode_spans"):
        print("latency: the index's backend has no ONNX encoder; skipped")
        return
    questions = random.Random(0).sample(select_questions(squad, "all"), count)
    pairs = []
    for q in questions:
        passages = engine.retriever.search(q.question, k=30)
        pairs.append([f"{q.question} [SEP] {p.text}" for p in passages])
    print(f"cross-encoder re-ranking cost, {count} questions (ms per question):")
    for k in (1, 5, 10, 20, 30):
        times = []
        for texts in pairs:
            started = time.perf_counter()
            minilm.encode_spans(texts[:k], None, 1)
            times.append(1000 * (time.perf_counter() - started))
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"  K={k:<2}  p50 {statistics.median(times):6.1f}  p95 {p95:6.1f}")


def foreign(index: Path, weight_files: list[Path], count: int = 1000) -> None:
    questions = random.Random(0).sample(load_squad(SQUAD_V1).questions, count)
    engine = Engine.open(index)
    for path in weight_files:
        weights = json.loads(path.read_text())
        engine.retriever = Retriever(engine.index, engine.encoder, weights=weights["passage"])
        engine.reader = Reader(
            engine.index.conn, weights=weights["sentence"], abstain_below=weights["abstain"]
        )
        engine.reader.answerability = weights["answerability"]
        not_found = sum(engine.ask(q.question, n=1).not_found for q in questions)
        print(f"{path}: {not_found / count:.3f} of {count} SQuAD v1.1 questions 'not found'")
    engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path(tempfile.gettempdir()) / "qa-squad-v2")
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--input", choices=("sentence", "passage"), default="sentence")
    parser.add_argument("--max-length", type=int, default=128, help="word pieces per pair")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", action="store_true", help="also time K-pair re-ranking")
    parser.add_argument("--foreign", type=Path, help="index of another corpus (see above)")
    parser.add_argument("--weights", type=Path, nargs="+", default=[ROOT / "qa" / "weights.json"])
    args = parser.parse_args()
    if args.foreign:
        foreign(args.foreign, args.weights)
        return 0

    squad = load_squad(args.squad)
    engine = Engine.open(args.index)
    engine.warm_up()
    threshold = engine.reader.abstain_below
    if args.latency:
        latency(engine, squad, 100)
    rows = ask_all(engine, squad)
    engine.close()

    fit = [r for r in rows if r["half"] == "fit"]
    held = [r for r in rows if r["half"] == "heldout"]
    correct = np.array([r["correct"] for r in held])
    impossible = np.array([r["impossible"] for r in held])
    confidence = np.clip(np.array([r["confidence"] for r in held]), 1e-6, 1 - 1e-6)
    lexical = np.log(confidence / (1 - confidence))
    answerable = ~impossible
    print(
        f"fit half: {len(fit)} questions ({sum(r['correct'] for r in fit)} answered right); "
        f"held-out: {int(answerable.sum())} answerable, {int(impossible.sum())} unanswerable; "
        f"held-out accuracy without abstention {correct[answerable].mean():.4f}"
    )
    keep = confidence >= threshold
    print(
        f"as shipped (threshold {threshold} fitted on the fit half): no-answer "
        f"{(~keep)[impossible].mean():.4f}, answered {(correct & keep)[answerable].mean():.4f}"
    )
    scored = {"lexical (shipped model)": lexical}
    scored["cross-encoder"] = train_and_score(fit, held, args)
    for weight in (0.5, 1.0, 2.0):
        scored[f"cross-encoder + {weight} x lexical"] = scored["cross-encoder"] + weight * lexical
    print(f"input {args.input}, max {args.max_length} word pieces, {args.epochs} epochs:")
    for name, score in scored.items():
        t, no_answer, answered = best_threshold(score, correct, impossible, 0.05)
        threshold_text = "none" if t is None else f"{t:.3f}"
        print(
            f"  {name:<30} best no-answer {no_answer:.4f} (answered {answered:.4f}, "
            f"threshold {threshold_text}), AUC {auc(score, correct, impossible):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
