"""The Python API: `qa.open(index_dir)` returns an `Index` to ask, update and inspect.

The objects it returns are the ones the command line prints: `Result`, `Answer`, `Citation`
(`result.as_dict()` is the JSON of `qa ask --json`).
"""

from __future__ import annotations

import os
from pathlib import Path

from qa.answers import Result
from qa.chat import Turn
from qa.errors import QAError
from qa.index import (
    IndexReader,
    IndexStatus,
    UpdateReport,
    resolve_stored_corpus,
    sync_index,
)
from qa.retrieval import parse_filters


class Index:
    """An open index: questions, updates from its corpus, status. Close it (or use `with`)."""

    def __init__(
        self, index_dir: str | os.PathLike[str], corpus: str | os.PathLike[str] | None = None
    ) -> None:
        from qa.engine import Engine

        _check_path("index_dir", index_dir)
        if corpus is not None:
            _check_path("corpus", corpus)
        self.index_dir = Path(index_dir)
        self._closed = False
        self._engine = Engine.open(self.index_dir)
        stored = self._engine.index.meta.get("corpus")
        if corpus is not None:
            self.corpus: Path | None = Path(corpus)
        else:
            self.corpus = resolve_stored_corpus(stored, self.index_dir) if stored else None

    def ask(
        self,
        question: str,
        *,
        n: int = 3,
        since: str | None = None,
        until: str | None = None,
        source: str | None = None,
        abstain: bool = True,
    ) -> Result:
        """Answer one question: up to `n` quoted sentences with citations, or not found.

        `since` / `until` (`2006`, `2006-01` or `2006-01-31`) and `source` filter articles
        as `qa ask` does. Arguments of the wrong type raise TypeError, out of range
        ValueError, a closed index QAError."""
        _check_question(question, n, since, until, source)
        self._check_open()
        filters = parse_filters(since, until, source)
        return self._engine.ask(question, n=n, filters=filters, abstain=abstain)

    def chat(self) -> Chat:
        """A conversation over this index: its `ask` takes follow-ups ("How old is he?",
        "And in 2007?") as the chat does, rewriting them with the earlier turns."""
        self._check_open()
        return Chat(self)

    def _check_open(self) -> None:
        if self._closed:
            raise QAError(f"{self.index_dir}: this index was closed; open it again with qa.open")

    def update(self, *, allow_mass_removal: bool = False) -> UpdateReport:
        """Bring the index in line with its corpus (only new and changed articles are
        embedded); the next question sees the update. Removing more than half of the
        articles needs `allow_mass_removal=True`."""
        self._check_open()
        if self.corpus is None:
            raise QAError(f"{self.index_dir} does not record its corpus; pass corpus= to open")
        encoder = self._engine.encoder
        return sync_index(
            self.corpus,
            self.index_dir,
            lambda _: encoder,
            confirm_removal=lambda *_: allow_mass_removal,
        )

    def status(self) -> IndexStatus:
        """What `qa index status --json` shows."""
        with IndexReader(self.index_dir) as reader:
            return reader.status()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._engine.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Chat:
    """A conversation over an `Index` (`index.chat()`): `ask` answers a question with the
    earlier turns in mind; `turns` holds each question, the query searched and its result."""

    def __init__(self, index: Index) -> None:
        from qa.chat import Conversation

        self._index = index
        self._conversation = Conversation()

    @property
    def turns(self) -> list[Turn]:
        return list(self._conversation.turns)

    def ask(
        self,
        question: str,
        *,
        n: int = 3,
        since: str | None = None,
        until: str | None = None,
        source: str | None = None,
    ) -> Result:
        """As `Index.ask`, for a question that may follow up the earlier ones; the result's
        `query` is what was searched."""

        _check_question(question, n, since, until, source)
        self._index._check_open()
        filters = parse_filters(since, until, source)

        def ask_one(text: str, query: str | None = None) -> Result:
            return self._index._engine.ask(text, n=n, filters=filters, query=query)

        return self._conversation.ask(ask_one, question)

    def reset(self) -> None:
        """Forget the earlier turns: the next question starts a new conversation."""
        self._conversation.reset()


def _check_question(
    question: object, n: object, since: object, until: object, source: object
) -> None:
    """`ask`'s arguments: of the wrong type TypeError, out of range ValueError."""
    if not isinstance(question, str):
        raise TypeError(f"ask: question must be a str, not {type(question).__name__}")
    if not question.strip():
        raise ValueError("ask: the question is empty")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"ask: n must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"ask: n must be at least 1, not {n}")
    for name, value in (("since", since), ("until", until), ("source", source)):
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"ask: {name} must be a str such as '2006-01-31', not {type(value).__name__}"
            )


def _check_path(name: str, value: object) -> None:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"qa.open: {name} must be a path, not {type(value).__name__}")
