"""Top patches are the true top: each returned patch, alone on a gray canvas, gives back its activation
(so the box holds everything the unit sees) and they come ranked as returned; no unit left out beats
them unless it overlaps a better returned box; every box lies inside its image."""

from __future__ import annotations

import pytest
import torch

import nst_core
from nst_core.explore.patches import PATCH_BACKGROUND, top_patches
from nst_core.explore.receptive import receptive_field
from nst_core.explore.patches import _iou

PHOTOS = ("content_chelsea.png", "content_astronaut.png", "content_coffee.png")
SIDE = 64


@pytest.fixture(scope="module")
def vgg():
    return nst_core.load_vgg(device="cpu")


@pytest.fixture(scope="module")
def photos():
    return [nst_core.load_image(nst_core.example_path(name)) for name in PHOTOS]


@pytest.mark.parametrize("layer, channel", [("relu3_1", 40), ("relu4_1", 100)])
def test_returned_patches_are_the_true_top(vgg, photos, layer, channel):
    k = 9
    result = top_patches(vgg, photos, layer, channel, k=k, max_side=SIDE)
    assert len(result.values) == len(result.boxes) == len(result.patches) == k
    images = result.images
    field = receptive_field(layer)
    recomputed = []
    for value, (image, row, col), (owner, x0, y0, x1, y1), patch in zip(
            result.values, result.units, result.boxes, result.patches):
        assert owner == image
        h, w = images[image].shape[:2]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h          # inside the image
        assert (y1 - y0, x1 - x0) == tuple(patch.shape[:2])
        assert max(x1 - x0, y1 - y0) <= field.size
        canvas = torch.full((1, 3, h, w), PATCH_BACKGROUND)
        canvas[0, :, y0:y1, x0:x1] = patch.permute(2, 0, 1)
        with torch.no_grad():
            alone = float(vgg.features(canvas, [layer])[layer][0, channel, row, col])
        assert alone == pytest.approx(value, rel=1e-3, abs=1e-4)
        recomputed.append(alone)
    assert all(a >= b - 1e-4 for a, b in zip(recomputed, recomputed[1:])), recomputed
    assert recomputed[0] > 0
    # no unit outside the result beats the k-th, unless a better returned box of its image suppressed it
    kth = result.values[-1]
    for index, image in enumerate(images):
        with torch.no_grad():
            fmap = vgg.features(image.permute(2, 0, 1).unsqueeze(0), [layer])[layer][0, channel]
        for row, col in (fmap > kth + 1e-5).nonzero().tolist():
            if (index, row, col) in result.units:
                continue
            box = field.box(row, col, *image.shape[:2])
            value = float(fmap[row, col])
            assert any(b[0] == index and v >= value and _iou(box, b[1:]) > 0.5
                       for v, b in zip(result.values, result.boxes)), (index, row, col, value)


def test_folder_gradients_and_no_suppression(vgg, photos, tmp_path):
    for i, photo in enumerate(photos):
        nst_core.to_pil(photo).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    result = top_patches(vgg, tmp_path, "relu2_1", 7, k=5, overlap=1.0, gradients=True, max_side=48)
    assert len(result.images) == 3
    assert len(result.gradients) == 5 and result.gradient_grid.shape[-1] == 3
    for grad, patch in zip(result.gradients, result.patches):
        assert grad.shape == patch.shape and float((grad - 0.5).abs().max()) == pytest.approx(0.5)
    flat = torch.cat([vgg.features(im.permute(2, 0, 1).unsqueeze(0), ["relu2_1"])["relu2_1"][0, 7].flatten()
                      for im in result.images])
    assert result.values == pytest.approx(flat.topk(5).values.tolist(), rel=1e-5)


def test_bad_input(vgg, photos, tmp_path):
    with pytest.raises(nst_core.LayerError, match="channel 512 out of range for relu4_1"):
        top_patches(vgg, photos[:1], "relu4_1", 512, max_side=SIDE)
    with pytest.raises(nst_core.ImageError, match="no image files"):
        top_patches(vgg, tmp_path, "relu1_1", 0)
    with pytest.raises(ValueError, match="k must be between"):
        top_patches(vgg, photos[:1], "relu1_1", 0, k=0)
    with pytest.raises(nst_core.ImageError, match="too small"):
        top_patches(vgg, torch.rand(1, 8, 8, 3), "relu5_1", 0)
