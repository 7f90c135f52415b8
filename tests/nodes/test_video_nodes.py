"""NST Stylize Frames: its ComfyUI contract, a real small run under torch.inference_mode() (as ComfyUI runs
every prompt) with progress over the whole clip, and clear errors naming the node and the input."""

from __future__ import annotations

import inspect
import sys

import pytest
import torch

import nst_core
from comfyui_nst.nodes.headless import runtime
from comfyui_nst.nodes.nst_nodes import NST_ContentTarget, NST_ExampleImage, NST_LoadVGG, NST_StyleTarget
from comfyui_nst.nodes.video_nodes import NODES, NST_PanClip, NST_StylizeFrames
from nst_core.video import CHUNK_FRAMES, TEMPORAL_WEIGHT
from nst_core.video.options import FRAME_COUNT, PAN_X, PAN_Y, ZOOM

# FROZEN once released: saved UI workflows store widget values by position; append new inputs at the end.
EXPECTED_INPUTS = ["vgg", "frames", "style", "temporal_weight", "steps", "init", "optimizer", "learning_rate",
                   "content_weight", "tv_weight", "seed", "preview_every", "init_image", "chunk_frames"]
H, W, FRAMES, SHIFT = 41, 58, 3, (3.0, 1.0)    # a 64x43 photo panned: frames of (64-6)x(43-2) px


def _inputs():
    spec = NST_StylizeFrames.spec().input_types()
    return {**spec["required"], **spec.get("optional", {})}


def test_contract():
    assert NODES == (NST_StylizeFrames, NST_PanClip)
    assert {cls.spec().display_name for cls in NODES} == {"NST Stylize Frames", "NST Pan Clip (test clip from a photo)"}
    for cls in NODES:
        assert cls.spec().node_id == cls.__name__ and len(cls.spec().description) > 40
    node = NST_StylizeFrames.spec()
    spec = node.input_types()
    assert list(_inputs()) == EXPECTED_INPUTS and list(spec["optional"]) == ["init_image", "chunk_frames"]
    assert tuple(o.type for o in node.outputs) == ("IMAGE", "STRING") and all(o.tooltip for o in node.outputs)
    assert node.category == "style_transfer"
    params = inspect.signature(NST_StylizeFrames.execute).parameters
    assert list(params) == EXPECTED_INPUTS
    for name, entry in _inputs().items():
        assert entry[1].get("tooltip"), name
        if "default" in entry[1]:
            assert params[name].default == entry[1]["default"], name     # a Python caller gets the editor's


def test_defaults_come_from_the_engine():
    inputs = _inputs()
    assert inputs["temporal_weight"][0] == "STRING"                       # a weight spanning decades
    assert float(inputs["temporal_weight"][1]["default"]) == TEMPORAL_WEIGHT.default
    assert inputs["steps"][1]["default"] == nst_core.DEFAULTS["steps"]
    assert tuple(inputs["init"][0]) == nst_core.INITS and tuple(inputs["optimizer"][0]) == nst_core.OPTIMIZERS
    assert float(inputs["content_weight"][1]["default"]) == nst_core.DEFAULTS["content_weight"]
    assert inputs["seed"][1]["control_after_generate"] is True
    assert inputs["chunk_frames"][0] == "INT" and inputs["chunk_frames"][1]["default"] == CHUNK_FRAMES.default
    assert (inputs["chunk_frames"][1]["min"], inputs["chunk_frames"][1]["max"]) == (CHUNK_FRAMES.min, CHUNK_FRAMES.max)
    assert inputs["chunk_frames"][1]["default"] == 0                       # today's behaviour: no chunks
    assert NST_StylizeFrames.validate_inputs(temporal_weight="1e3", content_weight="1", tv_weight="0") is True
    assert NST_StylizeFrames.validate_inputs(temporal_weight=None) is True     # a linked input
    message = NST_StylizeFrames.validate_inputs(temporal_weight="-1")
    assert isinstance(message, str) and message.startswith("[NST StylizeFrames] input 'temporal_weight'")


@pytest.fixture(scope="module")
def node_vgg():
    with torch.inference_mode():
        return NST_LoadVGG.execute("default")[0]


@pytest.fixture(scope="module")
def clip_and_style(node_vgg):
    """A 3-frame pan over the cat (NST Pan Clip) and a starry-night style target, made under inference mode."""
    with torch.inference_mode():
        photo = NST_ExampleImage.execute("content_chelsea.png", 64)[0]          # 64x43
        clip = NST_PanClip.execute(photo, FRAMES, *SHIFT, 1.0)[0]
        style_image = NST_ExampleImage.execute("style_starry_night.jpg", 64)[0]
        style = NST_StyleTarget.execute(node_vgg, style_image)[0]
    assert clip.is_inference()
    return clip, style


def test_stylizes_a_clip_with_progress_over_all_frames(node_vgg, clip_and_style):
    clip, style = clip_and_style
    seen = []
    with torch.inference_mode():
        with runtime.activate(runtime.RunContext(progress=lambda *a: seen.append(a[1:4]), node_id="9")):
            frames, report = NST_StylizeFrames.execute(node_vgg, clip, style, steps=3, preview_every=3)
    assert frames.shape == (FRAMES, H, W, 3) and torch.isfinite(frames).all()
    assert 0 <= float(frames.min()) and float(frames.max()) <= 1
    assert not torch.equal(frames, clip)
    assert [(value, total) for value, total, _ in seen] == [(i, 3 * FRAMES) for i in range(1, 3 * FRAMES + 1)]
    previews = [preview for _, _, preview in seen if preview is not None]
    assert len(previews) == FRAMES and previews[0].size == (W, H)          # each frame's last step
    lines = report.splitlines()
    assert lines[0].startswith(f"NST Stylize Frames: {FRAMES}/{FRAMES} frames of {W}x{H} px, lbfgs, 3 steps")
    for t in range(1, FRAMES):
        line = next(line for line in lines if line.startswith(f"frame {t}:"))
        assert "temporal" in line and "% of pixels held by the flow" in line and "flicker" in line
    assert any(line.startswith("mean flicker") for line in lines)


def test_cancel_stops_the_clip(node_vgg, clip_and_style):
    clip, style = clip_and_style
    seen = []
    with torch.inference_mode():
        context = runtime.RunContext(progress=lambda *a: seen.append(a[1]), cancel=lambda: len(seen) >= 4)
        with runtime.activate(context), pytest.raises(runtime.Interrupted):
            NST_StylizeFrames.execute(node_vgg, clip, style, steps=3, preview_every=0)
    assert seen == [1, 2, 3, 4]                                           # cancelled in frame 1


def test_chunks_are_stitched_and_reported(node_vgg, clip_and_style):
    _, style = clip_and_style
    seen = []
    with torch.inference_mode():
        photo = NST_ExampleImage.execute("content_chelsea.png", 64)[0]
        clip = NST_PanClip.execute(photo, 5, *SHIFT, 1.0)[0]                  # 5 frames of 52x39 px
        with runtime.activate(runtime.RunContext(progress=lambda *a: seen.append(a[1:3]))):
            frames, report = NST_StylizeFrames.execute(node_vgg, clip, style, steps=2, preview_every=0,
                                                       chunk_frames=4)
    assert frames.shape == clip.shape and torch.isfinite(frames).all()
    assert seen[-1] == (12, 12)                        # keyframes 0 and 3, then frames 1-3 and 4: 6 x 2 steps
    lines = report.splitlines()
    assert "2 chunks (frames 0-3, 3-4), each aligned to the one before at their shared frame" in lines
    border = next(line for line in lines if line.startswith("flicker across chunk borders"))
    assert "inside chunks" in border
    assert sum(line.startswith("frame ") for line in lines) == 5


@pytest.mark.parametrize("overrides, name", [
    ({"chunk_frames": 1}, "chunk_frames"),
    ({"chunk_frames": -2}, "chunk_frames"),
    ({"temporal_weight": "lots"}, "temporal_weight"),
    ({"temporal_weight": "-1"}, "temporal_weight"),
    ({"steps": 0}, "steps"),
    ({"content_weight": "nan"}, "content_weight"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"init": "image"}, "init_image"),
    ({"frames": [torch.rand(1, 48, 64, 3), torch.rand(1, 40, 64, 3)]}, "frames"),
    ({"frames": torch.rand(2, 48, 64, 3) * 255}, "frames"),
    ({"vgg": "not a vgg"}, "vgg"),
    ({"style": None}, "style"),
])
def test_bad_inputs_name_node_and_input(node_vgg, clip_and_style, overrides, name):
    clip, style = clip_and_style
    kwargs = {"vgg": node_vgg, "frames": clip, "style": style, "steps": 1, **overrides}
    with torch.inference_mode(), pytest.raises(ValueError, match=rf"^\[NST StylizeFrames\] input '{name}': "):
        NST_StylizeFrames.execute(**kwargs)


def test_a_content_target_as_style_names_the_input(node_vgg, clip_and_style):
    clip, _ = clip_and_style
    with torch.inference_mode():
        content = NST_ContentTarget.execute(node_vgg, clip[:1])[0]
        with pytest.raises(ValueError, match=r"^\[NST StylizeFrames\] input 'style': expected a style target"):
            NST_StylizeFrames.execute(node_vgg, clip, content, steps=1)


def test_a_style_target_of_another_network_names_the_input(clip_and_style):
    clip, style = clip_and_style
    other = nst_core.load_vgg(normalized=False, device="cpu")          # another network (load_vgg caches)
    assert other is not style.vgg
    with torch.inference_mode(), pytest.raises(ValueError, match=r"input 'style': .*another network"):
        NST_StylizeFrames.execute(other, clip, style, steps=1)


def test_missing_opencv_says_how_to_install_it(monkeypatch, node_vgg, clip_and_style):
    clip, style = clip_and_style
    monkeypatch.setitem(sys.modules, "cv2", None)
    seen = []
    with torch.inference_mode(), runtime.activate(runtime.RunContext(progress=lambda *a: seen.append(a))):
        with pytest.raises(ValueError, match=r"^\[NST StylizeFrames\] .*pip install \.\[video\]"):
            NST_StylizeFrames.execute(node_vgg, clip, style, steps=1)
    assert seen == []                                                     # refused before any work


# ----------------------------------------------------------------------------------------------
# NST Pan Clip

def test_pan_clip_node_contract_and_defaults():
    spec = NST_PanClip.spec().input_types()["required"]
    assert list(spec) == ["image", "frame_count", "pan_x", "pan_y", "zoom"]
    node = NST_PanClip.spec()
    assert [o.type for o in node.outputs] == ["IMAGE"] and node.category == "style_transfer/image"
    params = inspect.signature(NST_PanClip.execute).parameters
    assert list(params) == list(spec)
    for name, option in (("frame_count", FRAME_COUNT), ("pan_x", PAN_X), ("pan_y", PAN_Y), ("zoom", ZOOM)):
        kind, opts = spec[name]
        assert opts["default"] == option.default == params[name].default
        assert (opts["min"], opts["max"]) == (option.min, option.max) and opts["tooltip"] and "step" in opts


def test_pan_clip_node_makes_a_known_pan():
    with torch.inference_mode():
        photo = NST_ExampleImage.execute("content_chelsea.png", 96)[0].clone()
        frames = NST_PanClip.execute(photo, 4, 3.0, -1.0, 1.0)[0]
    assert frames.shape == (4, 64 - 3, 96 - 9, 3)
    assert torch.allclose(frames[1][1:, :-3], frames[0][:-1, 3:], atol=1e-5)   # moved right 3 px, up 1 px
    with pytest.raises(ValueError, match=r"^\[NST PanClip\] input 'image': .*at least 32 px"):
        NST_PanClip.execute(photo, 40, 3.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"^\[NST PanClip\] input 'zoom': "):
        NST_PanClip.execute(photo, 4, 3.0, 1.0, 9.0)
    with pytest.raises(ValueError, match=r"^\[NST PanClip\] input 'image': expected one image"):
        NST_PanClip.execute(torch.cat([photo, photo]), 4, 3.0, 1.0, 1.0)
