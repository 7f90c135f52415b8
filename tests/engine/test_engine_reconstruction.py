"""The paper's Figure 1, measured: reconstructions from single layers and from sets of layers."""

import pytest
import torch

import nst_core
from nst_core.api import TEXTURE_MAX_PERIOD
from nst_core.spectral_noise import spectrum_noise
from nst_core.targets import StyleTarget
from conftest import psnr

LADDER = ["conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"]


@pytest.mark.slow
def test_content_ladder_quality_falls_with_depth(vgg, cat64):
    result = nst_core.reconstruct_content(cat64, LADDER, vgg=vgg, steps=120, seed=0)
    assert result.image.shape == (len(LADDER), *cat64.shape[1:])
    scores = [psnr(result.image[i], cat64[0]) for i in range(len(LADDER))]
    # conv1_2 gives the photo back almost exactly ...
    assert scores[0] > 28, scores
    # ... and every deeper layer keeps less of it.
    for shallow, deep in zip(scores, scores[1:]):
        assert deep < shallow, scores
    assert scores[-1] < 20, scores
    assert [h["stage"] for h in result.history][::120] == list(range(len(LADDER)))


def test_content_reconstruction_starts_from_noise(vgg, cat64):
    """One step from the seeded noise is still far from the photo: the photo is not the init."""
    result = nst_core.reconstruct_content(cat64, ["conv1_2"], vgg=vgg, steps=1, seed=3)
    assert psnr(result.image[0], cat64[0]) < 20
    other_seed = nst_core.reconstruct_content(cat64, ["conv1_2"], vgg=vgg, steps=1, seed=4)
    assert not torch.equal(result.image, other_seed.image)


def test_style_ladder_matches_grams_and_grows_in_scale(vgg, starry64):
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    result = nst_core.reconstruct_style(starry64, layers, vgg=vgg, steps=60, seed=0)
    assert result.image.shape[0] == 3
    size = tuple(starry64.shape[1:3])
    start = spectrum_noise(starry64, size, 0, max_period=TEXTURE_MAX_PERIOD)

    def gram_loss(rung_layers, image_nchw):
        target = StyleTarget(vgg, starry64, rung_layers, weight=1.0, size=size, style_loss="gram")
        return float(nst_core.Objective(vgg, None, target, 0.0, size)(image_nchw)[1]["style"])

    # each texture matches its own Gram target far better than the start noise does (the first rung
    # starts from it; the others from the previous rung, so their history starts lower)
    for stage in range(3):
        rung = result.image[stage].permute(2, 0, 1)[None]
        assert gram_loss(layers[:stage + 1], rung) < 0.05 * gram_loss(layers[:stage + 1], start), stage
    first = [h["style"] for h in result.history if h["stage"] == 0]
    assert first[-1] < 0.05 * first[0], (first[0], first[-1])
    # the textures are not the painting itself (no spatial arrangement is kept)
    assert all(psnr(result.image[i], starry64[0]) < 16 for i in range(3))
    # with more layers, the texture also matches the deeper statistics better
    assert gram_loss(["relu3_1"], result.image[2].permute(2, 0, 1)[None]) < \
        gram_loss(["relu3_1"], result.image[0].permute(2, 0, 1)[None])


def test_non_cumulative_style_ladder_has_one_image_per_layer(vgg, starry64):
    result = nst_core.reconstruct_style(starry64, ["conv1_1", "pool1"], cumulative=False, vgg=vgg, steps=3)
    assert result.image.shape[0] == 2
    assert not torch.equal(result.image[0], result.image[1])


def test_texture_ladder_leaves_less_grain_than_from_white_noise(vgg, starry64, monkeypatch):
    """Noise with the painting's power spectrum as the start (nst_core.spectral_noise): less power above
    half the Nyquist frequency than the paper's white noise, at equal steps (numbers: nst_core/api.py)."""
    from nst_core import api
    from nst_core.texture_metrics import high_frequency_share
    layers = ["conv1_1", "conv2_1", "conv3_1"]
    ours = nst_core.reconstruct_style(starry64, layers, vgg=vgg, steps=30, max_size=None)
    monkeypatch.setattr(api, "TEXTURE_START", "white")
    papers = nst_core.reconstruct_style(starry64, layers, vgg=vgg, steps=30, max_size=None)
    assert len(ours.plan) == 1 and len(papers.plan) == 1
    grain_ours, grain_papers = high_frequency_share(ours.image), high_frequency_share(papers.image)
    assert (grain_ours < 0.7 * grain_papers).all(), (grain_ours, grain_papers)
