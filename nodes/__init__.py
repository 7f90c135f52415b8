"""ComfyUI nodes over nst_core, and (in headless/) the runner that runs saved workflows without ComfyUI.

Each node is defined once (nodes/base.py NSTNode.spec + execute). ComfyUI gets them as V3 nodes through
`comfy_entrypoint` (comfy_v3.py, imported only inside ComfyUI); the headless runner reads NODES.
Only our NST nodes are listed here; the runner's stand-ins for ComfyUI's core nodes (LoadImage,
SaveImage, ...) live in headless/core_nodes.py and never reach ComfyUI.
"""

from ._bootstrap import ensure_engine

ensure_engine()

from . import explore_nodes, mask_nodes, nst_nodes, video_nodes

# in the order the add-node menu lists them
NODES = nst_nodes.NODES + video_nodes.NODES + mask_nodes.NODES + explore_nodes.NODES


def own_process() -> None:
    """Called by nst-run, which owns its process (never inside ComfyUI): runs with a memory cap may tune it."""
    from . import host

    host.own_process()


def comfy_entrypoint():
    """ComfyUI's V3 entry point: the ComfyExtension listing every node as an io.ComfyNode."""
    from .comfy_v3 import extension

    return extension(NODES)


__all__ = ["NODES", "comfy_entrypoint", "own_process"]
