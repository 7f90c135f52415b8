"""Gram matrices (Gatys et al. 2016), guided by masks as in Gatys et al. 2017.

Without a mask this is exactly nst_core.losses: target Â = F Fᵀ / M, loss E = Σ (Ĝ − Â)² / (4 N²)
(the paper's Σ (G − A)² / (4 N² M²)), with its hand-written backward.

With a mask m (per pixel, 0..1) the Gram is the mask-weighted mean of the outer products,
G_m = Σ_i m_i f_i f_iᵀ / Σ_i m_i: for a 0/1 mask this is Gatys 2017's guided Gram (features multiplied
by the mask, normalized by the mask's area instead of M). For soft masks weighting by m (not m², which
multiplying the features by m and squaring gives) keeps the statistic a weighted mean: a uniform 0.5
mask gives the same Gram as no mask, so a half-covered region is pulled towards the painting's Gram,
not towards half of it. It is computed as style_layer_loss of F·sqrt(m·M/Σm), which reuses the
hand-written backward and, for an all-ones mask, multiplies by exactly 1.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..losses import gram, style_layer_loss
from .base import StyleStatistic, blend_weights, check_features, pixel_weights


def _guided(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Features scaled so that gram() of them is the mask-weighted mean outer product."""
    weights = pixel_weights(features, mask)
    if weights is None:
        return features
    h, w = features.shape[-2:]
    scale = (weights * (h * w / weights.sum())).sqrt().view(1, 1, h, w)
    return features * scale.to(features.dtype)


class GramStatistic(StyleStatistic):
    """The paper's statistic: target [1,N,N] (a plain tensor, as nst_core.targets builds it)."""

    name = "gram"
    # The reference the other statistics are scaled to: 1 by definition.
    scale = 1.0

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_features(features)
        with torch.no_grad():
            return gram(_guided(features.detach(), mask))

    def blend(self, targets: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
        weights = blend_weights(weights, len(targets))
        return sum(w * t for w, t in zip(weights, targets))

    def energy(self, target: torch.Tensor, layer: str | None = None) -> float:
        """Σ Â² / (4 N²): E of all-zero features."""
        n = target.shape[-1]
        return float(target.double().pow(2).sum()) / (4.0 * n * n)

    def loss(self, features: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
             generator: torch.Generator | None = None, layer: str | None = None) -> torch.Tensor:
        check_features(features)
        return style_layer_loss(_guided(features, mask), target)
