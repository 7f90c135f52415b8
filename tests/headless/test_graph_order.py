"""Execution order: iterative, and the same order (and cycles) as the recursive walk it replaced."""
import random

from comfyui_nst.nodes.headless.graph import execution_order, is_link, types_connectable, types_match


def _recursive_order(prompt, roots):
    """The depth-first walk the runner used before (recursive: limited by the interpreter's stack)."""
    order, cycles, state = [], [], {}

    def visit(nid, path):
        if state.get(nid) == "done" or nid not in prompt:
            return
        if state.get(nid) == "active":
            cycles.append(path[path.index(nid):] + [nid])
            return
        state[nid] = "active"
        inputs = prompt[nid].get("inputs") or {}
        for name in sorted(inputs):
            if is_link(inputs[name]):
                visit(inputs[name][0], path + [nid])
        state[nid] = "done"
        order.append(nid)

    for root in roots:
        visit(root, [])
    return order, cycles


def _random_graph(rng, n):
    prompt = {}
    for i in range(n):
        inputs = {}
        for k in range(rng.randint(0, 3)):
            src = rng.randrange(n)                    # any node: cycles happen
            inputs[f"in{k}"] = [str(src), 0] if rng.random() < 0.8 else 5
        if rng.random() < 0.1:
            inputs["missing"] = ["999", 0]
        prompt[str(i)] = {"class_type": "X", "inputs": inputs}
    return prompt


def test_same_order_and_cycles_as_the_recursive_walk():
    rng = random.Random(1234)
    for _ in range(300):
        prompt = _random_graph(rng, rng.randint(1, 25))
        roots = rng.sample(sorted(prompt), k=min(3, len(prompt))) + ["not-a-node"]
        assert execution_order(prompt, roots) == _recursive_order(prompt, roots)


def test_a_chain_of_5000_nodes():
    prompt = {"0": {"inputs": {}}}
    for i in range(1, 5000):
        prompt[str(i)] = {"inputs": {"x": [str(i - 1), 0]}}
    order, cycles = execution_order(prompt, ["4999"])
    assert order == [str(i) for i in range(5000)] and cycles == []
    prompt["0"]["inputs"]["x"] = ["4999", 0]
    order, cycles = execution_order(prompt, ["4999"])
    assert len(cycles) == 1 and cycles[0][0] == cycles[0][-1] == "4999" and len(cycles[0]) == 5001


def test_the_two_type_rules():
    # the backend's (validation): exact, or overlapping lists; "*" only through its __ne__
    assert types_match("INT,FLOAT", "FLOAT") and not types_match("*", "IMAGE") and not types_match("image", "IMAGE")
    # the editor's (bypass): wildcards and case-insensitive
    assert types_connectable("*", "IMAGE") and types_connectable("image", "IMAGE") and not types_connectable("INT", "IMAGE")
