"""NST Shape Mask: the engine's shape_mask (halves, ellipse, soft edge) and the node around it."""

from __future__ import annotations

import math

import pytest
import torch

import nst_core
from comfyui_nst.nodes import NODES
from comfyui_nst.nodes.base import NSTNode
from comfyui_nst.nodes.mask_nodes import NST_ShapeMask
from nst_core import masks_shapes as shapes
from nst_core.settings import OptionError

H, W = 40, 60


def _draw(shape, **kw):
    return NST_ShapeMask.execute(torch.rand(1, H, W, 3), shape, **kw)


def test_halves_split_at_x_and_y_and_complement_each_other():
    left = shapes.shape_mask((H, W), "left", x=0.25, feather=0)
    assert left.shape == (H, W) and left.dtype == torch.float32
    assert float(left[:, :15].min()) == 1.0 and float(left[:, 15:].max()) == 0.0      # x = 0.25 of 60 px
    top = shapes.shape_mask((H, W), "top", y=0.75, feather=0)
    assert float(top[:30].min()) == 1.0 and float(top[30:].max()) == 0.0
    # soft edges are symmetric about the split: left + right = 1 and top + bottom = 1 everywhere
    for a, b, kw in (("left", "right", {"x": 0.4}), ("top", "bottom", {"y": 0.3})):
        m1 = shapes.shape_mask((H, W), a, feather=0.2, **kw)
        m2 = shapes.shape_mask((H, W), b, feather=0.2, **kw)
        assert float((m1 + m2 - 1).abs().max()) < 1e-6
        assert float(m1.max()) == 1.0 and float(m1.min()) == 0.0


def test_feather_is_a_fraction_below_one_and_pixels_from_one():
    as_fraction = shapes.shape_mask((H, W), "left", feather=0.25)        # 0.25 * 40 (shorter side) = 10 px
    as_pixels = shapes.shape_mask((H, W), "left", feather=10)
    assert torch.allclose(as_fraction, as_pixels)
    ramp = int(((as_pixels[0] > 0) & (as_pixels[0] < 1)).sum())
    assert ramp == 10                                                     # 10 px wide, centred on x = 30
    hard = shapes.shape_mask((H, W), "left", feather=0)
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    wider = shapes.shape_mask((H, W), "left", feather=20)
    assert int(((wider[0] > 0) & (wider[0] < 1)).sum()) == 20


def test_ellipse_centre_size_aspect_and_area():
    big = (200, 300)
    m = shapes.shape_mask(big, "ellipse", x=0.4, y=0.5, extent=0.3, aspect=1.5, feather=0)
    a, b = 0.3 * 300 / 2, 0.3 * 300 / 2 * 1.5                            # 45 px wide half-axis, 67.5 high
    assert abs(float(m.sum()) - math.pi * a * b) / (math.pi * a * b) < 0.01
    cols = m.nonzero()[:, 1]
    rows = m.nonzero()[:, 0]
    assert abs(float(cols.float().mean()) + 0.5 - 0.4 * 300) < 0.5          # centred on x
    assert abs(float(rows.float().mean()) + 0.5 - 0.5 * 200) < 0.5
    assert int(cols.max() - cols.min()) + 1 == pytest.approx(2 * a, abs=1)
    assert int(rows.max() - rows.min()) + 1 == pytest.approx(2 * b, abs=1)
    soft = shapes.shape_mask(big, "ellipse", x=0.4, y=0.5, extent=0.3, aspect=1.5, feather=10)
    # a soft edge keeps the area (the ramp is centred on the ellipse) and is 10 px wide along the x axis
    assert abs(float(soft.sum()) - float(m.sum())) / float(m.sum()) < 0.02
    row = soft[100]
    assert int(((row > 0) & (row < 1)).sum()) == 20                      # two edges of 10 px each
    assert float(soft[100, 120]) == 1.0 and float(soft[0, 0]) == 0.0


def test_outside_lifts_the_rest_of_the_image():
    plain = shapes.shape_mask((H, W), "ellipse", extent=0.3, feather=4)
    lifted = shapes.shape_mask((H, W), "ellipse", extent=0.3, feather=4, outside=0.2)
    assert float(lifted.min()) == pytest.approx(0.2) and float(lifted.max()) == 1.0
    assert torch.allclose(lifted, 0.2 + 0.8 * plain)
    with pytest.raises(OptionError, match="outside: 1.5 is above the maximum 1"):
        shapes.shape_mask((H, W), "left", outside=1.5)


def test_node_outputs_mask_and_inverse_at_the_image_size():
    mask, inverted = NST_ShapeMask.execute(torch.rand(2, H, W, 3), "ellipse", x=0.5, y=0.4, size=0.4,
                                           aspect=1.3, feather=0.1)
    assert mask.shape == inverted.shape == (1, H, W) and mask.dtype == torch.float32
    assert float(mask.min()) >= 0 and float(mask.max()) <= 1
    assert torch.equal(inverted, 1 - mask)
    assert torch.equal(mask[0], shapes.shape_mask((H, W), "ellipse", 0.5, 0.4, 0.4, 1.3, 0.1))
    # both go into the masked targets as they are
    assert NSTNode.mask("mask", mask).shape == (1, 1, H, W)
    assert NSTNode.mask("mask", inverted).shape == (1, 1, H, W)


def test_widgets_are_the_engines_options():
    spec = NST_ShapeMask.spec().input_types()["required"]
    assert list(spec) == ["image", "shape", "x", "y", "size", "aspect", "feather", "outside"]
    assert spec["shape"][0] == list(shapes.SHAPES) and spec["shape"][1]["default"] == shapes.DEFAULT_SHAPE
    for name, default in (("x", shapes.DEFAULT_X), ("y", shapes.DEFAULT_Y), ("size", shapes.DEFAULT_SIZE),
                          ("aspect", shapes.DEFAULT_ASPECT), ("feather", shapes.DEFAULT_FEATHER),
                          ("outside", shapes.DEFAULT_OUTSIDE)):
        assert spec[name][0] == "FLOAT" and spec[name][1]["default"] == default
        assert spec[name][1]["min"] == shapes.OPTIONS[name].min and spec[name][1]["max"] == shapes.OPTIONS[name].max
    assert NST_ShapeMask in NODES
    assert NST_ShapeMask.spec().display_name == "NST Shape Mask"
    assert NST_ShapeMask.spec().category == "style_transfer/image"
    assert NST_ShapeMask.execute(torch.rand(1, H, W, 3))[0].shape == (1, H, W)      # every default works


@pytest.mark.parametrize("kwargs, message", [
    ({"shape": "circle"}, "[NST ShapeMask] input 'shape': 'circle' is not one of left, right, top, bottom, ellipse"),
    ({"shape": "left", "x": 1.5}, "[NST ShapeMask] input 'x': 1.5 is above the maximum 1"),
    ({"shape": "top", "y": -0.1}, "[NST ShapeMask] input 'y': -0.1 is below the minimum 0"),
    ({"shape": "ellipse", "size": "big"}, "[NST ShapeMask] input 'size': expected a number"),
    ({"shape": "ellipse", "aspect": 0}, "[NST ShapeMask] input 'aspect': 0 is below the minimum 0.05"),
    ({"shape": "left", "feather": float("nan")}, "[NST ShapeMask] input 'feather': expected a finite number"),
])
def test_bad_values_name_the_node_and_input(kwargs, message):
    with pytest.raises(ValueError) as info:
        _draw(**kwargs)
    assert str(info.value).startswith(message)


def test_bad_image_names_the_image_input():
    with pytest.raises(ValueError, match=r"^\[NST ShapeMask\] input 'image': no image connected"):
        NST_ShapeMask.execute(None, "left")
    with pytest.raises(OptionError, match="image size 0x4"):
        shapes.shape_mask((4, 0), "left")


def test_masks_made_in_inference_mode_drive_an_optimization():
    """ComfyUI (and the headless runner) run nodes under torch.inference_mode: a shape mask made there must
    still work as a content mask and a style mask in NST Optimize (autograd keeps the content mask)."""
    from comfyui_nst.nodes.nst_nodes import NST_ContentTarget, NST_LoadVGG, NST_Optimize, NST_StyleTarget

    with torch.inference_mode():
        photo = torch.rand(1, 32, 32, 3)
        vgg = NST_LoadVGG.execute()[0]
        mask, inverted = NST_ShapeMask.execute(photo, "ellipse", size=0.5, outside=0.2)
        content = NST_ContentTarget.execute(vgg, photo, weight="5", mask=mask)[0]
        style = NST_StyleTarget.execute(vgg, torch.rand(1, 32, 32, 3), weight="1e3", mask=inverted)[0]
        image, _, report = NST_Optimize.execute(vgg, content, steps=2, style=style, preview_every=0)
    assert image.shape == (1, 32, 32, 3) and "masked" in report
