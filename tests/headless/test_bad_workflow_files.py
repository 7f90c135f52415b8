"""Broken workflow files: a clear message naming what is wrong, exit 1, no traceback (unless --verbose).

Each case crashed before (UnicodeDecodeError, RecursionError, ValueError, AttributeError) or ran
with silently wrong values.
"""
import json
import pathlib

import pytest

from comfyui_nst.nodes.headless import cli
from comfyui_nst.nodes.headless.format import MAX_NESTING, WorkflowFormatError, load_workflow, ui_to_api
from conftest import load_toy_nodes

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"
toys = load_toy_nodes()
CLASSES, NAMES = toys.registry()


@pytest.fixture
def work(toy_workdir):
    return toy_workdir


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv] + ["-q"])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(work, capsys, content, *expected):
    """Run nst-run on `content` (bytes, or JSON-able): exit 1, each expected text in the message,
    no traceback, nothing written; with --verbose the traceback is shown."""
    path = work / "wf.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    code, out, err = _run(capsys, path)
    assert code == 1, err
    for text in expected:
        assert text in err, err
    assert "Traceback" not in err and out == "" and not (work / "output").exists()
    code, _, err = _run(capsys, path, "--verbose")
    assert code == 1 and "Traceback" in err
    return err


def test_binary_junk(work, capsys):
    junk = bytes(range(256)) * 8
    _refused(work, capsys, b"\x89\xff\xfe" + junk, "wf.json: not a text file", "a workflow is a .json file")


def test_json_nested_too_deep_to_parse(work, capsys):
    _refused(work, capsys, b"[" * 100_000 + b"]" * 100_000, "wf.json: the JSON nests lists/objects too deeply")


def test_json_nested_deep_but_parseable(work, capsys):
    value = 1
    for _ in range(600):   # json reads it; copying or hashing it recursively would not
        value = [value]
    api = {"1": {"class_type": "ToyShow", "inputs": {"value": value}}}
    _refused(work, capsys, api, f"more than {MAX_NESTING} levels deep")


def _ui():
    return json.loads((FIXTURES / "invert_ui.json").read_text())


def _broken(change):
    ui = _ui()
    change(ui)
    return ui


@pytest.mark.parametrize("change, message", [
    (lambda ui: ui["links"].__setitem__(0, [1, 1, "x", 2, 0, "IMAGE"]),
     "link entry 0 is malformed: its origin slot is not valid"),
    (lambda ui: ui["links"].__setitem__(0, {"id": 1, "origin_id": None, "origin_slot": 0, "target_id": 2}),
     "link entry 0 is malformed: its origin node is not valid"),
    (lambda ui: ui["links"].__setitem__(0, "1->2"), "link entry 0 is malformed"),
    (lambda ui: ui.__setitem__("links", "none"), "'links' must be a list"),
    (lambda ui: ui["nodes"][1].__setitem__("inputs", "abc"), "node 2 (HarnessInvertImage): 'inputs' must be a list"),
    (lambda ui: ui["nodes"][1].__setitem__("inputs", [5]), "node 2 (HarnessInvertImage): inputs entry 0 is not an object"),
    (lambda ui: ui["nodes"][1]["inputs"][0].__setitem__("link", [1]), "input 'image' has a malformed link"),
    (lambda ui: ui["nodes"][1].__setitem__("widgets_values", 7), "'widgets_values' must be a list"),
    (lambda ui: ui["nodes"].__setitem__(0, 1), "entry 0 of 'nodes' is not an object"),
    (lambda ui: ui["nodes"].__setitem__(0, "LoadImage"), "entry 0 of 'nodes' is not an object"),
    (lambda ui: ui["nodes"][0].pop("type"), "has no type"),
    (lambda ui: ui.__setitem__("definitions", []), "'definitions' must be an object"),
])
def test_malformed_editor_files(work, capsys, change, message):
    _refused(work, capsys, _broken(change), message)
    with pytest.raises(WorkflowFormatError, match="malformed|must be|not an object|no type"):
        ui_to_api(_broken(change), CLASSES, NAMES)


def test_chain_of_1100_nodes_runs(work, capsys):
    """Ordering is iterative: a long chain does not reach the recursion limit."""
    api = {"0": {"class_type": "ToyInt", "inputs": {"value": 3}}}
    for i in range(1, 1101):
        api[str(i)] = {"class_type": "ToyAdd", "inputs": {"a": [str(i - 1), 0], "b": 0}}
    api["out"] = {"class_type": "ToyShow", "inputs": {"value": ["1100", 0]}}
    (work / "chain.json").write_text(json.dumps(api))
    code, out, err = _run(capsys, "chain.json")
    assert code == 0, err[-2000:]
    assert "1102 node(s) run" in err and out.rstrip().endswith("==\n3")
    assert len(toys.CALLS) == 1102


def test_chain_of_1100_reroutes_converts(work, capsys):
    nodes = [{"id": 1, "type": "ToyInt", "mode": 0, "widgets_values": [4],
              "outputs": [{"name": "INT", "type": "INT", "links": [1]}]}]
    links = []
    for i in range(2, 1102):   # node i: a Reroute fed by node i-1 through link i-1
        nodes.append({"id": i, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": i - 1}],
                      "outputs": [{"name": "", "type": "INT", "links": [i]}]})
        links.append([i - 1, i - 1, 0, i, 0, "INT"])
    nodes.append({"id": 1102, "type": "ToyShow", "mode": 0, "inputs": [{"name": "value", "type": "INT", "link": 1101}]})
    links.append([1101, 1101, 0, 1102, 0, "INT"])
    (work / "reroutes.json").write_text(json.dumps({"nodes": nodes, "links": links, "version": 0.4}))
    code, out, err = _run(capsys, "reroutes.json")
    assert code == 0, err[-2000:]
    assert out.rstrip().endswith("==\n4")


# ---------------------------------------------------------------- fewer widget values than widgets

def _single(node_type, widgets_values, **extra):
    node = {"id": 1, "type": node_type, "mode": 0, "inputs": [], "outputs": [], **extra}
    if widgets_values is not None:
        node["widgets_values"] = widgets_values
    return {"nodes": [node], "links": [], "version": 0.4}


def test_short_widget_values_are_said_naming_node_and_widgets():
    warnings = []
    api = ui_to_api(_single("ToySeedByName", [7, "randomize"], title="Seeds"), CLASSES, warnings=warnings)
    assert api["1"]["inputs"] == {"noise_seed": 7, "label": "x"}   # read by position, as the editor does
    (warning,) = warnings
    assert warning.startswith("node 1 (ToySeedByName 'Seeds'): the file holds no value for 1 widget(s), "
                              "which took their defaults: 'label' = 'x'.")
    warnings = []
    ui_to_api(_single("ToyNoise", {"width": 4}), CLASSES, warnings=warnings)   # object form: by name
    assert len(warnings) == 1 and "'height' = 8, 'seed' = 0" in warnings[0]
    warnings = []
    ui_to_api(_single("ToyNoise", [16, 12, 42]), CLASSES, warnings=warnings)   # complete (no control value)
    assert warnings == []


def test_short_widget_values_warned_by_nst_run(work, capsys):
    ui = _single("ToySteps", [], inputs=[{"name": "value", "type": "INT", "link": 1}])
    ui["nodes"].append({"id": 2, "type": "ToyInt", "mode": 0, "widgets_values": [1],
                        "outputs": [{"name": "INT", "type": "INT", "links": [1, 2]}]})
    ui["nodes"].append({"id": 3, "type": "ToyShow", "mode": 0, "inputs": [{"name": "value", "type": "INT", "link": 2}]})
    ui["links"] = [[1, 2, 0, 1, 0, "INT"], [2, 2, 0, 3, 0, "INT"]]
    (work / "short.json").write_text(json.dumps(ui))
    code, out, err = _run(capsys, "short.json", "--print-api")
    assert code == 0
    assert "warning: node 1 (ToySteps): the file holds no value for 1 widget(s), which took their defaults: " \
           "'steps' = 5" in err
    assert json.loads(out)["1"]["inputs"]["steps"] == 5


def test_loading_a_dict_checks_nesting_too():
    value = 0
    for _ in range(MAX_NESTING + 5):
        value = {"v": value}
    with pytest.raises(WorkflowFormatError, match="levels deep"):
        load_workflow({"1": {"class_type": "ToyShow", "inputs": {"value": value}}}, CLASSES)
