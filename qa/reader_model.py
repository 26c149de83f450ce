"""The trained extractive reader: (question, passage) -> the best answer span and how sure.

The model is all-MiniLM-L6-v2 fine-tuned as BERT is for SQuAD 2.0 (`scripts/train_reader.py`):
each passage token gets a start and an end logit, and the [CLS] token's pair is the score of
"the answer is not here". It ships with the package as an int8 ONNX file
(`qa/models/reader/`, described by `MODEL_CARD.md` there) whose sha256 is checked when it is
loaded, and runs on ONNX Runtime alone: no torch on the query path. The tokenizer is the
bundled embedding model's own (the reader was trained from those weights).

A passage longer than the model's window is read in overlapping windows (`stride` pieces of
overlap); its answer is the best span of any window, its no-answer score the lowest [CLS]
score of its windows (the window that sees the most of the answer's context).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

MODEL_DIR = Path(__file__).with_name("models") / "reader"
MODEL_NAME = "reader-int8.onnx"
SETTINGS_NAME = "reader.json"
REFERENCE_NAME = "fp32_reference.json"
"""The fp32 model's spans on fixed examples, which the shipped int8 file must reproduce."""
MAX_QUESTION_PIECES = 64
MAX_ANSWER_PIECES = 30


@dataclass(frozen=True)
class Reading:
    """What the reader found in one passage; offsets are into the passage's text."""

    start: int | None
    end: int | None
    span_score: float
    """start + end logit of the best span (-inf when the passage has no span at all)."""
    null_score: float
    """start + end logit of [CLS]: "the answer is not in this passage"."""
    alternatives: tuple[tuple[int, int, float], ...] = ()
    """The passage's best spans, best first, as (start, end, span score): the best span
    itself and the runners-up (`read_passages(..., spans=n)`), which the pipeline may weigh
    against what the question asks for (a name, a number, a date)."""

    @property
    def margin(self) -> float:
        """How much likelier the best span is than "not here" (SQuAD 2.0's decision)."""
        return self.span_score - self.null_score


def load_shipped_model(
    model_dir: Path,
    settings_name: str,
    default_name: str,
    what: str,
    script: str,
    model_path: Path | None = None,
    check: bool = True,
) -> tuple[Any, Any, dict[str, Any]]:
    """An ONNX model `qa` ships (the reader, the verifier): its ONNX Runtime session, the
    bundled tokenizer and its settings file, the file's sha256 checked against the settings
    (`check=False` and `model_path` are for a training script's own fp32 export). A missing,
    unreadable or damaged file is a `ModelError` naming it and saying how to get it back."""
    settings_file = model_dir / settings_name
    again = f"reinstall qa, or retrain with {script}"
    try:
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{settings_file}: the {what}'s settings are missing ({again})") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{settings_file}: cannot read the {what}'s settings ({exc})") from exc
    path = model_path or model_dir / str(settings.get("model", default_name))
    if not path.is_file():
        raise ModelError(f"{path}: the {what} model is missing ({again})")
    if check:
        from qa.encoders import sha256_of

        if sha256_of(path) != settings.get("sha256"):
            raise ModelError(
                f"{path}: the {what} model is damaged (its sha256 is not the one in "
                f"{settings_file.name}); {again}"
            )
    from tokenizers import Tokenizer

    from qa.encoders import bundled_model_dir
    from qa.encoders.onnx_runtime import cores
    from qa.encoders.onnx_runtime import session as open_session

    try:
        session = open_session(path, cores())
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{path}: ONNX Runtime cannot load the {what}: {exc}") from exc
    tokenizer = Tokenizer.from_file(str(bundled_model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return session, tokenizer, settings


def best_span(
    start: np.ndarray, end: np.ndarray, allowed: np.ndarray, max_pieces: int
) -> tuple[int, int, float] | None:
    """The (first, last) token pair with the highest start + end logit among `allowed`
    tokens, with first <= last < first + max_pieces; None if no token is allowed."""
    found = top_spans(start, end, allowed, max_pieces, 1)
    return found[0] if found else None


def top_spans(
    start: np.ndarray,
    end: np.ndarray,
    allowed: np.ndarray,
    max_pieces: int,
    n: int,
    segments: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """The `n` (first, last, score) token spans with the highest start + end logit among
    `allowed` tokens (first <= last < first + max_pieces), best first. With `segments` (a
    sentence number for each token), a span starts and ends in the same sentence."""
    import numpy as np

    positions = np.flatnonzero(allowed)
    if positions.size == 0:
        return []
    s = start[positions]
    e = end[positions]
    scores = s[:, None] + e[None, :]
    i = np.arange(positions.size)
    gap = positions[None, :] - positions[:, None]
    valid = (i[None, :] >= i[:, None]) & (gap < max_pieces)
    if segments is not None:
        segment = segments[positions]
        valid &= segment[:, None] == segment[None, :]
    scores = np.where(valid, scores, -np.inf).ravel()
    n = min(n, int(valid.sum()))
    if n == 1:
        best = np.array([int(np.argmax(scores))])
    else:
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
    return [
        (int(positions[flat // positions.size]), int(positions[flat % positions.size]),
         float(scores[flat]))
        for flat in best.tolist()
    ]  # fmt: skip


class ReaderModel:
    """The ONNX reader with its tokenizer; thread-safe (one run at a time)."""

    def __init__(self, session: Any, tokenizer: Any, settings: dict[str, Any]) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.max_length = int(settings.get("max_length", 320))
        self.stride = int(settings.get("stride", 128))
        self.cls_id = tokenizer.token_to_id("[CLS]")
        self.sep_id = tokenizer.token_to_id("[SEP]")
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls, model_dir: Path = MODEL_DIR, model_path: Path | None = None, check: bool = True
    ) -> ReaderModel:
        """Load the shipped model, checking its sha256 (`check=False` and `model_path` are
        for the training script's own fp32 export)."""
        session, tokenizer, settings = load_shipped_model(
            model_dir, SETTINGS_NAME, MODEL_NAME, "reader", "scripts/train_reader.py",
            model_path=model_path, check=check,
        )  # fmt: skip
        return cls(session, tokenizer, settings)

    def read_passages(
        self,
        question: str,
        passages: list[str],
        spans: int = 1,
        sentence_starts: Sequence[Sequence[int]] | None = None,
    ) -> list[Reading]:
        """The best span of each passage (None where the passage has no word at all), with
        its `spans` best spans in `Reading.alternatives`. `sentence_starts`: for each
        passage, the offsets where its sentences after the first begin; a span then never
        runs from one sentence into the next (a highlight across a full stop or a paragraph
        break answers nothing)."""
        if not passages:
            return []
        question_ids = self.tokenizer.encode(question, add_special_tokens=False).ids
        question_ids = question_ids[:MAX_QUESTION_PIECES]
        encodings = self.tokenizer.encode_batch(passages, add_special_tokens=False)
        starts: Sequence[Sequence[int] | None] = (
            [None] * len(passages) if sentence_starts is None else sentence_starts
        )
        return [
            self._read_one(question_ids, encoding, passage_starts, spans)
            for encoding, passage_starts in zip(encodings, starts, strict=True)
        ]

    def _read_one(
        self,
        question_ids: list[int],
        encoding: Any,
        sentence_starts: Sequence[int] | None,
        spans: int,
    ) -> Reading:
        """One passage (its word pieces, `encoding`) read in one model run of its windows:
        never beside other passages, since int8 activations are scaled over everything in
        a run (a passage read beside others could get another best span), and no window is
        padded to another passage's length."""
        import numpy as np

        context_at = len(question_ids) + 2
        windows = self._windows(question_ids, encoding.ids)
        start_logits, end_logits = self._logits([row for row, _ in windows], context_at)
        # each token's sentence number (question and padding tokens are never allowed, so
        # theirs is moot)
        sentence_of = (
            None
            if sentence_starts is None
            else np.searchsorted(
                np.asarray(sentence_starts, dtype=np.int64),
                np.asarray([o[0] for o in encoding.offsets], dtype=np.int64),
                "right",
            )
        )
        null_score: float | None = None
        found: dict[tuple[int, int], float] = {}
        for w, (row, first) in enumerate(windows):
            length = len(row) - context_at - 1
            width = len(start_logits[w])
            allowed = np.zeros(width, dtype=bool)
            allowed[context_at : context_at + length] = True
            null = float(start_logits[w][0] + end_logits[w][0])
            null_score = null if null_score is None else min(null_score, null)
            segments = None
            if sentence_of is not None:
                segments = np.zeros(width, dtype=np.int64)
                segments[context_at : context_at + length] = sentence_of[first : first + length]
            for i, j, score in top_spans(
                start_logits[w], end_logits[w], allowed, MAX_ANSWER_PIECES, spans, segments
            ):
                key = (
                    encoding.offsets[first + i - context_at][0],
                    encoding.offsets[first + j - context_at][1],
                )
                # overlapping windows see the same span: keep its best score
                if score > found.get(key, float("-inf")):
                    found[key] = score
        ranked = sorted(found.items(), key=lambda item: -item[1])[:spans]
        if not ranked or null_score is None:
            return Reading(None, None, float("-inf"), null_score or 0.0)
        (span_start, span_end), score = ranked[0]
        alternatives = tuple((a, b, value) for (a, b), value in ranked)
        return Reading(span_start, span_end, score, null_score, alternatives)

    def _windows(self, question_ids: list[int], ids: list[int]) -> list[tuple[list[int], int]]:
        """The model inputs covering a passage's word pieces `ids`: `[CLS] question [SEP]
        piece [SEP]`, pieces overlapping by `stride`, each with its first piece's place."""
        room = max(16, self.max_length - len(question_ids) - 3)
        step = max(1, room - self.stride)
        windows = []
        first = 0
        while True:
            piece = ids[first : first + room]
            windows.append(([self.cls_id, *question_ids, self.sep_id, *piece, self.sep_id], first))
            if first + room >= len(ids):
                return windows
            first += step

    def _logits(self, rows: list[list[int]], context_at: int) -> tuple[Any, Any]:
        """Start and end logits of each row, read in one model run (rows padded to the
        longest)."""
        import numpy as np

        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        types = np.zeros_like(input_ids)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
            types[r, context_at : len(row)] = 1
        with self._lock:
            start, end = self.session.run(
                None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": types}
            )
        return start, end


def dequantized_weights(path: Path) -> dict[str, Any]:
    """The weights of an int8 ONNX reader exported by `export`, dequantised into
    `BertForQuestionAnswering` parameter names: (q - zero point) * scale, per channel. A
    linear layer's weight is named after the module of the MatMulInteger node that uses it
    (the exporter gives those initialisers anonymous names) and transposed back."""
    import re

    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def dequantize(base: str) -> Any:
        q = inits[base + "_quantized"].astype(np.float32)
        scale = inits[base + "_scale"].astype(np.float32)
        zero = inits[base + "_zero_point"].astype(np.float32)
        if scale.size > 1:  # per channel: along the axis of that size (the last that fits)
            axis = [d for d in range(q.ndim) if q.shape[d] == scale.size][-1]
            shape = [1] * q.ndim
            shape[axis] = scale.size
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return (q - zero) * scale

    state: dict[str, Any] = {}
    suffixes = ("_quantized", "_scale", "_zero_point")
    for name, value in inits.items():
        if name.startswith("inner.") and not name.endswith(suffixes):
            state[name.removeprefix("inner.")] = value
        elif name.startswith("inner.") and name.endswith("_quantized"):
            base = name.removesuffix("_quantized")
            state[base.removeprefix("inner.")] = dequantize(base)
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            found = re.match(r"/inner/(.+)/MatMul_output_0_output_quantized$", node.output[0])
            if found is None:
                raise ValueError(f"{path}: unexpected MatMulInteger output {node.output[0]}")
            key = found.group(1).replace("/", ".") + ".weight"
            state[key] = dequantize(node.input[1].removesuffix("_quantized")).T.copy()
    return state


_shared: ReaderModel | None = None
_shared_lock = threading.Lock()


def shared_reader() -> ReaderModel:
    """The shipped reader, loaded once per process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ReaderModel.load(Path(os.environ.get("QA_READER_DIR") or MODEL_DIR))
        return _shared
