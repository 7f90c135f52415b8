"""Where the engine keeps files it derives (dequantized default weights, activation statistics)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

_cache_dir: Path | None = None


def set_cache_dir(path) -> None:
    """Use `path` for derived files (ComfyUI points this at models/vgg)."""
    global _cache_dir
    _cache_dir = Path(path).expanduser() if path else None


def cache_dir() -> Path:
    """set_cache_dir(), else $NST_CACHE_DIR, else the platform's user cache folder (platformdirs:
    ~/.cache/nst_core on Linux, ~/Library/Caches/nst_core on macOS, %LOCALAPPDATA%\\nst_core\\Cache on
    Windows)."""
    if _cache_dir is not None:
        return _cache_dir
    if os.environ.get("NST_CACHE_DIR"):
        return Path(os.environ["NST_CACHE_DIR"]).expanduser()
    return Path(platformdirs.user_cache_dir("nst_core", appauthor=False))
