"""The runner's node interface: nodes written in the shape of ComfyUI's V3 nodes, without ComfyUI.

A node class describes itself once, with data the runner owns (`NodeSpec`, `Input`, `Output`), and
works through classmethods named as in V3: `spec()` (V3: define_schema), `execute(**inputs)`,
optionally `validate_inputs(**inputs)` and `fingerprint_inputs(**inputs)`. `execute` returns its
output values, as a tuple or as a `NodeResult` that also carries what the node shows in the editor
(`ui`, e.g. {"text": [report]}).

Inside ComfyUI the pack turns each spec into an `io.Schema` (nodes/comfy_v3.py); here `v1_view`
gives the executor the V1 calling convention it already speaks (INPUT_TYPES, RETURN_TYPES, FUNCTION,
VALIDATE_INPUTS, IS_CHANGED), the way ComfyUI itself runs V3 classes through V1-compatible
properties generated from their schema. Plain V1 classes (the core stand-ins) pass through as they are.
"""
from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

__all__ = ["Input", "Output", "NodeSpec", "NodeResult", "is_spec_node", "v1_view", "runnable", "missing_modules"]


@dataclass(frozen=True)
class Input:
    """One input. `type` is a type name ("INT", "IMAGE", "NST_VGG", ...) or, for a combo, the choices;
    `options` are the widget's keys as ComfyUI names them (default, min, max, step, round, tooltip,
    control_after_generate)."""

    name: str
    type: Any
    options: Mapping[str, Any] = field(default_factory=dict)
    optional: bool = False

    @property
    def choices(self) -> Optional[list]:
        return list(self.type) if isinstance(self.type, (list, tuple)) else None


@dataclass(frozen=True)
class Output:
    name: str
    type: str
    tooltip: Optional[str] = None


@dataclass(frozen=True)
class NodeSpec:
    """What a node is: its id (stored in saved workflows: permanent), labels, inputs in widget order
    (saved workflows store widget values by position), outputs, and the Python modules it needs
    ({module: what to install}) so a missing optional dependency is reported before anything runs."""

    node_id: str
    display_name: str
    category: str
    description: str = ""
    inputs: tuple = ()
    outputs: tuple = ()
    output_node: bool = False
    experimental: bool = False
    requires: Mapping[str, str] = field(default_factory=dict)

    def input_types(self) -> dict:
        """The V1 INPUT_TYPES dict: required inputs, then optional ones, each in declaration order."""
        types: dict = {"required": {}}
        for item in self.inputs:
            kind = item.choices if item.choices is not None else item.type
            types.setdefault("optional" if item.optional else "required", {})[item.name] = (kind, dict(item.options))
        return types


class NodeResult(tuple):
    """A node's output values (a tuple: unpacks like one) plus what it shows in the editor."""

    ui: dict

    def __new__(cls, *values: Any, ui: Optional[dict] = None):
        result = super().__new__(cls, values)
        result.ui = dict(ui or {})
        return result


def is_spec_node(node_class: Any) -> bool:
    return callable(getattr(node_class, "spec", None)) and callable(getattr(node_class, "execute", None))


def missing_modules(node_class: Any) -> dict:
    """{module: what to install} for the modules a node needs that cannot be imported here."""
    node = getattr(node_class, "NODE", node_class)        # a spec node's V1 view runs the node itself
    needs = dict(node.spec().requires) if is_spec_node(node) else {}
    return {module: hint for module, hint in needs.items() if importlib.util.find_spec(module) is None}


@functools.lru_cache(maxsize=None)
def v1_view(node: type) -> type:
    """The V1 class the executor runs for a spec node; INPUT_TYPES asks spec() each time (file lists
    such as the VGG weights change while the process runs)."""
    spec = node.spec()

    def run(self, **inputs):
        result = node.execute(**inputs)
        return {"result": tuple(result), "ui": getattr(result, "ui", None) or {}}

    attrs = {
        "__doc__": spec.description,
        "NODE": node,
        "SPEC": spec,
        "INPUT_TYPES": classmethod(lambda cls: node.spec().input_types()),
        "RETURN_TYPES": tuple(o.type for o in spec.outputs),
        "RETURN_NAMES": tuple(o.name for o in spec.outputs),
        "OUTPUT_TOOLTIPS": tuple(o.tooltip for o in spec.outputs),
        "OUTPUT_NODE": spec.output_node,
        "EXPERIMENTAL": spec.experimental,
        "CATEGORY": spec.category,
        "DESCRIPTION": spec.description,
        "FUNCTION": "run",
        "run": run,
    }
    if callable(getattr(node, "validate_inputs", None)):
        attrs["VALIDATE_INPUTS"] = node.validate_inputs        # bound: its argument names pick the inputs
    if callable(getattr(node, "fingerprint_inputs", None)):
        attrs["IS_CHANGED"] = node.fingerprint_inputs
    return type(spec.node_id, (), attrs)


def runnable(node_classes: Mapping[str, Any]) -> dict:
    """The classes the executor runs: spec nodes as their V1 view, V1 classes unchanged."""
    return {name: v1_view(cls) if is_spec_node(cls) else cls for name, cls in node_classes.items()}
