"""qa: offline, extractive question answering over news articles, with exact citations.

Importing the package is cheap on purpose: heavy libraries (torch, sentence-transformers,
faiss, textual) are imported inside the functions that need them, so `qa --help` and the
small commands start in a fraction of a second.
"""

__version__ = "0.1.0"
