"""Embedding on a Ray cluster: `qa index build --engine ray`.

The driver scans and chunks as always (cheap); only the embedding, which is what costs, goes
to the cluster. The chunk texts are cut into windows of `window` chunks; each window is a Ray
Data dataset mapped (`map_batches`) by a pool of `EmbedWorker` actors, each of which loads the
index's encoder once (`num_cpus=1`, one ONNX thread: one worker per CPU). Vectors, and the
per-sentence vectors where the encoder gives them, come back keyed by chunk position and in
bounded batches (`iter_batches`), so the driver holds only the arrays it will commit.

Nothing about the commit changes: `sync_index` writes the store in one transaction after all
vectors are back, so a failed or interrupted cluster job leaves the previous index as it was.

Ray is an optional extra (`pip install 'qa[cluster]'`) imported only here, only when used.
Workers need the same `qa` installed: the bundled model travels in the package, and each
worker checks that its weights are the index's (sha256) before it embeds anything.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa.errors import QAError

if TYPE_CHECKING:
    import numpy as np

    from qa.encoders import Encoder, ProgressCallback

ENGINES = ("local", "ray")
INSTALL_HINT = "pip install 'qa[cluster]' (Ray Data)"
WINDOW = 50_000
"""Chunks per Ray dataset: bounds what the driver sends and receives at once."""
BATCH = 64
"""Chunks per `map_batches` call: one progress step, small enough to spread over workers."""

EncoderLoader = Callable[[], "Encoder"]


class EmbedWorker:
    """A Ray Data actor: loads the encoder once, then embeds batches of chunk texts."""

    def __init__(self, loader: EncoderLoader, weights_sha256: str | None) -> None:
        # each actor holds one CPU (num_cpus=1): one encoder thread (ONNX Runtime, torch)
        os.environ["OMP_NUM_THREADS"] = "1"
        self.encoder = loader()
        if weights_sha256 and self.encoder.weights_sha256 != weights_sha256:
            raise QAError(
                f"this worker's {self.encoder.name} weights (sha256 "
                f"{(self.encoder.weights_sha256 or 'unknown')[:12]}...) are not the index's "
                f"({weights_sha256[:12]}...): install the same qa on every worker"
            )
        self.encoder.load()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        texts = [str(text) for text in batch["text"]]
        spans = [[tuple(pair) for pair in json.loads(item)] for item in batch["spans"]]
        from qa.encoders import SpanEncoder

        sentence_vectors = None
        if isinstance(self.encoder, SpanEncoder):
            # the backend's own batch size: int8 ONNX reads one text a call, since padding
            # would change its dynamic quantisation (and the vectors, by up to 1 %)
            vectors, sentence_vectors = self.encoder.encode_with_spans(texts, spans)
        else:
            vectors = self.encoder.encode(texts)
        blobs = [
            b"" if sentence_vectors is None else sentence_vectors[i].astype(np.float16).tobytes()
            for i in range(len(texts))
        ]
        return {
            "position": np.asarray(batch["position"], dtype=np.int64),
            "vector": np.ascontiguousarray(vectors, dtype=np.float32),
            "sentences": np.array(blobs, dtype=object),
        }


@dataclass
class RayEmbedder:
    """Embeds chunk texts on a Ray cluster; called by `sync_index` in place of the encoder.

    `address`: None starts (or reuses) a local Ray; "auto" or "HOST:PORT" joins a cluster.
    `workers`: actors in the pool (default: the cluster's CPUs). `loader` builds the encoder
    on a worker (default: the index's model and backend, from `qa.encoders.load_encoder`).
    """

    address: str | None = None
    workers: int | None = None
    loader: EncoderLoader | None = None
    window: int = WINDOW
    batch: int = BATCH

    def embed(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        spans: Sequence[list[tuple[int, int]]],
        progress: ProgressCallback,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        import numpy as np

        ray = import_ray()
        self._connect(ray)
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        loader = self.loader or _default_loader(encoder.name, encoder.backend)
        vectors = np.empty((len(texts), encoder.dimension), dtype=np.float32)
        sentence_vectors: list[np.ndarray] = [vectors[:0]] * len(texts)
        any_sentences = False
        for start in range(0, len(texts), self.window):
            stop = min(len(texts), start + self.window)
            with warnings.catch_warnings():
                # `max_restarts` has no named parameter yet (pyproject pins ray < 2.64)
                warnings.simplefilter("ignore", DeprecationWarning)
                dataset = self._dataset(ray, texts, spans, start, stop, workers, loader, encoder)
            try:
                for out in dataset.iter_batches(batch_size=self.batch * 4, batch_format="numpy"):
                    positions = out["position"]
                    vectors[positions] = out["vector"]
                    for position, blob in zip(positions, out["sentences"]):
                        if blob:
                            any_sentences = True
                            sentence_vectors[position] = np.frombuffer(
                                blob, dtype=np.float16
                            ).reshape(-1, encoder.dimension)
                    progress(len(positions))
            except QAError:
                raise
            except Exception as exc:  # Ray wraps worker errors in its own types
                raise QAError(f"the Ray embedding job failed: {_first_line(exc)}") from exc
        return vectors, sentence_vectors if any_sentences else None

    def _dataset(
        self,
        ray: Any,
        texts: Sequence[str],
        spans: Sequence[list[tuple[int, int]]],
        start: int,
        stop: int,
        workers: int,
        loader: EncoderLoader,
        encoder: Encoder,
    ) -> Any:
        batches = -(-(stop - start) // self.batch)
        return ray.data.from_items(
            [
                {"position": i, "text": texts[i], "spans": json.dumps(list(spans[i]))}
                for i in range(start, stop)
            ],
            override_num_blocks=max(1, min(workers * 4, batches)),
        ).map_batches(
            EmbedWorker,
            fn_constructor_args=(loader, encoder.weights_sha256),
            batch_size=self.batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(workers, batches)),
            num_cpus=1,
            # A worker that fails fails the job, and the index stays as it was; restarting
            # it is not worth Ray's "E" log line for every pool (ray-project/ray#53727).
            max_restarts=0,
        )

    def _connect(self, ray: Any) -> None:
        for name in ("ray", "ray.data"):  # its INFO lines would interleave with qa's progress
            logging.getLogger(name).setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # qa shows its own
        context.verbose_stats_logs = False
        if ray.is_initialized():
            return
        check_reachable(self.address)
        try:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        except Exception as exc:
            where = self.address or "a local Ray"
            raise QAError(f"cannot start or reach {where}: {_first_line(exc)}") from exc


CONNECT_TIMEOUT_S = 10.0


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A "HOST:PORT" cluster address that nothing answers at is one clear error within
    `timeout` seconds: Ray itself retries "Failed to connect to GCS" without end."""
    if not address or address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise QAError(f"--ray-address {address!r}: expected HOST:PORT or auto")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise QAError(
            f"no Ray cluster at {address} ({reason} within {timeout:g} s); start one with "
            "`ray start --head` or give the address `ray status` shows"
        ) from None


def import_ray() -> Any:
    """`ray` with Ray Data, or a clear error saying how to install it."""
    try:
        import ray
        import ray.data  # the optional [data] part
    except ImportError as exc:
        raise QAError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


def _default_loader(model: str, backend: str) -> EncoderLoader:
    from functools import partial

    from qa.encoders import load_encoder

    return partial(load_encoder, model, backend)


_ERROR_LINE = re.compile(r"^\s*((?:\w+\.)*\w*(?:Error|Exception|Interrupt)): (.+)$", re.M)


def _first_line(exc: BaseException) -> str:
    """The worker's own error, without Ray's wrappers: Ray passes it on as traceback text,
    where it is the first "SomeError: message" line that is not one of Ray's own."""
    for match in _ERROR_LINE.finditer(str(exc)):
        name, message = match.group(1), match.group(2).strip()
        if not name.startswith("ray."):
            name = name.rsplit(".", 1)[-1]
            return (message if name == "QAError" else f"{name}: {message}")[:300]
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
