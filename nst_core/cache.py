"""Where the engine keeps files it derives (dequantized default weights, activation statistics)."""

from __future__ import annotations

import os
from pathlib import Path

_cache_dir: Path | None = None


def set_cache_dir(path) -> None:
    """Use `path` for derived files (ComfyUI points this at models/vgg)."""
    global _cache_dir
    _cache_dir = Path(path).expanduser() if path else None


def cache_dir() -> Path:
    """set_cache_dir(), else $NST_CACHE_DIR, else the user cache folder."""
    if _cache_dir is not None:
        return _cache_dir
    if os.environ.get("NST_CACHE_DIR"):
        return Path(os.environ["NST_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nst_core"
