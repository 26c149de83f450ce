"""Conversations kept between runs: a small SQLite file in the user's data folder.

The location follows the XDG base directory spec: `$XDG_DATA_HOME/qa/conversations.sqlite`
(`~/.local/share/qa/...` by default); `QA_DATA_DIR` overrides the folder. Each turn stores the
question, the query that was searched and the full answer structure (`Result.as_dict()`), so a
reopened conversation shows exactly what was answered then and follow-ups keep working.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from qa.answers import Result
from qa.chat import Turn

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, index_dir TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    number INTEGER NOT NULL, question TEXT NOT NULL, query TEXT NOT NULL,
    result TEXT NOT NULL, asked_at TEXT NOT NULL, PRIMARY KEY (conversation_id, number)
);
"""


def data_dir() -> Path:
    override = os.environ.get("QA_DATA_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qa"


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


@dataclass(frozen=True)
class ConversationInfo:
    id: int
    title: str
    index_dir: str
    created_at: str
    updated_at: str
    turns: int


class ConversationStore:
    """Save and reopen conversations. Every write is its own transaction."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / "conversations.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.moved_aside: Path | None = None
        """Where a damaged store was moved (a new one replaces it), for the UI to say."""
        try:
            self.conn = self._open()
        except sqlite3.DatabaseError:
            # the history is a convenience: a damaged file never keeps the chat from starting,
            # and it is kept, not deleted, for whoever wants to rescue it
            self.moved_aside = self.path.with_name(
                f"{self.path.name}.damaged-{dt.datetime.now():%Y%m%d-%H%M%S}"
            )
            os.replace(self.path, self.moved_aside)
            self.conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(SCHEMA)
            conn.execute("SELECT count(*) FROM turns").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self.conn.close()

    def start(self, title: str, index_dir: str) -> int:
        with self.conn:
            cursor = self.conn.execute(
                "INSERT INTO conversations(title, index_dir, created_at, updated_at) "
                "VALUES(?, ?, ?, ?)",
                (title[:200], index_dir, _now(), _now()),
            )
        return int(cursor.lastrowid or 0)

    def add_turn(self, conversation_id: int, turn: Turn) -> None:
        with self.conn:
            number = self.conn.execute(
                "SELECT coalesce(max(number), 0) + 1 FROM turns WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()[0]
            self.conn.execute(
                "INSERT INTO turns VALUES(?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    number,
                    turn.question,
                    turn.query,
                    json.dumps(turn.result.as_dict(), ensure_ascii=False),
                    _now(),
                ),
            )
            self.conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (_now(), conversation_id)
            )

    def recent(self, limit: int = 50, index_dir: str | None = None) -> list[ConversationInfo]:
        """The latest conversations with at least one turn, newest first (of one index's
        questions only, given `index_dir`)."""
        where, params = ("WHERE c.index_dir = ? ", (index_dir,)) if index_dir else ("", ())
        rows = self.conn.execute(
            "SELECT c.id, c.title, c.index_dir, c.created_at, c.updated_at, count(t.number) "
            f"FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id {where}"
            "GROUP BY c.id HAVING count(t.number) > 0 ORDER BY c.updated_at DESC, c.id DESC "
            "LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [ConversationInfo(*row) for row in rows]

    def get(self, conversation_id: int) -> ConversationInfo | None:
        row = self.conn.execute(
            "SELECT c.id, c.title, c.index_dir, c.created_at, c.updated_at, count(t.number) "
            "FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id "
            "WHERE c.id = ? GROUP BY c.id",
            (conversation_id,),
        ).fetchone()
        return ConversationInfo(*row) if row else None

    def turns(self, conversation_id: int) -> list[Turn]:
        rows = self.conn.execute(
            "SELECT question, query, result FROM turns WHERE conversation_id = ? ORDER BY number",
            (conversation_id,),
        ).fetchall()
        turns = []
        for question, query, stored in rows:
            try:
                result = Result.from_dict(json.loads(stored))
            except (ValueError, TypeError, KeyError, AttributeError):
                continue  # a damaged turn: the others still reopen
            turns.append(Turn(question, query, result))
        return turns


def conversation_markdown(
    turns: list[Turn], index_dir: str, filters: str | None = None, when: str | None = None
) -> str:
    """A conversation as Markdown (the chat's /export, `qa history export`): each turn's
    question, the query searched when it was rewritten, the answers with their citations
    numbered through the whole conversation as the chat numbers them."""
    from qa.batch import markdown_record, markdown_safe

    stamp = when or dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = [
        f"# qa conversation ({stamp})",
        "",
        f"Index: {markdown_safe(index_dir)}",
    ]
    if filters:
        header.append(f"Filter: {markdown_safe(filters)}")
    parts = ["\n".join(header) + "\n\n"]
    first = 1
    for number, turn in enumerate(turns, 1):
        record = turn.result.as_dict()
        record["question"] = turn.question  # as typed; the searched query follows it
        parts.append(markdown_record({"id": number, **record}, first_citation=first))
        first += sum(len(a["citations"]) for a in record["answers"])
        first += len(record.get("related", [])) if record.get("not_found") else 0
    return "".join(parts)
