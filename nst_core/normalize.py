"""Gatys' normalized VGG: each filter rescaled so that its mean activation over natural images is 1.

ReLU and pooling are positively homogeneous, so dividing a filter (and its bias) by a constant and
multiplying the next layer's matching input weights by it leaves the network's function unchanged up
to a per-channel scale of the features. What changes is the balance of the loss terms: with raw
Caffe weights conv4_1 dominates the style loss by orders of magnitude; normalized, every layer counts.
"""

from __future__ import annotations

import torch

from .layers import conv_names


@torch.no_grad()
def activation_means(vgg, images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean ReLU activation of every filter over `images` ([1,3,H,W] RGB 0..1) and positions."""
    relus = [name.replace("conv", "relu") for name in conv_names(vgg.arch)]
    totals = {name: torch.zeros(vgg.convs[i].out_channels, dtype=torch.float64)
              for i, name in enumerate(relus)}
    weight_sum = 0.0
    for image in images:
        feats = vgg.features(image.to(vgg.device), relus)
        for name in relus:
            totals[name] += feats[name].double().mean(dim=(0, 2, 3)).cpu()
        weight_sum += 1.0
    return {f"act_mean.{name.replace('relu', 'conv')}": (totals[name] / weight_sum).float() for name in relus}


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
