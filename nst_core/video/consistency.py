"""How much a stylized clip flickers: the mean difference between each frame and its warped predecessor
over the pixels the flow can speak for (the measure Ruder et al. 2016 report as temporal error)."""

from __future__ import annotations

import torch

from .flow import flow_pair, warp
from .occlusion import keep_mask


def warped_differences(outputs: torch.Tensor, contents: torch.Tensor) -> list[float]:
    """Per pair (t-1, t): mean |out_t − warp(out_t-1)| over kept pixels and channels, flows from `contents`.

    outputs, contents: [T,H,W,3] in 0..1 of one size. Returns T-1 numbers (0 = perfectly consistent)."""
    outs = outputs.float().cpu().permute(0, 3, 1, 2)
    values = []
    for t in range(1, outs.shape[0]):
        forward, backward = flow_pair(contents[t - 1], contents[t])
        mask = keep_mask(forward, backward)
        warped = warp(outs[t - 1:t], backward)[0]
        kept = mask.sum() * 3
        difference = ((outs[t] - warped).abs() * mask).sum() / kept if kept > 0 else torch.tensor(0.0)
        values.append(float(difference))
    return values


__all__ = ["warped_differences"]
