"""The loss terms of Gatys et al., in the papers' normalization.

content  ½ Σ (F − P)²
style    Σ_l w_l E_l,  E_l = Σ (G − A)² / (4 N_l² M_l²),  G = F Fᵀ
tv       Σ (x[i+1,j] − x[i,j])² + (x[i,j+1] − x[i,j])²   (Mahendran & Vedaldi's β = 2 total variation)
"""

from __future__ import annotations

import torch


def gram(features: torch.Tensor) -> torch.Tensor:
    """G / M for features [B,N,H,W] -> [B,N,N], always in float32 (one batched matmul)."""
    b, n, h, w = features.shape
    flat = features.reshape(b, n, h * w).float()
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """½ Σ (F − P)²."""
    return 0.5 * (features.float() - target).pow(2).sum()


def style_layer_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """E_l = Σ (G − A)² / (4 N² M²); with G and A already divided by M this is Σ (Ĝ − Â)² / (4 N²)."""
    n = features.shape[1]
    return (gram(features) - target_gram).pow(2).sum() / (4.0 * n * n)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Squared-difference total variation of [B,3,H,W] pixels in 0..1."""
    dy = x[..., 1:, :] - x[..., :-1, :]
    dx = x[..., :, 1:] - x[..., :, :-1]
    return dy.pow(2).sum() + dx.pow(2).sum()
