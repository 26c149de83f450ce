"""qa: offline, extractive question answering over news articles, with exact citations.

    import qa

    with qa.open("index") as index:
        result = index.ask("Who led the purge?", since="2016-01-01")
        for answer in result.answers:
            print(answer.text, [c.path for c in answer.citations])

Importing the package is cheap on purpose: heavy libraries (torch, sentence-transformers,
faiss, textual) are imported inside the functions that need them, so `qa --help` and the
small commands start in a fraction of a second.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Answer", "Citation", "Index", "QAError", "Result", "__version__", "open"]

if TYPE_CHECKING:
    from qa.api import Index


def open(
    index_dir: str | os.PathLike[str] = "index", corpus: str | os.PathLike[str] | None = None
) -> Index:
    """Open the index at `index_dir` for questions (and updates from `corpus`, by default
    the corpus it was built from). See `qa.api.Index`."""
    from qa.api import Index

    return Index(index_dir, corpus)


def __getattr__(name: str) -> Any:
    # the answer contract and the API class, imported when first used
    if name in ("Answer", "Citation", "Result"):
        from qa import answers

        return getattr(answers, name)
    if name == "Index":
        from qa.api import Index

        return Index
    if name == "QAError":
        from qa.errors import QAError

        return QAError
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
