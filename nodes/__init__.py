"""ComfyUI nodes over nst_core, and the headless executor that runs saved workflows without ComfyUI.

Only our NST nodes are exported here; the executor's stand-ins for ComfyUI's core nodes
(LoadImage, SaveImage, ...) live in core_nodes.py and never reach ComfyUI.
"""

from ._bootstrap import ensure_engine

ensure_engine()

try:
    from .nst_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
except ImportError as exc:  # pragma: no cover - only while the nodes module is being written
    if getattr(exc, "name", "") and not str(exc.name).endswith("nst_nodes"):
        raise
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
