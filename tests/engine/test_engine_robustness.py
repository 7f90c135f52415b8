"""Determinism, the NaN guard, odd image formats, callbacks and ComfyUI's inference mode (the divergence
guards: test_divergence_guards.py)."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import nst_core

BETA = 8e4


def test_same_seed_same_bytes(vgg, cat64, starry64):
    runs = [nst_core.stylize(cat64, starry64, vgg=vgg, steps=4, init="noise", seed=7, style_weight=BETA, weighting="paper",
                             max_size=64, optimizer=opt) for opt in ("adam", "adam", "lbfgs", "lbfgs")]
    assert torch.equal(runs[0].image, runs[1].image)
    assert torch.equal(runs[2].image, runs[3].image)
    other = nst_core.stylize(cat64, starry64, vgg=vgg, steps=4, init="noise", seed=8, style_weight=BETA, weighting="paper",
                             max_size=64, optimizer="adam")
    assert not torch.equal(runs[0].image, other.image)
    assert [h["total"] for h in runs[2].history] == [h["total"] for h in runs[3].history]


def test_non_finite_loss_stops_with_last_finite_image(vgg, cat64, starry64):
    """A weight that makes the loss overflow (set on the target directly: the option check refuses it)."""
    content = nst_core.ContentTarget(vgg, cat64)
    style = nst_core.StyleTarget(vgg, starry64, style_loss="gram")    # float32 Gram terms overflow
    style.weight = 1e36
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = nst_core.optimize(vgg, content, style, steps=30, optimizer="lbfgs")
    assert result.stopped == "non-finite loss"
    assert any("non-finite" in str(w.message) for w in caught)
    assert any("non-finite" in note for note in result.warnings)
    assert torch.isfinite(result.image).all()
    assert all(np.isfinite(h["total"]) for h in result.history)
    assert len(result.history) < 30


def test_engine_options_are_checked_and_named(vgg, cat64, starry64):
    """The engine applies the same checks as the nodes and CLIs, naming the option."""
    bad = [dict(style_weight=float("nan")), dict(content_weight=float("inf")), dict(tv_weight=-1.0),
           dict(seed=2 ** 64), dict(steps=1_000_000_000), dict(steps=0), dict(init="bogus"), dict(lr=-1.0),
           dict(style_scale=0.0), dict(max_size=4), dict(preserve_color="sepia")]
    for options in bad:
        (name, value), = options.items()
        with pytest.raises(nst_core.OptionError, match=f"^{name}: ") as info:
            nst_core.stylize(cat64, starry64, vgg=vgg, **options)
        assert info.value.option == name


def test_callback_sees_every_step_and_can_stop(vgg, cat64, starry64):
    seen = []

    def callback(p):
        seen.append((p.step, p.total, round(p.losses["total"], 3)))
        if p.step == 3:
            assert p.image.shape == cat64.shape
            p.stop()

    result = nst_core.stylize(cat64, starry64, vgg=vgg, steps=10, style_weight=BETA, weighting="paper", max_size=64,
                              callback=callback)
    assert [s for s, _, _ in seen] == [1, 2, 3] and seen[0][1] == 10
    assert result.stopped == "callback" and len(result.history) == 3
    assert [round(h["total"], 3) for h in result.history] == [t for _, _, t in seen]


def test_callback_exception_propagates(vgg, cat64, starry64):
    class Cancelled(Exception):
        pass

    def cancel(p):
        raise Cancelled

    with pytest.raises(Cancelled):
        nst_core.stylize(cat64, starry64, vgg=vgg, steps=5, style_weight=BETA, weighting="paper", max_size=64, callback=cancel)


def test_runs_under_inference_mode_with_inference_tensors(cat64, starry64):
    """ComfyUI builds everything under torch.inference_mode(); the optimization must still get gradients."""
    with torch.inference_mode():
        vgg = nst_core.load_vgg(pooling="avg", device="cpu")   # a fresh network built in inference mode
        content, style = cat64.clone(), starry64.clone()
        assert content.is_inference()
        ct = nst_core.ContentTarget(vgg, content)
        st = nst_core.StyleTarget(vgg, style, weight=BETA)
        result = nst_core.optimize(vgg, ct, st, steps=5, weighting="paper")
    assert result.history[-1]["total"] < result.history[0]["total"]


@pytest.mark.parametrize("form", ["gray_tensor", "rgba_tensor", "pil_L", "pil_RGBA", "pil_P", "hwc"])
def test_grayscale_rgba_and_other_inputs(vgg, cat64, starry64, form):
    rgb = (cat64[0].numpy() * 255).astype(np.uint8)
    image = {
        "gray_tensor": lambda: cat64.mean(dim=3, keepdim=True),
        "rgba_tensor": lambda: torch.cat([cat64, torch.ones_like(cat64[..., :1])], dim=3),
        "pil_L": lambda: Image.fromarray(rgb).convert("L"),
        "pil_RGBA": lambda: Image.fromarray(rgb).convert("RGBA"),
        "pil_P": lambda: Image.fromarray(rgb).convert("P"),
        "hwc": lambda: cat64[0],
    }[form]()
    result = nst_core.stylize(image, starry64, vgg=vgg, steps=2, style_weight=BETA, weighting="paper", max_size=64)
    assert result.image.shape == cat64.shape
    if form in ("gray_tensor", "pil_L"):
        first = result.history[0]
        assert first["content"] == 0.0


def test_too_small_image_is_a_clear_error(vgg, starry64):
    thin = torch.rand(1, 40, 1, 3)
    with pytest.raises(nst_core.ImageError, match=r"1x40 px is too small for layer relu\d_\d.*at least \d+ px"):
        nst_core.stylize(thin, starry64, vgg=vgg, steps=1)
    # shallow layers only need one pixel: a 1-pixel-wide image reconstructs from conv1_1
    result = nst_core.reconstruct_content(thin, ["conv1_1"], vgg=vgg, steps=2)
    assert result.image.shape == (1, 40, 1, 3)


def test_bad_arguments_are_clear_errors(vgg, cat64, starry64):
    with pytest.raises(nst_core.LayerError, match="conv9_9.*valid names"):
        nst_core.ContentTarget(vgg, cat64, ["conv9_9"])
    with pytest.raises(nst_core.OptionError, match="every loss weight is zero"):
        nst_core.stylize(cat64, starry64, vgg=vgg, steps=1, content_weight=0, style_weight=0)
    with pytest.raises(nst_core.OptionError, match="optimizer: 'newton' is not one of lbfgs, adam, sgd"):
        nst_core.stylize(cat64, starry64, vgg=vgg, steps=1, optimizer="newton")
    with pytest.raises(nst_core.ImageError, match="batch of 2"):
        nst_core.ContentTarget(vgg, torch.cat([cat64, cat64]))
    with pytest.raises(nst_core.OptionError, match="2 weight.s. given for 5 layer"):
        nst_core.StyleTarget(vgg, starry64, layer_weights="1,2")
