"""Gram matrices (Gatys et al. 2016), guided by masks as in Gatys et al. 2017.

    Ĝ = Σ_i m_i f_i f_iᵀ / Σ_i m_i        E = Σ (Ĝ − Â)² / (4 N²)

the mask-weighted mean outer product over positions (m = 1 without a mask: Ĝ = F Fᵀ / M, and E is the
paper's Σ (G − A)² / (4 N² M²)). For a 0/1 mask this is Gatys 2017's guided Gram (features times the
mask, normalized by the region's area instead of M). Weighting by m, not m² (what multiplying the
features by a soft mask and squaring gives), keeps it a weighted mean: a uniform 0.5 mask gives the
Gram of no mask, so a half-covered region is pulled towards the painting's Gram, not towards half of it.

The sums Σ m f fᵀ (`additive`: tiles add theirs) are one batched matmul in float32 whatever the features'
dtype or memory layout, with a hand-written backward, (D + Dᵀ) F m for the gradient D of the sums: one
matmul where autograd would take two.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .base import StyleStatistic, blend_weights, check_features, pixel_weights, positions, total_weight, unflatten


class _GramSums(torch.autograd.Function):
    """Σ_i m_i f_i f_iᵀ [B,N,N] of features [B,N,h,w] (weights [h·w] or None: m = 1)."""

    @staticmethod
    def forward(ctx, features, weights):
        flat, _ = positions(features)                                 # [B,M,N]
        left = flat.transpose(1, 2)
        if weights is not None:
            if weights.is_inference():            # a mask made under inference mode (ComfyUI's nodes)
                weights = weights.clone()
            left = left * weights.view(1, 1, -1)
        ctx.save_for_backward(features, weights)
        return torch.bmm(left, flat)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        features, weights = ctx.saved_tensors
        flat, channels_last = positions(features)
        out = torch.bmm(flat, (grad + grad.transpose(1, 2)).to(flat.dtype))     # [B,M,N]: rows m_i f_iᵀ (D + Dᵀ)
        if weights is not None:
            out = out * weights.view(1, -1, 1)
        return unflatten(out, features.shape, channels_last).to(features.dtype), None


class GramStatistic(StyleStatistic):
    """The paper's statistic: target Â [1,N,N] (a plain tensor, as nst_core.targets builds it)."""

    name = "gram"
    additive = True

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_features(features)
        with torch.no_grad():
            weights = pixel_weights(features, mask)
            return self.finish(self.sums(features.detach(), weights), total_weight(features, weights))

    def blend(self, targets: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
        weights = blend_weights(weights, len(targets))
        return sum(w * t for w, t in zip(weights, targets))

    def energy(self, target: torch.Tensor, layer: str | None = None) -> float:
        """Σ Â² / (4 N²): E of all-zero features."""
        n = target.shape[-1]
        return float(target.double().pow(2).sum()) / (4.0 * n * n)

    def sums(self, features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return _GramSums.apply(features, weights)

    def finish(self, sums: torch.Tensor, count) -> torch.Tensor:
        return sums / count

    def target_from(self, value: torch.Tensor) -> torch.Tensor:
        return value

    def distance(self, value: torch.Tensor, target: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        n = value.shape[-1]
        return (value - target).pow(2).sum() / (4.0 * n * n)

    def loss(self, features: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
             generator: torch.Generator | None = None, layer: str | None = None) -> torch.Tensor:
        check_features(features)
        weights = pixel_weights(features, mask)
        return self.distance(self.finish(self.sums(features, weights), total_weight(features, weights)), target)
