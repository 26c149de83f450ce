"""What the training scripts (`scripts/train_reader.py`, `scripts/train_verifier.py`) share:
the SQuAD files they read, the near misses they make of SQuAD questions, length-grouped
batches and the training loop (torch is imported by the scripts and passed in, so importing
this module stays light)."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

SQUAD_TRAIN = "train-v1.1-explorer.json.zip"
SQUAD2_DEV = "dev-v2.0.json.zip"
SQUAD2_TRAIN_SLICE = "train-v2.0-first10-articles.json.zip"
"""File names in `../shared/data/squad` beside a checkout."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


NUMBER_PATTERN = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w.])")
NAME_PATTERN = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b")
FIGURE_PATTERN = re.compile(r"(?<![\w.,])\d+(?:,\d{3})*(?:\.\d+)?(?!\d|st\b|nd\b|rd\b|th\b)")
"""A figure as written in text: "2004" of "in 2004,", "10.8" of "10.8bn", "40,000"; not an
ordinal ("51st")."""


def swap_question(question: str, context: str, names: list[str], rng: random.Random) -> str | None:
    """The question with one number or name that the passage holds replaced by one it does
    not hold ("When did Beyonce leave Destiny's Child?" -> "... leave Kinks?"): the passage
    no longer answers it. None when the question has nothing to swap."""
    options = [m for m in NUMBER_PATTERN.finditer(question) if m.group() in context]
    options += [
        m for m in NAME_PATTERN.finditer(question) if m.start() > 0 and m.group() in context
    ]
    if not options:
        return None
    match = rng.choice(options)
    old = match.group()
    for _ in range(20):
        if old[0].isdigit():
            value = float(old.replace(",", ""))
            if value.is_integer() and 1000 <= value <= 2100:
                new = str(int(value) + rng.choice([-1, 1]) * rng.randint(2, 40))
            else:
                new = f"{value * rng.choice([2, 3, 5, 0.5]):g}"
        else:
            new = rng.choice(names)
        if new != old and new not in context:
            return question[: match.start()] + new + question[match.end() :]
    return None


def inside_swap_question(
    question: str, context: str, golds: list[str], rng: random.Random
) -> str | None:
    """The question with one name the passage holds replaced by another name of the same
    passage ("When did Beyonce leave Destiny's Child?" -> "When did Kelly Rowland leave
    ..."): the passage is still on the topic and names both, but what it says about the one
    it does not say about the other (SQuAD 2.0's commonest unanswerable question). Names
    inside a gold answer are never used. None when there is nothing to swap."""
    olds = [m for m in NAME_PATTERN.finditer(question) if m.start() > 0 and m.group() in context]
    if not olds:
        return None
    in_question = {m.group() for m in NAME_PATTERN.finditer(question)}
    news = sorted(
        {
            m.group()
            for m in NAME_PATTERN.finditer(context)
            # a capital after a full stop is any word ("The", "During"), not a name
            if not context[: m.start()].rstrip().endswith((".", "!", "?", '"'))
            and m.start() > 0
            and m.group() not in in_question
            and not any(m.group() in g or g in m.group() for g in golds)
        }
    )
    match = rng.choice(olds)
    news = [n for n in news if n not in match.group() and match.group() not in n]
    if not news:
        return None
    return question[: match.start()] + rng.choice(news) + question[match.end() :]


def inside_number_question(
    question: str, context: str, golds: list[str], rng: random.Random
) -> str | None:
    """The question with one number the passage holds replaced by another number of the same
    passage and the same shape, a year for a year ("What was the profit in 2004?" -> "... in
    2002?" when the passage gives 2002 for something else): the near miss of news questions
    whose figure belongs to another year or another count. Numbers inside a gold answer are
    never used. None when there is nothing to swap."""

    def is_year(text: str) -> bool:
        return len(text) == 4 and text.isdigit() and 1000 <= int(text) <= 2100

    olds = [m for m in FIGURE_PATTERN.finditer(question) if m.group() in context]
    if not olds:
        return None
    match = rng.choice(olds)
    old = match.group()
    news = sorted(
        {
            m.group()
            for m in FIGURE_PATTERN.finditer(context)
            if m.group() != old
            and is_year(m.group()) == is_year(old)
            and m.group() not in question
            and not any(m.group() in g for g in golds)
        }
    )
    if not news:
        return None
    return question[: match.start()] + rng.choice(news) + question[match.end() :]


NEGATED = {
    "is": "isn't", "was": "wasn't", "are": "aren't", "were": "weren't", "did": "didn't",
    "does": "doesn't", "do": "don't", "has": "hasn't", "have": "haven't", "had": "hadn't",
    "can": "can't", "could": "couldn't", "will": "won't", "would": "wouldn't",
    "should": "shouldn't",
}  # fmt: skip
NEGATABLE = re.compile(r"\b(" + "|".join(NEGATED) + r")\b", re.IGNORECASE)


def negated_question(question: str) -> str | None:
    """The question with its first auxiliary verb negated ("When did X leave?" -> "When
    didn't X leave?"): the span that answered it now answers the opposite."""
    match = NEGATABLE.search(question)
    if match is None:
        return None
    word = match.group()
    new = NEGATED[word.lower()]
    if word[0].isupper():
        new = new[0].upper() + new[1:]
    return question[: match.start()] + new + question[match.end() :]


ANTONYMS = [
    ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"), ("first", "last"),
    ("most", "least"), ("before", "after"), ("earliest", "latest"), ("oldest", "youngest"),
    ("longest", "shortest"), ("maximum", "minimum"), ("increase", "decrease"),
    ("increased", "decreased"), ("won", "lost"), ("win", "lose"), ("more", "less"),
    ("north", "south"), ("east", "west"), ("best", "worst"), ("larger", "smaller"),
    ("higher", "lower"), ("older", "younger"), ("began", "ended"), ("above", "below"),
    ("rise", "fall"), ("rose", "fell"), ("start", "end"), ("started", "ended"),
]  # fmt: skip
OPPOSITE = {a: b for a, b in ANTONYMS} | {b: a for a, b in ANTONYMS if b not in dict(ANTONYMS)}
OPPOSABLE = re.compile(r"\b(" + "|".join(sorted(OPPOSITE, key=len, reverse=True)) + r")\b")


def antonym_question(question: str, rng: random.Random) -> str | None:
    """The question with one word turned into its opposite ("the largest city" -> "the
    smallest city"): the passage's answer to it answers another question. Lower-case words
    only, so names ("West Ham") stay."""
    matches = list(OPPOSABLE.finditer(question))
    if not matches:
        return None
    match = rng.choice(matches)
    return question[: match.start()] + OPPOSITE[match.group()] + question[match.end() :]


WHY_FROM = re.compile(
    r"^(?:when|where|in (?:what|which) (?:year|city|country|place)|at what (?:age|time))\s+"
    r"(?=(?:is|was|are|were|did|does|do|has|have|had|will|would|could|can)\b)",
    re.IGNORECASE,
)
REASONS = re.compile(
    r"\b(because|due to|owing to|thanks to|as a result|in order to|so that|so as to|since|reasons?"
    r"|why|caus(?:e|ed|es|ing)|led to|lead to|resulted|result of|motivat\w*|prompt\w*"
    r"|to (?:avoid|prevent|protect|help|allow|ensure|provide|make|improve))\b",
    re.IGNORECASE,
)


def why_question(question: str, context: str) -> str | None:
    """The question turned into a "why" ("When did Beyonce leave Destiny's Child?" -> "Why
    did Beyonce leave Destiny's Child?") when the paragraph gives no reason for anything
    (no "because", "due to", "in order to" ...): a paragraph that states what happened,
    when or where, does not say why. None for other questions and for paragraphs that
    give a reason (they might answer it)."""
    match = WHY_FROM.match(question)
    if match is None or REASONS.search(context):
        return None
    return "Why " + question[match.end() :]


def deleted_twin(context: str, start: int, end: int) -> str | None:
    """The passage without the sentence that holds the answer [start, end): still on the
    topic, still holding other numbers, names and dates of the same kind, but no longer
    saying the thing asked (a count it does not state, a date it does not give): the near
    miss that readers meet most. None when too little would be left."""
    from qa.chunking import split_sentences

    sentences = split_sentences(context)
    kept = [(s, e) for s, e in sentences if e <= start or s >= end]
    if len(kept) < 2 or len(kept) == len(sentences):
        return None
    return " ".join(context[s:e] for s, e in kept)


def batch_order(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Length-grouped batches in a seeded random order: shuffle, sort within pools of 50
    batches by length, cut into batches, shuffle the batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for offset in range(0, len(order), pool):
        chunk = sorted(order[offset : offset + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def optimizer_and_schedule(
    model: Any, lr: float, total: int, warmup_share: float, torch: Any
) -> tuple[Any, Any]:
    """AdamW (weight decay 0.01, none on biases and LayerNorm) with a linear warm-up over
    `warmup_share` of the `total` steps, then a linear decay to 0."""
    no_decay = ("bias", "LayerNorm.weight")
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    warmup = int(total * warmup_share)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def train_steps(
    model: Any, total: int, batch_loss: Any, args: argparse.Namespace, work: Path, torch: Any
) -> None:
    """The training loop both trainers share: `optimizer_and_schedule`, resuming from
    `work/checkpoint.pt` with --resume, bfloat16 autocast with --bf16, gradient clipping at
    1.0, a checkpoint every --checkpoint-every steps and at the end, a progress bar with the
    running loss. `batch_loss(step, autocast)` returns the loss of batch `step` (its model
    call inside `autocast`)."""
    from tqdm import tqdm

    optimizer, scheduler = optimizer_and_schedule(model, args.lr, total, args.warmup, torch)
    checkpoint = work / "checkpoint.pt"
    step = 0
    if args.resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=args.device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        log(f"resumed at step {step} of {total}")
    elif checkpoint.exists():
        log(f"{checkpoint} exists: starting over (pass --resume to continue it)")
    autocast: Any = contextlib.nullcontext()
    if args.bf16:
        autocast = torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16)
    model.train()
    bar = tqdm(total=total, initial=step, desc="training", mininterval=30, file=sys.stderr)
    running = 0.0
    while step < total:
        loss = batch_loss(step, autocast)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        value = loss.item()
        running = 0.98 * running + 0.02 * value if step > 1 else value
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}", refresh=False)
        if step % args.checkpoint_every == 0 or step == total:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
            }
            save_atomic(state, checkpoint, torch)
    bar.close()


def save_atomic(obj: Any, path: Path, torch: Any) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
