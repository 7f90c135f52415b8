"""Sliced Wasserstein distance between feature distributions (Heitz et al., CVPR 2021).

Each call draws N random unit directions (N = channels), projects the output's and the target's pixels
onto them, sorts each projection and compares them quantile by quantile (the 1-D optimal transport):

    SW² = mean_k  Σ_i w_i (y_(i),k − Q_k(t_i))² / Σ_i w_i

with y_(i),k the output's sorted projections, t_i their quantile levels and Q_k the target's quantile
function (linear interpolation, so target and output may have different pixel counts). The directions
come from the torch.Generator the caller passes (a CPU generator, so a seed gives the same directions on
every device); without one, torch's global generator.

Masks by weighted quantiles, not by keeping the pixels with mask > 0.5: a pixel of weight w moves the
quantile levels by w and its loss counts w times, so soft masks blend (at a 50/50 boundary both styles
pull with half strength) and the deep layers' fractional masks (a cell on a region's edge) keep the
share they really cover; a 0.5 threshold would switch styles abruptly and let a region lose or gain
whole cells at coarse layers. Zero-weight style pixels are dropped from the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .base import StyleStatistic, blend_weights, check_features, pixel_weights, positions
from .normalization import raw_loss_scale


@dataclass
class SampleTarget:
    """The style pixels [N, S] (float32) and their weights [S] summing to 1 (None: uniform)."""
    pixels: torch.Tensor
    weights: torch.Tensor | None


def _levels(sorted_weights: torch.Tensor) -> torch.Tensor:
    """Quantile level of each sorted sample: the middle of its share of the cumulative weight."""
    total = sorted_weights.sum(dim=0, keepdim=True)
    return (sorted_weights.cumsum(dim=0) - sorted_weights / 2) / total


def _quantiles(sorted_values: torch.Tensor, sorted_levels: torch.Tensor | None,
               levels: torch.Tensor) -> torch.Tensor:
    """Target quantile function at `levels` [M,K] (or [M,1]), by linear interpolation per column.

    `sorted_values` [S,K]; `sorted_levels` [S,K], or None for uniform levels (j + ½) / S."""
    count, columns = sorted_values.shape
    levels = levels.expand(-1, columns)
    if sorted_levels is None:
        position = (levels * count - 0.5).clamp(0, count - 1)
        low = position.floor().long().clamp(max=count - 1)
        high = (low + 1).clamp(max=count - 1)
        frac = position - low
    else:
        grid = sorted_levels.T.contiguous()                          # [K,S], increasing
        high = torch.searchsorted(grid, levels.T.contiguous()).T.clamp(max=count - 1)
        low = (high - 1).clamp(min=0)
        lo_level, hi_level = sorted_levels.gather(0, low), sorted_levels.gather(0, high)
        span = hi_level - lo_level
        frac = torch.where(span > 0, (levels - lo_level) / span.clamp_min(1e-12), torch.zeros_like(span))
        frac = frac.clamp(0, 1)
    lo_value, hi_value = sorted_values.gather(0, low), sorted_values.gather(0, high)
    return lo_value + frac * (hi_value - lo_value)


class SlicedWassersteinStatistic(StyleStatistic):
    """Sliced W2² with fresh random directions per call, times the layer's normalization scale;
    target: SampleTarget (the style pixels)."""

    name = "sliced_wasserstein"

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> SampleTarget:
        check_features(features)
        with torch.no_grad():
            pixels = positions(features.detach())[0][0].T.contiguous()
            weights = pixel_weights(features, mask)
            if weights is not None:
                keep = weights > 0
                pixels, weights = pixels[:, keep], weights[keep] / weights[keep].sum()
            return SampleTarget(pixels, weights)

    def blend(self, targets: Sequence[SampleTarget], weights: Sequence[float]) -> SampleTarget:
        """The mixture: all the style pixels, each image's share of the weight as its blend weight."""
        weights = blend_weights(weights, len(targets))
        pixels, masses = [], []
        for w, t in zip(weights, targets):
            if w == 0:
                continue
            count = t.pixels.shape[1]
            own = t.weights if t.weights is not None else t.pixels.new_full((count,), 1.0 / count)
            pixels.append(t.pixels)
            masses.append(own * w)
        return SampleTarget(torch.cat(pixels, dim=1), torch.cat(masses))

    def energy(self, target: SampleTarget, layer: str | None = None) -> float:
        """scale · E|f|² / N: SW² of all-zero features, in expectation over the random unit directions
        (E (d·f)² = |f|² / N for d uniform on the sphere)."""
        pixels = target.pixels.double()
        squared = pixels.pow(2).sum(dim=0)                            # |f_i|² per style pixel
        mean = squared.mean() if target.weights is None else (squared * target.weights.double()).sum()
        return raw_loss_scale(self.name, layer) * float(mean) / pixels.shape[0]

    def loss(self, features: torch.Tensor, target: SampleTarget, mask: torch.Tensor | None = None,
             generator: torch.Generator | None = None, layer: str | None = None) -> torch.Tensor:
        check_features(features)
        flat = positions(features)[0][0].T                             # [N, M]
        channels = flat.shape[0]
        if target.pixels.shape[0] != channels:
            raise ValueError(f"target has {target.pixels.shape[0]} channels, features {channels}")
        directions = torch.randn(channels, channels, generator=generator)    # on the CPU: the same on every device
        directions = (directions / directions.norm(dim=0, keepdim=True)).to(flat.device)
        projected, order = (flat.T @ directions).sort(dim=0)           # [M, K]
        with torch.no_grad():
            style_projected, style_order = (target.pixels.to(flat.device).T @ directions).sort(dim=0)
            style_levels = None if target.weights is None else _levels(target.weights.to(flat.device)[style_order])
            weights = pixel_weights(features, mask)
            if weights is None:
                count = flat.shape[1]
                levels = ((torch.arange(count, device=flat.device, dtype=torch.float32) + 0.5) / count)[:, None]
                sorted_weights = None
            else:
                sorted_weights = weights[order]                        # [M, K]
                levels = _levels(sorted_weights)
            matched = _quantiles(style_projected, style_levels, levels)
        squared = (projected - matched).pow(2)
        if sorted_weights is None:
            distance = squared.mean(dim=0)
        else:
            distance = (squared * sorted_weights).sum(dim=0) / sorted_weights.sum(dim=0)
        return raw_loss_scale(self.name, layer) * distance.mean()
