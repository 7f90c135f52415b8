"""Which pixels of frame t the warped previous frame can speak for: Ruder et al. 2016's occlusion mask.

Forward-backward consistency (Sundaram et al. 2010, as used by Ruder et al.): with the backward flow
ŵ = flow(t, t-1) and the forward flow w = flow(t-1, t) sampled where ŵ points, w̃(p) = w(p + ŵ(p)),
a pixel is kept where |w̃ + ŵ|² <= 0.01 (|w̃|² + |ŵ|²) + 0.5 (going there and back returns home), is not
on a motion boundary (|∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002 marks one), and ŵ lands inside frame t-1
(a strip that enters the view has no past).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .flow import lands_inside, warp

# Ruder et al. 2016, section 3.3 (thresholds in pixels², flows in pixels)
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002


def _as_map(flow: torch.Tensor) -> torch.Tensor:
    """[H,W,2] -> [1,2,H,W] float32 on the CPU."""
    return flow.float().cpu().permute(2, 0, 1).unsqueeze(0)


def consistent(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """[H,W] bool on frame t's grid: the forward flow, fetched along the backward flow, undoes it."""
    there = warp(_as_map(forward), backward)[0].permute(1, 2, 0)          # w̃ on frame t's grid
    back = backward.float().cpu()
    error = (there + back).pow(2).sum(-1)
    bound = CONSISTENCY_RELATIVE * (there.pow(2).sum(-1) + back.pow(2).sum(-1)) + CONSISTENCY_ABSOLUTE
    return error <= bound


def motion_boundary(backward: torch.Tensor) -> torch.Tensor:
    """[H,W] bool: the backward flow changes fast here (an object's edge), so its warp is unreliable."""
    flow = _as_map(backward)
    # central differences (one-sided at the border, by replicating the edge)
    padded = F.pad(flow, (1, 1, 1, 1), mode="replicate")
    dx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    dy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    gradient = (dx.pow(2) + dy.pow(2)).sum(1)[0]                         # |∇u|² + |∇v|²
    return gradient > BOUNDARY_RELATIVE * flow.pow(2).sum(1)[0] + BOUNDARY_ABSOLUTE


def keep_mask(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """[H,W] float32, 1 where frame t may be compared with the warped frame t-1, 0 where occluded."""
    keep = consistent(forward, backward) & ~motion_boundary(backward) & lands_inside(backward)
    return keep.float()


__all__ = ["BOUNDARY_ABSOLUTE", "BOUNDARY_RELATIVE", "CONSISTENCY_ABSOLUTE", "CONSISTENCY_RELATIVE",
           "consistent", "keep_mask", "motion_boundary"]
