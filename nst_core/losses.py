"""The content and TV terms of Gatys et al., in the papers' normalization (the style statistics, the
Gram's included, are nst_core.statistics).

content  ½ Σ (F − P)²
tv       Σ (x[i+1,j] − x[i,j])² + (x[i,j+1] − x[i,j])²   (Mahendran & Vedaldi's β = 2 total variation)
"""

from __future__ import annotations

import torch


def content_loss(features: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """½ Σ (F − P)², or ½ Σ m (F − P)² with a mask m [1,1,H,W] at the features' resolution (a content mask
    keeps its region photographic)."""
    squared = (features.float() - target).pow(2)
    if mask is not None:
        squared = squared * mask.to(squared.device)
    return 0.5 * squared.sum()


def content_energy(target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """½ Σ P² (or ½ Σ m P²): the content loss of an all-zero output (weighting "normalized" divides by it)."""
    squared = target.double().pow(2)
    if mask is not None:
        squared = squared * mask.to(squared.device, torch.float64)
    return 0.5 * float(squared.sum())


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Squared-difference total variation of [B,3,H,W] pixels in 0..1."""
    dy = x[..., 1:, :] - x[..., :-1, :]
    dx = x[..., :, 1:] - x[..., :, :-1]
    return dy.pow(2).sum() + dx.pow(2).sum()
