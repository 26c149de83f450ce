"""End to end with the real bundled model (loads in seconds): CLI build, update, status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.encoders import DEFAULT_MODEL, SentenceTransformersEncoder, TorchEncoder
from qa.errors import ModelError
from qa.index import IndexReader
from tests.conftest import run_qa

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def encoder() -> TorchEncoder:
    return TorchEncoder()


def test_bundled_weights_are_verified(encoder: TorchEncoder) -> None:
    assert encoder.name == DEFAULT_MODEL
    assert encoder.weights_sha256 == (
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    )
    assert encoder.dimension == 384 and encoder.max_word_pieces == 256


def test_mismatched_weights_are_refused(encoder: TorchEncoder) -> None:
    tampered = TorchEncoder()
    tampered._expected_sha256 = "0" * 64
    with pytest.raises(ModelError, match="not the official all-MiniLM-L6-v2"):
        tampered.load()


def test_encode_is_normalised_float32_in_input_order(encoder: TorchEncoder) -> None:
    texts = ["short", "a much longer sentence about North Korean military officers", "x y"]
    vectors = encoder.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(vectors, one_by_one, atol=1e-5)
    related = encoder.encode(["soldiers discharged from the army", "quarterly profit rose"])
    assert float(vectors[1] @ related[0]) > float(vectors[1] @ related[1])


def test_cli_build_status_update_add(
    capsys: pytest.CaptureFixture[str],
    seed_corpus: Path,
    tmp_path: Path,
    bbc: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = tmp_path / "index"
    code, _, err = run_qa(capsys, "index", "status", "--index", str(index))
    assert code == 1 and "qa index build" in err and err.count("\n") == 1

    code, out, _ = run_qa(
        capsys, "index", "build", "--corpus", str(seed_corpus), "--index", str(index), "--json"
    )
    assert code == 0
    built = json.loads(out)
    assert built["built"] and built["articles"] == 1 and built["embedded_chunks"] >= 3

    with IndexReader(index) as reader:
        for sentences, blob, vector in reader.conn.execute(
            "SELECT sentences, sentence_vectors, vector FROM chunks"
        ):
            matrix = np.frombuffer(blob, dtype=np.float16).reshape(len(json.loads(sentences)), 384)
            assert np.allclose(np.linalg.norm(matrix.astype(np.float32), axis=1), 1.0, atol=1e-2)
            # a sentence vector lies close to its chunk's vector
            assert (
                float((matrix.astype(np.float32) @ np.frombuffer(vector, np.float32)).max()) > 0.5
            )

    code, out, _ = run_qa(capsys, "index", "status", "--index", str(index), "--json")
    status = json.loads(out)
    for key in ("articles", "chunks", "model", "dimension", "faiss", "built_at", "updated_at",
                "corpus", "size_bytes", "backend"):  # fmt: skip
        assert key in status
    assert status["model"] == DEFAULT_MODEL and status["dimension"] == 384
    assert status["corpus"] == str(seed_corpus.resolve())

    # nothing changed: the corpus is remembered, nothing is embedded
    code, out, _ = run_qa(capsys, "index", "update", "--index", str(index), "--json")
    update = json.loads(out)
    assert code == 0 and update["embedded_chunks"] == 0 and update["unchanged"] == 1
    for key in ("added", "changed", "removed", "unchanged", "embedded_chunks", "skipped",
                "seconds"):  # fmt: skip
        assert key in update

    # qa add copies the file into the index's own corpus (not ./corpus) and embeds only it
    monkeypatch.delenv("QA_CORPUS", raising=False)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "corpus").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    new_article = tmp_path / "incoming" / "profits.txt"
    new_article.parent.mkdir()
    shutil.copy(bbc / "business" / "001.txt", new_article)
    code, out, _ = run_qa(
        capsys, "add", str(new_article), "--index", str(index), "--to", "imported", "--json"
    )
    assert code == 0
    added = json.loads(out)
    assert added["copied"] == 1 and added["index"]["added"] == 1
    assert (seed_corpus / "imported" / "profits.txt").read_bytes() == new_article.read_bytes()
    with IndexReader(index) as reader:
        chunks = reader.conn.execute(
            "SELECT count(*) FROM chunks c JOIN articles a ON a.doc_id = c.doc_id "
            "WHERE a.path = 'imported/profits.txt'"
        ).fetchone()[0]
        assert added["index"]["embedded_chunks"] == chunks

        # the real model finds the seed's purge passage for a purge question
        vector = TorchEncoder().encode(["purge of military officers"])[0]
        best = reader.search_dense(vector, 1)[0][0]
        title = reader.conn.execute(
            "SELECT d.title FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ?",
            (best,),
        ).fetchone()[0]
        assert title.startswith("N.Korea Purges")
    assert not any((elsewhere / "corpus").iterdir())

    # a build without --corpus rebuilds the index's own corpus too
    code, out, _ = run_qa(capsys, "index", "build", "--index", str(index), "--json")
    rebuilt = json.loads(out)
    assert code == 0 and rebuilt["articles"] == 2 and rebuilt["embedded_chunks"] > 0
    code, out, _ = run_qa(capsys, "index", "status", "--index", str(index), "--json")
    assert json.loads(out)["corpus"] == str(seed_corpus.resolve())


def test_cli_add_refuses_unusable_file(
    capsys: pytest.CaptureFixture[str], seed_corpus: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01binary")
    index = tmp_path / "index"
    code, _, err = run_qa(
        capsys, "add", str(bad), "--corpus", str(seed_corpus), "--index", str(index), "-q"
    )
    assert code == 1
    assert "binary file" in err
    assert not (seed_corpus / "bad.txt").exists()


def test_plain_torch_minilm_matches_sentence_transformers(
    encoder: TorchEncoder,
) -> None:
    texts = [
        "hello world",
        "North Korea is apparently purging military officers with ties to defectors.",
        "word " * 400,  # longer than the window: both truncate the same way at 256 pieces
        "Café naïve résumé — “quotes” £5",
    ]
    ours = encoder.encode(texts, batch_size=2)
    assert encoder._runner is not None, "the bundled model runs on qa.encoders.minilm"
    reference = SentenceTransformersEncoder().model.encode(texts, normalize_embeddings=True)
    assert np.abs(ours - reference).max() < 1e-5


def test_loading_the_bundled_model_does_not_import_transformers(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from qa.encoders import load_encoder\n"
        "e = load_encoder(None, 'torch'); e.load(); e.encode(['x'])\n"
        "assert 'transformers' not in sys.modules and 'sentence_transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_ctrl_c_while_the_model_is_exported_exits_130_and_leaves_no_cache_file(
    tmp_path: Path, bbc: Path
) -> None:
    """Ctrl+C during the first export of the encoder (an empty cache): one line, exit 130,
    and no half-written model in the cache that a later run would trust."""
    import os
    import signal
    import subprocess
    import sys
    import time

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number in range(1, 4):
        (corpus / f"{number}.txt").write_bytes(
            (bbc / "business" / f"{number:03d}.txt").read_bytes()
        )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "index", "build", "--corpus", str(corpus),
         "--index", str(tmp_path / "index")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # a test run started in the background inherits an ignored SIGINT: restore it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    # interrupt once the export is under way: its temporary file is in the cache
    deadline = time.monotonic() + 120
    while not list((tmp_path / "cache").rglob("*.tmp")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("qa: interrupted")
    from qa.encoders import sha256_of

    cache = tmp_path / "cache"
    assert not list(cache.rglob("*.tmp")), "a partial export was left"
    for model in cache.rglob("*.onnx"):  # what was published whole, with its hash
        recorded = model.with_name(model.name + ".sha256").read_text().strip()
        assert recorded == sha256_of(model)
    assert not (tmp_path / "index" / "store.sqlite").exists() or "nothing was changed" in err
