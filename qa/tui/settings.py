"""Settings the chat keeps between runs, in `$XDG_CONFIG_HOME/qa/config.toml`.

    # ~/.config/qa/config.toml
    theme = "nord"

`QA_CONFIG_DIR` overrides the folder. The file is the user's: it is read and written with
tomlkit, which keeps its comments, order and other keys as they were; only the keys the
chat sets change. A file that cannot be read is left untouched (the chat says so and uses
the defaults); a value of the wrong type is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qa.atomic import atomic_write

KNOWN = {"theme": str}
"""The settings there are, with their types (anything else in the file is left alone)."""


def config_path() -> Path:
    override = os.environ.get("QA_CONFIG_DIR")
    if override:
        return Path(override) / "config.toml"
    from platformdirs import user_config_dir

    return Path(user_config_dir("qa", appauthor=False)) / "config.toml"


def _document(path: Path) -> Any:
    """The file as a tomlkit document (an empty one when there is no file); raises
    ValueError with a one-line reason when it cannot be read."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None


def read() -> tuple[dict[str, Any], str | None]:
    """The known settings of the file, and why the file could not be read (None if it
    could, or if there is none)."""
    try:
        document = _document(config_path())
    except ValueError as exc:
        return {}, str(exc)
    values = document.unwrap()
    return {k: v for k, v in values.items() if k in KNOWN and isinstance(v, KNOWN[k])}, None


def load() -> dict[str, Any]:
    return read()[0]


def save(**values: Any) -> str | None:
    """Set the known settings among `values` in the file, keeping the rest of it as written;
    never fails the app. Returns why nothing was written (an unreadable file is not
    replaced), or None."""
    path = config_path()
    try:
        document = _document(path)
    except ValueError as exc:
        return str(exc)
    for key, value in values.items():
        if key in KNOWN and isinstance(value, KNOWN[key]):
            document[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, document.as_string())
    except OSError as exc:
        return f"{path}: cannot be written ({exc.strerror or exc})"
    return None
