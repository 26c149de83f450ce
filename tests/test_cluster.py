"""Embedding on Ray (`--engine ray`): the same index as in-process, failures change nothing,
and a clear error without Ray. A local Ray with two CPUs, as on a small cluster."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import tests.fakes
from qa.errors import QAError
from qa.index import IndexReader, sync_index
from tests.conftest import run_qa
from tests.fakes import Factory, HashEncoder

QUESTIONS = [
    "How much did the Japanese firm's profits rise?",
    "Who is the new chief executive?",
    "What did the government announce about the budget?",
]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray", reason="the [cluster] extra is not installed")
    pytest.importorskip("ray.data")
    # the workers unpickle the test encoders by value: tests/ is not installed on them
    ray.cloudpickle.register_pickle_by_value(tests.fakes)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def small_bbc(bbc: Path, tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "business").mkdir(parents=True)
    for path in sorted((bbc / "business").glob("*.txt"))[:12]:
        (root / "business" / path.name).write_bytes(path.read_bytes())
    return root


def _chunks(index: Path) -> dict[tuple[str, int], tuple[int, int, np.ndarray, bytes | None]]:
    with sqlite3.connect(index / "store.sqlite") as conn:
        return {
            (sha, ordinal): (start, end, np.frombuffer(vector, dtype=np.float32), sentences)
            for sha, ordinal, start, end, vector, sentences in conn.execute(
                "SELECT d.sha256, c.ordinal, c.char_start, c.char_end, c.vector, "
                "c.sentence_vectors FROM chunks c JOIN documents d ON d.id = c.doc_id"
            )
        }


@pytest.mark.model
def test_ray_build_equals_an_in_process_build(
    local_ray: None, small_bbc: Path, tmp_path: Path
) -> None:
    from qa.cluster import RayEmbedder
    from qa.encoders import encoder_factory
    from qa.engine import Engine

    local, on_ray = tmp_path / "local", tmp_path / "ray"
    sync_index(small_bbc, local, encoder_factory(None), full=True)
    report = sync_index(
        small_bbc, on_ray, encoder_factory(None), full=True, embedder=RayEmbedder(workers=2)
    )
    assert report.embedded_chunks > 12

    expected, got = _chunks(local), _chunks(on_ray)
    assert got.keys() == expected.keys()
    for key, (start, end, vector, sentences) in expected.items():
        assert got[key][:2] == (start, end)
        assert float(vector @ got[key][2]) >= 0.999
        other = got[key][3]
        assert sentences is not None and other is not None
        ours = np.frombuffer(sentences, dtype=np.float16).reshape(-1, vector.size)
        theirs = np.frombuffer(other, dtype=np.float16).reshape(-1, vector.size)
        cosines = (ours.astype(np.float32) * theirs.astype(np.float32)).sum(axis=1)
        assert cosines.min() >= 0.995  # float16 storage

    engines = [Engine.open(local), Engine.open(on_ray)]
    try:
        for question in QUESTIONS:
            a, b = (engine.ask(question, abstain=False) for engine in engines)
            assert [x.citations[0].char_start for x in a.answers] == [
                x.citations[0].char_start for x in b.answers
            ]
            assert [x.span for x in a.answers] == [x.span for x in b.answers]
    finally:
        for engine in engines:
            engine.close()


def test_a_failing_worker_leaves_the_previous_index_intact(
    local_ray: None, small_bbc: Path, tmp_path: Path
) -> None:
    from qa.cluster import RayEmbedder

    index = tmp_path / "index"
    factory = Factory(HashEncoder())
    sync_index(small_bbc, index, factory, full=True)
    with IndexReader(index) as reader:
        before = (reader.generation, reader.status()["chunks"])
    stored = _chunks(index)

    article = small_bbc / "business" / "new.txt"
    article.write_text("New article\n\nA firm said its profits rose by a tenth this year.\n")
    embedder = RayEmbedder(workers=2, loader=partial(HashEncoder, fail_after=0))
    with pytest.raises(QAError, match=r"Ray embedding job failed.*injected encoder failure"):
        sync_index(small_bbc, index, factory, embedder=embedder)
    with pytest.raises(QAError, match="Ray embedding job failed"):
        sync_index(small_bbc, index, factory, full=True, embedder=embedder)

    with IndexReader(index) as reader:
        assert (reader.generation, reader.status()["chunks"]) == before
        assert reader.check() == "ok"
    assert _chunks(index).keys() == stored.keys()

    # and a working cluster job then adds the article
    report = sync_index(
        small_bbc, index, factory, embedder=RayEmbedder(workers=2, loader=HashEncoder)
    )
    assert report.added == 1 and report.embedded_documents == 1


def test_engine_ray_without_ray_is_a_clear_error(
    small_bbc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    index = tmp_path / "index"
    code, _, err = run_qa(
        capsys, "index", "build", "--corpus", str(small_bbc), "--index", str(index),
        "--engine", "ray",
    )  # fmt: skip
    assert code != 0
    assert "--engine ray needs Ray" in err and "pip install 'qa[cluster]'" in err
    assert len(err.strip().splitlines()) == 1
    assert not (index / "store.sqlite").exists()


def test_ray_options_need_the_ray_engine(
    small_bbc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_qa(
        capsys, "index", "update", "--corpus", str(small_bbc), "--index", str(tmp_path / "i"),
        "--ray-workers", "2",
    )  # fmt: skip
    assert code == 2 and "--engine ray" in err


def test_a_ray_address_nothing_answers_at_is_one_line_in_bounded_time(
    small_bbc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket
    import time

    pytest.importorskip("ray")
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    started = time.monotonic()
    code, _, err = run_qa(
        capsys, "index", "build", "--corpus", str(small_bbc), "--index", str(tmp_path / "i"),
        "--engine", "ray", "--ray-address", f"127.0.0.1:{port}",
    )  # fmt: skip
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"no Ray cluster at 127.0.0.1:{port}" in err and "ray start --head" in err
    assert time.monotonic() - started < 30
