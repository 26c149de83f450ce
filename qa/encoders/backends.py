"""One encoder class a backend.

- `TorchEncoder`: BERT mean-pooling models (the bundled all-MiniLM-L6-v2) on plain torch
  (`qa.encoders.minilm`: seconds faster to start than sentence-transformers), with sentence
  vectors from the same forward pass.
- `OnnxEncoder`: the same models on ONNX Runtime, fp32 or int8 (`qa.encoders.onnx_runtime`),
  likewise with sentence vectors.
- `SentenceTransformersEncoder`: any other model, through sentence-transformers (no sentence
  vectors).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from qa.encoders.base import LocalEncoder, ProgressCallback, Spans

if TYPE_CHECKING:
    import numpy as np


class _MeanPoolingEncoder(LocalEncoder):
    """A local BERT mean-pooling model run by qa's own code; embeds spans too."""

    _runner: Any = None

    def encode_with_spans(
        self,
        texts: Sequence[str],
        spans: Spans,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Vectors of the texts and of the character spans inside each, from one pass."""
        return self._encode(texts, spans, batch_size, progress)

    def _encode_slice(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None, batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        vectors, span_vectors = self._runner.encode_spans(texts, spans, batch_size)
        return vectors, None if spans is None else span_vectors


class TorchEncoder(_MeanPoolingEncoder):
    backend = "torch"

    def _load(self) -> None:
        from qa.encoders.minilm import MiniLM

        assert self.path is not None
        self._runner = MiniLM(self.path, self.max_word_pieces)


class OnnxEncoder(_MeanPoolingEncoder):
    """`quantized`: the int8 model ("onnx-int8"), else fp32 ("onnx")."""

    def __init__(self, model: str | None = None, *, quantized: bool = True) -> None:
        super().__init__(model)
        self.quantized = quantized
        self.backend = "onnx-int8" if quantized else "onnx"

    def _load(self) -> None:
        from qa.encoders.onnx_runtime import OnnxMiniLM

        assert self.path is not None
        self._runner = OnnxMiniLM(
            self.path, str(self.weights_sha256), self.max_word_pieces, quantized=self.quantized
        )


class SentenceTransformersEncoder(LocalEncoder):
    """Any sentence-transformers model, on torch (local folders need no network)."""

    backend = "torch"

    def __init__(self, model: str | None = None, device: str = "cpu") -> None:
        super().__init__(model)
        self.device = device
        self._model: Any = None

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    def _load(self) -> None:
        if self.path is not None:
            # A local model needs no network; make sure nothing tries.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(self.path or self.name), device=self.device)

    def _model_dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def _model_max_length(self) -> int:
        return int(self.model.max_seq_length)

    def _model_word_pieces(self) -> Callable[[list[str]], list[int]]:
        hf = self.model.tokenizer
        return lambda texts: [len(hf(text, truncation=False)["input_ids"]) for text in texts]

    def _encode_slice(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None, batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        import numpy as np

        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32), None
