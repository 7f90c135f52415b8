"""ComfyUI entry point of the neural style transfer pack (the engine is nst_core/, the nodes nodes/).

ComfyUI registers the nodes through the V3 `comfy_entrypoint`; a module that also exported V1
NODE_CLASS_MAPPINGS would switch that path off.
"""

from .nodes import comfy_entrypoint

# the editor extension that shows a node's report on the node (nodes/web/nst_report.js)
WEB_DIRECTORY = "./nodes/web"

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
