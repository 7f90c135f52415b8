"""The grain term (nst_core.grain): a result no grainier than its painting, in luminance and colour."""

import pytest
import torch

import nst_core
from nst_core import plan as plan_module
from nst_core.grain import GRAIN_WEIGHT, GrainTerm, high_frequency_power
from nst_core.image import resize, to_nchw


def test_band_powers_add_up_to_the_variance():
    """Parseval: the bands from 0 to the Nyquist frequency hold each channel's variance per pixel."""
    x = torch.rand(1, 3, 40, 34, generator=torch.Generator().manual_seed(0))
    bands = high_frequency_power(x, (0.0, 0.125, 0.25, 0.5))
    ycc = torch.einsum("ij,bjhw->bihw", nst_core.grain._YCBCR, x)[0]
    assert bands.sum(0) == pytest.approx(ycc.var(dim=(1, 2), unbiased=False), rel=1e-4)
    assert float(bands[2, 0]) > 0.5 * float(bands.sum(0)[0])        # white noise: most power up high


def test_the_painting_itself_costs_nothing_and_noise_does(vgg, starry64):
    style = nst_core.StyleTarget(vgg, starry64)
    term = GrainTerm([style])
    size = (40, 64)
    seen = resize(style.images[0], style.style_size(style.images[0], size))
    assert tuple(seen.shape[-2:]) == size
    assert float(term.loss(seen)) == pytest.approx(0.0, abs=1e-6)
    noisy = (seen + 0.1 * torch.randn(seen.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert float(term.loss(noisy)) > 1.0


def test_size_free_weightings_plan_the_grain_term(vgg, cat64, starry64):
    content = nst_core.ContentTarget(vgg, cat64)
    for weighting, strength, expected in (("relative", 5.0, GRAIN_WEIGHT), ("normalized", 5.0, GRAIN_WEIGHT),
                                          ("paper", 1e6, 0.0)):
        style = nst_core.StyleTarget(vgg, starry64, weight=strength)
        options = nst_core.RunOptions.of(None, weighting=weighting, style_weight=strength)
        assert plan_module.decide(options, vgg, content, style).grain_weight == expected


def _colour_grain(image, painting) -> float:
    """The result's power above half the Nyquist frequency over the painting's, worst colour channel."""
    ours = high_frequency_power(to_nchw(image))[0]
    side = max(image.shape[1:3])
    theirs = high_frequency_power(to_nchw(nst_core.image.fit_image(painting, side, upscale=True)))[0]
    return float((ours / theirs)[1:].max())


def test_a_run_sheds_grain_the_painting_does_not_have(vgg, cat64, starry64, monkeypatch):
    """From a photo sprinkled with colour noise, the default run ends no grainier than the painting; with
    the term off the noise stays (the style and content terms alone do not remove it in these steps)."""
    noise = 0.15 * torch.randn(cat64.shape, generator=torch.Generator().manual_seed(2))
    start = (cat64 + noise * torch.tensor([1.0, -1.0, 1.0])).clamp(0, 1)
    kept = nst_core.stylize(cat64, starry64, vgg=vgg, max_size=None, steps=30, coarse_to_fine=False,
                            init="image", init_image=start)
    assert _colour_grain(kept.image, starry64) < 1.5
    monkeypatch.setattr(plan_module, "GRAIN_WEIGHT", 0.0)
    grainy = nst_core.stylize(cat64, starry64, vgg=vgg, max_size=None, steps=30, coarse_to_fine=False,
                              init="image", init_image=start)
    assert _colour_grain(grainy.image, starry64) > 2.0


def test_a_photo_far_grainier_than_a_flat_painting_converges(vgg):
    """The term is convex in the image: L-BFGS lowers the loss steadily from a noisy photo towards a
    painting with almost no fine detail (a logarithm of the power made this run climb instead)."""
    cat = nst_core.image.fit_image(nst_core.load_image(nst_core.example_path("content_chelsea.png")), 96)
    noisy = (cat + 0.2 * torch.randn(cat.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    flat = torch.stack([0.6 + 0.3 * xx, 0.5 + 0.2 * yy, 0.2 + 0.1 * xx * yy], -1)[None]
    result = nst_core.stylize(noisy, flat, vgg=vgg, max_size=None, steps=60, coarse_to_fine=False)
    totals = [entry["total"] for entry in result.history]
    assert result.stopped is None and totals[-1] < 0.5 * totals[0]
    assert max(totals) < 2 * totals[0]


def test_a_flat_image_has_a_finite_gradient(vgg, starry64):
    """A flat result (zero power) costs nothing and its gradient is zero, not NaN."""
    term = GrainTerm([nst_core.StyleTarget(vgg, starry64)])
    flat = torch.full((1, 3, 40, 40), 0.5, requires_grad=True)
    loss = term.loss(flat)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(flat.grad, torch.zeros_like(flat))
