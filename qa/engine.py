"""The question-answering core every front end uses: open an index, ask, get a `Result`.

    engine = Engine.open(Path("index"))
    result = engine.ask("Who led the purge?")

The encoder is the one the index was built with (never another model's vectors). It loads
lazily, so a front end can show itself first and call `engine.warm_up()` in a worker.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.answers import Result
from qa.extractor import AnswerExtractor
from qa.index import IndexReader, IndexStatus, Overview, StoredArticle, check_encoder
from qa.retrieval import Filters, Passage, Retriever
from qa.story import story_subject

if TYPE_CHECKING:
    from qa.encoders import Encoder


class Engine:
    """Retrieval and reading over one index."""

    def __init__(
        self,
        index: IndexReader,
        encoder: Encoder,
        *,
        passage_weights: dict[str, float] | None = None,
        extractor_options: dict[str, Any] | None = None,
    ) -> None:
        """`passage_weights` and `extractor_options` (keywords of `AnswerExtractor`) replace
        the fitted passage ranking and reading settings: for the tools that fit them
        (`scripts/fit_weights.py`)."""
        check_encoder(index.settings, encoder)
        self.index = index
        self.encoder = encoder
        self.retriever = Retriever(index, encoder, weights=passage_weights)
        self.extractor = AnswerExtractor(index, **(extractor_options or {}))
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        index_dir: Path,
        encoder: Encoder | None = None,
        *,
        passage_weights: dict[str, float] | None = None,
        extractor_options: dict[str, Any] | None = None,
    ) -> Engine:
        index = IndexReader(index_dir)
        if encoder is None:
            from qa.encoders import load_encoder

            encoder = load_encoder(index.settings.model, index.settings.backend)
        return cls(
            index, encoder, passage_weights=passage_weights, extractor_options=extractor_options
        )

    def warm_up(self) -> None:
        """Load the models and the FAISS index now, so the first question is fast."""
        self.encoder.load()
        self.extractor.model  # noqa: B018 - loads the reader
        if self.extractor.verify:
            self.extractor.verifier  # noqa: B018 - loads the verifier
        self.index.faiss  # noqa: B018 - loads it
        self.retriever.encode_query("warm up")

    def ask(
        self,
        question: str,
        *,
        n: int = 3,
        k: int = 20,
        filters: Filters | None = None,
        query: str | None = None,
        abstain: bool = True,
    ) -> Result:
        """Answer `question`; `query` (a rewritten follow-up) is what gets searched."""
        question = " ".join(question.split())
        # "What happened to Ring?" asks for a story: the lead of the article it is about
        # (unless a follow-up was rewritten into another query)
        standalone = query is None or " ".join(query.split()) == question
        subject = story_subject(question) if standalone else None
        search_text = subject or query or question
        # sqlite3 connections and the model are shared: one question at a time, and one
        # read transaction for all of it (an update committing meanwhile is not half seen).
        with self._lock, self.index.snapshot():
            passages = self._search(search_text, k, filters)
            if not passages and filters and self.retriever.allowed_chunks(filters) == []:
                reason = f"no article matches the filter {filters.describe()}"
                return Result(
                    question=question, query=search_text, not_found=True, answers=(), reason=reason
                )
            result = self._read(question, subject, passages, search_text, n, abstain)
            if result.not_found and filters and result.reason is None:
                result = self._filtered_out(result, search_text, k, filters, subject, n)
            return result

    def _read(
        self,
        question: str,
        subject: str | None,
        passages: list[Passage],
        query: str,
        n: int,
        abstain: bool = True,
    ) -> Result:
        """The reader's answer: the story's lead for a story question, else spans."""
        if subject is not None:
            return self.extractor.story(question, subject, passages, query=query)
        return self.extractor.read(question, passages, query=query, n=n, abstain=abstain)

    def _filtered_out(
        self, result: Result, text: str, k: int, filters: Filters, subject: str | None, n: int
    ) -> Result:
        """A "not found" under a filter that hides an answer says so: asked without the
        filter, the question is answered, and the filter left out that many of the passages
        closest to it. Where the whole corpus is silent, it stays the corpus's silence."""
        import dataclasses

        everything = self._search(text, k, None)
        if self._read(result.question, subject, everything, text, n).not_found:
            return result
        inside = {p.chunk_id for p in result.passages}
        hidden = sum(1 for p in everything if p.chunk_id not in inside)
        reason = (
            f"the filter {filters.describe()} hides what may answer it (it leaves out {hidden} "
            f"of the {len(everything)} passages closest to the question)"
        )
        return dataclasses.replace(result, reason=reason)

    def search(self, text: str, *, k: int = 20, filters: Filters | None = None) -> list[Passage]:
        """The retrieval step of `ask` alone: the ranked passages."""
        with self._lock, self.index.snapshot():
            return self._search(" ".join(text.split()), k, filters)

    def read(
        self, question: str, passages: list[Passage], *, n: int = 3, abstain: bool = True
    ) -> Result:
        """The reading step of `ask` alone, over `passages` (from `search`): for the tools
        that time or score the two steps apart (`qa eval`)."""
        with self._lock, self.index.snapshot():
            return self.extractor.read(" ".join(question.split()), passages, n=n, abstain=abstain)

    def _search(self, text: str, k: int, filters: Filters | None) -> list[Passage]:
        return self.retriever.search(text, k=k, filters=filters)

    def article(self, article_id: str) -> StoredArticle | None:
        """An indexed article with its full body (for showing a citation in context)."""
        with self._lock, self.index.snapshot():
            return self.index.article(article_id)

    def status(self) -> IndexStatus:
        """What the index holds now (an update committed since it was opened included)."""
        with self._lock, self.index.snapshot():
            return self.index.status()

    def overview(self, recent: int = 3) -> Overview:
        """What an empty chat shows: size, date range and the latest headlines."""
        with self._lock, self.index.snapshot():
            return self.index.overview(recent)

    def starter_questions(self, count: int = 3, tried: int = 10) -> list[str]:
        """Questions an empty chat can suggest: 'What is the story behind "<headline>"?' for
        the latest headlines, each kept only when its answer cites the story it names (of
        the `tried` latest, the first `count` that do)."""
        overview = self.overview(tried)
        with self._lock, self.index.snapshot():
            documents = self.index.documents(set(overview["recent_docs"]))
        starters: list[str] = []
        for title, doc_id in zip(overview["recent_titles"], overview["recent_docs"]):
            if len(starters) >= count:
                break
            question = f"What is the story behind “{title}”?"
            result = self.ask(question, n=1)
            refs = {article.ref for article in documents[doc_id].articles}
            if result.answers and result.answers[0].cites(refs):
                starters.append(question)
        return starters

    def close(self) -> None:
        self.index.close()
