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

    @property
    def margin(self) -> float:
        """How much likelier the best span is than "not here" (SQuAD 2.0's decision)."""
        return self.span_score - self.null_score


def best_span(
    start: np.ndarray, end: np.ndarray, allowed: np.ndarray, max_pieces: int
) -> tuple[int, int, float] | None:
    """The (first, last) token pair with the highest start + end logit among `allowed`
    tokens, with first <= last < first + max_pieces; None if no token is allowed."""
    import numpy as np

    positions = np.flatnonzero(allowed)
    if positions.size == 0:
        return None
    s = start[positions]
    e = end[positions]
    scores = s[:, None] + e[None, :]
    i = np.arange(positions.size)
    gap = positions[None, :] - positions[:, None]
    valid = (i[None, :] >= i[:, None]) & (gap < max_pieces)
    scores = np.where(valid, scores, -np.inf)
    flat = int(np.argmax(scores))
    row, col = divmod(flat, positions.size)
    return int(positions[row]), int(positions[col]), float(scores[row, col])


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
        settings_file = model_dir / SETTINGS_NAME
        try:
            settings = json.loads(settings_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(
                f"{settings_file}: the reader's settings are missing "
                "(reinstall qa, or retrain with scripts/train_reader.py)"
            ) from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{settings_file}: cannot read the reader's settings ({exc})") from exc
        path = model_path or model_dir / str(settings.get("model", MODEL_NAME))
        if not path.is_file():
            raise ModelError(
                f"{path}: the reader model is missing "
                "(reinstall qa, or retrain with scripts/train_reader.py)"
            )
        if check:
            from qa.encoders import sha256_of

            if sha256_of(path) != settings.get("sha256"):
                raise ModelError(
                    f"{path}: the reader model is damaged (its sha256 is not the one in "
                    f"{settings_file.name}); reinstall qa or retrain with scripts/train_reader.py"
                )
        from qa.encoders import bundled_model_dir
        from qa.encoders.onnx_runtime import cores
        from qa.encoders.onnx_runtime import session as open_session

        try:
            session = open_session(path, cores())
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"{path}: ONNX Runtime cannot load the reader: {exc}") from exc
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(bundled_model_dir() / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return cls(session, tokenizer, settings)

    def read_passages(self, question: str, passages: list[str]) -> list[Reading]:
        """The best span of each passage (None where the passage has no word at all)."""
        import numpy as np

        if not passages:
            return []
        question_ids = self.tokenizer.encode(question, add_special_tokens=False).ids
        question_ids = question_ids[:MAX_QUESTION_PIECES]
        room = max(16, self.max_length - len(question_ids) - 3)
        step = max(1, room - self.stride)
        rows: list[list[int]] = []
        owners: list[tuple[int, int, int]] = []  # (passage, first piece, window length)
        encodings = self.tokenizer.encode_batch(passages, add_special_tokens=False)
        for number, encoding in enumerate(encodings):
            ids = encoding.ids
            first = 0
            while True:
                piece = ids[first : first + room]
                rows.append([self.cls_id, *question_ids, self.sep_id, *piece, self.sep_id])
                owners.append((number, first, len(piece)))
                if first + room >= len(ids):
                    break
                first += step
        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        types = np.zeros_like(input_ids)
        context_at = len(question_ids) + 2
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
            types[r, context_at : len(row)] = 1
        with self._lock:
            start, end = self.session.run(
                None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": types}
            )
        best: list[Reading | None] = [None] * len(passages)
        for r, (number, first, length) in enumerate(owners):
            allowed = np.zeros(width, dtype=bool)
            allowed[context_at : context_at + length] = True
            null = float(start[r, 0] + end[r, 0])
            found = best_span(start[r], end[r], allowed, MAX_ANSWER_PIECES)
            offsets = encodings[number].offsets
            if found is None:
                reading = Reading(None, None, float("-inf"), null)
            else:
                i, j, score = found
                reading = Reading(
                    offsets[first + i - context_at][0],
                    offsets[first + j - context_at][1],
                    score,
                    null,
                )
            previous = best[number]
            if previous is None:
                best[number] = reading
            else:
                keep = reading if reading.span_score > previous.span_score else previous
                null_score = min(previous.null_score, reading.null_score)
                best[number] = Reading(keep.start, keep.end, keep.span_score, null_score)
        return [b if b is not None else Reading(None, None, float("-inf"), 0.0) for b in best]


_shared: ReaderModel | None = None
_shared_lock = threading.Lock()


def shared_reader() -> ReaderModel:
    """The shipped reader, loaded once per process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ReaderModel.load(Path(os.environ.get("QA_READER_DIR") or MODEL_DIR))
        return _shared
