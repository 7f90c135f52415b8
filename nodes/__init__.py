"""ComfyUI nodes over nst_core, and (in headless/) the runner that runs saved workflows without ComfyUI.

Only our NST nodes are exported here; the runner's stand-ins for ComfyUI's core nodes
(LoadImage, SaveImage, ...) live in headless/core_nodes.py and never reach ComfyUI.
"""

from ._bootstrap import ensure_engine

ensure_engine()

from .nst_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
