"""The store's schema as numbered migrations, the way sqlite-utils and llm keep theirs.

Each migration runs once, in order, in one transaction together with the record that it ran:
SQLite's `PRAGMA user_version` (in the file's header, so it commits or rolls back with the
migration) holds how many have run. A store written before the migrations were numbered has
user_version 0 and tables that may already be there: every migration is therefore written
to be a no-op where its change is already made (`IF NOT EXISTS`, a column looked up before it
is added). A new migration goes at the end of `MIGRATIONS`; none is ever edited or removed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator

from qa.text import sentence_stems

TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS files (
        path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL, problems TEXT NOT NULL DEFAULT '[]'
    )""",
    """CREATE TABLE IF NOT EXISTS documents (
        id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL, body TEXT NOT NULL, paragraphs TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS articles (
        id TEXT PRIMARY KEY, ref TEXT NOT NULL UNIQUE, path TEXT NOT NULL, record TEXT,
        doc_id INTEGER NOT NULL REFERENCES documents(id), title TEXT NOT NULL, byline TEXT,
        published TEXT, url TEXT, source TEXT, categories TEXT NOT NULL DEFAULT '[]'
    )""",
    "CREATE INDEX IF NOT EXISTS articles_path ON articles(path)",
    "CREATE INDEX IF NOT EXISTS articles_doc ON articles(doc_id)",
    "CREATE INDEX IF NOT EXISTS articles_published ON articles(published)",
    """CREATE TABLE IF NOT EXISTS chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL REFERENCES documents(id),
        ordinal INTEGER NOT NULL, char_start INTEGER NOT NULL, char_end INTEGER NOT NULL,
        token_count INTEGER NOT NULL, sentences TEXT NOT NULL, vector BLOB NOT NULL,
        sentence_vectors BLOB
    )""",
    "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id)",
)

KEYWORD_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "title, text, tokenize = 'porter unicode61 remove_diacritics 2')"
)
"""BM25 over each chunk's title and text. Derived from the chunks: a lost one is made again
and refilled when the store is opened for a write (`qa.index.schema.open_for_write`)."""


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back when anything
    (an error, Ctrl-C) leaves it early."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def m001_tables(conn: sqlite3.Connection) -> None:
    """Files, documents, articles, chunks with their vectors, the keyword table."""
    for statement in (*TABLES, KEYWORD_TABLE):
        conn.execute(statement)


def m002_chunk_stems(conn: sqlite3.Connection) -> None:
    """Each chunk's sentence stems, stored so that questions need not stem passages; filled
    in for the chunks already there."""
    if "stems" not in columns(conn, "chunks"):
        conn.execute("ALTER TABLE chunks ADD COLUMN stems TEXT")
    rows = conn.execute(
        "SELECT c.id, c.sentences, d.body FROM chunks c JOIN documents d ON d.id = c.doc_id "
        "WHERE c.stems IS NULL"
    ).fetchall()
    conn.executemany(
        "UPDATE chunks SET stems = ? WHERE id = ?",
        [
            (sentence_stems(body, [tuple(s) for s in json.loads(sentences)]), chunk_id)
            for chunk_id, sentences, body in rows
        ],
    )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (m001_tables, m002_chunk_stems)


def schema_version(conn: sqlite3.Connection) -> int:
    """How many of `MIGRATIONS` the store has had."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def pending(conn: sqlite3.Connection) -> int:
    """How many migrations the store still needs (0 for one written by a newer qa too)."""
    return max(0, len(MIGRATIONS) - schema_version(conn))


def migrate(conn: sqlite3.Connection) -> int:
    """Run the migrations the store has not had, each in a transaction of its own with its
    user_version; returns how many ran. A store from a newer qa (a higher user_version) is
    left alone: what it has beyond ours is no concern of this qa."""
    done = schema_version(conn)
    for number in range(done, len(MIGRATIONS)):
        with transaction(conn):
            MIGRATIONS[number](conn)
            conn.execute(f"PRAGMA user_version = {number + 1}")
    return max(0, len(MIGRATIONS) - done)
