"""The NST nodes: their ComfyUI contract, real results at small size under torch.inference_mode()
(as ComfyUI runs every prompt), the host adapter, and clear errors on bad input."""

from __future__ import annotations

import inspect
import math
import sys
import types

import pytest
import torch

import nst_core
from comfyui_nst.nodes import NODES
from comfyui_nst.nodes import host, plotting
from comfyui_nst.nodes.headless import runtime
from comfyui_nst.nodes.nst_nodes import (NST_ContentTarget, NST_ExampleImage, NST_ImageResize, NST_LoadVGG,
                                         NST_Optimize, NST_Reconstruct, NST_StyleTarget)

# Widget order is FROZEN once released (saved UI workflows store widget values by position).
# Changing this list means breaking users' workflows: append new inputs at the end instead.
EXPECTED_INPUTS = {
    "NST_LoadVGG": ['weights', 'architecture', 'pooling', 'convention', 'normalized'],
    "NST_ContentTarget": ['vgg', 'image', 'layers', 'weight', 'mask'],
    "NST_StyleTarget": ['vgg', 'image', 'layers', 'layer_weights', 'weight', 'scale', 'image2', 'blend', 'style_loss', 'mask', 'image_mask'],
    "NST_CombineStyles": ['style_a', 'style_b', 'style_c', 'style_d'],
    "NST_Optimize": ['vgg', 'content', 'init', 'optimizer', 'steps', 'learning_rate', 'tv_weight', 'seed', 'preserve_color', 'preview_every', 'coarse_to_fine', 'style', 'init_image', 'weighting', 'max_memory_gb', 'tile_size', 'look_size', 'high_res_pooling'],
    "NST_Reconstruct": ['vgg', 'image', 'mode', 'layers', 'steps', 'optimizer', 'seed', 'cumulative', 'learning_rate', 'preview_every'],
    "NST_ExampleImage": ['image', 'max_size'],
    "NST_ImageResize": ['image', 'max_size', 'upscale'],
    "NST_StylizeFrames": ['vgg', 'frames', 'style', 'temporal_weight', 'steps', 'init', 'optimizer', 'learning_rate', 'content_weight', 'tv_weight', 'seed', 'preview_every', 'init_image', 'chunk_frames'],
    "NST_PanClip": ['image', 'frame_count', 'pan_x', 'pan_y', 'zoom'],
    "NST_ShapeMask": ['image', 'shape', 'x', 'y', 'size', 'aspect', 'feather', 'outside'],
    "NST_FeatureMaps": ['vgg', 'image', 'layer', 'channels', 'top'],
    "NST_VisualizeChannel": ['vgg', 'layer', 'channels', 'size', 'steps', 'seed'],
    "NST_TopPatches": ['vgg', 'images', 'layer', 'channel', 'k', 'overlap', 'gradients', 'max_side'],
    "NST_ReceptiveField": ['image', 'layer', 'architecture', 'position'],
}
EXPECTED_OPTIONAL = {
    "NST_ContentTarget": ['mask'],
    "NST_StyleTarget": ['image2', 'blend', 'style_loss', 'mask', 'image_mask'],
    "NST_CombineStyles": ['style_c', 'style_d'],
    "NST_Optimize": ['style', 'init_image', 'weighting', 'max_memory_gb', 'tile_size', 'look_size', 'high_res_pooling'],
    "NST_StylizeFrames": ['init_image', 'chunk_frames'],
}
EXPECTED_RETURNS = {
    "NST_LoadVGG": ('NST_VGG',),
    "NST_ContentTarget": ('NST_TARGET',),
    "NST_StyleTarget": ('NST_TARGET',),
    "NST_CombineStyles": ('NST_TARGET',),
    "NST_Optimize": ('IMAGE', 'IMAGE', 'STRING'),
    "NST_Reconstruct": ('IMAGE', 'IMAGE', 'STRING'),
    "NST_ExampleImage": ('IMAGE',),
    "NST_ImageResize": ('IMAGE',),
    "NST_StylizeFrames": ('IMAGE', 'STRING'),
    "NST_PanClip": ('IMAGE',),
    "NST_ShapeMask": ('MASK', 'MASK'),
    "NST_FeatureMaps": ('IMAGE', 'STRING'),
    "NST_VisualizeChannel": ('IMAGE', 'STRING'),
    "NST_TopPatches": ('IMAGE', 'IMAGE', 'IMAGE', 'STRING'),
    "NST_ReceptiveField": ('IMAGE', 'STRING'),
}
NODE_CLASSES = {node.NODE_ID: node for node in NODES}
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
SOCKET_TYPES = ("IMAGE", "MASK", "NST_VGG", "NST_TARGET")


# ----------------------------------------------------------------------------------------------
# contract (no weights needed)

def _inputs(cls):
    spec = cls.spec().input_types()
    return {**spec.get("required", {}), **spec.get("optional", {})}


def test_nodes_cover_exactly_the_nst_nodes():
    assert list(NODE_CLASSES) == list(EXPECTED_INPUTS)
    for name, cls in NODE_CLASSES.items():
        spec = cls.spec()
        assert name.startswith("NST_") and spec.node_id == name and cls.__name__ == name
        assert spec.display_name.startswith("NST ")


@pytest.mark.parametrize("name", list(EXPECTED_INPUTS))
def test_node_contract(name):
    cls = NODE_CLASSES[name]
    node = cls.spec()
    spec = node.input_types()
    assert set(spec) <= {"required", "optional", "hidden"}
    assert list(_inputs(cls)) == EXPECTED_INPUTS[name]
    assert list(spec.get("optional", {})) == EXPECTED_OPTIONAL.get(name, [])
    assert tuple(o.type for o in node.outputs) == EXPECTED_RETURNS[name]
    assert all(o.name and o.tooltip for o in node.outputs)
    assert node.category.split("/")[0] == "style_transfer"
    assert isinstance(node.description, str) and len(node.description) > 40
    params = inspect.signature(cls.execute).parameters
    # every input is a keyword of execute; optional inputs (absent when unconnected) have defaults
    assert list(params) == EXPECTED_INPUTS[name]
    for opt in spec.get("optional", {}):
        assert params[opt].default is not inspect.Parameter.empty
    for iname, entry in _inputs(cls).items():
        assert isinstance(entry, tuple) and 1 <= len(entry) <= 2, iname
        kind, opts = entry[0], entry[1] if len(entry) > 1 else {}
        assert opts.get("tooltip"), f"{name}.{iname} has no tooltip"
        if isinstance(kind, list):     # legacy combo: the server checks membership
            assert kind and opts["default"] in kind, iname
        elif kind in ("INT", "FLOAT"):
            for key in ("default", "min", "max", "step"):
                assert key in opts, f"{name}.{iname} lacks {key}"
            assert opts["min"] <= opts["default"] <= opts["max"], iname
            if kind == "INT":
                assert all(isinstance(opts[k], int) for k in ("default", "min", "max", "step")), iname
        elif kind in ("STRING", "BOOLEAN"):
            assert "default" in opts, iname
        else:
            assert kind in SOCKET_TYPES, f"{name}.{iname}: unexpected type {kind}"


def test_seeds_have_control_after_generate():
    for cls in (NST_Optimize, NST_Reconstruct):
        assert _inputs(cls)["seed"][1]["control_after_generate"] is True


def test_defaults_pass_validation_and_match_the_engine():
    assert NST_ContentTarget.validate_inputs(layers="conv4_2", weight="1") is True
    style = _inputs(NST_StyleTarget)
    assert NST_StyleTarget.validate_inputs(layers=style["layers"][1]["default"],
                                           layer_weights="", weight=style["weight"][1]["default"]) is True
    assert float(style["weight"][1]["default"]) == nst_core.DEFAULTS["style_weight"]
    assert style["layers"][1]["default"].split(",") == list(nst_core.DEFAULT_STYLE_LAYERS)
    assert _inputs(NST_Optimize)["steps"][1]["default"] == nst_core.DEFAULTS["steps"]
    assert NST_Optimize.validate_inputs(tv_weight="0") is True
    assert NST_Reconstruct.validate_inputs(layers="auto") is True
    assert "content_chelsea.png" in _inputs(NST_ExampleImage)["image"][0]
    # linked inputs arrive as None at validation time
    assert NST_ContentTarget.validate_inputs(layers=None, weight=None) is True


@pytest.mark.parametrize("name", sorted(NODE_CLASSES))
def test_every_default_is_defined_once(name):
    """Widget defaults are the engine's (or the node-only Option's), and every method default equals its
    widget's: a Python caller of a node gets what an editor user gets (β used to fall back to 1e6)."""
    cls = NODE_CLASSES[name]
    params = inspect.signature(cls.execute).parameters
    node_only = {option.name: option for option in cls.NODE_WIDGETS}
    for iname, (kind, opts) in _inputs(cls).items():
        if "default" not in opts:
            continue
        assert params[iname].default == opts["default"], (name, iname)
        engine_name = cls.OPTION_INPUTS.get(iname, iname)
        if iname in node_only:
            expected = node_only[iname].default
        elif engine_name in nst_core.OPTIONS:
            expected = nst_core.OPTIONS[engine_name].default
        else:
            continue
        value = float(opts["default"]) if kind == "STRING" and iname not in node_only else opts["default"]
        assert value == expected, (name, iname)
        source = node_only.get(iname) or nst_core.OPTIONS[engine_name]
        if isinstance(kind, list):
            assert tuple(kind) == source.choices, (name, iname)             # the engine's list
        if kind in ("INT", "FLOAT"):
            assert (opts["min"], opts["max"]) == (source.min, source.max), (name, iname)


def test_the_node_layer_knows_no_engine_internals():
    """Nodes translate only: no layer parsing, number parsing, fitting or device choice of their own."""
    import pathlib
    for path in (pathlib.Path(nst_core.__file__).parents[1] / "nodes").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for needle in ("float(s)", "def parse_weight", "def parse_numbers", "def _fit", "torch.cuda.is_available",
                       "F.interpolate"):
            assert needle not in source, (path.name, needle)


@pytest.mark.parametrize("text, value", [("1e4", 1e4), ("5e-4", 5e-4), (" 0.5 ", 0.5), ("1_000", 1000.0),
                                         ("1e-5", 1e-5), ("1e5", 1e5), ("0", 0.0), (3, 3.0)])
def test_weights_spanning_decades_parse(node_vgg, images, text, value):
    assert NST_StyleTarget.validate_inputs(layers="conv1_1", layer_weights="", weight=text) is True
    target = NST_StyleTarget.execute(node_vgg, images[1], "conv1_1", "", text)[0]
    assert target.weight == pytest.approx(value)


@pytest.mark.parametrize("text", ["lots", "", "-1", "nan", "inf", "1e99", True])
def test_bad_weight_text_names_node_and_input(node_vgg, images, text):
    with pytest.raises(ValueError, match=r"^\[NST StyleTarget\] input 'weight': "):
        NST_StyleTarget.execute(node_vgg, images[1], "conv1_1", "", text)
    msg = NST_StyleTarget.validate_inputs(layers="conv1_1", layer_weights="", weight=text)
    assert isinstance(msg, str) and "input 'weight'" in msg


def test_queue_time_validation_of_layer_strings():
    msg = NST_ContentTarget.validate_inputs(layers="conv4_2, conv9_9", weight="1")
    assert "[NST ContentTarget] input 'layers'" in msg and "conv9_9" in msg and "conv4_2" in msg
    msg = NST_StyleTarget.validate_inputs(layers="conv1_1,conv2_1", layer_weights="1,2,3", weight="1")
    assert "input 'layer_weights'" in msg and "3 weight(s) given for 2 layer(s)" in msg
    assert "input 'layers'" in NST_Reconstruct.validate_inputs(layers="fc7")


# ----------------------------------------------------------------------------------------------
# the host adapter

def test_host_is_inert_without_comfyui(monkeypatch, tmp_path):
    assert not host.in_comfyui()
    bar = host.ProgressBar(10)
    bar.update(3, 10, None)            # no ComfyUI, no executor run: nothing happens
    host.check_interrupted()
    monkeypatch.setenv("NST_DEVICE", "meta")
    assert host.get_device() == torch.device("meta")          # the nodes read NST_DEVICE ...
    assert nst_core.default_device().type in ("cpu", "cuda")  # ... the engine does not
    (tmp_path / "sub").mkdir()
    for name in ("vgg19.pth", "sub/vgg16.safetensors", "notes.txt", "act_means_0123_caffe.safetensors"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setenv("NST_VGG_DIR", str(tmp_path))
    assert host.list_vgg_files() == ["sub/vgg16.safetensors", "vgg19.pth"]
    assert host.vgg_full_path("sub/vgg16.safetensors") == str(tmp_path / "sub" / "vgg16.safetensors")
    assert host.vgg_full_path("../etc/passwd") is None
    assert _inputs(NST_LoadVGG)["weights"][0] == ["default", "sub/vgg16.safetensors", "vgg19.pth"]


@pytest.fixture
def fake_comfyui(monkeypatch, tmp_path):
    """Just enough of ComfyUI's modules (folder_paths, comfy.utils, comfy.model_management)."""
    calls = {"bars": [], "interrupt_checks": 0, "cache_dir": None}
    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(tmp_path / "models")
    fp.folder_names_and_paths = {"vgg": (["/elsewhere/vgg"], set())}   # e.g. from extra_model_paths.yaml

    def add_model_folder_path(name, path, is_default=False):
        fp.folder_names_and_paths.setdefault(name, ([], set()))[0].append(path)
    fp.add_model_folder_path = add_model_folder_path
    fp.get_folder_paths = lambda name: list(fp.folder_names_and_paths[name][0])
    fp.get_filename_list = lambda name: ["a.pth", "act_means_x.safetensors", "readme.txt",
                                         nst_core.pretrained.DEFAULT_WEIGHTS_NAME]
    fp.get_full_path = lambda name, f: f"/elsewhere/vgg/{f}"
    fp.filename_list_cache = {"vgg": "stale"}

    class ProgressBar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            calls["bars"].append((value, total, preview))

    class Interrupted(Exception):
        pass

    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = ProgressBar
    mm = types.ModuleType("comfy.model_management")
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.soft_empty_cache = lambda force=False: None
    mm.interrupt = False

    def throw():
        calls["interrupt_checks"] += 1
        if mm.interrupt:
            raise Interrupted()
    mm.throw_exception_if_processing_interrupted = throw
    mm.Interrupted = Interrupted
    comfy = types.ModuleType("comfy")
    comfy.utils, comfy.model_management = utils, mm
    for name, mod in {"folder_paths": fp, "comfy": comfy, "comfy.utils": utils,
                      "comfy.model_management": mm}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(host, "_registered", False)
    monkeypatch.setattr(nst_core, "set_cache_dir", lambda p: calls.__setitem__("cache_dir", p))
    return types.SimpleNamespace(calls=calls, fp=fp, mm=mm)


def test_host_inside_comfyui(fake_comfyui):
    from PIL import Image
    fc = fake_comfyui
    assert host.in_comfyui()
    folders = host.register_vgg_folder()
    vgg_dir = fc.fp.models_dir + "/vgg"
    assert folders == ["/elsewhere/vgg", vgg_dir]            # merged, existing entry kept first
    assert {".pth", ".safetensors", ".pt", ".bin"} <= fc.fp.folder_names_and_paths["vgg"][1]
    assert "vgg" not in fc.fp.filename_list_cache
    # the engine's 80 MB default-weights cache lives beside models/vgg, never in NST Load VGG's list (an
    # older version's copy in models/vgg is left out too)
    assert fc.calls["cache_dir"] == fc.fp.models_dir + "/nst_cache"
    assert host.list_vgg_files() == ["a.pth"]
    assert host.vgg_full_path("a.pth") == "/elsewhere/vgg/a.pth"
    bar = host.ProgressBar(4)
    pic = Image.new("RGB", (8, 8))
    bar.update(2, 4, pic)
    bar.update(3, 4)
    assert fc.calls["bars"] == [(2, 4, ("JPEG", pic, host.PREVIEW_MAX_SIZE)), (3, 4, None)]
    host.check_interrupted()
    fc.mm.interrupt = True
    with pytest.raises(fc.mm.Interrupted):
        host.check_interrupted()


def test_inside_comfyui_only_its_node_cache_holds_the_network(fake_comfyui):
    """ComfyUI's "Free model and node cache" resets its node cache: the network must not outlive it in the
    engine's own cache there (a second load is a new network); outside ComfyUI the engine shares it."""
    with torch.inference_mode():
        first = NST_LoadVGG.execute()[0]
        assert NST_LoadVGG.execute()[0] is not first
    nst_core.release_networks()


def test_outside_comfyui_the_engine_shares_the_network():
    assert NST_LoadVGG.execute()[0] is NST_LoadVGG.execute()[0]


def test_register_creates_the_entry_when_absent(fake_comfyui):
    fake_comfyui.fp.folder_names_and_paths.clear()
    assert host.register_vgg_folder() == [fake_comfyui.fp.models_dir + "/vgg"]
    assert fake_comfyui.fp.folder_names_and_paths["vgg"][1] == set(host.WEIGHT_EXTENSIONS)


# ----------------------------------------------------------------------------------------------
# real runs, small, under inference mode (as ComfyUI runs every prompt)

@pytest.fixture(scope="module")
def node_vgg():
    """The default VGG loaded through the node under inference mode, as ComfyUI would."""
    with torch.inference_mode():
        return NST_LoadVGG.execute("default")[0]


@pytest.fixture(scope="module")
def images():
    with torch.inference_mode():
        # clones made under inference mode are inference tensors, like every IMAGE inside ComfyUI
        content = NST_ExampleImage.execute("content_chelsea.png", 64)[0].clone()
        style = NST_ExampleImage.execute("style_starry_night.jpg", 64)[0].clone()
    assert content.is_inference() and style.is_inference()
    return content, style


def _psnr(a, b):
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def test_example_image_and_resize(images):
    content, style = images
    assert content.shape == (1, 43, 64, 3) and max(style.shape[1:3]) == 64
    assert content.dtype == torch.float32 and 0 <= float(content.min()) and float(content.max()) <= 1
    with torch.inference_mode():
        big = NST_ExampleImage.execute("content_chelsea.png", 0)[0]
        assert big.shape == (1, 300, 451, 3)
        assert NST_ImageResize.execute(big, 96)[0].shape == (1, 64, 96, 3)
        assert NST_ImageResize.execute(content, 96)[0].shape == content.shape         # no upscale
        assert NST_ImageResize.execute(content, 96, upscale=True)[0].shape == (1, 64, 96, 3)


def test_load_vgg_node(node_vgg):
    vgg = node_vgg
    assert vgg.arch == "vgg19" and vgg.pooling == "max" and vgg.filters_normalized
    assert vgg.device == host.get_device()
    assert NST_LoadVGG.fingerprint_inputs(weights="default") == "default"


def test_content_ladder_psnr_falls_with_depth(node_vgg, images):
    vgg = node_vgg
    content, _ = images
    with torch.inference_mode():
        ladder, plot, report = NST_Reconstruct.execute(
            vgg, content, "content", "conv1_2, conv3_2, conv5_2", 10, "lbfgs", 0, preview_every=0)
    assert ladder.shape == (3, *content.shape[1:])
    psnr = [_psnr(ladder[i], content[0]) for i in range(3)]
    assert psnr[0] > psnr[1] > psnr[2], psnr
    assert psnr[0] > 11.0, psnr                 # conv1_2 already reproduces the photo (noise is ~8 dB)
    assert plot.shape[0] == 1 and plot.shape[-1] == 3
    assert "conv1_2" in report and "conv5_2" in report and "final" in report


def test_transfer_lowers_the_style_loss_with_progress_and_preview(node_vgg, images):
    vgg = node_vgg
    content, style = images
    seen = []

    def sink(node_id, value, total, preview):
        seen.append((node_id, value, total, preview))

    with torch.inference_mode():
        ct = NST_ContentTarget.execute(vgg, content, "conv4_2", "1")[0]
        st = NST_StyleTarget.execute(vgg, style, "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1", "", "1e4", 1.0)[0]
        with runtime.activate(runtime.RunContext(progress=sink, node_id="6")):
            image, plot, report = NST_Optimize.execute(vgg, ct, "content", "lbfgs", 6, 0.0, "0", 0, "none", 3,
                                                       style=st)
    assert image.shape == content.shape and torch.isfinite(image).all()
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    assert not torch.equal(image, content)
    first, last = _history_from_report(report)
    assert last < 0.5 * first, report
    assert [s[1:3] for s in seen] == [(i, 6) for i in range(1, 7)]
    previews = [s[3] for s in seen if s[3] is not None]
    assert len(previews) == 2 and previews[0].size == (64, 43)        # steps 3 and 6
    assert plot.shape == (1, 400, 640, 3) and float(plot.std()) > 0.05   # a drawn plot, not a blank image


def test_coarse_to_fine_input_runs_a_pyramid(node_vgg, images, monkeypatch):
    """On: part of the steps at half the side, then √2 below, the rest at full size (progress counts all of
    them). The coarsest side and the minimum step count are lowered so a 6-step run at 64 px gets three
    levels; the CPU is taken as one with native bfloat16, whose coarse levels the report names."""
    monkeypatch.setattr(nst_core.precision, "cpu_has_native_bfloat16", lambda: True)
    monkeypatch.setattr(nst_core.plan, "COARSEST_LONG_SIDE", 32)
    monkeypatch.setattr(nst_core.plan, "COARSEST_SHORT_SIDE", 16)
    monkeypatch.setattr(nst_core.plan, "MIN_PYRAMID_STEPS", 1)
    from comfyui_nst.nodes import nst_nodes
    labels = []
    draw = nst_nodes.plot_losses
    monkeypatch.setattr(nst_nodes, "plot_losses",
                        lambda history, **kw: labels.append(kw.get("level_marks")) or draw(history, **kw))
    vgg = node_vgg
    content, style = images
    runs = {}
    for flag in (True, False):
        seen = []
        with torch.inference_mode():
            ct = NST_ContentTarget.execute(vgg, content, "relu4_2", "1")[0]
            st = NST_StyleTarget.execute(vgg, style, "relu1_1,relu2_1,relu3_1", "", "1e5", 1.0)[0]
            with runtime.activate(runtime.RunContext(progress=lambda *a: seen.append(a[1:3]), node_id="6")):
                image, _, report = NST_Optimize.execute(vgg, ct, "content", "lbfgs", 6, 0.0, "0", 0, "none",
                                                        0, coarse_to_fine=flag, style=st)
        assert image.shape == content.shape and torch.isfinite(image).all()
        runs[flag] = (seen, report)
    seen, report = runs[True]
    assert seen == [(i, 6) for i in range(1, 7)]                # 4 steps at 32x22, 1 at 45x30, 1 at 64x43
    assert "6/6 steps at 32x22 px, bfloat16 x 4, 45x30 px, bfloat16 x 1, 64x43 px x 1," in report, report
    seen, report = runs[False]
    assert seen == [(i, 6) for i in range(1, 7)] and "6/6 steps," in report and " px x " not in report
    assert labels == [[(5, "45x30 px"), (6, "64x43 px")], []]  # the plot marks where the size changes


def _history_from_report(report):
    """(first, last) style loss from the report table."""
    lines = report.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("step"))
    col = lines[head].split().index("style")
    rows = [line.split() for line in lines[head + 1:] if line.strip()]
    return float(rows[0][col]), float(rows[-1][col])


def test_cancel_stops_within_a_step(node_vgg, images):
    vgg = node_vgg
    content, _ = images
    steps_seen = []

    def sink(node_id, value, total, preview):
        steps_seen.append(value)

    with torch.inference_mode():
        ct = NST_ContentTarget.execute(vgg, content, "conv2_2", "1")[0]
        ctx = runtime.RunContext(progress=sink, cancel=lambda: len(steps_seen) >= 2)
        with runtime.activate(ctx), pytest.raises(runtime.Interrupted):
            NST_Optimize.execute(vgg, ct, "noise", "adam", 50, 0.0, "0", 0, "none", 0)
    assert steps_seen == [1, 2]          # cancelled after step 2 -> no third step ran


def test_style_blend_of_two_sizes_and_style_ladder(node_vgg, images):
    vgg = node_vgg
    content, style = images
    with torch.inference_mode():
        other = NST_ExampleImage.execute("style_the_scream.jpg", 48)[0]
        st = NST_StyleTarget.execute(vgg, style, "conv1_1,conv2_1", "1,0.5", "1e3", 0.8, image2=other,
                                     blend=0.25)[0]
        assert st.blend == pytest.approx([0.75, 0.25]) and st.layer_weights == [1.0, 0.5]
        ladder, _, report = NST_Reconstruct.execute(vgg, style, "style", "conv1_1,conv2_1", 2, "adam", 1,
                                                    preview_every=0)
    assert ladder.shape == (2, *style.shape[1:])
    assert "+conv2_1" in report


# ----------------------------------------------------------------------------------------------
# bad input: errors name the node and the input, never a crash deep in torch

def test_missing_weights_file(monkeypatch, tmp_path):
    monkeypatch.setenv("NST_VGG_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"^\[NST LoadVGG\] input 'weights': .*'nope\.pth' not found"):
        NST_LoadVGG.execute("nope.pth")


def test_corrupt_weights_file(monkeypatch, tmp_path):
    (tmp_path / "broken.pth").write_bytes(b"this is not a checkpoint" * 10)
    monkeypatch.setenv("NST_VGG_DIR", str(tmp_path))
    with torch.inference_mode():
        with pytest.raises(ValueError, match=r"^\[NST LoadVGG\] input 'weights': .*broken\.pth"):
            NST_LoadVGG.execute("broken.pth")
        with pytest.raises(ValueError, match=r"^\[NST LoadVGG\] input 'weights': "):
            NST_LoadVGG.execute(str(tmp_path / "broken.pth"))      # a full path, headless


def test_unknown_layer_names(node_vgg, images):
    vgg = node_vgg
    content, style = images
    with pytest.raises(ValueError, match=r"^\[NST ContentTarget\] input 'layers': unknown layer name\(s\) "
                                         r"'conv9_9'; valid names: conv1_1"):
        NST_ContentTarget.execute(vgg, content, "conv9_9", "1")
    with pytest.raises(ValueError, match=r"^\[NST StyleTarget\] input 'layers': .*'banana'"):
        NST_StyleTarget.execute(vgg, style, "conv1_1, banana", "", "1e4", 1.0)
    with pytest.raises(ValueError, match=r"^\[NST Reconstruct\] input 'layers': .*'fc7'"):
        NST_Reconstruct.execute(vgg, content, "content", "fc7", 2, "lbfgs", 0)
    with pytest.raises(ValueError, match=r"^\[NST ContentTarget\] input 'layers': no layer names"):
        NST_ContentTarget.execute(vgg, content, " , ", "1")


def test_image_batches_of_mismatched_sizes(node_vgg, images):
    vgg = node_vgg
    content, style = images
    with pytest.raises(ValueError, match=r"^\[NST StyleTarget\] input 'image': the batch mixes image sizes "
                                         r"64x43, 64x40"):
        NST_StyleTarget.execute(vgg, [content, style], "conv1_1", "", "1e4", 1.0)
    with pytest.raises(ValueError, match=r"^\[NST ImageResize\] input 'image': the batch mixes image sizes"):
        NST_ImageResize.execute([content, style], 32)
    with pytest.raises(ValueError, match=r"^\[NST ContentTarget\] input 'image': the batch mixes image sizes"):
        NST_ContentTarget.execute(vgg, [content, style], "conv4_2", "1")
    with pytest.raises(ValueError, match=r"^\[NST ContentTarget\] input 'image': .*too small for layer conv5_2"):
        NST_ContentTarget.execute(vgg, content[:, :8, :8], "conv5_2", "1")
    with pytest.raises(ValueError, match=r"^\[NST StyleTarget\] input 'image': expected an image tensor"):
        NST_StyleTarget.execute(vgg, torch.zeros(1, 3, 8, 8, 2), "conv1_1", "", "1", 1.0)


def test_zero_weight_everywhere(node_vgg, images):
    vgg = node_vgg
    content, style = images
    with torch.inference_mode():
        ct0 = NST_ContentTarget.execute(vgg, content, "conv4_2", "0")[0]
        st0 = NST_StyleTarget.execute(vgg, style, "conv1_1", "", "0", 1.0)[0]
        with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'content': every loss weight is zero "
                                             r"\(content α = 0, style β = none"):
            NST_Optimize.execute(vgg, ct0, "content", "lbfgs", 2, 0.0, "0", 0, "none", 0)
        with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'content': every loss weight is zero "
                                             r"\(content α = 0, style β = 0"):
            NST_Optimize.execute(vgg, ct0, "content", "lbfgs", 2, 0.0, "0", 0, "none", 0, style=st0)


def test_widget_values_out_of_range_or_wrong(node_vgg, images):
    vgg = node_vgg
    content, style = images
    with torch.inference_mode():
        ct = NST_ContentTarget.execute(vgg, content, "conv4_2", "1")[0]
        st = NST_StyleTarget.execute(vgg, style, "conv1_1", "", "1e4", 1.0)[0]
    opt = NST_Optimize
    with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'steps': 0 is below the minimum 1"):
        opt.execute(vgg, ct, "content", "lbfgs", 0, 0.0, "0", 0, "none", 0)
    with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'optimizer': 'bfgs' is not one of"):
        opt.execute(vgg, ct, "content", "bfgs", 2, 0.0, "0", 0, "none", 0)
    with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'tv_weight': expected a number"):
        opt.execute(vgg, ct, "content", "lbfgs", 2, 0.0, "smooth", 0, "none", 0)
    with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'init_image': init 'image' needs"):
        opt.execute(vgg, ct, "image", "lbfgs", 2, 0.0, "0", 0, "none", 0)
    with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'init': init 'style' needs a style"):
        opt.execute(vgg, ct, "style", "lbfgs", 2, 0.0, "0", 0, "none", 0)
    with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'content': expected a content target"):
        opt.execute(vgg, st, "content", "lbfgs", 2, 0.0, "0", 0, "none", 0)
    with pytest.raises(ValueError, match=r"^\[NST Optimize\] input 'vgg': expected an NST_VGG"):
        opt.execute("vgg19", ct, "content", "lbfgs", 2, 0.0, "0", 0, "none", 0)
    with pytest.raises(ValueError, match=r"^\[NST StyleTarget\] input 'layer_weights': 1 weight\(s\) given "
                                         r"for 2 layer\(s\)"):
        NST_StyleTarget.execute(vgg, style, "conv1_1,conv2_1", "1", "1e4", 1.0)
    with pytest.raises(ValueError, match=r"^\[NST StyleTarget\] input 'scale': 0 is below the minimum 0.05"):
        NST_StyleTarget.execute(vgg, style, "conv1_1", "", "1e4", 0.0)


# ----------------------------------------------------------------------------------------------
# plotting (matplotlib, Agg canvas)

def _has_colour(img, hex_colour: str, tolerance: int = 40, at_least: int = 30) -> bool:
    """At least `at_least` pixels within `tolerance` (per channel) of the colour: a drawn curve."""
    import numpy as np
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    pixels = np.asarray(img).reshape(-1, 3).astype(int)
    return int((np.abs(pixels - rgb).max(axis=1) <= tolerance).sum()) >= at_least


def test_plot_and_report_of_a_history():
    history = [{"step": i, "stage": 0, "total": 10.0 ** (6 - i / 5), "content": 1e3 / i, "style": 1e5 / i,
                "tv": 0.0} for i in range(1, 21)]
    img = plotting.plot_losses(history, title="t")
    assert img.size == (640, 400) and img.mode == "RGB"
    for term in ("total", "content", "style"):
        assert _has_colour(img, plotting.TERM_STYLES[term][0]), term
    assert not _has_colour(img, plotting.TERM_STYLES["tv"][0])     # all-zero term: no curve on a log axis
    text = plotting.format_report(history, header="H")
    assert text.startswith("H") and "tv" not in text.splitlines()[2]
    assert plotting.plot_losses([]).size == (640, 400)
    nan = [{"step": 1, "stage": 0, "total": math.nan}]
    assert plotting.plot_losses(nan).size == (640, 400)


def test_plot_marks_level_changes():
    """A coarse-to-fine run's plot has a dashed grey line where each larger size starts."""
    import numpy as np
    history = [{"step": i, "stage": 0, "level": int(i > 10), "total": 1e6 / i, "content": 1e3, "style": 1e2,
                "tv": 0.0} for i in range(1, 21)]
    plain = np.asarray(plotting.plot_losses(history)).astype(int)
    marked = np.asarray(plotting.plot_losses(history, level_marks=[(11, "256x170 px")])).astype(int)
    changed = np.abs(plain - marked).max(axis=2) > 60
    columns = np.nonzero(changed.sum(axis=0) > 100)[0]             # a tall vertical line
    assert len(columns) >= 1 and columns.max() - columns.min() < 6
    assert _has_colour(Image_from(marked), "#888888", tolerance=10)


def test_a_failing_plot_does_not_lose_the_finished_image(node_vgg, images, monkeypatch):
    """The run's image and report come back when the loss plot fails; the plot output says so, and so does
    the report (a plotting bug once cost a finished 2048 px run)."""
    from comfyui_nst.nodes import nst_nodes

    def broken(*args, **kwargs):
        raise ValueError("cannot draw")
    monkeypatch.setattr(nst_nodes, "plot_losses", broken)
    content, style = images
    with torch.inference_mode():
        ct = NST_ContentTarget.execute(node_vgg, content, "conv4_2", "1")[0]
        st = NST_StyleTarget.execute(node_vgg, style, "conv1_1,conv2_1", "", "1", 1.0)[0]
        image, plot, report = NST_Optimize.execute(node_vgg, ct, "content", "lbfgs", 2, 0.0, "0", 0, "none", 0,
                                                   style=st)
    assert image.shape == content.shape and plot.shape == (1, 400, 640, 3)
    assert "warning: the loss plot could not be drawn (ValueError: cannot draw)" in report and "final" in report


def Image_from(array):
    from PIL import Image
    import numpy as np
    return Image.fromarray(np.asarray(array, dtype=np.uint8))


def test_a_batch_of_photos_is_stylized_photo_by_photo(node_vgg, images):
    """An IMAGE batch into NST Content Target: NST Optimize stylizes each photo (seed + index), one
    progress bar over the whole batch, and returns the batch."""
    content, style = images
    batch = torch.cat([content, torch.flip(content, dims=[2])])
    seen = []
    with torch.inference_mode():
        targets = NST_ContentTarget.execute(node_vgg, batch, "relu4_2", "1")[0]
        st = NST_StyleTarget.execute(node_vgg, style, "relu1_1,relu2_1", "", "1e5", 1.0)[0]
        with runtime.activate(runtime.RunContext(progress=lambda *a: seen.append(a[1:3]), node_id="6")):
            image, plot, report = NST_Optimize.execute(node_vgg, targets, "noise", "lbfgs", 3, 0.0, "0", 5,
                                                       "none", 0, coarse_to_fine=False, style=st)
    assert len(targets) == 2 and image.shape == (2, *content.shape[1:])
    assert seen == [(i, 6) for i in range(1, 7)]
    assert "batch of 2 (seed + index)" in report
    single = nst_core.optimize(node_vgg, targets[1], st, init="noise", steps=3, seed=6)
    assert torch.equal(image[1:2], single.image)


def test_the_layer_weights_help_names_the_engines_block_emphasis():
    """The node's tooltip and nst-stylize --help read one text, built from the engine's BLOCK_EMPHASIS."""
    from nst_core.cli import build_parser
    from nst_core.statistics.normalization import BLOCK_EMPHASIS, STYLE_LAYER_WEIGHTS_HELP
    tooltip = NST_StyleTarget.inputs()["required"]["layer_weights"][1]["tooltip"]
    for statistic, blocks in BLOCK_EMPHASIS.items():
        for block, factor in blocks.items():
            assert f"block {block} {factor:g}x" in tooltip and f"block {block} {factor:g}x" in STYLE_LAYER_WEIGHTS_HELP
    action = next(a for a in build_parser()._actions if "--style-layer-weights" in a.option_strings)
    assert action.help == STYLE_LAYER_WEIGHTS_HELP
