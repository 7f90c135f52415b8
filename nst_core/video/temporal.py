"""Ruder et al. 2016's short-term temporal loss: stay close to the previous result warped onto this frame.

    temporal = mean over kept pixels and channels of (x − warped previous result)²

A mean (not Ruder's sum over all pixels / D) so that the term's size does not depend on the image size
nor on how many pixels the mask drops; the style loss (Gram matrices over M positions) does not grow with
the image size either, so one temporal weight balances the style the same way at 64 px and at 1024 px.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..image import resize
from ..objective import PixelTerm


class TemporalLoss(PixelTerm):
    """weight · mean over kept pixels of (x − target)²; target [1,3,H,W], mask [H,W] or [1,1,H,W] (1 = keep)."""

    name = "temporal"

    def __init__(self, target: torch.Tensor, mask: torch.Tensor, weight: float):
        with torch.inference_mode(False):       # ComfyUI runs nodes in inference mode; the loss needs grad
            self.target = target.detach().float().clone()
            self.mask = mask.detach().float().reshape(1, 1, *mask.shape[-2:]).clone()
        self.weight = float(weight)
        self._at: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _for(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The target and mask at x's size and device (a coarse plan level is smaller than the frame)."""
        key = (tuple(x.shape[-2:]), x.device)
        if key not in self._at:
            size = tuple(x.shape[-2:])
            target = resize(self.target, size)
            # a kept pixel at a coarse level is one whose whole footprint is kept
            mask = F.interpolate(self.mask, size=size, mode="area") if size != tuple(self.mask.shape[-2:]) \
                else self.mask
            self._at[key] = (target.to(x.device), (mask >= 0.999).float().to(x.device))
        return self._at[key]

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        target, mask = self._for(x)
        kept = mask.sum() * x.shape[1]
        if float(kept) == 0:
            return x.new_zeros(())
        return (mask * (x.float() - target).pow(2)).sum() / kept


__all__ = ["TemporalLoss"]
