"""UI -> API conversion (golden files) and workflow loading."""
import copy
import json
import pathlib

import pytest

from comfyui_nst.nodes.headless.format import (
    WidgetSlot,
    WorkflowFormatError,
    detect_format,
    load_workflow,
    normalize_api,
    ui_to_api,
    widget_slots,
)
from comfyui_nst.nodes import NODES
from comfyui_nst.nodes.headless.node_spec import runnable
from nst_core import DEFAULTS
from conftest import load_toy_nodes

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"


_toys = load_toy_nodes


toys = _toys()
CLASSES, NAMES = toys.registry()


def _read(name):
    return json.loads((FIXTURES / name).read_text())


def _strip_meta(prompt):
    return {nid: {k: v for k, v in node.items() if k != "_meta"} for nid, node in prompt.items()}


# ---------------------------------------------------------------- golden files

def test_real_frontend_export_converts_to_its_api_export():
    # invert_ui.json and invert_api.json were both exported by the real frontend 1.27.10
    warnings = []
    api = ui_to_api(_read("invert_ui.json"), CLASSES, NAMES, warnings)
    assert api == _read("invert_api.json")  # the upload widget value "image" is dropped, titles match
    assert warnings == []


def test_frontend_default_graph_with_old_true_control_value():
    # expected = graphToPrompt() of the real frontend 1.27.10 on this file
    api = ui_to_api(_read("frontend_default_ui.json"), CLASSES, NAMES)
    assert api == _read("frontend_default_api.json")
    assert api["3"]["inputs"]["steps"] == 20  # `true` after the seed was skipped, not taken as steps
    assert api["9"]["inputs"]["filename_prefix"] == "ComfyUI"  # no widgets_values: the default
    assert api["6"]["_meta"]["title"] == "CLIP Text Encode (Prompt)"


def test_hand_written_features_golden():
    # expected = graphToPrompt() of the real frontend 1.27.10 on this file
    warnings = []
    api = ui_to_api(_read("ui_features.json"), CLASSES, NAMES, warnings)
    assert api == _read("ui_features_api.json")
    assert warnings == []


def test_features_details():
    api = ui_to_api(_read("ui_features.json"), CLASSES, NAMES)
    assert "2" not in api and "11" not in api  # reroutes
    assert "4" not in api and "10" not in api  # primitives
    assert "8" not in api and "9" not in api  # notes
    assert "6" not in api and "mask" not in api["3"]["inputs"]  # muted node and its link
    assert "5" not in api and api["7"]["inputs"]["images"] == ["3", 0]  # bypassed: passes its IMAGE input on
    assert api["3"]["inputs"]["amount"] == 0.25  # PrimitiveNode value wins over the stale widget value
    # a primitive behind a Reroute does not reach the widget in frontend 1.27.10: the stored value stays
    assert api["12"]["inputs"]["a"] == 0
    assert api["14"]["inputs"]["label"] == "hello"  # control value after noise_seed skipped


# ---------------------------------------------------------------- widget layout

def test_widget_slots_layout():
    slots = [(s.name, s.kind) for s in widget_slots(toys.ToyChoice)]
    # combo with control: control + filter values; media combo: an "upload" value after the required
    # widgets; IMAGE and forceInput inputs take no slot; optional widgets come last.
    assert slots == [("pick", "value"), ("pick", "control"), ("pick", "filter"), ("file", "value"),
                     ("upload", "upload"), ("scale", "value")]
    assert [(s.name, s.kind) for s in widget_slots(toys.ToyNoise)] == [
        ("width", "value"), ("height", "value"), ("seed", "value"), ("seed", "control")]
    assert [(s.name, s.kind) for s in widget_slots(toys.ToySeedByName)] == [
        ("noise_seed", "value"), ("noise_seed", "control"), ("label", "value")]
    assert isinstance(widget_slots(toys.ToyAdd)[0], WidgetSlot)


def _single(node_type, widgets_values, inputs=None, mode=0, extra_nodes=(), links=()):
    node = {"id": 1, "type": node_type, "mode": mode, "inputs": inputs or [], "outputs": []}
    if widgets_values is not None:
        node["widgets_values"] = widgets_values
    return {"nodes": [node, *extra_nodes], "links": list(links), "version": 0.4}


@pytest.mark.parametrize("values, expected", [
    (["b", "randomize", "", "y.png", "image", 2.0], {"pick": "b", "file": "y.png", "scale": 2.0}),
    (["b", "fixed", "^a", "y.png", "image", 2.0], {"pick": "b", "file": "y.png", "scale": 2.0}),
    (["b", "y.png", 2.0], {"pick": "b", "file": "y.png", "scale": 2.0}),  # no phantom values at all
    (["b", "y.png", "image", 2.0], {"pick": "b", "file": "y.png", "scale": 2.0}),
    (["b"], {"pick": "b", "file": "x.png", "scale": 1.0}),  # short: defaults
])
def test_phantom_values_are_skipped(values, expected):
    api = ui_to_api(_single("ToyChoice", values), CLASSES)
    assert api["1"]["inputs"] == expected


def test_seed_without_control_slot_newest_frontend():
    api = ui_to_api(_single("ToyNoise", [16, 12, 42]), CLASSES)
    assert api["1"]["inputs"] == {"width": 16, "height": 12, "seed": 42}


def test_values_saved_before_widgets_were_appended():
    """A node saved before its class gained widgets at the end: the frontend assigns the stored values by
    position (the seed's control value included) and the new widgets keep their defaults."""
    assert ui_to_api(_single("ToySeedByName", [7, "randomize"]), CLASSES)["1"]["inputs"] == {
        "noise_seed": 7, "label": "x"}
    # NST Optimize as saved before coarse_to_fine was appended after preview_every
    old = ["noise", "adam", 40, 0.5, "1e-3", 3, "fixed", "luminance", 7]
    nst = {**CLASSES, **runnable({node.NODE_ID: node for node in NODES})}
    inputs = ui_to_api(_single("NST_Optimize", old), nst)["1"]["inputs"]
    assert inputs == {"init": "noise", "optimizer": "adam", "steps": 40, "learning_rate": 0.5, "tv_weight": "1e-3",
                      "seed": 3, "preserve_color": "luminance", "preview_every": 7, "coarse_to_fine": True,
                      **{name: DEFAULTS[name] for name in ("weighting", "max_memory_gb", "tile_size", "look_size",
                                                              "high_res_pooling")}}
    # a boolean right after a seed is a widget's value when no value is missing (NST Reconstruct's cumulative)
    inputs = ui_to_api(_single("NST_Reconstruct", ["style", "conv1_1", 9, "lbfgs", 4, False, 0.0, 2]),
                       nst)["1"]["inputs"]
    assert inputs["seed"] == 4 and inputs["cumulative"] is False and inputs["preview_every"] == 2


def test_widgets_values_as_object_and_list_values_wrapped():
    api = ui_to_api(_single("ToyNoise", {"width": 4, "seed": 9}), CLASSES)
    assert api["1"]["inputs"] == {"width": 4, "height": 8, "seed": 9}
    api = ui_to_api(_single("ToyFlag", [True, ["a", "b"]]), CLASSES)
    assert api["1"]["inputs"]["text"] == {"__value__": ["a", "b"]}


def test_extra_widget_values_give_a_warning():
    warnings = []
    api = ui_to_api(_single("ToyAdd", [1, 2, "surplus"]), CLASSES, warnings=warnings)
    assert api["1"]["inputs"] == {"a": 1, "b": 2}
    assert len(warnings) == 1 and "surplus" in warnings[0]


def test_unknown_node_type_keeps_links_for_validation():
    ui = _single("NoSuchNode", [1, 2], inputs=[{"name": "x", "type": "INT", "link": 1}],
                 extra_nodes=[{"id": 2, "type": "ToyInt", "mode": 0, "widgets_values": [3],
                               "outputs": [{"name": "INT", "type": "INT", "links": [1]}]}],
                 links=[[1, 2, 0, 1, 0, "INT"]])
    api = ui_to_api(ui, CLASSES)
    assert api["1"] == {"inputs": {"x": ["2", 0]}, "class_type": "NoSuchNode", "_meta": {"title": "NoSuchNode"}}


def test_link_objects_of_schema_v1():
    ui = _read("invert_ui.json")
    ui["links"] = [{"id": l[0], "origin_id": l[1], "origin_slot": l[2], "target_id": l[3],
                    "target_slot": l[4], "type": l[5]} for l in ui["links"]]
    assert _strip_meta(ui_to_api(ui, CLASSES)) == _strip_meta(_read("invert_api.json"))


def test_link_to_a_missing_node_is_kept_for_validation():
    ui = _single("ToyShow", None, inputs=[{"name": "value", "type": "INT", "link": 1}],
                 links=[[1, 99, 0, 1, 0, "INT"]])
    assert ui_to_api(ui, CLASSES)["1"]["inputs"] == {"value": ["99", 0]}


# ---------------------------------------------------------------- bypass rules

def _bypass_graph(bypassed_inputs, target_type="IMAGE", output_type="IMAGE"):
    src_img = {"id": 1, "type": "ToyNoise", "mode": 0, "widgets_values": [4, 4, 0],
               "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}]}
    src_int = {"id": 2, "type": "ToyInt", "mode": 0, "widgets_values": [3],
               "outputs": [{"name": "INT", "type": "INT", "links": [2]}]}
    bypassed = {"id": 3, "type": "ToyAny", "mode": 4, "inputs": bypassed_inputs,
                "outputs": [{"name": "out", "type": output_type, "links": [3]}]}
    target = {"id": 4, "type": "ToyImageSink", "mode": 0,
              "inputs": [{"name": "images", "type": target_type, "link": 3}]}
    links = [[1, 1, 0, 3, None, "IMAGE"], [2, 2, 0, 3, None, "INT"], [3, 3, 0, 4, 0, target_type]]
    for slot, inp in enumerate(bypassed_inputs):
        for link in links[:2]:
            if inp.get("link") == link[0]:
                link[4] = slot
    return {"nodes": [src_img, src_int, bypassed, target], "links": links}


def test_bypass_prefers_same_slot_then_type():
    same_slot = _bypass_graph([{"name": "i", "type": "IMAGE", "link": 1}, {"name": "n", "type": "INT", "link": 2}])
    assert ui_to_api(same_slot, CLASSES)["4"]["inputs"] == {"images": ["1", 0]}
    by_type = _bypass_graph([{"name": "n", "type": "INT", "link": 2}, {"name": "i", "type": "IMAGE", "link": 1}])
    assert ui_to_api(by_type, CLASSES)["4"]["inputs"] == {"images": ["1", 0]}


def test_bypass_without_matching_type_drops_the_input():
    graph = _bypass_graph([{"name": "n", "type": "INT", "link": 2}])
    assert ui_to_api(graph, CLASSES)["4"]["inputs"] == {}


# ---------------------------------------------------------------- unsupported / formats

def test_subgraphs_and_group_nodes_are_rejected():
    ui = _read("invert_ui.json")
    ui["definitions"] = {"subgraphs": [{"id": "a1b2c3d4-0000-4000-8000-000000000001", "nodes": [], "links": []}]}
    ui["nodes"][1]["type"] = "a1b2c3d4-0000-4000-8000-000000000001"
    with pytest.raises(WorkflowFormatError, match="subgraph"):
        ui_to_api(ui, CLASSES)
    ui = _read("invert_ui.json")
    ui["nodes"][1]["type"] = "workflow>MyGroup"
    with pytest.raises(WorkflowFormatError, match="group node"):
        ui_to_api(ui, CLASSES)


def test_detect_and_load_formats(tmp_path):
    api = _read("invert_api.json")
    assert detect_format(api) == "api"
    assert detect_format({"prompt": api}) == "wrapped"
    assert detect_format(_read("invert_ui.json")) == "ui"
    assert detect_format({"1": {"class_type": "ToyInt", "inputs": {}}, "2": {"inputs": {}}}) == "api"
    for bad in ({"foo": 1}, [], {"1": {"inputs": {}}}, {"1": {"class_type": "ToyInt"}, "2": 3}):
        with pytest.raises(WorkflowFormatError):
            detect_format(bad)
    wrapped = {"prompt": api, "extra_data": {"extra_pnginfo": {"workflow": {"x": 1}}}}
    wf = load_workflow(wrapped, CLASSES)
    assert wf.format == "api" and wf.prompt == api and wf.extra_pnginfo == {"workflow": {"x": 1}}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(_read("ui_features.json")))
    wf = load_workflow(str(path), CLASSES, NAMES)
    assert wf.format == "ui" and wf.extra_pnginfo["workflow"]["last_node_id"] == 16
    assert wf.prompt == _read("ui_features_api.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(WorkflowFormatError, match="not valid JSON"):
        load_workflow(str(tmp_path / "bad.json"), CLASSES)
    with pytest.raises(WorkflowFormatError, match="not found"):
        load_workflow(str(tmp_path / "missing.json"), CLASSES)


def test_png_with_embedded_workflow_loads(tmp_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("prompt", json.dumps(_read("invert_api.json")))
    info.add_text("workflow", json.dumps(_read("ui_features.json")))
    Image.new("RGB", (2, 2)).save(tmp_path / "x.png", pnginfo=info)
    wf = load_workflow(str(tmp_path / "x.png"), CLASSES, NAMES)
    assert wf.format == "ui" and wf.prompt == _read("ui_features_api.json")


def test_normalize_api_makes_ids_strings():
    prompt = {1: {"class_type": "ToyShow", "inputs": {"value": [2, 0]}}, "2": {"class_type": "ToyInt", "inputs": {}}}
    original = copy.deepcopy(prompt)
    assert normalize_api(prompt) == {"1": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}},
                                     "2": {"class_type": "ToyInt", "inputs": {}}}
    assert prompt == original
