"""Train qa's answer verifier (`qa.verifier`) from the shipped reader.

    python scripts/train_verifier.py            # proposals, training, export, check
    python scripts/train_verifier.py --resume   # go on where it stopped (proposals or steps)
    python scripts/train_verifier.py --export-only

The verifier judges one proposal of the reader: the question, and the proposal's sentence
(with the sentence before it) with the span marked. Its training pairs are the shipped
reader's own proposals, so it learns the mistakes the reader makes, on gold paragraphs:
- SQuAD v1.1 train (`--questions`): the reader's two best spans in the question's paragraph
  (right when the span's sentence holds a gold answer and the span overlaps it), its two best
  in the paragraph without the answer's sentence (on the topic, not saying the thing asked:
  the near miss readers meet most) and its best in another paragraph of the article; for
  `--twins` of the questions, its best span for a twin question the paragraph does not
  answer (`--twin-kinds`: a name or number it does not hold, another of its names or
  figures, negated, a word turned into its opposite, a "why" where it gives no reason);
- SQuAD 2.0 dev's `fit:reader` part (`qa.datasets.fit_part`) and the 10-article slice of
  SQuAD 2.0 train: real questions written to look answerable, the reader's two best spans.
SQuAD 2.0 dev's `fit:weights` part is never trained on: the weights that weigh the
verifier's logit (`scripts/fit_weights.py`) are fitted there, and the script ends by
reporting the AUROC of the verifier's logit against the reader's margin on its proposals
(answerable with the proposal right vs not). The held-out half is never looked at.

The model is the reader's encoder (dequantised from the shipped int8 file) with a one-logit
head, trained with a class-balanced binary loss; exported to ONNX, quantised to int8 the way
the reader is, and written with its sha256 into `qa/models/verifier/`. The work folder
(`--work`, default `~/.cache/qa/train-verifier`) keeps the proposals (written as they are
made), the checkpoints and the fp32 model; `--resume` continues either.
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
DATA = ROOT.parent / "shared" / "data" / "squad"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from qa.chunking import split_sentences  # noqa: E402
from qa.datasets import clean_map, load_squad, select_questions  # noqa: E402
from qa.encoders import bundled_model_dir, cache_dir, sha256_of  # noqa: E402
from qa.reader_model import MODEL_DIR as READER_DIR  # noqa: E402
from qa.reader_model import MODEL_NAME as READER_NAME  # noqa: E402
from qa.reader_model import ReaderModel, dequantized_weights  # noqa: E402
from qa.text import contains_answer, token_f1  # noqa: E402
from qa.training import (  # noqa: E402
    NAME_PATTERN,
    SQUAD2_DEV,
    SQUAD2_TRAIN_SLICE,
    SQUAD_TRAIN,
    antonym_question,
    batch_order,
    deleted_twin,
    inside_number_question,
    inside_swap_question,
    log,
    negated_question,
    swap_question,
    train_steps,
    why_question,
)
from qa.verifier import MODEL_DIR, MODEL_NAME, SETTINGS_NAME, Verifier, proposal_parts  # noqa: E402

TRAIN_FILE = DATA / SQUAD_TRAIN
DEV2_FILE = DATA / SQUAD2_DEV
TRAIN2_FILE = DATA / SQUAD2_TRAIN_SLICE

PROPOSALS_VERSION = 2
TWIN_KINDS = ("swapped", "inside", "number", "negated", "antonym", "why")


# --------------------------------------------------------------------------- proposals


def is_right(
    text: str, sentences: list[tuple[int, int]], start: int, end: int, golds: list[str]
) -> bool:
    """The span's sentence holds a gold answer (what `qa eval` counts right) and the span
    overlaps one (a right sentence with the wrong words marked is not a right answer)."""
    first = min((s for s, e in sentences if e > start), default=start)
    last = max((e for s, e in sentences if s < end), default=end)
    quote, span = text[min(first, start) : max(last, end)], text[start:end]
    return any(contains_answer(quote, g) and token_f1(span, g) >= 0.4 for g in golds)


def read(
    reader: ReaderModel, question: str, passages: list[str], spans: int
) -> list[list[tuple[int, int, list[tuple[int, int]], float]]]:
    """The reader's `spans` best spans in each passage, with the passage's sentences and
    the span's margin over "not here"."""
    sentences = [[(s, e) for s, e in split_sentences(p)] for p in passages]
    readings = reader.read_passages(
        question,
        passages,
        spans=spans,
        sentence_starts=[[s for s, _ in ss[1:]] for ss in sentences],
    )
    return [
        [(a, b, ss, score - reading.null_score) for a, b, score in reading.alternatives]
        for reading, ss in zip(readings, sentences, strict=True)
    ]


def pair(
    question: str, text: str, found: tuple[int, int, Any, float], label: int, source: str
) -> dict[str, Any]:
    start, end, sentences, margin = found
    before, span, after = proposal_parts(text, sentences, start, end)
    return {"q": question, "b": before, "s": span, "a": after, "y": label, "src": source,
            "m": round(margin, 3)}  # fmt: skip


def question_jobs(args: argparse.Namespace) -> list[tuple[str, Any, Any]]:
    """(source, SQuAD set, question) in a fixed order, so a resumed run skips what is done."""
    rng = random.Random(args.seed)
    jobs: list[tuple[str, Any, Any]] = []
    dev2 = load_squad(DEV2_FILE)
    jobs += [("check", dev2, q) for q in select_questions(dev2, "fit:weights")]
    jobs += [("squad2-dev", dev2, q) for q in select_questions(dev2, "fit:reader")]
    if TRAIN2_FILE.exists():
        slice2 = load_squad(TRAIN2_FILE)
        jobs += [("squad2-train", slice2, q) for q in slice2.questions]
    train1 = load_squad(args.train)
    sampled = [q for q in train1.questions if q.answers]
    if args.questions and args.questions < len(sampled):
        sampled = rng.sample(sampled, args.questions)
    jobs += [("squad1-train", train1, q) for q in sampled]
    if args.sample_each:
        by_source: dict[str, list[tuple[str, Any, Any]]] = {}
        for job in jobs:
            by_source.setdefault(job[0], []).append(job)
        jobs = [job for same in by_source.values() for job in same[: args.sample_each]]
    return jobs


def proposals_for(
    reader: ReaderModel,
    source: str,
    squad: Any,
    q: Any,
    names: list[str],
    rng: random.Random,
    twins: float,
    twin_kinds: list[str],
) -> list[dict[str, Any]]:
    paragraph, _ = clean_map(squad.paragraphs[q.article][q.paragraph])
    golds = [] if q.impossible else [t for t, _ in q.answers]
    if source != "squad1-train":
        spans = 1 if source == "check" else 2
        (found,) = read(reader, q.question, [paragraph], spans)
        return [
            pair(
                q.question, paragraph, f, int(is_right(paragraph, f[2], f[0], f[1], golds)), source
            )
            for f in found
        ]
    text, start = q.answers[0]
    _, mapping = clean_map(squad.paragraphs[q.article][q.paragraph])
    end = mapping[min(start + len(text), len(mapping) - 1) - 1] + 1
    start = mapping[start]
    passages = [(paragraph, "gold")]
    twin = deleted_twin(paragraph, start, end)
    if twin is not None and not any(contains_answer(twin, g) for g in golds):
        passages.append((twin, "deleted"))
    others = [
        clean_map(p)[0]
        for number, p in enumerate(squad.paragraphs[q.article])
        if number != q.paragraph and not any(contains_answer(p, g) for g in golds)
    ]
    if others:
        passages.append((rng.choice(others), "other"))
    out = []
    found_all = read(reader, q.question, [p for p, _ in passages], 2)
    for (passage, kind), found in zip(passages, found_all, strict=True):
        # another paragraph: only its best span, the near miss a retrieval would bring
        for f in found[: 1 if kind == "other" else 2]:
            label = int(is_right(passage, f[2], f[0], f[1], golds)) if kind == "gold" else 0
            out.append(pair(q.question, passage, f, label, f"{source}:{kind}"))
    if rng.random() < twins:
        out += twin_pairs(reader, source, q.question, paragraph, golds, names, rng, twin_kinds)
    return out


def twin_pairs(
    reader: ReaderModel,
    source: str,
    question: str,
    paragraph: str,
    golds: list[str],
    names: list[str],
    rng: random.Random,
    kinds: list[str],
) -> list[dict[str, Any]]:
    """The reader's best span for a twin of `question` (`twin_question`, one of `kinds`),
    labelled wrong; none when no kind applies to the question."""
    asked = twin_question(question, paragraph, golds, names, rng, kinds)
    if asked is None:
        return []
    twin, kind = asked
    (found,) = read(reader, twin, [paragraph], 1)
    return [pair(twin, paragraph, f, 0, f"{source}:{kind}") for f in found]


def twin_question(
    question: str,
    paragraph: str,
    golds: list[str],
    names: list[str],
    rng: random.Random,
    kinds: list[str],
) -> tuple[str, str] | None:
    """A twin of the question that the paragraph does not answer, and its kind (one of
    `kinds` that applies to the question, tried in a random order): `swapped` a number or name
    for one the paragraph lacks, `inside` a name for another of the paragraph, `number` a
    number for another of the paragraph of the same shape, `negated`, `antonym`, `why` about
    a paragraph that gives no reason (`qa.training`)."""
    order = list(kinds) if len(kinds) == 1 else rng.sample(kinds, len(kinds))
    for kind in order:
        if kind == "swapped":
            twin = swap_question(question, paragraph, names, rng)
        elif kind == "inside":
            twin = inside_swap_question(question, paragraph, golds, rng)
        elif kind == "number":
            twin = inside_number_question(question, paragraph, golds, rng)
        elif kind == "negated":
            twin = negated_question(question)
        elif kind == "why":
            twin = why_question(question, paragraph)
        else:
            twin = antonym_question(question, rng)
        if twin is not None and twin != question:
            return twin, kind
    return None


def question_rng(seed: int, number: int) -> random.Random:
    """The random draws of the `number`th question of a run: the same on a resumed run."""
    return random.Random(seed * 1_000_003 + number)


def question_names(jobs: list[tuple[str, Any, Any]]) -> list[str]:
    """The names the questions of `jobs` hold (not their first word): what a `swapped` twin
    puts in place of a question's own name."""
    return sorted(
        {m.group() for _, _, q in jobs for m in NAME_PATTERN.finditer(q.question) if m.start() > 0}
    )


def build_proposals(args: argparse.Namespace, path: Path) -> list[dict[str, Any]]:
    """The training and check pairs, one line per question in `path` (appended as they are
    made, so an interrupted run resumes where it stopped)."""
    from tqdm import tqdm

    jobs = question_jobs(args)
    header = {"version": PROPOSALS_VERSION, "questions": args.questions, "seed": args.seed,
              "twins": args.twins, "twin_kinds": args.twin_kinds,
              "sample_each": args.sample_each,
              "reader": sha256_of(READER_DIR / READER_NAME)}  # fmt: skip
    lines: list[str] = []
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines or json.loads(lines[0]) != header or not args.resume:
            log(f"{path}: made with other settings or not resumed: making the proposals again")
            lines = []
        else:
            # a torn last line (killed while writing) is made again
            try:
                json.loads(lines[-1])
            except ValueError:
                lines.pop()
    if not lines:
        path.write_text(json.dumps(header) + "\n", encoding="utf-8")
        lines = [json.dumps(header)]
    else:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = len(lines) - 1
    reader = ReaderModel.load()
    names = question_names(jobs)
    with path.open("a", encoding="utf-8") as out:
        bar = tqdm(total=len(jobs), initial=done, desc="proposals", mininterval=30, file=sys.stderr)
        for number in range(done, len(jobs)):
            source, squad, q = jobs[number]
            rng = question_rng(args.seed, number)
            found = proposals_for(reader, source, squad, q, names, rng, args.twins, args.twin_kinds)
            out.write(json.dumps(found) + "\n")
            out.flush()
            bar.update(1)
        bar.close()
    pairs = [
        p for line in path.read_text(encoding="utf-8").splitlines()[1:] for p in json.loads(line)
    ]
    counts: dict[str, list[int]] = {}
    for p in pairs:
        counts.setdefault(p["src"], [0, 0])[p["y"]] += 1
    log("proposals (wrong, right): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return pairs


# --------------------------------------------------------------------------- training


def encoded(
    verifier_ids: Any, pairs: list[dict[str, Any]], max_length: int
) -> list[tuple[list[int], int, int]]:
    """(input ids, second segment start, label) for each pair, through `Verifier.encode`."""
    out = []
    for p in pairs:
        ((ids, second),) = verifier_ids.encode(p["q"], [(p["b"], p["s"], p["a"])])
        out.append((ids, second, p["y"]))
    return out


class _Tokens:
    """`Verifier.encode` without an ONNX session (training runs before there is a model)."""

    def __init__(self, max_length: int) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(bundled_model_dir() / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.inner = Verifier(None, tokenizer, {"max_length": max_length})

    def encode(self, question: str, proposals: list[tuple[str, str, str]]) -> Any:
        return self.inner.encode(question, proposals)


def collate(items: list[tuple[list[int], int, int]], torch: Any) -> dict[str, Any]:
    width = max(len(ids) for ids, _, _ in items)
    ids = torch.zeros((len(items), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for r, (row, second, _) in enumerate(items):
        ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
        types[r, second : len(row)] = 1
    labels = torch.tensor([float(y) for _, _, y in items])
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": labels}


def new_model(torch: Any, init: Path | None = None) -> Any:
    """MiniLM with a one-logit head, its encoder taken from the shipped reader; or a
    trained verifier (`init`, saved by an earlier run) to go on from."""
    from transformers import BertForSequenceClassification

    if init is not None:
        return BertForSequenceClassification.from_pretrained(str(init), attn_implementation="eager")

    model = BertForSequenceClassification.from_pretrained(
        str(bundled_model_dir()), num_labels=1, attn_implementation="eager"
    )
    state = dequantized_weights(READER_DIR / READER_NAME)
    encoder = {k: torch.tensor(v) for k, v in state.items() if k.startswith("bert.")}
    missing, _ = model.load_state_dict(encoder, strict=False)
    left = [
        k
        for k in missing
        if k.startswith("bert.") and "pooler" not in k and "position_ids" not in k
    ]
    if left:
        raise SystemExit(
            f"train_verifier: the reader lacks {len(left)} encoder weights, e.g. {left[0]}"
        )
    return model


def train(args: argparse.Namespace, work: Path, pairs: list[dict[str, Any]]) -> None:
    import torch

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_pairs = [p for p in pairs if p["src"] != "check"]
    data = encoded(_Tokens(args.max_length), train_pairs, args.max_length)
    positives = sum(y for *_, y in data)
    log(f"{len(data)} training pairs ({positives} right answers)")
    batches = [
        b for epoch in range(args.epochs)
        for b in batch_order([len(ids) for ids, *_ in data], args.batch_size, args.seed + epoch)
    ]  # fmt: skip
    total = len(batches)
    model = new_model(torch, args.init).to(args.device)
    # each class weighs half of the loss: right answers are the fewer
    pos_weight = torch.tensor((len(data) - positives) / max(1, positives))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def batch_loss(step: int, autocast: Any) -> Any:
        batch = collate([data[i] for i in batches[step]], torch)
        labels = batch.pop("labels").to(args.device)
        batch = {k: v.to(args.device) for k, v in batch.items()}
        with autocast:
            logits = model(**batch).logits.reshape(-1)
        return loss_fn(logits.float(), labels)

    train_steps(model, total, batch_loss, args, work, torch)
    model.eval()
    model.save_pretrained(work / "model")


# --------------------------------------------------------------------------- export, check


def export(work: Path, out: Path, max_length: int) -> Path:
    """ONNX export of the trained model, int8 quantisation as the reader's, sha256."""
    import logging
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(
        str(work / "model"), attn_implementation="eager"
    ).eval()

    class Logit(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    fp32 = work / "verifier-fp32.onnx"
    sample = torch.ones((2, 8), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Logit(model), (sample, sample, torch.zeros_like(sample)), str(fp32),
            input_names=names, output_names=["logit"],
            dynamic_axes={n: {0: "batch", 1: "length"} for n in names} | {"logit": {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    target = out / MODEL_NAME
    tmp = work / "verifier-int8.onnx.tmp"
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(
        str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )  # fmt: skip
    os.replace(tmp, target)
    settings = {
        "model": MODEL_NAME,
        "sha256": sha256_of(target),
        "max_length": max_length,
        "reader_sha256": sha256_of(READER_DIR / READER_NAME),
    }
    (out / SETTINGS_NAME).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MiB) and {SETTINGS_NAME}")
    return fp32


def auroc(scores: list[float], labels: list[int]) -> str:
    """The AUROC as text ("n/a" when the proposals are all right or all wrong)."""
    from qa.evaluate import auroc as area

    value = area(scores, [bool(y) for y in labels])
    return "n/a" if value is None else f"{value:.3f}"


def check(pairs: list[dict[str, Any]], out: Path, work: Path) -> None:
    """The verifier's logit on SQuAD 2.0 dev's `fit:weights` proposals (never trained on)
    against the reader's margin: AUROC of right vs not, for the int8 and the fp32 file."""
    checked = [p for p in pairs if p["src"] == "check"]
    if not checked:
        return
    labels = [p["y"] for p in checked]
    log(f"check: the reader's margin AUROC {auroc([p['m'] for p in checked], labels)}")
    for name, verifier in (
        ("int8", Verifier.load(out)),
        ("fp32", Verifier.load(out, model_path=work / "verifier-fp32.onnx", check=False)),
    ):
        scores: list[float] = []
        for p in checked:
            scores += verifier.logits(p["q"], [(p["b"], p["s"], p["a"])])
        log(f"check, SQuAD 2.0 dev fit:weights ({len(checked)} proposals, {sum(labels)} right): "
            f"verifier {name} AUROC {auroc(scores, labels)}")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=TRAIN_FILE, help="SQuAD v1.1 train file")
    parser.add_argument("--work", type=Path, default=cache_dir() / "train-verifier")
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--questions", type=int, default=8000, help="SQuAD v1.1 train questions")
    parser.add_argument(
        "--twins", type=float, default=0.3, help="share of questions with an unanswerable twin"
    )
    parser.add_argument(
        "--twin-kinds",
        type=lambda text: [k for k in text.split(",") if k],
        default=list(TWIN_KINDS),
        help=f"comma-separated, of {','.join(TWIN_KINDS)} (default all)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        help="go on from a trained verifier (a --work folder's model/) instead of the reader",
    )
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--warmup", type=float, default=0.06)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda where there is one")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--sample-each",
        type=int,
        default=0,
        help="at most this many questions of each source (a quick trial of the whole script)",
    )
    parser.add_argument("--proposals-only", action="store_true")
    parser.add_argument("--export-only", action="store_true")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pairs = build_proposals(args, work / "proposals.jsonl")
    if args.proposals_only:
        return 0
    if not args.export_only:
        train(args, work, pairs)
    export(work, args.out, args.max_length)
    check(pairs, args.out, work)
    log(f"done in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
