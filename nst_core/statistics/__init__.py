"""Style statistics behind one interface (StyleStatistic: target, blend, loss), each accepting masks.

    from nst_core.statistics import STATISTICS, DEFAULT_STYLE_LOSS, layer_masks
    stat = STATISTICS["sliced_wasserstein"]
    target = stat.target(style_features, style_mask)          # [1,N,H,W], mask [1,1,H,W] or None
    loss = stat.loss(output_features, target, output_mask, generator)
"""

from __future__ import annotations

from .base import StyleStatistic
from .gram import GramStatistic
from .masks import layer_masks, mask_tensor
from .sliced import SampleTarget, SlicedWassersteinStatistic
from .wasserstein2 import GaussianTarget, Wasserstein2Statistic

# The choice list of style losses, defined once (nodes and the CLI read it from here).
STATISTICS: dict[str, StyleStatistic] = {
    stat.name: stat for stat in (GramStatistic(), Wasserstein2Statistic(), SlicedWassersteinStatistic())
}
STYLE_LOSSES = tuple(STATISTICS)
DEFAULT_STYLE_LOSS = "gram"


def get_statistic(name: str) -> StyleStatistic:
    """The statistic called `name`, or a ValueError listing the choices."""
    try:
        return STATISTICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown style loss {name!r}; use one of {', '.join(STATISTICS)}") from None


__all__ = ["DEFAULT_STYLE_LOSS", "STATISTICS", "STYLE_LOSSES", "GaussianTarget", "GramStatistic",
           "SampleTarget", "SlicedWassersteinStatistic", "StyleStatistic", "Wasserstein2Statistic",
           "get_statistic", "layer_masks", "mask_tensor"]
