"""What front ends (the CLI's progress lines, the chat) call things of the core."""

from __future__ import annotations

STAGES: dict[str, tuple[str, str]] = {
    "scan": ("Reading files", "files"),
    "chunk": ("Chunking", "articles"),
    "model": ("Loading model", ""),
    "embed": ("Embedding", "chunks"),
    "write": ("Writing store", ""),
    "faiss": ("Building FAISS", ""),
    "questions": ("Questions", "questions"),
}
"""What each progress stage is called in front ends, and the unit it counts."""
