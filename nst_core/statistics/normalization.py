"""Per-layer scales that make one style weight mean about the same for each statistic (Gram: 1).

RAW_LOSS_SCALES: per statistic and layer, the geometric mean of loss_gram / loss_stat between a photo and a
painting on the default normalized Caffe VGG-19, four bundled pairs at 128 / 256 / 512 px
(nst_core.statistics.calibration re-measures; the table and each layer's spread are in
nst_core/bench/README.md). W2 grows with the trace of the covariance (~channels x variance), hence its small
scales; sliced W averages unit projections. Other weights (VGG-16, unnormalized) are not calibrated.
"""

from __future__ import annotations

import math

from ..layers import block_of

# layer: (wasserstein2, sliced_wasserstein)
RAW_LOSS_SCALES: dict[str, tuple[float, float]] = {
    "relu1_1": (7.04e-3, 0.545),
    "relu2_1": (2.18e-3, 0.462),
    "relu3_1": (8.84e-4, 0.562),
    "relu4_1": (4.86e-4, 0.587),
    "relu5_1": (4.35e-4, 0.768),
    # the paper's layers (raw conv outputs): the Gram loss varies far more between images there (spread 3-5x)
    "conv1_1": (1.33e-2, 0.963),
    "conv2_1": (3.27e-1, 40.2),
    "conv3_1": (7.30e-2, 22.8),
    "conv4_1": (2.82e-2, 18.1),
    "conv5_1": (5.96e-2, 55.0),
}
STATISTIC_COLUMNS = ("wasserstein2", "sliced_wasserstein")
# Without a layer name: the geometric mean over the default style layers relu1_1..relu5_1.
_DEFAULT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _geometric_mean(values) -> float:
    values = list(values)
    return math.prod(values) ** (1.0 / len(values))


# Under weighting "normalized" (nst_core.objective) each loss is divided by its target's energy (its loss
# against an all-zero output) and multiplied by this factor, so a photo's relative loss to a painting matches
# the Gram's ‖Ĝ−Â‖²/‖Â‖²: the geometric mean of gram_rel / stat_rel over five bundled pairs at 128 and 256 px.
RELATIVE_LOSS_SCALES: dict[str, tuple[float, float]] = {
    "relu1_1": (2.15, 2.67),
    "relu2_1": (2.02, 3.25),
    "relu3_1": (2.17, 5.16),
    "relu4_1": (1.89, 4.48),
    "relu5_1": (2.50, 7.59),
}


def relative_loss_scale(statistic: str, layer: str | None) -> float:
    """The factor of `statistic`'s relative loss at `layer` under weighting "normalized" (gram: 1). Other
    layers take their block's relu*_1 (conv4_2 -> relu4_1: not calibrated); None the geometric mean."""
    if statistic == "gram":
        return 1.0
    column = STATISTIC_COLUMNS.index(statistic)
    if layer is None:
        return _geometric_mean(RELATIVE_LOSS_SCALES[name][column] for name in _DEFAULT_LAYERS)
    if layer not in RELATIVE_LOSS_SCALES:
        layer = f"relu{min(max(block_of(layer), 1), 5)}_1"
    return RELATIVE_LOSS_SCALES[layer][column]


def raw_loss_scale(statistic: str, layer: str | None) -> float:
    """The scale of `statistic` at `layer`. A layer not measured takes its block's first layer of the
    same kind (relu4_2 -> relu4_1, conv4_2 -> conv4_1, pool3 -> relu3_1); None takes the mean scale."""
    column = STATISTIC_COLUMNS.index(statistic)
    if layer is None:
        return _geometric_mean(RAW_LOSS_SCALES[name][column] for name in _DEFAULT_LAYERS)
    if layer not in RAW_LOSS_SCALES:
        kind = "conv" if layer.startswith("conv") else "relu"
        layer = f"{kind}{min(max(block_of(layer), 1), 5)}_1"
    return RAW_LOSS_SCALES[layer][column]


# Under weighting "relative" every statistic's style term starts at the same value for the photo (its units
# 1/d_l), but W2 then pulls further than the Gram at one strength; RELATIVE_STRENGTHS (Gram: 1) sets W2's
# look, and BLOCK_EMPHASIS weighs its first two blocks (colour, fine strokes) 4x and 2x the deeper ones, a
# milder form of the peer's 256/64/16/4/1, so that the painting's palette and brightness reach a dark photo
# (nst_core/bench/README.md, "Wasserstein-2 as the default statistic").
# The Gram keeps Gatys et al.'s equal layers: it is the paper's statistic.
RELATIVE_STRENGTHS: dict[str, float] = {"gram": 1.0, "wasserstein2": 0.66, "sliced_wasserstein": 1.0}
BLOCK_EMPHASIS: dict[str, dict[int, float]] = {"wasserstein2": {1: 4.0, 2: 2.0}}
# the style layer weights' help, for the node's tooltip and the CLIs' --help (the emphasis read from above)
STYLE_LAYER_WEIGHTS_HELP = (
    "comma-separated weight per style layer (default: equal, 1/number of layers; under weighting relative, "
    + "; ".join(f"{statistic} also weighs "
                + ", ".join(f"block {block} {factor:g}x" for block, factor in blocks.items())
                for statistic, blocks in BLOCK_EMPHASIS.items()) + ")")


def relative_strength(statistic: str, layer: str) -> float:
    """The factor of `statistic`'s style term at `layer` under weighting "relative" (gram: 1)."""
    return RELATIVE_STRENGTHS[statistic] * BLOCK_EMPHASIS.get(statistic, {}).get(block_of(layer), 1.0)
