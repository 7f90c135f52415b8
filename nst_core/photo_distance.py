"""The relative weighting's unit for a pair: how far the photo already is from the painting, per layer.

Under weighting "normalized" each style layer's term is relative to the painting's energy, E_l(x)/E_l(0),
so one strength means the same at every size, but not for every pair: a photo statistically far from its
painting starts with a larger style term and is pulled further. So each style layer's term is divided by
the photo's own relative distance at that layer,

    d_l = E_l(photo) / E_l(0)      (at the size the term is evaluated at)

and a strength s weighs the style term as s · Σ_l w_l E_l(x) / (E_l(0) d_l): the unchanged photo's style
term is s · Σ_l w_l whatever the pair, and every layer starts from the same share. One d for all layers
(their mean) let the farthest layer set the unit of all the others, and the near layers of a far pair
(a gray photo's colour) were left almost unweighted (nst_core/bench/README.md, "sixteen pairs").

The look is set at the look size, so d is measured there for every level up to it and for the look terms
(nst_core.look), whatever the output's size: at a small output's own size relu5_1 has few positions,
reads far from every painting, and would lose most of its weight. A level larger than the look size
(which also holds the look through its look term) has its own term in units of d at its own size: the
painting's finer statistics there are nearer to some photos than others (The Kiss's gold mosaic at 512 px
is 1.5x farther from a town photo at relu3_1 than at 256 px), and in look-size units those pairs were
pulled much further at their own size than the rest (`StyleUnits`, nst_core/bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .image import fit_max_side
from .settings import DEFAULTS
from .tiled_features import extract_losses

# d_l below this (the photo nearly is the painting at that layer) is taken as this: a layer's unit 1/d_l
# stays at most 10x
MIN_DISTANCE = 0.1


def style_distance(vgg, content, style, size) -> tuple[float, ...]:
    """d_l per layer of one style target (nst_core.targets.StyleTarget) for the content target's photo, at
    `size`: (H, W), or a long side in px (aspect kept): E_l(photo)/E_l(0) with the target's statistic and
    mask (the photo's layer terms under weighting "normalized", per unit of layer weight), each at least
    MIN_DISTANCE; tile by tile when the photo's forward at that size does not fit one (a large level).
    All 1 for a target of weight 0 (it weighs nothing)."""
    if style.weight == 0:
        return (1.0,) * len(style.layers)
    from .objective import Objective
    size = fit_max_side(*content.size, size, upscale=True) if isinstance(size, int) else tuple(size)
    objective = Objective(vgg, None, style, 0.0, size, weighting="normalized")
    photo = content.image_at(size).to(vgg.device)
    # a term's loss carries its layer weight w_l: d_l is per unit of it
    layer_weights = {name: w or 1.0 for name, w in zip(style.layers, style.layer_weights)}
    with torch.inference_mode(False):
        losses = extract_losses(vgg.grad_ready(), photo, objective.terms, objective.generator)
    return tuple(max(losses[name][0] / layer_weights[name], MIN_DISTANCE) for name in style.layers)


def style_units(vgg, content, style, look_size: int = 0, size=None) -> tuple[tuple[float, ...], ...]:
    """Per style target (one StyleTarget or a list, one per region) the units 1/d_l of its layers, the
    factors nst_core.objective.Objective's `style_units` takes, for targets as a run optimizes them (after
    colour preservation), measured at a long side of `look_size` (0: the default, settings.DEFAULTS)
    whatever the output's size, or at `size` (H, W) when given (a level larger than the look size).
    () without a photo or a style (a texture: nothing to measure from)."""
    styles = [] if style is None else list(style) if isinstance(style, (list, tuple)) else [style]
    if content is None or not styles:
        return ()
    at = tuple(size) if size is not None else (look_size or DEFAULTS["look_size"])
    return tuple(tuple(1.0 / d for d in style_distance(vgg, content, target, at)) for target in styles)


@dataclass(frozen=True)
class StyleUnits:
    """A run's units under "relative" (per style target 1/d_l per layer): `look`, measured at the look
    size, for the look terms and every level up to it; `levels`, (size, units) of each level larger than
    the look size, measured at that size, for that level's own term."""

    look: tuple[tuple[float, ...], ...] = ()
    levels: tuple[tuple[tuple[int, int], tuple[tuple[float, ...], ...]], ...] = ()

    def at(self, size) -> tuple[tuple[float, ...], ...]:
        """The units of a level's own term at `size` (H, W)."""
        return dict(self.levels).get(tuple(size), self.look)


def describe(units: Sequence[Sequence[float]]) -> str:
    """' (the photo's distance to the painting per style layer d = 0.92 0.75 0.81 0.80 1.28)' for a run's
    Result.style_units ('' when none; several styles: one list each)."""
    if not units:
        return ""
    ds = "; ".join(" ".join(f"{1.0 / u:.2f}" for u in target) for target in units)
    return f" (the photo's distance to the painting per style layer d = {ds})"
