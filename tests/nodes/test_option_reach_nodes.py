"""Every engine option (nst_core.settings.OPTIONS) is a node input somewhere, or is listed with its reason
in nodes/base.py NOT_ON_NODES."""

from __future__ import annotations

from nst_core.settings import OPTIONS

from comfyui_nst import nodes
from comfyui_nst.nodes.base import NOT_ON_NODES


def reachable_from_nodes(options=OPTIONS) -> dict[str, list[str]]:
    """option -> the node inputs that carry it"""
    reach: dict[str, list[str]] = {}
    for node in nodes.NODES:
        for entry in node.spec().inputs:
            option = node.OPTION_INPUTS.get(entry.name, entry.name)
            if option in options:
                reach.setdefault(option, []).append(f"{node.NODE_ID}.{entry.name}")
    return reach


def unplaced(options=OPTIONS) -> list[str]:
    reach = reachable_from_nodes(options)
    return [name for name in options if name not in reach and name not in NOT_ON_NODES]


def test_every_option_is_a_node_input_or_listed_with_a_reason():
    reach = reachable_from_nodes()
    assert not unplaced(), f"options no node input carries and NOT_ON_NODES does not explain: {unplaced()}"
    assert all(reason.strip() for reason in NOT_ON_NODES.values())
    # the list stays honest: nothing in it is in fact on a node, and everything in it is an engine option
    assert not set(NOT_ON_NODES) & set(reach) and set(NOT_ON_NODES) <= set(OPTIONS)


def test_an_option_added_without_a_node_input_is_caught():
    fake = dict(OPTIONS)
    fake["brand_new_option"] = OPTIONS["steps"]
    assert unplaced(fake) == ["brand_new_option"]
