"""Validation before anything runs: every problem reported at once, per node and input."""
import pathlib

import pytest

from comfyui_nst.nodes.executor import Executor
from comfyui_nst.nodes.validation import Problem, ValidationError, execution_order, types_match, validate_prompt
from conftest import load_toy_nodes

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


_toys = load_toy_nodes


toys = _toys()
CLASSES, NAMES = toys.registry()


def _problems(prompt):
    with pytest.raises(ValidationError) as info:
        validate_prompt(prompt, CLASSES)
    return info.value


def _keyed(err):
    return {(p.node_id, p.input_name, p.type) for p in err.problems}


def test_all_input_problems_reported_at_once_and_nothing_runs(tmp_path):
    toys.reset()
    g = {
        "1": {"class_type": "ToyInt", "inputs": {"value": 500}},                       # > max
        "2": {"class_type": "ToyAdd", "inputs": {"a": ["1", 0]}},                        # b missing
        "3": {"class_type": "ToyBlend", "inputs": {"image": ["2", 0], "mode": "xor",     # INT into IMAGE, bad choice
                                                   "amount": -1}},                        # < min
        "4": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}},
        "5": {"class_type": "ToyImageSink", "inputs": {"images": ["3", 0]}},
        "6": {"class_type": "ToyShow", "inputs": {"value": ["42", 0]}},                   # missing node
        "7": {"class_type": "ToyShow", "inputs": {"value": ["1", 3]}},                    # missing slot
        "8": {"class_type": "ToyFlag", "inputs": {"flag": "false", "text": "t"}},         # not a boolean
        "9": {"class_type": "ToyShow", "inputs": {"value": ["8", 0]}},
        "10": {"class_type": "ToyShow", "inputs": {"value": "x1"}},                       # not an int
    }
    with pytest.raises(ValidationError) as info:
        Executor(CLASSES, output_dir=str(tmp_path)).run(g)
    err = info.value
    assert _keyed(err) == {
        ("1", "value", "value_bigger_than_max"),
        ("2", "b", "required_input_missing"),
        ("3", "image", "return_type_mismatch"),
        ("3", "mode", "value_not_in_list"),
        ("3", "amount", "value_smaller_than_min"),
        ("6", "value", "bad_linked_input"),
        ("7", "value", "bad_linked_input"),
        ("8", "flag", "invalid_input_type"),
        ("10", "value", "invalid_input_type"),
    }
    assert toys.CALLS == [] and list(tmp_path.iterdir()) == []
    text = str(err)
    assert text.startswith("workflow validation failed (9 problems):")
    assert "node 1 (ToyInt), input 'value': value 500 is bigger than the maximum 100" in text
    assert "node 6 (ToyShow), input 'value': linked to node 42, which does not exist" in text
    assert "gives INT, the input expects IMAGE" in text
    first = err.errors[0]
    assert set(first) >= {"node_id", "class_type", "input_name", "message"}
    assert err.node_errors()["3"]["class_type"] == "ToyBlend" and len(err.node_errors()["3"]["errors"]) == 3


def test_unknown_node_types_all_listed_with_the_other_problems():
    err = _problems({"1": {"class_type": "Nope", "inputs": {}}, "2": {"class_type": "AlsoNope", "inputs": {}},
                     "3": {"inputs": {}}, "4": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}},
                     "5": {"class_type": "ToyInt", "inputs": {"value": -101}},
                     "6": {"class_type": "ToyShow", "inputs": {"value": ["5", 0]}},
                     "7": {"class_type": "ToyShow", "inputs": []}})
    assert _keyed(err) == {("1", None, "invalid_prompt"), ("2", None, "invalid_prompt"), ("3", None, "invalid_prompt"),
                           ("5", "value", "value_smaller_than_min"), ("7", None, "invalid_prompt")}
    assert "unknown node type 'Nope'" in str(err)
    assert _problems({"1": "junk"}).problems[0].message == "node is not an object"


def test_no_output_node_and_empty_graph():
    err = _problems({"1": {"class_type": "ToyInt", "inputs": {"value": 1}}})
    assert err.problems == [Problem(None, None, None, err.problems[0].message, "prompt_no_outputs")]
    assert "no output node" in str(err)
    assert _problems({}).problems[0].type == "invalid_prompt"


def test_cycle_is_reported():
    g = {"1": {"class_type": "ToyAdd", "inputs": {"a": ["2", 0], "b": 1}},
         "2": {"class_type": "ToyAdd", "inputs": {"a": ["1", 0], "b": 1}},
         "3": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}}}
    err = _problems(g)
    assert [p.type for p in err.problems] == ["dependency_cycle"]
    assert "dependency cycle: 2 -> 1 -> 2" in str(err)


def test_unneeded_nodes_are_not_validated_but_needed_ones_are():
    g = {"1": {"class_type": "ToyInt", "inputs": {"value": 1}},
         "2": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}},
         "3": {"class_type": "ToyInt", "inputs": {"value": 999}}}  # feeds nothing: ComfyUI ignores it
    assert validate_prompt(g, CLASSES)["1"]["inputs"] == {"value": 1}


def test_coercion_like_comfyui():
    g = {"1": {"class_type": "ToyInt", "inputs": {"value": "7"}},
         "2": {"class_type": "ToyBlend", "inputs": {"image": ["4", 0], "mode": {"__value__": "add"}, "amount": 1}},
         "4": {"class_type": "ToyNoise", "inputs": {"width": 2.9, "height": 2, "seed": 0}},
         "5": {"class_type": "ToyImageSink", "inputs": {"images": ["2", 0]}},
         "6": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}}}
    out = validate_prompt(g, CLASSES)
    assert out["1"]["inputs"]["value"] == 7
    assert out["4"]["inputs"]["width"] == 2  # int() truncates, as in ComfyUI
    assert out["2"]["inputs"]["amount"] == 1.0 and isinstance(out["2"]["inputs"]["amount"], float)
    assert out["2"]["inputs"]["mode"] == "add"
    assert g["1"]["inputs"]["value"] == "7"  # the input graph is not modified


def test_validate_inputs_hook_replaces_builtin_checks_for_named_inputs():
    def graph(value, other=0):
        return {"1": {"class_type": "ToyCheckedInput", "inputs": {"value": value, "other": other}},
                "2": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}}}

    assert validate_prompt(graph(50), CLASSES)["1"]["inputs"]["value"] == 50  # max not checked for `value`
    err = _problems(graph(13, other=11))
    assert _keyed(err) == {("1", "value", "custom_validation_failed"), ("1", "other", "value_bigger_than_max")}
    assert "13 is unlucky" in str(err)


def test_types_match_and_order_helpers():
    assert types_match("IMAGE", "IMAGE") and types_match("INT,FLOAT", "FLOAT")
    assert not types_match("IMAGE", "MASK") and not types_match("*", "IMAGE")

    class Any(str):
        def __ne__(self, other):
            return False

    assert types_match("IMAGE", Any("*"))
    order, cycles = execution_order({"a": {"inputs": {"x": ["b", 0]}}, "b": {"inputs": {}}}, ["a"])
    assert order == ["b", "a"] and cycles == []
