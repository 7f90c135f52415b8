"""Wasserstein-2 distance between Gaussian fits of the features (mean + covariance), as in
crowsonkb's style-transfer-pytorch (its default style loss):

    W2² = |μ − μ_t|² + tr C + tr C_t − 2 tr (C_t^½ C C_t^½)^½

Masks weight the pixels: μ = Σ m_i f_i / Σ m_i and C = Σ m_i (f_i − μ)(f_i − μ)ᵀ / Σ m_i.

Matrix square roots by eigendecomposition in float64, not Newton-Schulz: at deep layers of small images
the output covariance is rank-deficient (relu5_1 at 64 px has 16 pixels for 512 channels), where
Newton-Schulz converges slowly and inaccurately, while eigh is exact. The loss needs only the trace of
the square root, Σ sqrt(λ_k) of C_t^½ C C_t^½, so the backward goes through eigvalsh, whose gradient
U diag(g) Uᵀ has no 1/(λ_i − λ_j) terms and stays finite with repeated (zero) eigenvalues. Eigenvalues
below 1e-12 of the largest (float64 round-off) are clamped there and get no gradient. C_t^½ is
computed once per target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .base import StyleStatistic, blend_weights, check_features, pixel_weights, positions
from .normalization import raw_loss_scale

_EIGEN_FLOOR = 1e-12


@dataclass
class GaussianTarget:
    """Mean [N] and covariance [N,N] in float64, with the covariance's square root."""
    mean: torch.Tensor
    cov: torch.Tensor
    cov_sqrt: torch.Tensor

    @classmethod
    def of(cls, mean: torch.Tensor, cov: torch.Tensor) -> "GaussianTarget":
        """With the covariance's square root (float64 eigh; round-off negatives clamped to 0)."""
        values, vectors = torch.linalg.eigh((cov + cov.T) / 2)
        return cls(mean, cov, (vectors * values.clamp_min(0).sqrt()) @ vectors.T)


def _spread(features: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask-weighted mean [N] (float64) and X [N,M] (float64) with X Xᵀ = the weighted covariance."""
    flat = positions(features)[0][0].T                            # [N, M] float32
    weights = pixel_weights(features, mask)
    if weights is None:
        mean = flat.mean(dim=1)
        spread = (flat - mean[:, None]).double() / flat.shape[1] ** 0.5
    else:
        weights = weights / weights.sum()
        mean = flat @ weights
        spread = (flat - mean[:, None]).double() * weights.double().sqrt()
    # centred in float32 (no E[ffᵀ] − μμᵀ cancellation), the products and eigen-solves in float64
    return mean.double(), spread


class Wasserstein2Statistic(StyleStatistic):
    """Gaussian W2², times the layer's normalization scale; target: GaussianTarget."""

    name = "wasserstein2"

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> GaussianTarget:
        check_features(features)
        # normal tensors even when called under inference mode (ComfyUI): the loss's matmul with the
        # target's square root saves it for backward, which autograd refuses for inference tensors
        with torch.inference_mode(False), torch.no_grad():
            mean, spread = _spread(features.detach().clone(), None if mask is None else mask.clone())
            return GaussianTarget.of(mean, spread @ spread.T)

    def blend(self, targets: Sequence[GaussianTarget], weights: Sequence[float]) -> GaussianTarget:
        """The Gaussian with the mixture's mean and covariance (second moments add, weighted)."""
        weights = blend_weights(weights, len(targets))
        mean = sum(w * t.mean for w, t in zip(weights, targets))
        second = sum(w * (t.cov + torch.outer(t.mean, t.mean)) for w, t in zip(weights, targets))
        return GaussianTarget.of(mean, second - torch.outer(mean, mean))

    def energy(self, target: GaussianTarget, layer: str | None = None) -> float:
        """scale · (|μ_t|² + tr C_t) = scale · E|f|²: W2² of all-zero features."""
        return raw_loss_scale(self.name, layer) * float(target.mean.pow(2).sum() + target.cov.diagonal().sum())

    def loss(self, features: torch.Tensor, target: GaussianTarget, mask: torch.Tensor | None = None,
             generator: torch.Generator | None = None, layer: str | None = None) -> torch.Tensor:
        check_features(features)
        mean, spread = _spread(features, mask)
        # C_t^½ C C_t^½ = Y Yᵀ with Y = C_t^½ X: its nonzero eigenvalues are those of the smaller of
        # Y Yᵀ [N,N] and Yᵀ Y [M,M] (relu4_1/relu5_1 below ~180 px have M < N: a 512x512 float64 eigvalsh
        # forward+backward costs ~0.1 s on 2 CPU cores)
        root = target.cov_sqrt.to(spread.device)
        y = root @ spread
        product = y.T @ y if y.shape[1] < y.shape[0] else y @ y.T
        values = torch.linalg.eigvalsh((product + product.T) / 2)
        # > 0 so that sqrt's gradient stays finite even for an all-zero (dead) layer
        floor = values.detach().max().clamp_min(0) * _EIGEN_FLOOR + 1e-30
        trace_root = values.clamp_min(floor).sqrt().sum()
        cov_term = spread.pow(2).sum() + target.cov.to(spread.device).diagonal().sum() - 2 * trace_root
        mean_term = (mean - target.mean.to(mean.device)).pow(2).sum()
        return (raw_loss_scale(self.name, layer) * (mean_term + cov_term)).float()
