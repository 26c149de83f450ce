"""The onnx and onnx-int8 encoder backends: same vectors as torch, cache repair, CLI, no torch
on the query path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.encoders import OnnxEncoder, load_encoder, onnx_runtime
from qa.engine import Engine
from qa.errors import IndexMismatchError, ModelError
from tests.conftest import run_qa

pytestmark = pytest.mark.model

TEXTS = [
    "hello world",
    "North Korea is apparently purging military officers with ties to defectors.",
    "word " * 400,  # longer than the window: truncated at 256 pieces like torch
    "Café naïve résumé — “quotes” £5",
]
SPANS = [[(0, 5), (6, 11)], [(0, 11), (12, 75)], [(0, 9)], [(0, 4)]]


@pytest.fixture(scope="module")
def torch_vectors() -> tuple[np.ndarray, list[np.ndarray]]:
    vectors, spans = load_encoder(None, "torch").encode_with_spans(TEXTS, SPANS)  # type: ignore[attr-defined]
    return vectors, spans


@pytest.mark.parametrize(("backend", "floor"), [("onnx", 0.9999), ("onnx-int8", 0.97)])
def test_onnx_vectors_match_torch(
    torch_vectors: tuple[np.ndarray, list[np.ndarray]], backend: str, floor: float
) -> None:
    encoder = load_encoder(None, backend)
    vectors, spans = encoder.encode_with_spans(TEXTS, SPANS, batch_size=3)  # type: ignore[attr-defined]
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float((vectors * torch_vectors[0]).sum(axis=1).min()) > floor
    for ours, reference in zip(spans, torch_vectors[1]):
        assert ours.shape == reference.shape
        assert float((ours * reference).sum(axis=1).min()) > floor
    # batching changes a text's vector no more than the backend's own error (int8:
    # activations are quantised with one scale per batch, so neighbours matter a little)
    one = encoder.encode([TEXTS[1]])
    assert float(one[0] @ vectors[1]) > floor


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_many_texts_run_one_a_call_in_parallel_with_the_same_vectors(backend: str) -> None:
    encoder = load_encoder(None, backend)
    texts, spans = TEXTS * 3, SPANS * 3
    vectors, span_vectors = encoder.encode_with_spans(texts, spans)  # type: ignore[attr-defined]
    minilm = encoder._runner  # type: ignore[attr-defined]
    # a build's texts run on the single-threaded session, one call per core at a time
    assert (minilm._single is not None) == (minilm.threads > 1)
    for i, text in enumerate(texts):
        alone, alone_spans = minilm.encode_batch_spans([text], [spans[i]])  # a question's path
        assert np.allclose(alone[0], vectors[i], atol=1e-4), i
        assert np.allclose(alone_spans[0], span_vectors[i], atol=1e-4), i


def test_a_corrupt_cached_model_is_exported_again() -> None:
    encoder = OnnxEncoder(quantized=True)
    assert encoder.weights_sha256 is not None and encoder.path is not None
    path = onnx_runtime.model_file(encoder.path, encoder.weights_sha256, quantized=True)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a torn write
    repaired = onnx_runtime.model_file(encoder.path, encoder.weights_sha256, quantized=True)
    assert repaired == path and path.read_bytes() == good  # the export is deterministic
    onnx_runtime.discard(path)
    assert not path.exists()
    encoder.load()  # exports again
    assert path.is_file() and encoder.encode(["x"]).shape == (1, 384)


def test_onnx_backends_run_bert_models_only(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown encoder backend"):
        load_encoder(None, "tensorrt")
    not_bert = tmp_path / "model"
    not_bert.mkdir()
    (not_bert / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(ModelError, match="BERT mean-pooling models only"):
        load_encoder(str(not_bert), "onnx").load()


def test_cli_backend_is_recorded_used_for_queries_and_never_mixed(
    capsys: pytest.CaptureFixture[str], seed_corpus: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    code, _, _ = run_qa(
        capsys, "index", "build", "--corpus", str(seed_corpus), "--index", str(index),
        "--backend", "onnx-int8", "-q",
    )  # fmt: skip
    assert code == 0
    code, out, _ = run_qa(capsys, "index", "status", "--index", str(index), "--json")
    assert json.loads(out)["backend"] == "onnx-int8"
    assert json.loads((index / "manifest.json").read_text())["backend"] == "onnx-int8"

    # queries load the index's own backend
    engine = Engine.open(index)
    try:
        assert engine.encoder.backend == "onnx-int8"
        result = engine.ask("Who led the purge of North Korean officers?")
        assert not result.not_found and "Politburo" in result.answers[0].text
    finally:
        engine.close()
    # another backend's encoder is refused, not mixed in
    with pytest.raises(IndexMismatchError, match="onnx-int8"):
        Engine.open(index, load_encoder(None, "torch"))

    # an update keeps the backend; a build with another one re-embeds everything
    (seed_corpus / "chosun" / "second.txt").write_text("Second story\n\nA new paragraph here.\n")
    code, out, _ = run_qa(capsys, "index", "update", "--index", str(index), "--json")
    assert code == 0 and json.loads(out)["added"] == 1
    code, out, _ = run_qa(capsys, "index", "status", "--index", str(index), "--json")
    assert json.loads(out)["backend"] == "onnx-int8"
    code, out, _ = run_qa(
        capsys, "index", "build", "--corpus", str(seed_corpus), "--index", str(index),
        "--backend", "onnx", "--json",
    )  # fmt: skip
    rebuilt = json.loads(out)
    assert code == 0 and rebuilt["articles"] == 2
    assert rebuilt["embedded_chunks"] == rebuilt["chunks"]
    code, out, _ = run_qa(capsys, "index", "status", "--index", str(index), "--json")
    assert json.loads(out)["backend"] == "onnx"


def test_answering_from_an_onnx_index_does_not_import_torch(
    seed_corpus: Path, tmp_path: Path
) -> None:
    from qa.encoders import encoder_factory
    from qa.index import sync_index

    index = tmp_path / "index"
    sync_index(seed_corpus, index, encoder_factory(None, "onnx-int8"), full=True)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from qa.engine import Engine\n"
        f"engine = Engine.open(Path({str(index)!r}))\n"
        "result = engine.ask('Who led the purge of North Korean officers?')\n"
        "assert result.answers, result\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
