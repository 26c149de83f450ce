"""Progress reports from long index operations (front ends name the stages: `qa.labels`), and
the report of what an update did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """A progress report from a long operation."""

    stage: str
    """`scan`, `chunk`, `model` (loading it), `embed`, `write` or `faiss`."""
    done: int
    total: int
    detail: str = ""


ProgressFn = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    pass


@dataclass
class UpdateReport:
    """What a build or update did (printed by `qa index update --json`)."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    renamed: int = 0
    unchanged: int = 0
    embedded_chunks: int = 0
    embedded_documents: int = 0
    article_count: int = 0
    """Articles the index holds after it (`articles` in the JSON)."""
    chunk_count: int = 0
    """Chunks the index holds after it (`chunks` in the JSON)."""
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    built: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The JSON of `qa index update --json`: the counts under their short names."""
        record = asdict(self)
        record["articles"] = record.pop("article_count")
        record["chunks"] = record.pop("chunk_count")
        return record

    def summary(self) -> str:
        """`3 added, 1 changed, 0 removed, 0 renamed`"""
        return (
            f"{self.added:,} added, {self.changed:,} changed, {self.removed:,} removed, "
            f"{self.renamed:,} renamed"
        )
