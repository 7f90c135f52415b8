"""Style statistics (gram, wasserstein2, sliced_wasserstein) with masks, and mask propagation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import nst_core
from nst_core.errors import ImageError
from nst_core.layers import VGG19_LAYERS
from nst_core.settings import DEFAULTS
from nst_core.statistics import (DEFAULT_STYLE_LOSS, STATISTICS, STYLE_LOSSES, get_statistic, layer_masks,
                                 mask_tensor)
from nst_core.statistics.normalization import RAW_LOSS_SCALES, raw_loss_scale

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def features(n=16, h=6, w=5, seed=0, shift=0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(1, n, h, w, generator=g) + 0.3) + shift


def generator(seed=0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def painting(name: str, long_side: int) -> torch.Tensor:
    """A bundled painting as [1,3,H,W] with the given long side (area-correct resize)."""
    image = nst_core.load_image(nst_core.example_path(name)).permute(0, 3, 1, 2)
    h, w = image.shape[-2:]
    size = (round(h * long_side / max(h, w)), round(w * long_side / max(h, w)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


# --- the choice list -------------------------------------------------------------------------------

def test_choice_list_is_defined_once_with_wasserstein2_as_default():
    assert STYLE_LOSSES == ("gram", "wasserstein2", "sliced_wasserstein")
    assert DEFAULT_STYLE_LOSS == "wasserstein2" == DEFAULTS["style_loss"] and DEFAULT_STYLE_LOSS in STATISTICS
    assert all(STATISTICS[name].name == name for name in STATISTICS)
    with pytest.raises(ValueError, match="gram, wasserstein2, sliced_wasserstein"):
        get_statistic("wasserstein")


# --- gram --------------------------------------------------------------------------------------------

def gram(f: torch.Tensor) -> torch.Tensor:
    """F Fᵀ / M, written out in float64."""
    flat = f.double().flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_loss_and_its_hand_written_backward_are_the_papers(channels_last):
    """E = Σ (Ĝ − Â)² / (4 N²) with Ĝ = Σ m f fᵀ / Σ m, and its gradient as autograd gives it for that
    formula written out in float64, in either memory layout, with and without a soft mask."""
    stat = STATISTICS["gram"]
    style, out = features(seed=1), features(seed=2)
    if channels_last:
        style = style.contiguous(memory_format=torch.channels_last)
        out = out.contiguous(memory_format=torch.channels_last)
    soft = torch.rand(1, 1, *out.shape[-2:], generator=generator(3))
    for mask in (None, soft):
        m = torch.ones_like(soft) if mask is None else soft
        target = stat.target(style, mask)
        expected_target = gram(style * m.sqrt()) * m[0, 0].numel() / m.sum()
        assert torch.allclose(target.double(), expected_target, rtol=1e-6)
        x, x64 = out.clone().requires_grad_(True), out.double().requires_grad_(True)
        loss = stat.loss(x, target, mask)
        n = out.shape[1]
        expected = (gram(x64 * m.sqrt()) * m[0, 0].numel() / m.sum() - target.double()).pow(2).sum() / (4 * n * n)
        loss.backward()
        expected.backward()
        assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
        assert float((x.grad.double() - x64.grad).norm() / x64.grad.norm()) < 1e-5
        assert x.grad.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_guided_gram_of_a_binary_mask_is_the_gram_of_the_region_alone():
    """Gatys 2017: features times the mask, normalized by the mask's area (not by M)."""
    stat = STATISTICS["gram"]
    f = features(h=6, w=8, seed=3)
    mask = torch.zeros(1, 1, 6, 8)
    mask[..., :, :3] = 1
    assert torch.allclose(stat.target(f, mask), gram(f[..., :3]).float(), rtol=1e-5)
    # and the loss only sees the region: changing the features outside it changes nothing
    other = f.clone()
    other[..., 3:] += 5
    target = stat.target(features(h=6, w=8, seed=4))
    assert torch.allclose(stat.loss(f, target, mask), stat.loss(other, target, mask))


def test_gram_blend_is_the_weighted_mean():
    stat = STATISTICS["gram"]
    a, b = stat.target(features(seed=5)), stat.target(features(seed=6))
    assert torch.allclose(stat.blend([a, b], [3, 1]), 0.75 * a + 0.25 * b)
    with pytest.raises(ValueError, match="not all zero"):
        stat.blend([a, b], [0, 0])


# --- all statistics -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_gradients_are_finite_with_and_without_masks_and_rank_deficient_layers(name):
    stat = STATISTICS[name]
    # relu5_1 of a 64 px image: 512 channels, 16 pixels (rank-deficient covariance), many dead units
    for shape in ((1, 64, 8, 8), (1, 512, 4, 4)):
        style = torch.relu(torch.randn(shape, generator=generator(7)))
        out = torch.relu(torch.randn(shape, generator=generator(8))).requires_grad_(True)
        soft = torch.rand(1, 1, *shape[-2:], generator=generator(9))
        for mask in (None, soft):
            loss = stat.loss(out, stat.target(style, mask), mask, generator(0), layer="relu5_1")
            loss.backward()
            assert torch.isfinite(loss) and float(loss.detach()) > 0
            assert torch.isfinite(out.grad).all() and float(out.grad.abs().sum()) > 0
            out.grad = None


@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_identical_features_give_zero_and_shifted_ones_a_positive_loss(name):
    stat = STATISTICS[name]
    f = features(n=32, h=8, w=8, seed=10)
    target = stat.target(f)
    same = float(stat.loss(f, target, generator=generator(1), layer="relu3_1"))
    shifted = float(stat.loss(f + 0.5, target, generator=generator(1), layer="relu3_1"))
    assert abs(same) < 1e-6 * shifted and shifted > 0


@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_uniform_soft_mask_and_all_ones_mask_match_no_mask(name):
    """Masks weight pixels: a uniform mask (0.5 everywhere) changes nothing, so soft edges blend."""
    stat = STATISTICS[name]
    style, out = features(n=8, seed=11), features(n=8, seed=12)
    plain = float(stat.loss(out, stat.target(style), generator=generator(2)))
    for value in (1.0, 0.5):
        mask = torch.full((1, 1, *out.shape[-2:]), value)
        masked = float(stat.loss(out, stat.target(style, mask), mask, generator(2)))
        assert masked == pytest.approx(plain, rel=1e-4)


def test_wasserstein2_matches_the_closed_form_for_independent_channels():
    """Per channel (diagonal covariances) W2² = (μ − μ_t)² + (σ − σ_t)²."""
    stat = STATISTICS["wasserstein2"]
    g = generator(13)
    base = torch.randn(4, 1, 64, generator=g)
    a = torch.cat([base[0] * 1.0 + 0.0, base[1] * 2.0 + 1.0]).view(1, 2, 8, 8)
    b = torch.cat([base[2] * 0.5 - 1.0, base[3] * 3.0 + 2.0]).view(1, 2, 8, 8)
    a64, b64 = a.double().flatten(2)[0], b.double().flatten(2)[0]
    for c in range(2):                                          # one channel each: no cross-covariance
        fa, fb = a[:, c:c + 1], b[:, c:c + 1]
        expected = float((a64[c].mean() - b64[c].mean()) ** 2 + (a64[c].std(unbiased=False)
                                                                  - b64[c].std(unbiased=False)) ** 2)
        got = float(stat.loss(fa, stat.target(fb))) / raw_loss_scale("wasserstein2", None)
        assert got == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", [(1, 16, 8, 8), (1, 64, 8, 8), (1, 512, 4, 4)])
def test_wasserstein2_finished_from_tile_sums_is_its_loss(shape, masked):
    """W2 is additive: distance(finish(the sum of two tiles' sums)) is its loss, value and gradient, with
    features of a mean large against their spread (E[ffᵀ] − μμᵀ cancels) and at relu5_1's shape at 64 px
    (16 positions for 512 channels: the N x N eigen-solve of `distance` against the loss's 16 x 16 one);
    with 4 positions per channel the loss's C is a float32 product of the centred features."""
    stat = STATISTICS["wasserstein2"]
    assert stat.additive and not STATISTICS["sliced_wasserstein"].additive
    n, h, w = shape[1:]
    target = stat.target(features(n, h + 2, w, seed=20, shift=2.0))
    out = features(n, h, w, seed=21, shift=2.0)
    mask = torch.rand(1, 1, h, w, generator=generator(22)) if masked else None
    x = out.clone().requires_grad_(True)
    loss = stat.loss(x, target, mask, layer="relu4_1")
    loss.backward()
    y = out.clone().requires_grad_(True)
    weights = None if mask is None else mask.view(h, w)
    sums = sum(stat.sums(y[..., cols], None if weights is None else weights[:, cols].reshape(-1))
               for cols in (slice(0, 3), slice(3, None)))
    assert sums.dtype == torch.float64 and sums.shape == (1, n + 1, n + 1)
    tiled = stat.distance(stat.finish(sums, h * w if mask is None else mask.sum()), target, layer="relu4_1")
    tiled.backward()
    # with many positions the loss's C is a float32 product (the Gram's precision), the sums are float64
    rel = 2e-5 if h * w >= 2 * n else 1e-6
    assert tiled.dtype == torch.float32 and float(tiled.detach()) == pytest.approx(float(loss.detach()), rel=rel)
    error = float((y.grad - x.grad).norm() / x.grad.norm())
    assert error < 1e-5, error


def test_sliced_wasserstein_of_one_channel_is_the_sorted_matching():
    stat = STATISTICS["sliced_wasserstein"]
    a, b = features(n=1, seed=14), features(n=1, seed=15)
    expected = float((a.flatten().sort().values - b.flatten().sort().values).pow(2).mean())
    got = float(stat.loss(a, stat.target(b), generator=generator(0))) / raw_loss_scale("sliced_wasserstein", None)
    assert got == pytest.approx(expected, rel=1e-5)


def test_sliced_wasserstein_is_deterministic_for_a_seed_and_differs_between_seeds():
    stat = STATISTICS["sliced_wasserstein"]
    out, target = features(n=32, seed=16), stat.target(features(n=32, seed=17))
    first = stat.loss(out, target, generator=generator(5))
    again = stat.loss(out, target, generator=generator(5))
    other = stat.loss(out, target, generator=generator(6))
    assert torch.equal(first, again)
    assert float(first) != float(other)
    # resampled each call: two calls on one generator draw different directions
    shared = generator(5)
    assert float(stat.loss(out, target, generator=shared)) != float(stat.loss(out, target, generator=shared))


def test_sliced_blend_is_the_mixture_of_the_style_pixels():
    stat = STATISTICS["sliced_wasserstein"]
    a, b = features(n=1, h=4, w=4, seed=18), features(n=1, h=4, w=4, seed=19) + 3
    out = features(n=1, h=4, w=4, seed=20)
    alone = float(stat.loss(out, stat.target(a), generator=generator(0)))
    only_a = float(stat.loss(out, stat.blend([stat.target(a), stat.target(b)], [1, 0]), generator=generator(0)))
    assert only_a == pytest.approx(alone, rel=1e-5)
    both = stat.blend([stat.target(a), stat.target(b)], [1, 1])
    joined = stat.target(torch.cat([a, b], dim=-1))           # the same 32 pixels, equally weighted
    assert float(stat.loss(out, both, generator=generator(0))) == pytest.approx(
        float(stat.loss(out, joined, generator=generator(0))), rel=1e-5)


def test_wasserstein2_blend_is_the_mixture_mean_and_covariance():
    stat = STATISTICS["wasserstein2"]
    a, b = features(n=4, seed=21), features(n=4, seed=22) + 1
    blended = stat.blend([stat.target(a), stat.target(b)], [1, 1])
    joined = stat.target(torch.cat([a, b], dim=-1))
    assert torch.allclose(blended.mean, joined.mean, atol=1e-6)
    assert torch.allclose(blended.cov, joined.cov, atol=1e-5)


def test_normalization_scales_cover_the_default_and_paper_layers():
    for name in LAYERS + ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"):
        assert name in RAW_LOSS_SCALES
    assert raw_loss_scale("wasserstein2", "relu4_2") == raw_loss_scale("wasserstein2", "relu4_1")
    assert raw_loss_scale("sliced_wasserstein", "conv4_2") == raw_loss_scale("sliced_wasserstein", "conv4_1")


def test_normalized_losses_are_comparable_to_gram_on_a_photo_and_a_painting(vgg):
    """The calibration holds on the real network: per layer within 4x of the Gram loss (96 px, a size
    not among the calibration's 128/256/512)."""
    from nst_core.statistics.calibration import layer_losses
    photo = painting("content_chelsea.png", 96)
    art = painting("style_starry_night.jpg", 96)
    raw = layer_losses(vgg, photo, art, LAYERS, STATISTICS)
    for name in ("wasserstein2", "sliced_wasserstein"):
        for layer in LAYERS:
            ratio = raw[name][layer] * raw_loss_scale(name, layer) / raw["gram"][layer]
            assert 0.25 < ratio < 4, (name, layer, ratio)


# --- masks -------------------------------------------------------------------------------------------

def test_layer_masks_have_each_layers_feature_shape_at_odd_sizes(vgg):
    size = (67, 45)
    x = torch.rand(1, 3, *size)
    names = [name for name in VGG19_LAYERS if name.startswith(("relu", "pool"))]
    with torch.no_grad():
        feats = vgg.features(x, names)
    for mask in (torch.rand(30, 20), torch.rand(1, 200, 100), torch.rand(1, 1, 67, 45)):
        masks = layer_masks(mask, size, names, vgg.layer_names)
        assert list(masks) == names
        for name in names:
            assert masks[name].shape == (1, 1, *feats[name].shape[-2:]), name
            assert float(masks[name].min()) >= 0 and float(masks[name].max()) <= 1


def test_layer_masks_average_the_region_down_the_network():
    mask = torch.zeros(64, 64)
    mask[:, :32] = 1                                             # left half
    masks = layer_masks(mask, (64, 64), LAYERS)
    for name in LAYERS:
        m = masks[name][0, 0]
        half = m.shape[1] // 2
        assert torch.all(m[:, :half] == 1) and torch.all(m[:, half:] == 0), name
    # a soft mask keeps its mean value at every layer (area-correct)
    soft = torch.linspace(0, 1, 64).repeat(64, 1)
    for name, m in layer_masks(soft, (64, 64), LAYERS).items():
        assert float(m.mean()) == pytest.approx(0.5, abs=1e-5), name


def test_masks_from_pil_images_and_arrays():
    image = Image.fromarray(np.r_[np.zeros((10, 20)), np.full((10, 20), 255)].astype(np.uint8), "L")
    mask = mask_tensor(image)
    assert mask.shape == (1, 1, 20, 20) and float(mask.mean()) == pytest.approx(0.5)
    assert torch.equal(mask_tensor(np.ones((3, 4), dtype=np.float32)), torch.ones(1, 1, 3, 4))
    assert layer_masks(image, (32, 32), ["relu2_1"])["relu2_1"].shape == (1, 1, 16, 16)


@pytest.mark.parametrize("mask, message", [
    (torch.zeros(8, 8), "all zero"),
    (torch.zeros(0, 8), "empty"),
    (torch.full((8, 8), 1.5), "0..1"),
    (torch.full((8, 8), -0.2), "0..1"),
    (torch.full((8, 8), float("nan")), "NaN"),
    (torch.ones(2, 8, 8), "shape"),
    (torch.ones(8), "shape"),
    ("left", "tensor or a PIL image"),
    (Image.new("L", (8, 8), 0), "all zero"),
])
def test_bad_masks_are_refused_with_a_clear_error(mask, message):
    with pytest.raises(ImageError, match=message):
        layer_masks(mask, (32, 32), LAYERS)


def test_a_region_that_vanishes_at_a_deep_layer_is_refused():
    mask = torch.zeros(33, 33)
    mask[32, 32] = 1                                              # the last row/column: dropped by pool1
    with pytest.raises(ImageError, match="covers no pixel at layer relu2_1"):
        layer_masks(mask, (33, 33), LAYERS)


@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_masks_made_in_inference_mode_work_under_autograd(name):
    """ComfyUI runs nodes under torch.inference_mode: masks and targets made there must still work."""
    stat = STATISTICS[name]
    with torch.inference_mode():
        mask = layer_masks(0.1 + 0.9 * torch.rand(12, 10), (6, 5), ["relu1_1"])["relu1_1"]
        target = stat.target(features(seed=23), mask)
    out = features(seed=24).requires_grad_(True)
    stat.loss(out, target, mask, generator(0), layer="relu1_1").backward()
    assert torch.isfinite(out.grad).all() and float(out.grad.abs().sum()) > 0


def test_a_layer_mask_of_the_wrong_size_is_refused_by_the_losses():
    for stat in STATISTICS.values():
        with pytest.raises(ImageError, match="features' size"):
            stat.target(features(h=6, w=5), torch.ones(1, 1, 5, 6))
        with pytest.raises(ImageError, match="empty at this layer"):
            stat.target(features(h=6, w=5), torch.zeros(1, 1, 6, 5))


# --- through the real VGG: a small local objective ----------------------------------------------------

def synthesize(vgg, terms, x0: torch.Tensor, steps: int, seed: int = 0) -> torch.Tensor:
    """L-BFGS on the pixels (the engine's settings) against `terms`: [(stat, {layer: target},
    {layer: mask} or None)], each layer weighted 1/len(LAYERS) as the engine's default style layers."""
    directions = generator(seed)
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=100, tolerance_grad=-1, tolerance_change=-1)

    def closure():
        opt.zero_grad()
        feats = vgg.features(x, LAYERS)
        loss = sum(stat.loss(feats[name], targets[name], None if masks is None else masks[name], directions,
                             layer=name)
                   for stat, targets, masks in terms for name in LAYERS) / len(LAYERS)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return x.detach().clamp(0, 1)


def style_targets(vgg, stat, image: torch.Tensor) -> dict:
    with torch.no_grad():
        feats = vgg.features(image, LAYERS)
    return {name: stat.target(feats[name]) for name in LAYERS}


def gram_distance(vgg, image: torch.Tensor, art: torch.Tensor) -> float:
    """Σ_l E_l / 5 between an image (or a crop) and a painting: the paper's style distance."""
    with torch.no_grad():
        a, b = vgg.features(image, LAYERS), vgg.features(art, LAYERS)
        stat = STATISTICS["gram"]
        return sum(float(stat.loss(a[n], stat.target(b[n]))) for n in LAYERS) / len(LAYERS)


def marginal_distance(vgg, image: torch.Tensor, art: torch.Tensor) -> float:
    """Per-channel 1-D Wasserstein-1 distance of relu features (100 quantiles), each layer divided by
    the painting's mean activation there, averaged over the layers."""
    levels = torch.linspace(0.005, 0.995, 100)
    with torch.no_grad():
        a, b = vgg.features(image, LAYERS), vgg.features(art, LAYERS)
    total = 0.0
    for name in LAYERS:
        qa = torch.quantile(a[name][0].flatten(1).float(), levels, dim=1)
        qb = torch.quantile(b[name][0].flatten(1).float(), levels, dim=1)
        total += float((qa - qb).abs().mean() / b[name].float().mean())
    return total / len(LAYERS)


def noise(size, seed=0, amplitude=1.0) -> torch.Tensor:
    """Uniform noise 0.5 ± amplitude/2, as the engine's initial_image."""
    return 0.5 + amplitude * (torch.rand(1, 3, *size, generator=generator(seed)) - 0.5)


@pytest.mark.slow
def test_wasserstein_losses_match_the_feature_distributions_better_than_gram(vgg):
    art = painting("style_starry_night.jpg", 64)
    x0 = noise((48, 64))
    start = marginal_distance(vgg, x0, art)
    reached = {}
    for name in STYLE_LOSSES:
        stat = STATISTICS[name]
        out = synthesize(vgg, [(stat, style_targets(vgg, stat, art), None)], x0, steps=15)
        reached[name] = marginal_distance(vgg, out, art)
    assert reached["gram"] < start
    assert reached["wasserstein2"] < reached["gram"], reached
    assert reached["sliced_wasserstein"] < reached["gram"], reached


def region_distances(vgg, out: torch.Tensor, arts, masks) -> list[list[float]]:
    """d[i][j]: the guided Gram distance (Σ_l E_l / 5) of region i of `out` to painting j."""
    stat = STATISTICS["gram"]
    with torch.no_grad():
        feats = vgg.features(out, LAYERS)
        art_feats = [vgg.features(art, LAYERS) for art in arts]
    return [[sum(float(stat.loss(feats[n], stat.target(a[n]), m[n])) for n in LAYERS) / len(LAYERS)
             for a in art_feats] for m in masks]


@pytest.mark.slow
@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_each_region_takes_its_own_painting(vgg, name):
    """Left/right masks, two very different paintings: each half's Gram distance to its own painting is
    at least 2x smaller than to the other one, also with the masks swapped (no region starves)."""
    side = 64
    arts = [painting("style_starry_night.jpg", side), painting("style_composition_vii.jpg", side)]
    left = torch.zeros(side, side)
    left[:, :side // 2] = 1
    masks = [layer_masks(left, (side, side), LAYERS), layer_masks(1 - left, (side, side), LAYERS)]
    stat = STATISTICS[name]
    targets = [style_targets(vgg, stat, art) for art in arts]
    for order in ((0, 1), (1, 0)):
        terms = [(stat, targets[order[region]], masks[region]) for region in range(2)]
        out = synthesize(vgg, terms, noise((side, side), amplitude=0.1), steps=40)
        d = region_distances(vgg, out, arts, masks)
        for region in range(2):
            own, other = d[region][order[region]], d[region][1 - order[region]]
            assert other > 2 * own, (order, region, d)
