"""Command-line values for a workflow's inputs: `NODE.INPUT=VALUE` (--set) and the node it names.

Shared by --set and the fan-out options (--sweep, --inputs-node), so a node is found the same way
everywhere (by id, else by its unique title) and every message names the option it came from.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from .graph import input_info, node_title

__all__ = ["OverrideError", "parse_value", "split_target", "parse_override", "find_node", "check_input",
           "set_input", "apply_overrides"]


class OverrideError(ValueError):
    """A --set / --sweep / --inputs-node argument is malformed or names no node/input."""


def parse_value(raw: str) -> Any:
    """VALUE is JSON if it parses, else the string itself; a JSON list is a list value, not a link."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        value = raw
    if isinstance(value, list) and not (len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)):
        value = {"__value__": value}  # a list value, not a link
    return value


def split_target(text: str, option: str = "--set") -> tuple:
    """"NODE.INPUT=REST" -> (node ref, input name, REST)."""
    target, sep, raw = text.partition("=")
    ref, dot, name = target.rpartition(".")
    if not sep or not dot or not ref.strip() or not name.strip():
        raise OverrideError(f"{option} {text!r}: expected NODE.INPUT={'VALUE' if option == '--set' else 'V1,V2,...'} "
                            "(NODE = node id or title)")
    return ref.strip(), name.strip(), raw


def parse_override(text: str) -> tuple:
    """"NODE.INPUT=VALUE" -> (node ref, input name, value); VALUE is JSON if it parses."""
    ref, name, raw = split_target(text, "--set")
    return ref, name, parse_value(raw)


def find_node(prompt: Mapping, ref: str, option: str = "--set") -> str:
    """The id of the node `ref` names: its id, else its title when exactly one node has it."""
    if ref in prompt:
        return ref
    matches = [nid for nid, node in prompt.items() if node_title(node) == ref]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise OverrideError(f"{option}: title {ref!r} matches several nodes ({', '.join(matches)}); use the node id")
    known = ", ".join(f"{nid} ({node_title(n) or n.get('class_type')})" for nid, n in prompt.items())
    raise OverrideError(f"{option}: no node with id or title {ref!r}; nodes: {known}")


def check_input(prompt: Mapping, nid: str, name: str, node_classes: Mapping[str, Any], option: str = "--set") -> None:
    """Refuse an input the node's class does not declare (unknown classes are left to validation)."""
    node_class = node_classes.get(prompt[nid].get("class_type"))
    if node_class is None:
        return
    types = node_class.INPUT_TYPES()
    _, category, _ = input_info(types, name)
    if category not in ("required", "optional"):
        valid = list(types.get("required") or {}) + list(types.get("optional") or {})
        raise OverrideError(f"{option}: node {nid} ({prompt[nid]['class_type']}) has no input {name!r}; "
                            f"inputs: {', '.join(valid)}")


def set_input(prompt: dict, nid: str, name: str, value: Any, option: str = "--set") -> None:
    """prompt[nid].inputs[name] = value, refusing a node whose 'inputs' is not an object."""
    inputs = prompt[nid].setdefault("inputs", {})
    if not isinstance(inputs, dict):
        raise OverrideError(f"{option}: node {nid}'s 'inputs' is not an object in the workflow file")
    inputs[name] = value


def apply_overrides(prompt: dict, overrides: list, node_classes: Mapping[str, Any]) -> None:
    """Apply "NODE.INPUT=VALUE" strings to an API graph in place."""
    for text in overrides or []:
        ref, name, value = parse_override(text)
        nid = find_node(prompt, ref)
        check_input(prompt, nid, name, node_classes)
        set_input(prompt, nid, name, value)
