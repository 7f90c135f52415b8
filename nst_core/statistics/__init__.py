"""Style statistics behind one interface (StyleStatistic: target, blend, loss, energy), each accepting masks.

    from nst_core.statistics import STATISTICS, DEFAULT_STYLE_LOSS, layer_masks
    stat = STATISTICS["sliced_wasserstein"]
    target = stat.target(style_features, style_mask)          # [1,N,H,W], mask [1,1,H,W] or None
    loss = stat.loss(output_features, target, output_mask, generator)

A statistic made of means over positions (`additive`: the Gram, W2) computes its loss as
distance(finish(sums, Σ m), target), which the tiled objective finishes from its tiles' sums.
"""

from __future__ import annotations

from ..settings import OPTIONS, STYLE_LOSSES
from .base import StyleStatistic
from .gram import GramStatistic
from .masks import layer_masks, mask_tensor
from .sliced import SampleTarget, SlicedWassersteinStatistic
from .wasserstein2 import GaussianTarget, Wasserstein2Statistic

# One instance per choice of nst_core.settings.STYLE_LOSSES (the choice list is defined there, once).
STATISTICS: dict[str, StyleStatistic] = {
    stat.name: stat for stat in (GramStatistic(), Wasserstein2Statistic(), SlicedWassersteinStatistic())
}
assert tuple(STATISTICS) == STYLE_LOSSES, "nst_core.settings.STYLE_LOSSES and the statistics must match"
DEFAULT_STYLE_LOSS = OPTIONS["style_loss"].default


def get_statistic(name: str) -> StyleStatistic:
    """The statistic called `name`, or a ValueError listing the choices."""
    try:
        return STATISTICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown style loss {name!r}; use one of {', '.join(STATISTICS)}") from None


__all__ = ["DEFAULT_STYLE_LOSS", "STATISTICS", "STYLE_LOSSES", "GaussianTarget", "GramStatistic",
           "SampleTarget", "SlicedWassersteinStatistic", "StyleStatistic", "Wasserstein2Statistic",
           "get_statistic", "layer_masks", "mask_tensor"]
