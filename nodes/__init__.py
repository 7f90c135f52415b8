"""ComfyUI nodes over nst_core, and (in headless/) the runner that runs saved workflows without ComfyUI.

Only our NST nodes are exported here; the runner's stand-ins for ComfyUI's core nodes
(LoadImage, SaveImage, ...) live in headless/core_nodes.py and never reach ComfyUI.
"""

from ._bootstrap import ensure_engine

ensure_engine()

from . import explore_nodes, mask_nodes, nst_nodes, video_nodes

# every node module's classes, in the order the add-node menu lists them
_MODULES = (nst_nodes, video_nodes, mask_nodes, explore_nodes)
NODE_CLASS_MAPPINGS = {name: cls for module in _MODULES for name, cls in module.NODE_CLASS_MAPPINGS.items()}
NODE_DISPLAY_NAME_MAPPINGS = {name: label for module in _MODULES
                              for name, label in module.NODE_DISPLAY_NAME_MAPPINGS.items()}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
