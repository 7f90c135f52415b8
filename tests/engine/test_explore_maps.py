"""Feature maps: the top channels are those with the most energy, the raw tensor is the layer's."""

from __future__ import annotations

import pytest
import torch

import nst_core
from nst_core.image import resize


@pytest.fixture(scope="module")
def vgg():
    return nst_core.load_vgg(device="cpu")


def test_feature_maps_top_channels_and_grid(vgg):
    photo = nst_core.load_image(nst_core.example_path("content_coffee.png"))
    photo = resize(photo.permute(0, 3, 1, 2), (48, 64)).permute(0, 2, 3, 1)
    result = nst_core.feature_maps(vgg, photo, "relu3_1", top=6)
    with torch.no_grad():
        raw = vgg.features(photo.permute(0, 3, 1, 2), ["relu3_1"])["relu3_1"][0]
    assert torch.allclose(result.features, raw)
    energy = raw.pow(2).mean(dim=(1, 2))
    assert result.channels == energy.topk(6).indices.tolist()
    assert min(energy[result.channels]) >= energy.sort(descending=True).values[5]
    grid = result.grid
    assert grid.shape[0] == 1 and grid.shape[-1] == 3 and 0 <= grid.min() and grid.max() <= 1
    named = nst_core.feature_maps(vgg, photo, "relu3_1", channels=[7, 2])
    assert named.channels == [7, 2]
    with pytest.raises(nst_core.LayerError, match="out of range"):
        nst_core.feature_maps(vgg, photo, "relu3_1", channels=[256])
    with pytest.raises(nst_core.ImageError, match="one image"):
        nst_core.feature_maps(vgg, torch.cat([photo, photo]), "relu3_1")
