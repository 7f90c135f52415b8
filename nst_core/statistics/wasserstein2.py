"""Wasserstein-2 distance between Gaussian fits of the features (mean + covariance), as in
crowsonkb's style-transfer-pytorch (its default style loss):

    W2² = |μ − μ_t|² + tr C + tr C_t − 2 tr (C_t^½ C C_t^½)^½

Masks weight the pixels: μ = Σ m_i f_i / Σ m_i and C = Σ m_i (f_i − μ)(f_i − μ)ᵀ / Σ m_i.

Matrix square roots by eigendecomposition in float64, not Newton-Schulz: at deep layers of small images
the output covariance is rank-deficient (relu5_1 at 64 px has 16 pixels for 512 channels), where
Newton-Schulz converges slowly and inaccurately, while eigh is exact. The loss needs only the trace of
the square root, Σ sqrt(λ_k) of C_t^½ C C_t^½, so the backward goes through eigvalsh, whose gradient
U diag(g) Uᵀ has no 1/(λ_i − λ_j) terms and stays finite with repeated (zero) eigenvalues. Eigenvalues
below 1e-12 of the largest (float64 round-off) are clamped there, count 0 and get no gradient. C_t^½
is computed once per target.

`additive`: μ and C come from sums over positions, Σ m, Σ m f and Σ m f fᵀ, packed as one [B,N+1,N+1]
tensor (the sums of f̃ f̃ᵀ with f̃ = (1, f)), so the tiled objective (nst_core.tiling) adds its tiles' sums
and `distance` rebuilds C = E[ffᵀ] − μμᵀ from the whole image's. The sums are float64: in float32 the
subtraction drowns the small eigenvalues of a rank-deficient C, whose square root has a steep gradient, and
the tiled gradient left the untiled one at relu5_1 (tests/engine/test_tiling.py holds them together). The
untiled `loss` centres the features instead (no subtraction) and solves the smaller of Y Yᵀ and Yᵀ Y.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .base import StyleStatistic, blend_weights, check_features, pixel_weights, positions, unflatten
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
    """Mask-weighted mean [N] (float64) and X [N,M] (float32) with X Xᵀ = the weighted covariance."""
    flat = positions(features)[0][0].T                            # [N, M] float32
    weights = pixel_weights(features, mask)
    if weights is None:
        mean = flat.mean(dim=1)
        spread = (flat - mean[:, None]) / flat.shape[1] ** 0.5
    else:
        weights = weights / weights.sum()
        mean = flat @ weights
        spread = (flat - mean[:, None]) * weights.sqrt()
    # centred in float32 (no E[ffᵀ] − μμᵀ cancellation); the eigen-solves in float64
    return mean.double(), spread


def _trace_root(product: torch.Tensor) -> torch.Tensor:
    """tr P^½ of symmetric PSD matrices P [...,K,K] (float64): Σ sqrt(λ) over the eigenvalues above the
    floor; the clamped ones (round-off) count 0, not sqrt(floor), so that the value does not depend on K
    (the loss solves the smaller of Y Yᵀ and Yᵀ Y, the tiled `distance` the N x N one). The gradient is
    sqrt's above the floor, 0 below."""
    values = torch.linalg.eigvalsh((product + product.transpose(-1, -2)) / 2)
    # > 0 so that sqrt's gradient stays finite even for an all-zero (dead) layer
    floor = values.detach().amax(dim=-1, keepdim=True).clamp_min(0) * _EIGEN_FLOOR + 1e-30
    return torch.where(values > floor, values.clamp_min(floor).sqrt(), 0.0).sum(dim=-1)


def _w2_squared(mean: torch.Tensor, trace: torch.Tensor, trace_root: torch.Tensor, target: "GaussianTarget",
                layer: str | None) -> torch.Tensor:
    """scale · (|μ − μ_t|² + tr C + tr C_t − 2 tr (C_t^½ C C_t^½)^½) from μ [...,N], tr C and the root's trace
    (summed over a leading batch): the one formula of `loss` and `distance`."""
    device = mean.device
    total = (mean - target.mean.to(device)).pow(2).sum(dim=-1) + trace + target.cov.to(device).diagonal().sum() \
        - 2 * trace_root
    return (raw_loss_scale(Wasserstein2Statistic.name, layer) * total.sum()).float()


class _MomentSums(torch.autograd.Function):
    """Σ_i m_i f̃_i f̃_iᵀ [B,N+1,N+1] float64 of features [B,N,h,w] with f̃ = (1, f) (weights [h·w] or None:
    m = 1): Σ m at [0,0], Σ m f in row and column 0, Σ m f fᵀ in the rest. The hand-written backward,
    m_i (D + Dᵀ) f̃_i for the gradient D of the sums, saves only the features (autograd would keep two
    float64 copies of them per tile)."""

    @staticmethod
    def forward(ctx, features, weights):
        # float64: E[ffᵀ] − μμᵀ cancels (module docstring)
        flat = positions(features)[0].double()                        # [B,M,N]
        if weights is not None and weights.is_inference():  # a mask made under inference mode (ComfyUI's nodes)
            weights = weights.clone()
        weights64 = None if weights is None else weights.double()
        left = flat if weights is None else flat * weights64.view(1, -1, 1)
        ctx.save_for_backward(features, weights)
        b, m, n = flat.shape
        sums = flat.new_empty(b, n + 1, n + 1)
        sums[:, 0, 0] = m if weights is None else weights64.sum()
        sums[:, 1:, 0] = sums[:, 0, 1:] = left.sum(dim=1)
        sums[:, 1:, 1:] = torch.bmm(left.transpose(1, 2), flat)
        return sums

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        features, weights = ctx.saved_tensors
        flat, channels_last = positions(features)
        both = grad + grad.transpose(1, 2)
        # float64 like the forward: the two terms nearly cancel (the gradient of C = E ffᵀ − μμᵀ reaches Σ f
        # as −(G + Gᵀ) μ: the sum is (G + Gᵀ)(f_i − μ))
        out = torch.baddbmm(both[:, :1, 1:], flat.double(), both[:, 1:, 1:])            # [B,M,N]
        if weights is not None:
            out = out * weights.double().view(1, -1, 1)
        return unflatten(out, features.shape, channels_last).to(features.dtype), None


class Wasserstein2Statistic(StyleStatistic):
    """Gaussian W2², times the layer's normalization scale; target: GaussianTarget."""

    name = "wasserstein2"
    additive = True

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> GaussianTarget:
        check_features(features)
        # normal tensors even when called under inference mode (ComfyUI): the loss's matmul with the
        # target's square root saves it for backward, which autograd refuses for inference tensors
        with torch.inference_mode(False), torch.no_grad():
            mean, spread = _spread(features.detach().clone(), None if mask is None else mask.clone())
            spread = spread.double()
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

    def sums(self, features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return _MomentSums.apply(features, weights)

    def finish(self, sums: torch.Tensor, count) -> torch.Tensor:
        """The moments E[f̃ f̃ᵀ] [B,N+1,N+1] (float64): [[1, μᵀ], [μ, E ffᵀ]]. Divided by the sums' own
        float64 Σ m, not `count` (the same total in float32): weights that do not sum to 1 exactly would
        leave (1 − Σ m / count) μμᵀ in C."""
        return sums / sums[..., :1, :1]

    def target_from(self, value: torch.Tensor) -> GaussianTarget:
        """From the moments [1,N+1,N+1] of `finish`: μ and C = E ffᵀ − μμᵀ (float64)."""
        mean = value[0, 1:, 0]
        return GaussianTarget.of(mean, value[0, 1:, 1:] - torch.outer(mean, mean))

    def distance(self, value: torch.Tensor, target: GaussianTarget, layer: str | None = None) -> torch.Tensor:
        """W2² of the Gaussian with the moments `value` (`finish`'s) against the target, as `loss`."""
        mean = value[..., 1:, 0]                                                      # [B,N]
        cov = value[..., 1:, 1:] - mean.unsqueeze(-1) * mean.unsqueeze(-2)            # [B,N,N]
        root = target.cov_sqrt.to(value.device)
        return _w2_squared(mean, cov.diagonal(dim1=-2, dim2=-1).sum(dim=-1), _trace_root(root @ cov @ root),
                           target, layer)

    def loss(self, features: torch.Tensor, target: GaussianTarget, mask: torch.Tensor | None = None,
             generator: torch.Generator | None = None, layer: str | None = None) -> torch.Tensor:
        check_features(features)
        mean, spread = _spread(features, mask)
        # C_t^½ C C_t^½ = Y Yᵀ with Y = C_t^½ X. With few positions per channel (the deep layers of small
        # images) Y in float64: C has rank < M there, and float32 round-off in its zero eigenvalues would
        # reach the gradient through sqrt; the smaller of Y Yᵀ and Yᵀ Y is solved. Else C = X Xᵀ comes from
        # the centred float32 features, as the Gram's product (float64 products over all positions cost
        # several times more), and the N x N solve is float64
        root = target.cov_sqrt.to(spread.device)
        channels, count = spread.shape
        if count < 2 * channels:
            spread = spread.double()
            y = root @ spread
            trace_root, trace = _trace_root(y.T @ y if count < channels else y @ y.T), spread.pow(2).sum()
        else:
            cov = (spread @ spread.T).double()
            trace_root, trace = _trace_root(root @ cov @ root), cov.diagonal().sum()
        return _w2_squared(mean, trace, trace_root, target, layer)
