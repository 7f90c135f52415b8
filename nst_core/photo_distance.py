"""The normalized strength's unit for a pair: how far the photo already is from the painting.

Why. Under weighting "normalized" each style layer's term is relative to the painting's energy,
E_l(x) / E_l(0), so a strength means the same at every size. It did not mean the same for every pair:
a photo that is statistically far from its painting (the astronaut against The Scream: E_l(photo) / E_l(0)
averages 4.0 over the default layers at 256 px) starts with a style term 4.4x larger than one close to it
(the cat against The Starry Night: 0.91), so the same strength pulled it 3x further towards the
painting's statistics, measured as the style ratio E(output) / E(photo) over the five pairs of
nst_core.bench.look (256 px, 300 steps: 0.054 / 0.018 / 0.035 / 0.052 / 0.022, a 3.0x spread). So each
style target's terms are divided by the photo's own relative distance

    d = Σ_l w_l E_l(photo) / E_l(0)  /  Σ_l w_l      (at `side` px, the look size)

and a strength s weighs the style term as s · Σ_l w_l E_l(x) / (E_l(0) d): the style term of the
unchanged photo is s · Σ_l w_l whatever the pair, and the strength says how far from the photo towards
the painting to go. Measured with the same five pairs (`weighting` "relative", the default strength 5):
style ratio 0.037 / 0.031 / 0.031 / 0.044 / 0.025 (1.75x), content distance 0.77 / 0.48 / 0.60 / 0.70 /
0.49 (1.60x; it was 1.37x: what the style ratio gains the content distance partly gives back; both
within 2x).

d is measured once per run where the look is set (nst_core.api): at the look size (the photo and the
painting as a run of that size sees them), or at the output's size when that is smaller (a small run's
look is its own). So every level and every output size from the look size up gets the same factor:
E_l(photo) / E_l(0) itself changes with the scale (the astronaut + Composition VII: 4.9 at 128 px, 2.0
at 256, 1.2 at 512), and a factor per level would make the strength mean something else at every level.
Measuring a 128 px run at 256 px instead (its photo upscaled) left its five pairs' style ratio 5x apart
after 60 steps; at its own size 2.8x (content distance 1.5x; single-size runs, not converged).
"""

from __future__ import annotations

from typing import Sequence

import torch

from .image import fit_max_side
from .settings import DEFAULTS

# d below this (the photo nearly is the painting, statistically) is taken as this: the factor 1/d stays
# at most 10x (the five pairs measured d 0.9-4.0)
MIN_DISTANCE = 0.1


def style_distance(vgg, content, style, side: int) -> float:
    """d of one style target (nst_core.targets.StyleTarget) for the content target's photo, at a long side
    of `side` px: Σ_l w_l E_l(photo)/E_l(0) / Σ_l w_l with the target's statistic, layers, layer weights and
    mask (the photo's style term under weighting "normalized", per unit of layer weight); at least
    MIN_DISTANCE. 1 for a target of weight 0 (it weighs nothing)."""
    if style.weight == 0:
        return 1.0
    from .objective import Objective
    size = fit_max_side(*content.size, side, upscale=True)
    objective = Objective(vgg, None, style, 0.0, size, weighting="normalized")
    photo = content.image_at(size).to(vgg.device)
    with torch.inference_mode(False), torch.no_grad():
        _, parts = objective(photo)
    distance = float(parts["style"]) / sum(style.layer_weights)
    return max(distance, MIN_DISTANCE)


def style_units(vgg, content, style, size, look_size: int = 0) -> tuple[float, ...]:
    """1/d per style target (one StyleTarget or a list, one per region), the factors
    nst_core.objective.Objective's `style_units` takes, for targets as a run optimizes them (after colour
    preservation) and an output of `size` (H, W): measured where its look is set, at `look_size` (0: the
    default, settings.DEFAULTS), or at the output's long side when that is smaller. () without a photo or
    a style (a texture: nothing to measure from)."""
    styles = [] if style is None else list(style) if isinstance(style, (list, tuple)) else [style]
    if content is None or not styles:
        return ()
    side = min(look_size or DEFAULTS["look_size"], max(size))
    return tuple(1.0 / style_distance(vgg, content, target, side) for target in styles)


def describe(scales: Sequence[float]) -> str:
    """' (the photo's distance to the painting d = 0.91)' for a run's Result.style_units ('' when none;
    several: one d per style target)."""
    if not scales:
        return ""
    ds = ", ".join(f"{1.0 / s:.2f}" for s in scales)
    return f" (the photo's distance to the painting d = {ds}{', one per style' if len(scales) > 1 else ''})"
