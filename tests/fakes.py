"""A small deterministic encoder for fast tests: hashed bags of words, no model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from qa.encoders import ProgressCallback


class HashEncoder:
    """Implements the `Encoder` protocol; similar texts (shared words) get similar vectors."""

    name = "test/hash-encoder"
    backend = "fake"
    weights_sha256 = None
    dimension = 64
    max_word_pieces = 256

    def __init__(self, fail_after: int | None = None) -> None:
        self.encoded = 0
        self.calls = 0
        self.fail_after = fail_after

    def load(self) -> None:
        pass

    def count_word_pieces(self, texts: list[str]) -> list[int]:
        return [len(text.split()) + 2 for text in texts]

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            if self.fail_after is not None and self.encoded >= self.fail_after:
                raise RuntimeError("injected encoder failure")
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
            self.encoded += 1
        if progress is not None:
            progress(len(texts))
        return out


class Factory:
    """An encoder factory that counts how often it was asked for an encoder."""

    def __init__(self, encoder: HashEncoder | None = None) -> None:
        self.encoder = encoder or HashEncoder()
        self.calls = 0

    def __call__(self, existing: object) -> HashEncoder:
        self.calls += 1
        return self.encoder
