"""Validation before anything runs: every problem reported at once, per node and input."""
import pathlib

import pytest

from comfyui_nst.nodes.headless.executor import Executor
from comfyui_nst.nodes.headless.graph import execution_order, types_match
from comfyui_nst.nodes.headless.validation import (Problem, ValidationError, validate_outputs,
                                                   validate_prompt)
from conftest import load_toy_nodes

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"


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


# ---------------------------------------------------------------- per-output validity (ComfyUI parity)

def _two_branches(bad_value=500):
    """Branch A (image -> SaveImage) is valid; branch B (ToyInt -> ToyAdd -> ToyShow) is not."""
    return {
        "1": {"class_type": "ToyNoise", "inputs": {"width": 4, "height": 3, "seed": 1}},
        "2": {"class_type": "ToyBlend", "inputs": {"image": ["1", 0], "mode": "mul", "amount": 0.5}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "good"}},
        "4": {"class_type": "ToyInt", "inputs": {"value": bad_value}},                   # > max
        "5": {"class_type": "ToyAdd", "inputs": {"a": ["4", 0]}, "_meta": {"title": "Sum"}},  # b missing
        "6": {"class_type": "ToyShow", "inputs": {"value": ["5", 0]}},
    }


def test_invalid_output_is_skipped_and_the_valid_branch_runs(tmp_path):
    toys.reset()
    result = Executor(CLASSES, output_dir=str(tmp_path)).run(_two_branches())
    assert result.executed == ["1", "2", "3"] and result.skipped == ["6"]
    assert [c[0] for c in toys.CALLS] == ["ToyNoise", "ToyBlend"]  # nothing of branch B ran
    assert result.files == [str(tmp_path / "good_00001_.png")] and (tmp_path / "good_00001_.png").is_file()
    assert set(result.outputs) == {"3"}
    assert _keyed(result.validation_error) == {("4", "value", "value_bigger_than_max"),
                                               ("5", "b", "required_input_missing")}
    assert result.problems == result.validation_error.problems
    text = str(result.validation_error)
    assert text.startswith("workflow validation failed (2 problems):")
    assert "node 5 (ToyAdd 'Sum'), input 'b': required input is missing" in text
    errors = result.node_errors()
    assert errors["4"]["dependent_outputs"] == ["6"] and errors["5"]["class_type"] == "ToyAdd"
    assert "6" not in errors  # only downstream of a problem: no entry, as in ComfyUI


def test_nothing_skipped_when_everything_is_valid(tmp_path):
    g = _two_branches(bad_value=5)
    g["5"]["inputs"]["b"] = 1
    result = Executor(CLASSES, output_dir=str(tmp_path)).run(g)
    assert result.skipped == [] and result.validation_error is None and result.problems == []
    assert result.node_errors() == {} and result.outputs["6"] == {"text": ["6"]}


def test_strict_validation_still_refuses_a_partly_valid_graph(tmp_path):
    g = _two_branches()
    checked = validate_outputs(g, CLASSES)
    assert checked.good_outputs == ["3"] and checked.failed_outputs == ["6"]
    assert checked.dependent_outputs == {"4": ["6"], "5": ["6"]}
    assert checked.prompt["2"]["inputs"]["amount"] == 0.5 and isinstance(checked.error(), ValidationError)
    assert _keyed(_problems(g)) == _keyed(checked.error())  # validate_prompt raises on any problem
    executor = Executor(CLASSES, output_dir=str(tmp_path))
    with pytest.raises(ValidationError) as info:
        executor.validate(g)  # the --validate check
    assert _keyed(info.value) == _keyed(checked.error()) and info.value.node_errors()["5"]["dependent_outputs"] == ["6"]
    assert executor.check(g).good_outputs == ["3"]
    assert list(tmp_path.iterdir()) == []


def test_a_node_shared_by_a_valid_and_an_invalid_output_runs_once(tmp_path):
    toys.reset()
    g = {"1": {"class_type": "ToyInt", "inputs": {"value": 4}},
         "2": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}},                     # valid
         "3": {"class_type": "ToyAdd", "inputs": {"a": ["1", 0], "b": 5000}},               # b > max
         "4": {"class_type": "ToyShow", "inputs": {"value": ["3", 0]}},                     # invalid
         "5": {"class_type": "ToyAdd", "inputs": {"a": ["1", 0], "b": ["1", 0]}},
         "6": {"class_type": "ToyShow", "inputs": {"value": ["5", 0]}},                     # valid
         "7": {"class_type": "ToyShow", "inputs": {"value": ["3", 0]}}}                     # invalid
    executor = Executor(CLASSES, output_dir=str(tmp_path))
    result = executor.run(g)
    assert toys.CALLS.count(("ToyInt", 4)) == 1 and result.executed.count("1") == 1
    assert sorted(toys.CALLS) == sorted([("ToyInt", 4), ("ToyShow", 4), ("ToyAdd", 4, 4), ("ToyShow", 8)])
    assert result.outputs == {"2": {"text": ["4"]}, "6": {"text": ["8"]}}
    assert result.skipped == ["4", "7"]
    assert result.node_errors() == {"3": {"errors": [{"type": "value_bigger_than_max",
                                                      "message": "value 5000 is bigger than the maximum 1000",
                                                      "details": "b", "extra_info": {"input_name": "b"}}],
                                          "dependent_outputs": ["4", "7"], "class_type": "ToyAdd"}}
    toys.reset()
    g["3"]["inputs"]["b"] = 1  # fixed: the shared node's cached result is reused
    result = executor.run(g)
    assert "1" in result.cached and result.executed == ["3", "4"] and result.skipped == []  # 7 = 4 by content
    assert toys.CALLS == [("ToyAdd", 4, 1), ("ToyShow", 5)]


def test_every_output_invalid_is_refused_with_all_problems(tmp_path):
    toys.reset()
    g = _two_branches()
    g["2"]["inputs"]["mode"] = "xor"
    with pytest.raises(ValidationError) as info:
        Executor(CLASSES, output_dir=str(tmp_path)).run(g)
    err = info.value
    assert _keyed(err) == {("2", "mode", "value_not_in_list"), ("4", "value", "value_bigger_than_max"),
                           ("5", "b", "required_input_missing")}
    assert str(err).startswith("workflow validation failed (3 problems):")
    assert err.node_errors()["2"]["dependent_outputs"] == ["3"] and err.node_errors()["5"]["dependent_outputs"] == ["6"]
    assert toys.CALLS == [] and list(tmp_path.iterdir()) == []


def test_whole_graph_problems_refuse_even_with_a_valid_output(tmp_path):
    toys.reset()
    g = _two_branches(bad_value=5)
    g["5"]["inputs"]["b"] = 1
    g["8"] = {"class_type": "NotInstalled", "inputs": {}}  # feeds nothing; ComfyUI still refuses the prompt
    with pytest.raises(ValidationError) as info:
        Executor(CLASSES, output_dir=str(tmp_path)).run(g)
    assert _keyed(info.value) == {("8", None, "invalid_prompt")}
    assert toys.CALLS == [] and list(tmp_path.iterdir()) == []


def test_output_on_a_dependency_cycle_is_skipped(tmp_path):
    toys.reset()
    g = {"1": {"class_type": "ToyAdd", "inputs": {"a": ["2", 0], "b": 1}},
         "2": {"class_type": "ToyAdd", "inputs": {"a": ["1", 0], "b": 1}},
         "3": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}},
         "4": {"class_type": "ToyInt", "inputs": {"value": 9}},
         "5": {"class_type": "ToyShow", "inputs": {"value": ["4", 0]}}}
    result = Executor(CLASSES, output_dir=str(tmp_path)).run(g)
    assert result.skipped == ["3"] and result.executed == ["4", "5"]
    assert toys.CALLS == [("ToyInt", 9), ("ToyShow", 9)]
    assert [p.type for p in result.problems] == ["dependency_cycle"]
