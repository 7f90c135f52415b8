"""The example photos and paintings bundled with the engine (public domain / CC0, see SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
DEFAULT_CONTENT = "content_chelsea.png"
DEFAULT_STYLE = "style_starry_night.jpg"


def examples_dir() -> Path:
    return EXAMPLES_DIR


def example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES_DIR.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def example_path(name: str) -> Path:
    path = EXAMPLES_DIR / name
    if name not in example_names():
        raise FileNotFoundError(f"no example image {name!r}; examples: {', '.join(example_names())}")
    return path
