"""Inside ComfyUI: each node's one definition (NSTNode.spec) as a V3 node of ComfyUI's own API.

Imported only by `comfy_entrypoint`, i.e. only inside ComfyUI, where `comfy_api` exists. The V3 class
inherits the pack's node class (ComfyUI calls execute / validate_inputs / fingerprint_inputs with the
V3 class as `cls`, so the node's helpers must be there) and adds `define_schema`, built from the spec,
and an `execute` that hands the node's ui (its report) to the editor.
"""

from __future__ import annotations

import functools
import logging

from comfy_api.latest import ComfyExtension, io

from .headless.node_spec import Input, NodeSpec, Output, missing_modules

log = logging.getLogger("comfyui_nst")

# V1 widget keys whose V3 keyword differs
_KEYWORDS = {"display": "display_mode", "forceInput": "force_input"}
_BUILT_IN = {"INT": io.Int, "FLOAT": io.Float, "STRING": io.String, "BOOLEAN": io.Boolean, "IMAGE": io.Image,
             "MASK": io.Mask}


@functools.lru_cache(maxsize=None)
def io_type(name: str):
    """ComfyUI's type for a type name; the pack's own types (NST_VGG, NST_TARGET) become typed sockets."""
    return _BUILT_IN.get(name) or io.Custom(name)


def v3_input(item: Input):
    options = {_KEYWORDS.get(key, key): value for key, value in item.options.items()}
    if item.choices is not None:
        return io.Combo.Input(item.name, options=item.choices, optional=item.optional, **options)
    return io_type(item.type).Input(item.name, optional=item.optional, **options)


def v3_output(item: Output):
    # no id: V3 wants output ids apart from input ids (NST Resize's image in and out); the name shows
    return io_type(item.type).Output(display_name=item.name, tooltip=item.tooltip)


def v3_schema(spec: NodeSpec) -> io.Schema:
    return io.Schema(node_id=spec.node_id, display_name=spec.display_name, category=spec.category,
                     description=spec.description, inputs=[v3_input(i) for i in spec.inputs],
                     outputs=[v3_output(o) for o in spec.outputs], is_output_node=spec.output_node,
                     is_experimental=spec.experimental)


def v3_node(node: type) -> type:
    """The io.ComfyNode class ComfyUI registers for a pack node class."""
    run = node.execute.__func__

    def define_schema(cls) -> io.Schema:
        return v3_schema(node.spec())          # asked again on every /object_info: file lists stay fresh

    def execute(cls, **inputs) -> io.NodeOutput:
        result = run(cls, **inputs)
        return io.NodeOutput(*result, ui=getattr(result, "ui", None) or None)

    return type(node.__name__, (node, io.ComfyNode), {
        "__module__": node.__module__, "__doc__": node.__doc__,
        "define_schema": classmethod(define_schema), "execute": classmethod(execute)})


class NSTExtension(ComfyExtension):
    def __init__(self, nodes: list):
        self.nodes = nodes

    async def get_node_list(self) -> list:
        return list(self.nodes)


def extension(nodes) -> NSTExtension:
    for node in nodes:          # said at start-up: ComfyUI's queue-time checks do not know of them
        for module, hint in missing_modules(node).items():
            log.warning("[NST] %s needs the Python module %r, which is not installed: %s",
                        node.spec().display_name, module, hint)
    return NSTExtension([v3_node(node) for node in nodes])
