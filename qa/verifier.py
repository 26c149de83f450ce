"""The answer verifier: does this sentence, with this span marked, answer this question?

The reader finds the likeliest span in each passage it reads, but its "not in this passage"
score hardly tells a passage that states the thing asked from one that is only on the topic
(a salary it never gives, a death toll where it gives ages). The verifier is a second,
smaller judgement over each proposal alone: a cross-encoder over the question and the
proposal's sentence (with the sentence before it, for "he" and "the company"), the span
marked inside it, trained on SQuAD 2.0's unanswerable questions and on the reader's own
proposals in paragraphs whose answering sentence was taken out (`scripts/train_verifier.py`).
Its logit is one more feature of the reader's scoring model (`verify` in `qa/weights.json`).

It is the reader's encoder fine-tuned as a classifier, shipped as an int8 ONNX file in
`qa/models/verifier/` (described by `MODEL_CARD.md` there) whose sha256 is checked when it
is loaded; it runs on ONNX Runtime alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODEL_DIR = Path(__file__).with_name("models") / "verifier"
MODEL_NAME = "verifier-int8.onnx"
SETTINGS_NAME = "verifier.json"
SPAN_OPEN = "[unused0]"
SPAN_CLOSE = "[unused1]"
"""Word pieces that mark the span inside its sentence (BERT's vocabulary keeps them free)."""
MAX_QUESTION_PIECES = 40
MAX_SPAN_PIECES = 30
MAX_AFTER_PIECES = 40


def proposal_parts(
    text: str, sentences: Sequence[tuple[int, int]], span_start: int, span_end: int
) -> tuple[str, str, str]:
    """What the verifier reads of a proposal [span_start, span_end) in `text`: the text
    before the span from the start of the sentence before its own, the span, and the rest of
    the span's sentence. `sentences` are (start, end) offsets into `text`, in order."""
    own = next((i for i, (_, end) in enumerate(sentences) if end > span_start), None)
    if own is None:
        first, last = span_start, span_end
    else:
        first = sentences[max(0, own - 1)][0]
        last = next((end for start, end in sentences[own:] if end >= span_end), span_end)
    first = min(first, span_start)
    last = max(last, span_end)
    return text[first:span_start], text[span_start:span_end], text[span_end:last]


def pair_ids(
    question: list[int],
    before: list[int],
    span: list[int],
    after: list[int],
    ids: dict[str, int],
    max_length: int,
) -> tuple[list[int], int]:
    """[CLS] question [SEP] before [open] span [close] after [SEP], cut to `max_length`: the
    span and the words nearest it are kept. Returns the ids and where the second segment
    starts."""
    question = question[:MAX_QUESTION_PIECES]
    span = span[:MAX_SPAN_PIECES]
    room = max(0, max_length - len(question) - len(span) - 5)
    after = after[: min(MAX_AFTER_PIECES, room)]
    room -= len(after)
    before = before[len(before) - room :] if room > 0 else []
    head = [ids["cls"], *question, ids["sep"]]
    return [
        *head, *before, ids["open"], *span, ids["close"], *after, ids["sep"]
    ], len(head)  # fmt: skip


class Verifier:
    """The ONNX verifier with its tokenizer; thread-safe (one run at a time)."""

    def __init__(self, session: Any, tokenizer: Any, settings: dict[str, Any]) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.max_length = int(settings.get("max_length", 128))
        self.ids = {
            "cls": tokenizer.token_to_id("[CLS]"),
            "sep": tokenizer.token_to_id("[SEP]"),
            "open": tokenizer.token_to_id(SPAN_OPEN),
            "close": tokenizer.token_to_id(SPAN_CLOSE),
        }
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls, model_dir: Path = MODEL_DIR, model_path: Path | None = None, check: bool = True
    ) -> Verifier:
        """Load the shipped model, checking its sha256 (`check=False` and `model_path` are
        for the training script's own fp32 export)."""
        from qa.reader_model import load_shipped_model

        session, tokenizer, settings = load_shipped_model(
            model_dir, SETTINGS_NAME, MODEL_NAME, "verifier", "scripts/train_verifier.py",
            model_path=model_path, check=check,
        )  # fmt: skip
        return cls(session, tokenizer, settings)

    def encode(
        self, question: str, proposals: Sequence[tuple[str, str, str]]
    ) -> list[tuple[list[int], int]]:
        """Each proposal (before, span, after; `proposal_parts`) as model input ids with
        the start of its second segment."""
        texts = [question] + [part for proposal in proposals for part in proposal]
        encoded = [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]
        q = encoded[0]
        rows = []
        for i in range(len(proposals)):
            before, span, after = encoded[1 + 3 * i : 4 + 3 * i]
            rows.append(pair_ids(q, before, span, after, self.ids, self.max_length))
        return rows

    def logits(self, question: str, proposals: Sequence[tuple[str, str, str]]) -> list[float]:
        """How likely each proposal answers the question, as a logit (0: even odds)."""
        import numpy as np

        if not proposals:
            return []
        logits = []
        # one model run a proposal: int8 activations are scaled over everything in a run, and
        # a proposal's logit must not depend on which others are read beside it
        for ids, second in self.encode(question, proposals):
            input_ids = np.asarray([ids], dtype=np.int64)
            types = np.zeros_like(input_ids)
            types[0, second:] = 1
            with self._lock:
                (out,) = self.session.run(
                    None,
                    {
                        "input_ids": input_ids,
                        "attention_mask": np.ones_like(input_ids),
                        "token_type_ids": types,
                    },
                )
            logits.append(float(out.reshape(-1)[0]))
        return logits


_shared: Verifier | None = None
_shared_lock = threading.Lock()


def shared_verifier() -> Verifier:
    """The shipped verifier, loaded once per process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Verifier.load(Path(os.environ.get("QA_VERIFIER_DIR") or MODEL_DIR))
        return _shared
