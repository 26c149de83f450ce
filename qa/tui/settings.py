"""Settings the chat keeps between runs, in `$XDG_CONFIG_HOME/qa/config.toml`.

    # ~/.config/qa/config.toml
    theme = "nord"

`QA_CONFIG_DIR` overrides the folder. The file is read with the standard library's TOML
reader; a missing or unreadable file means the defaults, and a bad value is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import tomllib

KNOWN = {"theme": str}
"""The settings there are, with their types (anything else in the file is left alone)."""


def config_path() -> Path:
    override = os.environ.get("QA_CONFIG_DIR")
    if override:
        return Path(override) / "config.toml"
    from platformdirs import user_config_dir

    return Path(user_config_dir("qa", appauthor=False)) / "config.toml"


def load() -> dict[str, Any]:
    try:
        data = tomllib.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    return {k: v for k, v in data.items() if k in KNOWN and isinstance(v, KNOWN[k])}


def save(**values: Any) -> None:
    """Write the known settings (merged with the file's); never fails the app."""
    settings = load()
    settings.update({k: v for k, v in values.items() if k in KNOWN})
    path = config_path()
    # flat `key = "string"` lines: a JSON string is a valid TOML basic string
    text = "".join(f"{key} = {json.dumps(value)}\n" for key, value in sorted(settings.items()))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("# qa chat settings\n" + text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
