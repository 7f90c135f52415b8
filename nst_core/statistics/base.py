"""The one interface every style statistic implements, and the pixel weighting they share.

A statistic summarizes a layer's features [1,N,H,W] (optionally weighted per pixel by a mask [1,1,H,W]
in 0..1 at that layer's resolution) into a target, blends several targets into one, and measures a
differentiable loss between an output's features and a target. Masks weight pixels: a pixel with mask
0.5 counts half, so soft masks blend two styles instead of switching between them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..errors import ImageError


class StyleStatistic:
    """Base of "gram", "wasserstein2" and "sliced_wasserstein" (one small module each)."""

    name: str = ""

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None):
        """The statistic of style features [1,N,H,W] (inside `mask` [1,1,H,W] when given), no grad."""
        raise NotImplementedError

    def blend(self, targets: Sequence, weights: Sequence[float]):
        """Several style images' targets -> one target (the weights are normalized to sum to 1)."""
        raise NotImplementedError

    def loss(self, features: torch.Tensor, target, mask: torch.Tensor | None = None,
             generator: torch.Generator | None = None, layer: str | None = None) -> torch.Tensor:
        """A float32 scalar, differentiable in `features`, ~0 when the output matches the target.

        `generator` draws the random parts (sliced W's directions); `layer` (the features' layer name)
        picks the normalization scale measured for that layer (statistics.normalization)."""
        raise NotImplementedError

    def energy(self, target, layer: str | None = None) -> float:
        """The loss an all-zero output would have (the target's size in the loss's own units): under
        weighting "normalized" each layer's loss is divided by it (nst_core.objective)."""
        raise NotImplementedError

    # A statistic that is a (weighted) mean over positions also offers it as sums, so that a tiled
    # evaluation (nst_core.tiling) can add its tiles' sums and finish the same loss on the whole image.
    additive = False

    def sums(self, features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_i m_i s(f_i) over the positions of features [B,N,h,w] (m = `weights` [h*w], or 1)."""
        raise NotImplementedError

    def finish(self, sums: torch.Tensor, count) -> torch.Tensor:
        """The statistic from the sums over all positions and their total weight Σ m."""
        raise NotImplementedError

    def distance(self, value: torch.Tensor, target, layer: str | None = None) -> torch.Tensor:
        """The loss of a finished statistic against the target (a float32 scalar)."""
        raise NotImplementedError

    def target_from(self, value: torch.Tensor):
        """The target of a style image from its finished statistic (`finish` of its sums, no grad)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def blend_weights(weights: Sequence[float], count: int) -> list[float]:
    """Check and normalize blend weights (>= 0, finite, not all zero) to sum to 1."""
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise ValueError(f"{len(weights)} blend weights given for {count} style targets")
    if count == 0:
        raise ValueError("no style targets to blend")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"blend weights must be >= 0 and not all zero, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


def check_features(features: torch.Tensor) -> None:
    if features.ndim != 4 or features.shape[0] != 1:
        raise ValueError(f"style statistics take features [1,N,H,W], got shape {tuple(features.shape)}")


def pixel_weights(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    """The mask as float32 weights [H*W] matching `features` [1,N,H,W], or None for no mask."""
    if mask is None:
        return None
    if mask.ndim != 4 or mask.shape[:2] != (1, 1) or tuple(mask.shape[-2:]) != tuple(features.shape[-2:]):
        raise ImageError(f"a layer mask must be [1,1,H,W] with the features' size {tuple(features.shape[-2:])}, "
                         f"got shape {tuple(mask.shape)} (use nst_core.statistics.layer_masks)")
    weights = mask.detach().reshape(-1).to(device=features.device, dtype=torch.float32)
    if not bool(weights.sum() > 0):
        raise ImageError("the mask is empty at this layer (all zero): it selects no pixel to match")
    return weights


def total_weight(features: torch.Tensor, weights: torch.Tensor | None):
    """Σ m over the positions of features [B,N,h,w]: h·w without weights."""
    return features.shape[-2] * features.shape[-1] if weights is None else weights.sum()


def positions(features: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """[B,N,h,w] -> ([B,h·w,N] float32 (float64 stays), channels_last?): a view, not a copy, of a
    contiguous map in either memory layout (a crop of one may be copied)."""
    b, n, h, w = features.shape
    wide = features if features.dtype == torch.float64 else features.float()
    if n > 1 and features.stride(1) == 1:
        return wide.permute(0, 2, 3, 1).reshape(b, h * w, n), True
    return wide.reshape(b, n, h * w).transpose(1, 2), False


def unflatten(flat: torch.Tensor, shape, channels_last: bool) -> torch.Tensor:
    """`positions`' inverse: [B,h·w,N] -> [B,N,h,w] in the memory layout `positions` read."""
    b, n, h, w = shape
    if channels_last:
        return flat.view(b, h, w, n).permute(0, 3, 1, 2)
    return flat.transpose(1, 2).reshape(b, n, h, w)
