"""Output caching across runs of one executor, apart from execution (ComfyUI's caching).

A node's outputs are reused when its signature is unchanged: its class, its IS_CHANGED value,
its literal inputs and the signatures of the nodes that feed it (so a change upstream re-runs
everything below). A value that cannot be compared (NaN from IS_CHANGED, an object) makes the
node, and everything below it, run every time.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Optional

from .graph import is_link

__all__ = ["OutputCache", "UNCACHEABLE", "hashable"]

UNCACHEABLE = object()


def hashable(value: Any) -> Any:
    """A hashable, type-tagged form of a literal input (or UNCACHEABLE)."""
    if value is None or isinstance(value, (bool, int, str)):
        return (type(value).__name__, value)
    if isinstance(value, float):
        return UNCACHEABLE if math.isnan(value) else ("float", value)
    if isinstance(value, (list, tuple)):
        items = tuple(hashable(v) for v in value)
        return UNCACHEABLE if any(i is UNCACHEABLE for i in items) else ("list", items)
    if isinstance(value, Mapping):
        items = tuple((str(k), hashable(v)) for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
        return UNCACHEABLE if any(i[1] is UNCACHEABLE for i in items) else ("dict", items)
    return UNCACHEABLE


def _signature(prompt: Mapping, nid: str, node_class: Any, changed: Any, upstream: Mapping) -> Optional[tuple]:
    changed = hashable(changed)
    if changed is UNCACHEABLE:
        return None
    node = prompt[nid]
    parts = [node["class_type"], changed]
    hidden = (node_class.INPUT_TYPES().get("hidden") or {}).values()
    if getattr(node_class, "NOT_IDEMPOTENT", False) or "UNIQUE_ID" in hidden:
        parts.append(("node_id", nid))
    inputs = node.get("inputs") or {}
    for name in sorted(inputs):
        value = inputs[name]
        if is_link(value):
            key = upstream.get(value[0])
            if key is None:
                return None
            parts.append((name, "link", key, int(value[1])))
        else:
            item = hashable(value)
            if item is UNCACHEABLE:
                return None
            parts.append((name, item))
    return tuple(parts)


class OutputCache:
    """{signature: (output lists, ui dict)} of the nodes of earlier runs."""

    def __init__(self):
        self._entries: dict = {}

    def signatures(self, prompt: Mapping, order: Iterable[str], node_classes: Mapping,
                   is_changed: Callable[[str], Any]) -> dict:
        """{node id: signature or None (never cached)} for the nodes in `order` (dependencies first)."""
        keys: dict = {}
        for nid in order:
            node_class = node_classes[prompt[nid]["class_type"]]
            keys[nid] = _signature(prompt, nid, node_class, is_changed(nid), keys)
        return keys

    def keep_only(self, keys: Iterable) -> None:
        """Forget the entries a run does not use (ComfyUI keeps one result per node too)."""
        used = {k for k in keys if k is not None}
        self._entries = {k: v for k, v in self._entries.items() if k in used}

    def get(self, key: Optional[tuple]) -> Optional[tuple]:
        return self._entries.get(key) if key is not None else None

    def put(self, key: Optional[tuple], entry: tuple) -> None:
        if key is not None:
            self._entries[key] = entry

    def clear(self) -> None:
        self._entries.clear()

    def forget_classes(self, class_types: Iterable[str]) -> None:
        """Forget the entries of nodes of these classes (a signature starts with the class name)."""
        drop = set(class_types)
        self._entries = {k: v for k, v in self._entries.items() if k[0] not in drop}
