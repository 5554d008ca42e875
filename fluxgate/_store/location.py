"""Where the store is: a local SQLite file or a PostgreSQL database, from one setting.

``init(store=...)`` names it, else ``db_path=``, else ``$FLUXGATE_DB``, else
the SQLite file under ``$XDG_DATA_HOME``. A ``postgresql://`` URL selects
PostgreSQL; anything else is a path.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import ConfigurationError
from .postgres import is_postgres_url, mask_url

__all__ = ["describe_store", "resolve_store"]


def resolve_store(store: object = None, db_path: object = None) -> str | Path:
    """The store to use: a PostgreSQL URL (a str) or a SQLite file (a Path).

    Raises:
        ConfigurationError: Both ``store`` and ``db_path`` were given.
    """
    if store is not None and db_path is not None:
        msg = "pass either 'store' or 'db_path' (the older name of a SQLite store), not both."
        raise ConfigurationError(msg)
    chosen = store if store is not None else db_path
    if chosen is None:
        chosen = os.environ.get("FLUXGATE_DB", "").strip() or None
    if chosen is None:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "fluxgate" / "events.db"
    if is_postgres_url(chosen):
        return str(chosen).strip()
    return Path(os.fspath(chosen)).expanduser()  # type: ignore[call-overload]


def describe_store(store: str | Path) -> str:
    """The store as it may be shown: a URL with its password masked, or the file's path."""
    return mask_url(store) if isinstance(store, str) else str(store)
