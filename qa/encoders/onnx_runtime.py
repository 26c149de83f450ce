"""ONNX Runtime encoders for BERT mean-pooling models: backends "onnx" and "onnx-int8".

The model is exported once from its own weights (torch.onnx over transformers' BertModel,
whose graph ONNX Runtime fuses into its attention / layer-norm / GELU kernels) and, for
"onnx-int8", quantised dynamically to int8 with per-channel weights. The files live in
`$XDG_CACHE_HOME/qa/onnx/<weights sha256>-v<EXPORT_VERSION>/` next to a `.sha256` file each;
a file that is missing, does not match its hash or does not load is exported again.

Encoding needs only onnxruntime, tokenizers and numpy: an index built with an ONNX backend
answers questions without importing torch. Exporting needs torch and transformers (both
installed with sentence-transformers) and takes a few seconds, once per model and machine.

The int8 configuration follows the CPU: with VNNI (AVX-512 VNNI, AVX-VNNI or AMX) signed
8-bit weights at full range; x86 without VNNI gets 7-bit weights (`reduce_range`, which
avoids the u8s8 saturation of AVX2/AVX-512 without VNNI); other architectures full range.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.atomic import atomic_write
from qa.encoders.files import cache_dir, sha256_of
from qa.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

EXPORT_VERSION = 1
"""Bump when the exported graph or the quantisation recipe changes: old files are ignored."""
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


@dataclass(frozen=True)
class QuantConfig:
    """How `onnx-int8` quantises on this CPU."""

    name: str
    reduce_range: bool


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def quant_config(flags: frozenset[str] | None = None, machine: str | None = None) -> QuantConfig:
    """The int8 recipe for this CPU (never one it cannot run: all are plain ONNX Runtime)."""
    flags = cpu_flags() if flags is None else flags
    machine = (machine or platform.machine()).lower()
    if machine in {"x86_64", "amd64", "i386", "i686", "x86"}:
        if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
            return QuantConfig("x86-vnni", reduce_range=False)
        if "avx512f" in flags:
            return QuantConfig("x86-avx512", reduce_range=True)
        if "avx2" in flags:
            return QuantConfig("x86-avx2", reduce_range=True)
        return QuantConfig("x86", reduce_range=True)
    return QuantConfig(machine or "cpu", reduce_range=False)


def model_file(model_dir: Path, weights_sha256: str, quantized: bool) -> Path:
    """The exported (and, if asked, quantised) model, made now if missing or corrupt."""
    folder = cache_dir() / "onnx" / f"{weights_sha256[:16]}-v{EXPORT_VERSION}"
    fp32 = folder / "model.onnx"
    int8 = folder / f"model-int8-{quant_config().name}.onnx"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder / ".lock"):
            if quantized:
                if not _intact(int8):
                    if not _intact(fp32):
                        _export(model_dir, fp32)
                    _quantize(fp32, int8)
                return int8
            if not _intact(fp32):
                _export(model_dir, fp32)
            return fp32
    except ModelError:
        raise
    except Exception as exc:  # export tooling failures become one clear line
        raise ModelError(f"cannot export {model_dir.name} to ONNX in {folder}: {exc}") from exc


def discard(path: Path) -> None:
    """Forget a cached file that failed to load, so that the next call exports it again."""
    for victim in (path, _hash_file(path)):
        with contextlib.suppress(FileNotFoundError):
            victim.unlink()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _hash_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _intact(path: Path) -> bool:
    try:
        expected = _hash_file(path).read_text().strip()
        return bool(expected) and sha256_of(path) == expected
    except OSError:
        return False


def _publish(tmp: Path, path: Path) -> None:
    """Move a finished file into place, then its hash (a crash leaves no valid pair)."""
    digest = sha256_of(tmp)
    with contextlib.suppress(FileNotFoundError):
        _hash_file(path).unlink()
    os.replace(tmp, path)
    atomic_write(_hash_file(path), digest + "\n")


def _temp_path(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def _export(model_dir: Path, path: Path) -> None:
    import warnings

    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertModel

    # "eager" attention: the matmul + softmax pattern that ONNX Runtime fuses into its own
    # attention kernel
    bert = BertModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.long)
    tmp = _temp_path(path)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
            torch.onnx.export(
                TokenEmbeddings(bert),
                (sample, sample, torch.zeros_like(sample)),
                str(tmp),
                input_names=list(INPUTS),
                output_names=["token_embeddings"],
                dynamic_axes={
                    name: {0: "batch", 1: "length"} for name in (*INPUTS, "token_embeddings")
                },
                opset_version=OPSET,
                dynamo=False,
            )
        _publish(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _quantize(source: Path, path: Path) -> None:
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    config = quant_config()
    tmp = _temp_path(path)
    quant_logger = logging.getLogger()
    level = quant_logger.level
    quant_logger.setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
    try:
        quantize_dynamic(
            str(source),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=config.reduce_range,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        _publish(tmp, path)
    finally:
        quant_logger.setLevel(level)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class OnnxMiniLM:
    """The same computation as `qa.encoders.minilm.MiniLM`, run by ONNX Runtime.

    A single text (a question) runs on one session using every core. Many texts (a build) run
    one text a call on a second, single-threaded session, one call per core at a time from a
    thread pool (ONNX Runtime releases the GIL): more chunks a second than batches on all
    threads (docs/scale.md), since nothing is padded and no thread waits for another inside
    a call. One text a call also makes the int8 vectors independent
    of batching (activations are quantised per call).
    """

    def __init__(self, model_dir: Path, weights_sha256: str, max_length: int, quantized: bool):
        from qa.encoders.minilm import load_tokenizer

        self.tokenizer = load_tokenizer(model_dir, max_length)
        self.threads = cores()
        path = model_file(model_dir, weights_sha256, quantized)
        try:
            self.session = session(path, self.threads)
        except Exception:
            # a cached file that matches its hash but does not load (an onnxruntime upgrade
            # that reads it differently, say): export it again, once
            discard(path)
            path = model_file(model_dir, weights_sha256, quantized)
            try:
                self.session = session(path, self.threads)
            except Exception as exc:
                raise ModelError(f"{path}: ONNX Runtime cannot load it: {exc}") from exc
        self.path = path
        self._single: Any = None
        self._lock = threading.Lock()

    def encode_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None, batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """`encode_batch_spans` over `texts` in batches of `batch_size`, one batch per core
        at a time."""
        from qa.encoders.minilm import in_batches

        workers = min(self.threads, -(-len(texts) // batch_size))
        if workers <= 1:
            return in_batches(self.encode_batch_spans, texts, spans, batch_size)
        with self._lock:
            if self._single is None:
                self._single = session(self.path, 1)
        single = self._single

        def encode_batch(
            batch: list[str], batch_spans: list[list[tuple[int, int]]] | None
        ) -> tuple[np.ndarray, list[np.ndarray]]:
            return self._run(single, batch, batch_spans)

        with ThreadPoolExecutor(workers, thread_name_prefix="qa-onnx") as executor:
            return in_batches(encode_batch, texts, spans, batch_size, executor.map)

    def encode_batch_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embeddings of whole texts, and of character spans inside them (see `pool`)."""
        return self._run(self.session, texts, spans)

    def _run(
        self, session: Any, texts: list[str], spans: list[list[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        import numpy as np

        from qa.encoders.minilm import pool

        encodings = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        tokens = session.run(None, feeds)[0]
        return pool(tokens, encodings, spans)


def cores() -> int:
    # a Ray worker (num_cpus=1) or a batch system says how many threads one process may use
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def session(path: Path, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError("the onnx backends need onnxruntime (pip install onnxruntime)") from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # idle threads must not spin after a call: FAISS and SQLite run right after on a query
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
