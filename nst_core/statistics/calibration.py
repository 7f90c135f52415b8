"""Re-measure the normalization scales (statistics.normalization) on a network and image pairs."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .base import StyleStatistic
from .normalization import raw_loss_scale


def layer_losses(vgg, photo: torch.Tensor, painting: torch.Tensor, layers: Sequence[str],
                 statistics: dict[str, StyleStatistic], seed: int = 0) -> dict[str, dict[str, float]]:
    """{statistic: {layer: unscaled loss}} between a photo's and a painting's features ([1,3,H,W] in 0..1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        photo_features = vgg.features(photo.to(vgg.device), layers)
        painting_features = vgg.features(painting.to(vgg.device), layers)
    out: dict[str, dict[str, float]] = {}
    for name, stat in statistics.items():
        for layer in layers:
            target = stat.target(painting_features[layer])
            value = float(stat.loss(photo_features[layer], target, generator=generator, layer=layer))
            scale = 1.0 if name == "gram" else raw_loss_scale(name, layer)
            out.setdefault(name, {})[layer] = value / scale
    return out


def scales(measurements: Sequence[dict[str, dict[str, float]]], statistic: str) -> dict[str, float]:
    """Per layer, the geometric mean of loss_gram / loss_statistic over several `layer_losses` results."""
    layers = measurements[0]["gram"]
    result = {}
    for layer in layers:
        logs = [math.log(m["gram"][layer] / m[statistic][layer]) for m in measurements]
        result[layer] = math.exp(sum(logs) / len(logs))
    return result
