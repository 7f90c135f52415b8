"""The loss terms of Gatys et al., in the papers' normalization.

content  ½ Σ (F − P)²
style    Σ_l w_l E_l,  E_l = Σ (G − A)² / (4 N_l² M_l²),  G = F Fᵀ
tv       Σ (x[i+1,j] − x[i,j])² + (x[i,j+1] − x[i,j])²   (Mahendran & Vedaldi's β = 2 total variation)

Grams are one batched matmul in float32 whatever the features' dtype or memory layout (a channels-last
map is read through a transposed view, never copied). The style term has a hand-written backward,
dE/dF = (G − A) F / (N² M): one matmul instead of autograd's two plus an add (G − A is symmetric).
"""

from __future__ import annotations

import torch


def _flat(features: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """[B,N,H,W] -> ([B,N,M] view, channels_last?) without copying either memory layout."""
    b, n, h, w = features.shape
    if n > 1 and features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        return features.permute(0, 2, 3, 1).reshape(b, h * w, n).transpose(1, 2), True
    return features.reshape(b, n, h * w), False


def _wide(t: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16/float32 -> float32; float64 stays."""
    return t if t.dtype == torch.float64 else t.float()


def gram(features: torch.Tensor) -> torch.Tensor:
    """G / M for features [B,N,H,W] -> [B,N,N], in float32 (float64 stays) (one batched matmul)."""
    flat, _ = _flat(features)
    flat = _wide(flat)
    return torch.bmm(flat, flat.transpose(1, 2)) / flat.shape[-1]


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


class _StyleLayerLoss(torch.autograd.Function):
    """E = Σ (Ĝ − Â)² / (4 N²) with Ĝ = F Fᵀ / M; backward dE/dF = (Ĝ − Â) F / (N² M)."""

    @staticmethod
    def forward(ctx, features, target_gram):
        n = features.shape[1]
        diff = gram(features) - target_gram
        ctx.save_for_backward(features, diff)
        ctx.target_shape = target_gram.shape
        return diff.pow(2).sum() / (4.0 * n * n)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        features, diff = ctx.saved_tensors
        b, n, h, w = features.shape
        grad_features = grad_target = None
        if ctx.needs_input_grad[0]:
            scaled = diff * (grad / (n * n * h * w))            # [B,N,N], symmetric
            flat, channels_last = _flat(features)
            if channels_last:                                    # [B,M,N] = Fᵀ (G − A): channels-last out
                out = torch.bmm(_wide(flat.transpose(1, 2)), scaled)
                grad_features = out.view(b, h, w, n).permute(0, 3, 1, 2)
            else:
                grad_features = torch.bmm(scaled, _wide(flat)).view(b, n, h, w)
            grad_features = grad_features.to(features.dtype)
        if ctx.needs_input_grad[1]:
            grad_target = -diff * (grad / (2.0 * n * n))
            grad_target = grad_target.sum_to_size(ctx.target_shape)
        return grad_features, grad_target


def style_layer_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """E_l = Σ (G − A)² / (4 N² M²); with G and A already divided by M this is Σ (Ĝ − Â)² / (4 N²)."""
    return _StyleLayerLoss.apply(features, target_gram)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Squared-difference total variation of [B,3,H,W] pixels in 0..1."""
    dy = x[..., 1:, :] - x[..., :-1, :]
    dx = x[..., :, 1:] - x[..., :, :-1]
    return dy.pow(2).sum() + dx.pow(2).sum()
