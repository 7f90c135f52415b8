"""Make the engine importable as `nst_core` when the pack runs from a ComfyUI custom_nodes folder.

ComfyUI imports this pack by its folder path without installing it, so `import nst_core` would fail.
We load the bundled nst_core/ by file location instead of adding the pack to sys.path, which could
shadow ComfyUI's own top-level `nodes` module.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ENGINE_DIR = Path(__file__).resolve().parent.parent / "nst_core"


def ensure_engine() -> None:
    if "nst_core" in sys.modules:
        return
    if importlib.util.find_spec("nst_core") is not None:
        return
    spec = importlib.util.spec_from_file_location(
        "nst_core", ENGINE_DIR / "__init__.py", submodule_search_locations=[str(ENGINE_DIR)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["nst_core"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["nst_core"]
        raise
