"""Gatys' normalized VGG: each filter rescaled so that its mean activation over natural images is 1.

ReLU and pooling are positively homogeneous, so dividing a filter (and its bias) by a constant and
multiplying the next layer's matching input weights by it leaves the network's function unchanged up
to a per-channel scale of the features. What changes is the balance of the loss terms: with raw
Caffe weights conv4_1 dominates the style loss by orders of magnitude; normalized, every layer counts.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .cache import cache_dir
from .examples import EXAMPLES_DIR, example_names
from .image import fit_max_side, load_image, resize, to_nchw
from .layers import conv_names
from .vgg import VGG
from .weights import LoadedWeights, sha256_of

# the statistics are taken over the bundled example images, shrunk to this long side
STATS_MAX_SIDE = 256


@torch.no_grad()
def activation_means(vgg, images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean ReLU activation of every filter over `images` ([1,3,H,W] RGB 0..1) and positions."""
    relus = [name.replace("conv", "relu") for name in conv_names(vgg.arch)]
    totals = {name: torch.zeros(vgg.convs[i].out_channels, dtype=torch.float64)
              for i, name in enumerate(relus)}
    for image in images:
        feats = vgg.features(image.to(vgg.device), relus)
        for name in relus:
            totals[name] += feats[name].double().mean(dim=(0, 2, 3)).cpu()
    return {f"act_mean.{name.replace('relu', 'conv')}": (totals[name] / len(images)).float() for name in relus}


def normalize_convs(arch: str, convs, means: dict[str, torch.Tensor]):
    """Rescale conv weights so each filter's mean activation becomes 1 (dead filters are left alone)."""
    out = []
    previous = None
    for name, (weight, bias) in zip(conv_names(arch), convs):
        mean = means[f"act_mean.{name}"].float()
        scale = torch.where(mean > 1e-8, mean, torch.ones_like(mean))
        weight = weight / scale.view(-1, 1, 1, 1)
        bias = bias / scale
        if previous is not None:
            weight = weight * previous.view(1, -1, 1, 1)
        out.append((weight, bias))
        previous = scale
    return out


def _example_batch() -> list[torch.Tensor]:
    images = [to_nchw(load_image(EXAMPLES_DIR / name)) for name in example_names()]
    return [resize(x, fit_max_side(x.shape[2], x.shape[3], STATS_MAX_SIDE)) for x in images]


def compute_activation_means(weights: LoadedWeights) -> dict[str, torch.Tensor]:
    """Per-filter mean activations over the bundled example images (the normalization statistics)."""
    raw = VGG(weights.arch, weights.convs, convention=weights.convention)
    return activation_means(raw, _example_batch())


def means_for(weights: LoadedWeights, path: Path) -> dict[str, torch.Tensor]:
    """The statistics stored in the weights file, else cached beside the default weights, else computed."""
    wanted = {f"act_mean.{name}" for name in conv_names(weights.arch)}
    if wanted <= set(weights.extras):
        return weights.extras
    stats = cache_dir() / f"act_means_{sha256_of(path)[:16]}_{weights.convention}.safetensors"
    if stats.exists():
        from safetensors.torch import load_file
        return load_file(str(stats))
    means = compute_activation_means(weights)
    from safetensors.torch import save_file
    stats.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in means.items()}, str(stats))
    return means
