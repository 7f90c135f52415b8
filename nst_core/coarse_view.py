"""The look held at one size: a level larger than `look_size` also matches its targets seen at that size.

Why. The network's receptive fields are fixed in pixels (a relu5_1 unit sees 141 px: tiling.reach), so
one style strength paints a small image and a large one differently: the deep layers see most of a
256 px image and a small part of a 1024 px one. Coarse-to-fine sets the large structure at the small levels, but each
larger level's steps re-optimize it for that level's own size and wash the small size's look out. So a
level of S px with S > look_size V optimizes

    L_S(x) + VIEW_WEIGHT · L_V(D_V x)

where D_V is the antialiased downscale to a long side of V (bicubic, as the targets' own resize) and
L_V the same objective at V (content and style, the targets at V): what a run of V px optimizes, seen
on the large image. This is the pyramid idea of Snelgrove (2017, "High-resolution multi-scale neural
texture synthesis": Gram losses on a Gaussian pyramid of the output), with one coarse view at the size
where the look is defined. Only under weighting "normalized": "paper" is the published one-size
objective.

Measured (the "High resolution" template, cat + Starry Night, the defaults, 300 steps; each result
downscaled to 256 px and measured there with nst_core.bench.look.look: style ratio / relu4_2 content
distance): the 256 px run 0.053 / 0.68; 512 px without the view 0.106 / 0.86, with a 256 px view
0.054 / 0.71; 1024 px 0.095 / 0.85 without, 0.051 / 0.72 with it. A default 512 px run took 196 s against
171 s without (+15 %; 2-core CPU, one after the other in one process).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .objective import PixelTerm

# The view's term weighs as much as the level's own: the look at V and the detail at S count alike (with
# this weight the 512 px result seen at 256 px measured like the 256 px run, above).
VIEW_WEIGHT = 1.0


def downscale(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """x [B,3,H,W] antialiased (bicubic) down to `size`, differentiable (no clamp: a clamp would cut the
    gradient of out-of-range pixels)."""
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


class CoarseView(PixelTerm):
    """The term VIEW_WEIGHT · objective(D_V x): `objective` (an nst_core.Objective) at the view's size.

    A pixel term: added to the level's total and recorded as "view"; tiling.TiledObjective evaluates it on
    the whole image (it is small) and cuda_graph replays it with the level's objective (all on the device).
    """

    name = "view"

    def __init__(self, objective, weight: float = VIEW_WEIGHT):
        self.objective = objective
        self.weight = float(weight)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.objective(downscale(x, self.objective.size))[0]
