"""The look held at one size: a level larger than `look_size` also matches its targets seen at that size.

The receptive fields are fixed in pixels (a relu5_1 unit sees 141 px), so one style strength paints a
small and a large image differently, and each larger level's steps wash the small size's look out. So a
level of S px with S > look_size V optimizes L_S(x) + LOOK_WEIGHT · L_V(D_V x), with D_V the antialiased
downscale to a long side of V and L_V the same objective at V: what a run of V px optimizes, seen on the
large image (Snelgrove 2017's pyramid, with one level at the look size). Size-free weightings only:
"paper" is the published one-size objective. Measurements: nst_core/bench/README.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .objective import PixelTerm

# the look term weighs as much as the level's own: the look at V and the detail at S count alike
LOOK_WEIGHT = 1.0


def downscale(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """x [B,3,H,W] antialiased (bicubic) down to `size`, differentiable (no clamp: a clamp would cut the
    gradient of out-of-range pixels)."""
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


class LookTerm(PixelTerm):
    """The term LOOK_WEIGHT · objective(D_V x): `objective` (an nst_core.Objective) at the look size.

    A pixel term: added to the level's total and recorded as "look"; tiling.TiledObjective evaluates it on
    the whole image (it is small) and cuda_graph replays it with the level's objective (all on the device).
    """

    name = "look"

    def __init__(self, objective, weight: float = LOOK_WEIGHT):
        self.objective = objective
        self.weight = float(weight)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.objective(downscale(x, self.objective.size))[0]
