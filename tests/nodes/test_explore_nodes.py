"""The explorer's nodes, called directly: outputs are IMAGEs and text, bad input names node and input."""

from __future__ import annotations

import pytest
import torch

import nst_core
from comfyui_nst.nodes import explore_nodes as ex
from comfyui_nst.nodes.base import NodeInputError
from nst_core.image import resize


@pytest.fixture(scope="module")
def vgg():
    return nst_core.load_vgg(device="cpu")


@pytest.fixture(scope="module")
def photo():
    image = nst_core.load_image(nst_core.example_path("content_chelsea.png"))
    return resize(image.permute(0, 3, 1, 2), (48, 64)).permute(0, 2, 3, 1)


def test_mappings_and_inputs():
    assert {cls.NODE_ID for cls in ex.NODES} == {"NST_FeatureMaps", "NST_VisualizeChannel", "NST_TopPatches",
                                                 "NST_ReceptiveField"}
    for cls in ex.NODES:
        spec = cls.spec().input_types()["required"]
        assert list(spec)[0] in ("vgg", "image")
        assert all(o.name and o.type for o in cls.spec().outputs)
    assert ex.NST_VisualizeChannel.spec().input_types()["required"]["steps"][1]["default"] == \
        nst_core.explore.channels.DEFAULT_STEPS


def test_feature_maps_node(vgg, photo):
    grid, text = ex.NST_FeatureMaps.execute(vgg, photo, "relu2_1", "", 4)
    assert grid.ndim == 4 and grid.shape[-1] == 3 and "128 channels of 32x24" in text
    grid, text = ex.NST_FeatureMaps.execute(vgg, photo, "relu2_1", "3, 5", 16)
    assert text.endswith("shown: 3, 5")
    with pytest.raises(NodeInputError, match=r"\[NST FeatureMaps\] input 'channels': .*out of range"):
        ex.NST_FeatureMaps.execute(vgg, photo, "relu2_1", "300", 16)
    with pytest.raises(NodeInputError, match=r"input 'layer'"):
        ex.NST_FeatureMaps.execute(vgg, photo, "conv7_1", "", 16)


def test_visualize_channel_node_reports_progress(vgg, monkeypatch):
    updates = []

    class Bar:
        def __init__(self, total):
            self.total = total

        def update(self, value, total=None, preview=None):
            updates.append((value, total, preview is not None))

    monkeypatch.setattr(ex.host, "ProgressBar", Bar)
    images, text = ex.NST_VisualizeChannel.execute(vgg, "relu1_1", "1, 2", 32, 5, 0)
    assert images.shape == (2, 32, 32, 3) and text.count("mean activation") == 2
    assert [u[0] for u in updates] == [1, 2, 3, 4, 5] and updates[-1][2]
    with pytest.raises(NodeInputError, match="input 'channels'"):
        ex.NST_VisualizeChannel.execute(vgg, "relu1_1", "", 32, 5, 0)
    with pytest.raises(NodeInputError, match="input 'channels'.*out of range"):
        ex.NST_VisualizeChannel.execute(vgg, "relu1_1", "99", 32, 1, 0)
    with pytest.raises(NodeInputError, match="input 'size'"):
        ex.NST_VisualizeChannel.execute(vgg, "relu1_1", "1", 4, 1, 0)


def test_top_patches_node(vgg, photo):
    batch = torch.cat([photo, photo.flip(2)])
    patches, grads, boxes, report = ex.NST_TopPatches.execute(vgg, batch, "relu3_1", 10, 4, 0.5, True, 64)
    assert patches.shape[-1] == grads.shape[-1] == 3 and boxes.shape == batch.shape
    assert report.count(" box x ") == 4
    with pytest.raises(NodeInputError, match="input 'k'"):
        ex.NST_TopPatches.execute(vgg, batch, "relu3_1", 10, 0, 0.5, False, 64)


def test_receptive_field_node(photo):
    overlay, text = ex.NST_ReceptiveField.execute(photo, "conv3_1", "vgg16", 0.5)
    assert overlay.shape == photo.shape and "receptive field 24 px, stride 4 px" in text
    assert (overlay != photo).any()
    with pytest.raises(NodeInputError, match="input 'layer'"):
        ex.NST_ReceptiveField.execute(photo, "conv5_4", "vgg16", 0.5)
    with pytest.raises(NodeInputError, match="input 'architecture'"):
        ex.NST_ReceptiveField.execute(photo, "conv1_1", "vgg11", 0.5)
