"""Files replaced whole or not at all."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write(path: Path, data: bytes | str) -> None:
    """`path` replaced by `data` (text is written as UTF-8) whole, or not at all: written to
    a temporary file beside it, synced, then renamed over it. No partial temporary file is
    left when the write fails (a full disk, an interruption)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
