"""ComfyUI nodes over nst_core, and (in headless/) the runner that runs saved workflows without ComfyUI.

Only our NST nodes are exported here; the runner's stand-ins for ComfyUI's core nodes
(LoadImage, SaveImage, ...) live in headless/core_nodes.py and never reach ComfyUI.
"""

from ._bootstrap import ensure_engine

ensure_engine()

from . import explore_nodes, nst_nodes

# every node module's classes, in the order the add-node menu lists them
NODE_CLASS_MAPPINGS = {**nst_nodes.NODE_CLASS_MAPPINGS, **explore_nodes.NODE_CLASS_MAPPINGS}
NODE_DISPLAY_NAME_MAPPINGS = {**nst_nodes.NODE_DISPLAY_NAME_MAPPINGS, **explore_nodes.NODE_DISPLAY_NAME_MAPPINGS}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
