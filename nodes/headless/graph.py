"""Graph helpers shared by the converter, validation, cache and executor (each defined once here).

Links (`["<node id>", <output index>]`), input specs (`("INT", {"min": 0})`), the two type rules
(the backend's when a prompt is validated, the editor's when it decides a bypass), output nodes
and the dependency order. The order is computed without recursion: a chain of thousands of
nodes must not hit Python's recursion limit.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

__all__ = [
    "is_link",
    "node_title",
    "node_label",
    "spec_type_and_options",
    "input_info",
    "types_match",
    "types_connectable",
    "output_nodes",
    "id_sort_key",
    "execution_order",
]


def is_link(value: Any) -> bool:
    """ComfyUI's is_link: ["<node id>", <output index>]."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], (int, float)) and not isinstance(value[1], bool))


def node_title(node: Mapping) -> Optional[str]:
    """The title an API node carries in `_meta` (None when it has none)."""
    meta = node.get("_meta") if isinstance(node, Mapping) else None
    return meta.get("title") if isinstance(meta, Mapping) else None


def node_label(node_id: str, node: Mapping) -> str:
    """'13 (ToyShow)' or '8 (SaveImage 'Result')': a node as messages name it."""
    class_type, title = node.get("class_type"), node_title(node)
    return f"{node_id} ({class_type}{f' {title!r}' if title and title != class_type else ''})"


def spec_type_and_options(spec: Any) -> tuple:
    """(type, options) of one INPUT_TYPES entry: ("INT", {...}), (["a", "b"],), "IMAGE", ..."""
    if isinstance(spec, (list, tuple)) and spec:
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
        return spec[0], opts
    return spec, {}


def input_info(class_types: Mapping, name: str) -> tuple:
    """(type, category, options) of an input of INPUT_TYPES(), or (None, None, None)."""
    for category in ("required", "optional", "hidden"):
        section = class_types.get(category) or {}
        if name in section:
            spec = section[name]
            if category == "hidden":
                return spec, category, {}
            typ, opts = spec_type_and_options(spec)
            return typ, category, opts
    return None, None, None


def types_match(received: Any, expected: Any) -> bool:
    """The backend's rule (validate_node_input): equal (honouring __ne__ overrides such as "*"),
    or overlapping "A,B" lists."""
    if not received != expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return bool(got & want)


def types_connectable(a: Any, b: Any) -> bool:
    """The editor's rule (LiteGraph's isValidConnection): equal, a wildcard, or overlapping
    comma lists, case-insensitive. Used where the editor decides (bypassed nodes)."""
    if a in ("*", "", 0, None) or b in ("*", "", 0, None) or a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    sa = {t.strip().lower() for t in a.split(",")}
    sb = {t.strip().lower() for t in b.split(",")}
    return bool(sa & sb)


def id_sort_key(node_id: str) -> tuple:
    """Numeric ids in numeric order, then the others by name."""
    return (0, int(node_id), "") if str(node_id).isdigit() else (1, 0, str(node_id))


def output_nodes(prompt: Mapping, node_classes: Mapping) -> list:
    """Ids of the nodes whose class has OUTPUT_NODE = True, sorted."""
    ids = [nid for nid, node in prompt.items()
           if getattr(node_classes.get(node.get("class_type")), "OUTPUT_NODE", False) is True]
    return sorted(ids, key=id_sort_key)


def _linked_sources(node: Any) -> list:
    """Ids of the nodes that feed `node`, in input-name order (one per linked input)."""
    inputs = node.get("inputs") if isinstance(node, Mapping) else None
    if not isinstance(inputs, Mapping):
        return []
    return [inputs[name][0] for name in sorted(inputs) if is_link(inputs[name])]


def execution_order(prompt: Mapping, roots: list) -> tuple:
    """(order, cycles): the roots' ancestors in dependency order, and any cycles found.

    Depth-first from the roots in the given order, inputs in name order, so the order is
    deterministic. Each cycle is a list of node ids [a, b, ..., a]. Iterative: the depth of
    the graph is not limited by the interpreter's stack.
    """
    order, cycles, state = [], [], {}
    for root in roots:
        if root not in prompt or state.get(root) == "done":
            continue
        state[root] = "active"
        path = [root]                                   # the active chain, root first
        stack = [iter(_linked_sources(prompt[root]))]   # the unvisited inputs of each node on it
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                nid = path.pop()
                state[nid] = "done"
                order.append(nid)
                continue
            if child not in prompt or state.get(child) == "done":
                continue
            if state.get(child) == "active":
                cycles.append(path[path.index(child):] + [child])
                continue
            state[child] = "active"
            path.append(child)
            stack.append(iter(_linked_sources(prompt[child])))
    return order, cycles
