"""Progress reports from long index operations (front ends name the stages: `qa.labels`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


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
