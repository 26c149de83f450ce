"""Train qa's extractive reader from the bundled all-MiniLM-L6-v2 weights.

    python scripts/train_reader.py                 # prepare, train, export, dev figures
    python scripts/train_reader.py --resume        # go on from the last checkpoint
    python scripts/train_reader.py --export-only   # export the trained model again

The reader is BERT's SQuAD recipe on MiniLM: a linear head gives every passage token a start
and an end logit, and the [CLS] token's pair is the no-answer score (SQuAD 2.0 style), so a
passage that does not hold the answer learns to point at [CLS].

Training data is the SQuAD v1.1 **train** set (`../shared/data/squad/train-v1.1-explorer.json.zip`,
442 articles none of which is in either dev set), read the way `qa` reads at query time: the
train articles are indexed like any corpus (the default int8 encoder, the default chunking),
each training question is asked of that index, and
- the best-ranked retrieved passage that covers the gold answer is a positive example (the gold
  paragraph when no retrieved passage covers it);
- the best-ranked retrieved passages that do not hold the answer text anywhere are no-answer
  examples (`--negatives` per question), so the scores compare across passages and the reader
  learns to say "not here" (the open-domain readers' recipe). Passages that hold the answer
  text at another place are skipped: they may well answer the question.
A random sample of `--questions` questions is used (fixed seed; on two CPU cores the default
keeps the whole run under the issue's 90 minutes; with a GPU pass `--questions 0` for all).

Long inputs are cut into windows of `--max-length` word pieces with a stride; a window that
does not hold the answer is labelled at [CLS]. Batches are grouped by length (less padding).
A checkpoint is written every `--checkpoint-every` steps and at the end; `--resume` continues
from it with the same data order. The result is exported to ONNX, quantised to int8 (dynamic,
per-channel, 7-bit weights so that it runs exactly on any x86 CPU) and written with its sha256
into `qa/models/reader/`; the script ends with span EM/F1 on SQuAD v1.1 dev gold paragraphs
for the torch model and the shipped int8 file.

Everything slow goes to a progress bar with an ETA; the work folder (`--work`, default
`~/.cache/qa/train-reader`) keeps the train index, the examples and the checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from qa.datasets import GoldMapper, index_squad, load_squad  # noqa: E402
from qa.encoders import bundled_model_dir, cache_dir, encoder_factory, sha256_of  # noqa: E402
from qa.reader_model import dequantized_weights  # noqa: E402
from qa.text import contains_answer, exact_match, token_f1  # noqa: E402
from qa.training import (  # noqa: E402
    NAME_PATTERN,
    SQUAD2_DEV,
    SQUAD2_TRAIN_SLICE,
    SQUAD_TRAIN,
    batch_order,
    deleted_twin,
    log,
    swap_question,
    train_steps,
)

DATA = ROOT.parent / "shared" / "data" / "squad"
TRAIN_FILE = DATA / SQUAD_TRAIN
DEV_FILE = DATA / "dev-v1.1.json.zip"
DEV2_FILE = DATA / SQUAD2_DEV
TRAIN2_FILE = DATA / SQUAD2_TRAIN_SLICE
OUT_DIR = ROOT / "qa" / "models" / "reader"
EXAMPLES_VERSION = 1


# --------------------------------------------------------------------------- data


def ensure_train_index(squad: Any, index: Path) -> None:
    from qa.index import index_exists

    if not index_exists(index):
        log(f"indexing the {len(squad.titles)} train articles into {index} ...")
        index_squad(squad, index, encoder_factory(None))


def build_examples(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """(question, context, answer range in context or None) records, cached in `work`."""
    from tqdm import tqdm

    from qa.datasets import clean_map
    from qa.engine import Engine
    from qa.evaluate import doc_ids_by_article

    cache = work / f"examples-v{EXAMPLES_VERSION}-q{args.questions}-n{args.negatives}.jsonl"
    if cache.exists():
        with cache.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]
    squad = load_squad(args.train)
    ensure_train_index(squad, work / "index")
    questions = [q for q in squad.questions if q.answers]
    if args.questions and args.questions < len(questions):
        questions = random.Random(args.seed).sample(questions, args.questions)
    gold = GoldMapper(squad)
    engine = Engine.open(work / "index")
    docs = doc_ids_by_article(engine)
    examples: list[dict[str, Any]] = []
    fallbacks = 0
    for q in tqdm(questions, desc="retrieving passages", mininterval=20, file=sys.stderr):
        spans = gold.spans(q)
        golds = [text for text, _ in q.answers]
        doc_id = docs.get(q.article)
        passages = engine.retriever.search(q.question, k=args.retrieve)
        positive = None
        negatives: list[Any] = []
        for passage in passages:
            covering = [
                (s, e)
                for s, e in spans
                if passage.doc_id == doc_id and passage.char_start <= s and e <= passage.char_end
            ]
            if covering:
                if positive is None:
                    s, e = covering[0]
                    positive = (passage.text, s - passage.char_start, e - passage.char_start)
            elif len(negatives) < args.negatives and not any(
                contains_answer(passage.text, g) for g in golds
            ):
                negatives.append(passage.text)
        if positive is None:
            fallbacks += 1
            text, start = q.answers[0]
            cleaned, mapping = clean_map(squad.paragraphs[q.article][q.paragraph])
            end = mapping[min(start + len(text), len(mapping) - 1) - 1] + 1
            positive = (cleaned, mapping[start], end)
        context, start, end = positive
        examples.append({"question": q.question, "context": context, "start": start, "end": end})
        for context in negatives:
            examples.append({"question": q.question, "context": context, "start": None})
    engine.close()
    log(
        f"{len(questions)} questions -> {len(examples)} examples "
        f"({len(examples) - len(questions)} no-answer; gold paragraph used for {fallbacks})"
    )
    tmp = cache.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(example, ensure_ascii=False) + "\n")
    os.replace(tmp, cache)
    return examples


def add_swapped(examples: list[dict[str, Any]], share: float, seed: int) -> int:
    """For `share` of the answerable examples, a twin whose question names a number or an
    entity that its passage does not hold, labelled "no answer" (SQuAD 2.0's unanswerable
    questions are often such swaps): the reader learns to check what the question names, not
    only that the passage is about the topic. Returns how many were added."""
    rng = random.Random(seed)
    names = sorted(
        {m.group() for e in examples for m in NAME_PATTERN.finditer(e["question"]) if m.start() > 0}
    )
    twins = []
    for example in examples:
        if example["start"] is None or rng.random() >= share:
            continue
        swapped = swap_question(example["question"], example["context"], names, rng)
        if swapped is not None:
            twins.append({"question": swapped, "context": example["context"], "start": None})
    examples.extend(twins)
    return len(twins)


def squad_examples(
    squad: Any, questions: list[Any], negatives: int, deleted: float, rng: random.Random
) -> list[dict[str, Any]]:
    """Gold-paragraph examples of SQuAD questions: an answerable question's paragraph with
    its answer, then (same question, so one group for the multi-passage loss) up to
    `negatives` other paragraphs of its article that do not hold the answer text, and for
    `deleted` of them its paragraph without the answer's sentence (`deleted_twin`), both
    labelled no-answer; an unanswerable question (SQuAD 2.0) its paragraph, labelled
    no-answer."""
    from qa.datasets import clean_map

    examples: list[dict[str, Any]] = []
    for q in questions:
        paragraph = squad.paragraphs[q.article][q.paragraph]
        cleaned, mapping = clean_map(paragraph)
        if q.impossible:
            examples.append({"question": q.question, "context": cleaned, "start": None})
            continue
        text, start = q.answers[0]
        end = mapping[min(start + len(text), len(mapping) - 1) - 1] + 1
        start = mapping[start]
        examples.append({"question": q.question, "context": cleaned, "start": start, "end": end})
        others = [
            clean_map(p)[0]
            for number, p in enumerate(squad.paragraphs[q.article])
            if number != q.paragraph and not any(contains_answer(p, t) for t, _ in q.answers)
        ]
        for other in rng.sample(others, min(negatives, len(others))):
            examples.append({"question": q.question, "context": other, "start": None})
        if rng.random() < deleted:
            twin = deleted_twin(cleaned, start, end)
            if twin is not None and not any(contains_answer(twin, t) for t, _ in q.answers):
                examples.append({"question": q.question, "context": twin, "start": None})
    return examples


def trust_examples(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The "not in this passage" stage's data (`--stage trust`), gold paragraphs only (no
    index needed):
    - SQuAD 2.0 dev, the `fit:reader` part of its fit half (`qa.datasets.fit_part`): real
      unanswerable questions written to look answerable, and their answerable neighbours;
      the `fit:weights` part and the held-out half are never trained on;
    - the 10-article slice of SQuAD 2.0 train (its 348 unanswerable questions and a sample
      of the answerable ones);
    - `--questions` SQuAD v1.1 train questions with same-article negatives and
      answer-sentence-deleted twins (`--deleted`), and swapped twins (`--swapped`, added
      by the caller)."""
    from qa.datasets import select_questions

    rng = random.Random(args.seed)
    examples: list[dict[str, Any]] = []
    counts = {}
    dev2 = load_squad(DEV2_FILE)
    part = select_questions(dev2, "fit:reader")
    examples += squad_examples(dev2, part, args.negatives, args.deleted, rng)
    counts["SQuAD 2.0 dev fit:reader"] = len(part)
    if TRAIN2_FILE.exists():
        slice2 = load_squad(TRAIN2_FILE)
        answerable = [q for q in slice2.questions if not q.impossible]
        chosen = [q for q in slice2.questions if q.impossible]
        chosen += rng.sample(answerable, min(len(answerable), 4 * len(chosen)))
        examples += squad_examples(slice2, chosen, args.negatives, args.deleted, rng)
        counts["SQuAD 2.0 train slice"] = len(chosen)
    train1 = load_squad(args.train)
    sampled = [q for q in train1.questions if q.answers]
    if args.questions and args.questions < len(sampled):
        sampled = rng.sample(sampled, args.questions)
    examples += squad_examples(train1, sampled, args.negatives, args.deleted, rng)
    counts["SQuAD v1.1 train"] = len(sampled)
    unanswerable = sum(1 for e in examples if e["start"] is None)
    log(f"trust stage: {counts} -> {len(examples)} examples ({unanswerable} no-answer)")
    return examples


def windows(
    tokenizer: Any, examples: list[dict[str, Any]], max_length: int, stride: int
) -> tuple[list[tuple[list[int], list[int], int, int]], list[int]]:
    """Tokenised windows: (input ids, token type ids, start token, end token), 0 = [CLS];
    and the index of the example each window comes from."""
    out = []
    sources: list[int] = []
    for offset in range(0, len(examples), 1000):
        batch = examples[offset : offset + 1000]
        encoded = tokenizer(
            [e["question"] for e in batch],
            [e["context"] for e in batch],
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        for i, sample in enumerate(encoded["overflow_to_sample_mapping"]):
            example = batch[sample]
            sequence = encoded.sequence_ids(i)
            offsets = encoded["offset_mapping"][i]
            start_token = end_token = 0
            if example["start"] is not None:
                first = sequence.index(1)
                last = len(sequence) - 1 - sequence[::-1].index(1)
                start, end = example["start"], example["end"]
                if offsets[first][0] <= start and offsets[last][1] >= end:
                    start_token = first
                    while start_token <= last and offsets[start_token][1] <= start:
                        start_token += 1
                    end_token = last
                    while end_token >= first and offsets[end_token][0] >= end:
                        end_token -= 1
                    if end_token < start_token:
                        start_token = end_token = 0
            out.append(
                (encoded["input_ids"][i], encoded["token_type_ids"][i], start_token, end_token)
            )
            sources.append(offset + sample)
    return out, sources


def question_groups(examples: list[dict[str, Any]], sources: list[int]) -> list[list[int]]:
    """The windows of each question's examples together: its positive passage (the example
    with an answer) and the no-answer passages retrieved for it, which `build_examples`
    writes right after it; a swapped twin is a group of its own."""
    group_of: list[int] = []
    group = -1
    for number, example in enumerate(examples):
        previous = examples[number - 1] if number else None
        if (
            previous is None
            or example["start"] is not None
            or example["question"] != previous["question"]
        ):
            group += 1
        group_of.append(group)
    groups: list[list[int]] = [[] for _ in range(group + 1)]
    for window, source in enumerate(sources):
        groups[group_of[source]].append(window)
    return [g for g in groups if g]


def group_batch_order(
    groups: list[list[int]], lengths: list[int], batch_size: int, seed: int
) -> list[list[int]]:
    """Like `batch_order`, for whole question groups: a batch holds whole groups (about
    `batch_size` windows), so that a question's passages are scored together."""
    rng = random.Random(seed)
    order = list(range(len(groups)))
    rng.shuffle(order)
    pool = max(1, batch_size * 50 // 2)
    batches: list[list[int]] = []
    for offset in range(0, len(order), pool):
        chunk = sorted(
            order[offset : offset + pool], key=lambda g: max(lengths[w] for w in groups[g])
        )
        current: list[int] = []
        for g in chunk:
            current.extend(groups[g])
            if len(current) >= batch_size:
                batches.append(current)
                current = []
        if current:
            batches.append(current)
    rng.shuffle(batches)
    return batches


# --------------------------------------------------------------------------- training


def shared_norm_loss(
    start_logits: Any, end_logits: Any, batch: dict[str, Any], owners: list[int], torch: Any
) -> Any:
    """Multi-passage ("shared normalisation") loss: for each question with an answer, one
    softmax over the passage tokens of all its windows in the batch, the gold start (end)
    against every start (end) in its retrieved no-answer passages too (Clark & Gardner 2018;
    Wang et al. 2019, multi-passage BERT). The per-window loss trains "not in this passage";
    this one makes span scores compare across the passages of a question, which is how the
    pipeline ranks its answers. Mean over the questions with an answer; 0 when none."""
    context = (batch["token_type_ids"] == 1) & (batch["attention_mask"] == 1)
    # the final [SEP] has token type 1 but is no answer token
    lengths = batch["attention_mask"].sum(dim=1)
    rows = torch.arange(context.shape[0], device=context.device)
    context[rows, lengths - 1] = False
    losses = []
    owner = torch.tensor(owners, device=context.device)
    for group in sorted(set(owners)):
        members = owner == group
        starts = batch["start_positions"][members]
        if not bool((starts > 0).any()):
            continue
        ends = batch["end_positions"][members]
        mask = context[members]
        for logits, gold in ((start_logits, starts), (end_logits, ends)):
            values = logits[members].float()
            everything = torch.logsumexp(values[mask], dim=0)
            hit = torch.zeros_like(mask)
            answered = (gold > 0).nonzero(as_tuple=True)[0]
            hit[answered, gold[answered]] = True
            losses.append((everything - torch.logsumexp(values[hit], dim=0)) / 2)
    if not losses:
        return start_logits.new_zeros(())
    return torch.stack(losses).sum() / (len(losses) / 2)


def collate(items: list[tuple[list[int], list[int], int, int]], torch: Any) -> dict[str, Any]:
    width = max(len(ids) for ids, *_ in items)
    ids = torch.zeros((len(items), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, (input_ids, type_ids, _, _) in enumerate(items):
        ids[row, : len(input_ids)] = torch.tensor(input_ids)
        types[row, : len(type_ids)] = torch.tensor(type_ids)
        mask[row, : len(input_ids)] = 1
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": mask,
        "start_positions": torch.tensor([s for *_, s, _ in items]),
        "end_positions": torch.tensor([e for *_, e in items]),
    }


def initial_weights(model: Any, init: Path, torch: Any) -> None:
    """Start from a trained reader (`--init`): a folder saved by `train` or an int8 ONNX
    file written by `export` (such as the shipped one), instead of the bare MiniLM."""

    if init.is_dir():
        from transformers import BertForQuestionAnswering

        state = BertForQuestionAnswering.from_pretrained(str(init)).state_dict()
    else:
        state = {k: torch.tensor(v) for k, v in dequantized_weights(init).items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("position_ids")]
    if missing:
        raise SystemExit(f"train_reader: {init} lacks {len(missing)} weights, e.g. {missing[0]}")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
    log(f"initialised from {init}")


def spread_layers(teacher: int, student: int) -> list[int]:
    """Which of the teacher's layers a student of `student` layers starts from: spread
    evenly, the first and the last always among them (6 -> 3: 0, 2, 5; 6 -> 4: 0, 2, 3, 5)."""
    if student >= teacher:
        return list(range(teacher))
    if student == 1:
        return [teacher - 1]
    return [round(i * (teacher - 1) / (student - 1)) for i in range(student)]


def student_model(teacher_state: dict[str, Any], layers: int, torch: Any) -> Any:
    """A reader of `layers` encoder layers, its weights taken from the teacher's: the
    embeddings, the span head and the layers `spread_layers` picks."""
    from transformers import BertConfig, BertForQuestionAnswering

    config = BertConfig.from_pretrained(str(bundled_model_dir()))
    picks = spread_layers(config.num_hidden_layers, layers)
    config.num_hidden_layers = layers
    config._attn_implementation = "eager"
    model = BertForQuestionAnswering(config)
    state = {}
    for name, value in teacher_state.items():
        if name.startswith("bert.encoder.layer."):
            number, rest = name[len("bert.encoder.layer.") :].split(".", 1)
            if int(number) not in picks:
                continue
            name = f"bert.encoder.layer.{picks.index(int(number))}.{rest}"
        state[name] = value
    missing, _ = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing:
        raise SystemExit(
            f"train_reader: the teacher lacks {len(missing)} weights, e.g. {missing[0]}"
        )
    log(f"student of {layers} layers from the teacher's layers {picks}")
    return model


def distil_loss(
    student: Any, teacher: Any, batch: dict[str, Any], temperature: float, torch: Any
) -> Any:
    """How far the student's start and end distributions are from the teacher's over each
    window's answer positions ([CLS] and the passage), softened by `temperature`:
    KL(teacher || student) * T^2, the mean over windows and the two ends (Hinton et al.
    2015)."""
    usable = (batch["token_type_ids"] == 1) & (batch["attention_mask"] == 1)
    usable[:, 0] = True  # [CLS]: "not in this passage"
    losses = []
    for mine, theirs in (
        (student.start_logits, teacher.start_logits),
        (student.end_logits, teacher.end_logits),
    ):
        mine = mine.float().masked_fill(~usable, -1e4) / temperature
        theirs = theirs.float().masked_fill(~usable, -1e4) / temperature
        target = torch.log_softmax(theirs, dim=-1)
        losses.append(
            torch.nn.functional.kl_div(
                torch.log_softmax(mine, dim=-1), target, log_target=True, reduction="batchmean"
            )
        )
    return (losses[0] + losses[1]) / 2 * temperature**2


def train(args: argparse.Namespace, work: Path) -> Any:
    import torch
    from transformers import AutoTokenizer, BertForQuestionAnswering

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = bundled_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    examples = trust_examples(args) if args.stage == "trust" else build_examples(args, work)
    if args.swapped:
        added = add_swapped(examples, args.swapped, args.seed)
        log(f"{added} no-answer twins with a swapped number or name (--swapped {args.swapped})")
    data, sources = windows(tokenizer, examples, args.max_length, args.stride)
    answerable = sum(1 for *_, s, _ in data if s)
    log(f"{len(data)} windows ({answerable} with the answer, {len(data) - answerable} at [CLS])")
    lengths = [len(ids) for ids, *_ in data]
    groups = question_groups(examples, sources)
    group_of = [0] * len(data)
    for number, members in enumerate(groups):
        for window in members:
            group_of[window] = number

    def order_for(epoch: int) -> list[list[int]]:
        if args.shared_norm:
            return group_batch_order(groups, lengths, args.batch_size, args.seed + epoch)
        return batch_order(lengths, args.batch_size, args.seed + epoch)

    # every epoch's batches, once: whole question groups pack into a number of batches that
    # varies with the order, so each epoch has its own length
    batches = [members for epoch in range(args.epochs) for members in order_for(epoch)]
    if args.shared_norm:
        log(f"{len(groups)} question groups, shared-normalisation weight {args.shared_norm}")
    total = len(batches)

    teacher = None
    if args.student_layers:
        # distillation: the shipped reader (or --init) teaches a smaller one its scores
        source = args.init or OUT_DIR / "reader-int8.onnx"
        teacher = BertForQuestionAnswering.from_pretrained(
            str(model_dir), attn_implementation="eager"
        )
        initial_weights(teacher, source, torch)
        teacher.to(args.device).eval()
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
        model = student_model(teacher.state_dict(), args.student_layers, torch)
    else:
        model = BertForQuestionAnswering.from_pretrained(
            str(model_dir), attn_implementation="eager"
        )
        if args.init is not None:
            initial_weights(model, args.init, torch)
    model.to(args.device)
    started = time.perf_counter()

    def batch_loss(step: int, autocast: Any) -> Any:
        members = batches[step]
        batch = collate([data[i] for i in members], torch)
        batch = {name: value.to(args.device) for name, value in batch.items()}
        with autocast:
            output = model(**batch)
        loss = output.loss
        if args.shared_norm:
            loss = loss + args.shared_norm * shared_norm_loss(
                output.start_logits, output.end_logits, batch, [group_of[i] for i in members], torch
            )
        if teacher is not None:
            inputs = {k: v for k, v in batch.items() if not k.endswith("_positions")}
            with torch.no_grad(), autocast:
                taught = teacher(**inputs)
            soft = distil_loss(output, taught, batch, args.temperature, torch)
            loss = (1 - args.distil) * loss + args.distil * soft
        return loss

    train_steps(model, total, batch_loss, args, work, torch)
    log(f"trained {total} steps in {time.perf_counter() - started:.0f} s")
    model.eval()
    model.save_pretrained(work / "model")
    return model


# --------------------------------------------------------------------------- export


def export(work: Path, out: Path) -> Path:
    """ONNX export of the trained model, int8 quantisation, sha256, into `out`."""
    import logging
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import BertForQuestionAnswering

    from qa.reader_model import MODEL_NAME, SETTINGS_NAME

    model = BertForQuestionAnswering.from_pretrained(
        str(work / "model"), attn_implementation="eager"
    ).eval()  # dropout off: exported in training mode the graph would keep it

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            output = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return output.start_logits, output.end_logits

    fp32 = work / "reader-fp32.onnx"
    sample = torch.ones((2, 8), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Logits(model),
            (sample, sample, torch.zeros_like(sample)),
            str(fp32),
            input_names=names,
            output_names=["start_logits", "end_logits"],
            dynamic_axes={
                name: {0: "batch", 1: "length"} for name in (*names, "start_logits", "end_logits")
            },
            opset_version=17,
            dynamo=False,
        )
    out.mkdir(parents=True, exist_ok=True)
    target = out / MODEL_NAME
    tmp = work / "reader-int8.onnx.tmp"
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(
        str(fp32),
        str(tmp),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    os.replace(tmp, target)
    settings_file = out / SETTINGS_NAME
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    settings.update(
        {
            "model": MODEL_NAME,
            "sha256": sha256_of(target),
            "max_length": ARGS.max_length,
            "stride": ARGS.stride,
            "base_weights_sha256": sha256_of(bundled_model_dir() / "model.safetensors"),
        }
    )
    settings_file.write_text(json.dumps(settings, indent=2) + "\n")
    log(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MiB) and {settings_file}")
    write_reference_spans(fp32, out)
    return fp32


def write_reference_spans(fp32: Path, out: Path) -> None:
    """The fp32 model's spans for the paraphrased BBC questions of `tests/data`, each read in
    the start of its article: the test suite checks that the shipped int8 file agrees."""
    from qa.reader_model import REFERENCE_NAME, ReaderModel

    questions = ROOT / "tests" / "data" / "bbc_paraphrased.jsonl"
    bbc = ROOT.parent / "shared" / "data" / "bbc"
    if not questions.exists() or not bbc.is_dir():
        log(f"no {questions} or {bbc}: reference spans not written")
        return
    fp32_reader = ReaderModel.load(out, model_path=fp32, check=False)
    int8_reader = ReaderModel.load(out)
    items = []
    agree = 0
    for line in questions.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        passage = reference_passage(bbc / record["article"])
        found = fp32_reader.read_passages(record["question"], [passage])[0]
        mine = int8_reader.read_passages(record["question"], [passage])[0]
        agree += (found.start, found.end) == (mine.start, mine.end)
        items.append(
            {
                "article": record["article"],
                "question": record["question"],
                "start": found.start,
                "end": found.end,
            }
        )
    target = out / REFERENCE_NAME
    target.write_text(json.dumps({"passage_chars": REFERENCE_CHARS, "items": items}, indent=1))
    log(f"wrote {target}: int8 agrees with fp32 on {agree} of {len(items)} spans")


REFERENCE_CHARS = 2000


def reference_passage(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[:REFERENCE_CHARS]


# --------------------------------------------------------------------------- dev figures


def dev_figures(work: Path, count: int, seed: int) -> None:
    """Span EM/F1 given the gold paragraph, on `count` SQuAD v1.1 dev questions, for the
    torch model, the fp32 ONNX export and the shipped int8 file."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertForQuestionAnswering

    from qa.reader_model import ReaderModel, best_span

    squad = load_squad(DEV_FILE)
    questions = random.Random(seed).sample(squad.questions, min(count, len(squad.questions)))
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_dir()))
    model = BertForQuestionAnswering.from_pretrained(str(work / "model")).eval()
    shipped = ReaderModel.load(ARGS.out)
    fp32 = ReaderModel.load(ARGS.out, model_path=work / "reader-fp32.onnx", check=False)
    scores: dict[str, list[tuple[float, float]]] = {"torch": [], "onnx-fp32": [], "onnx-int8": []}
    agree = 0
    for q in questions:
        context = squad.paragraphs[q.article][q.paragraph]
        golds = [t for t, _ in q.answers]
        encoded = tokenizer(
            q.question,
            context,
            truncation="only_second",
            max_length=ARGS.max_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = encoded.pop("offset_mapping")[0].tolist()
        sequence = encoded.sequence_ids(0)
        with torch.inference_mode():
            output = model(**encoded)
        start, end = output.start_logits[0].numpy(), output.end_logits[0].numpy()
        context_mask = np.array([s == 1 for s in sequence])
        span = best_span(start, end, context_mask, 30)
        text = context[offsets[span[0]][0] : offsets[span[1]][1]] if span else ""
        scores["torch"].append(_score(text, golds))
        answers = {}
        for name, reader in (("onnx-fp32", fp32), ("onnx-int8", shipped)):
            found = reader.read_passages(q.question, [context])[0]
            answers[name] = context[found.start : found.end] if found.start is not None else ""
            scores[name].append(_score(answers[name], golds))
        agree += answers["onnx-fp32"] == answers["onnx-int8"]
    for name, values in scores.items():
        em = sum(v[0] for v in values) / len(values)
        f1 = sum(v[1] for v in values) / len(values)
        print(f"dev v1.1, gold paragraph, {len(values)} questions, {name}: EM {em:.4f} F1 {f1:.4f}")
    print(f"int8 and fp32 ONNX pick the same span for {agree / len(questions):.4f}")


def _score(text: str, golds: list[str]) -> tuple[float, float]:
    return (
        max(exact_match(text, g) for g in golds),
        max(token_f1(text, g) for g in golds),
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=TRAIN_FILE, help="SQuAD v1.1 train file")
    parser.add_argument("--work", type=Path, default=cache_dir() / "train-reader")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument(
        "--questions",
        type=int,
        default=28000,
        help="train questions to use (0: all 87,599; 28,000 fit 90 minutes on 2 cores)",
    )
    parser.add_argument("--negatives", type=int, default=1, help="no-answer passages a question")
    parser.add_argument("--retrieve", type=int, default=8, help="passages retrieved a question")
    parser.add_argument(
        "--swapped",
        type=float,
        default=0.5,
        help="share of questions that also get a no-answer twin with a swapped number or name",
    )
    parser.add_argument(
        "--shared-norm",
        type=float,
        default=1.0,
        help="weight of the multi-passage loss that makes span scores compare across a "
        "question's passages (0: per-window loss alone, as the first models)",
    )
    parser.add_argument(
        "--stage",
        choices=("squad", "trust"),
        default="squad",
        help="squad: SQuAD v1.1 train read as qa reads it (the first stage); trust: teach a "
        "trained reader (--init) to say 'not in this passage' (trust_examples)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this trained reader (a saved model folder, or an int8 ONNX file such "
        "as the shipped one) instead of the bare MiniLM weights",
    )
    parser.add_argument(
        "--deleted",
        type=float,
        default=0.0,
        help="trust stage: share of answerable questions that also get their paragraph "
        "without the answer's sentence as a no-answer example",
    )
    parser.add_argument(
        "--student-layers",
        type=int,
        default=0,
        help="distil: train a reader of this many layers (started from the teacher's layers, "
        "spread evenly) on the shipped reader's (or --init's) start and end scores; 0: no",
    )
    parser.add_argument(
        "--distil",
        type=float,
        default=0.7,
        help="with --student-layers: the share of the loss that is the teacher's scores (the "
        "rest is the gold spans' loss)",
    )
    parser.add_argument(
        "--temperature", type=float, default=2.0, help="softens the teacher's scores (distil)"
    )
    parser.add_argument("--max-length", type=int, default=320)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda where there is one")
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bfloat16 autocast (default on; --no-bf16 for plain fp32)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--dev-questions", type=int, default=1000)
    return parser.parse_args(argv)


ARGS = parse_args([])


def main() -> int:
    global ARGS
    ARGS = args = parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not args.export_only:
        train(args, work)
    export(work, args.out)
    if args.dev_questions:
        dev_figures(work, args.dev_questions, args.seed)
    log(f"done in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
