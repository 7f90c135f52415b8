"""Per-layer scales that make the same style weight mean about the same for each statistic.

The Gram loss is the reference (scale 1). For each other statistic and layer, the scale is the
geometric mean of loss_gram / loss_stat between a photo and a painting, measured on the default
normalized Caffe VGG-19 (nst_core.load_vgg(device="cpu")), both images with a long side of 128, 256
and 512 px, over four pairs of nst_core/examples: chelsea/starry_night, astronaut/composition_vii,
coffee/the_scream, chelsea/shipwreck (12 measurements per layer; nst_core.statistics.calibration
re-measures). Unscaled per-layer losses, chelsea -> starry_night at 256 px:

    layer     gram     wasserstein2   sliced_wasserstein
    relu1_1   5.47        334           3.53
    relu2_1   0.848       326           1.98
    relu3_1   0.593       681           1.33
    relu4_1   0.767      1441           1.37
    relu5_1   1.50       4825           1.81

After scaling, a layer's photo-to-painting loss is within the "spread" factor below of the Gram's for
every one of the 12 measurements (e.g. relu4_1 W2: 0.64x..1.53x). W2 grows with the trace of the
covariance (~channels x variance), hence its small scales; sliced W averages unit projections.
The scales hold for the default network; other weights (VGG-16, unnormalized) are not calibrated.
"""

from __future__ import annotations

from ..layers import block_of

#                   layer: (wasserstein2, sliced_wasserstein)   spread (max/mean, mean/min) W2 | SW
RAW_LOSS_SCALES: dict[str, tuple[float, float]] = {
    "relu1_1": (7.04e-3, 0.545),     # x2.44/x1.77 | x3.07/x2.02
    "relu2_1": (2.18e-3, 0.462),     # x1.77/x1.44 | x1.96/x1.48
    "relu3_1": (8.84e-4, 0.562),     # x2.16/x2.23 | x1.85/x1.87
    "relu4_1": (4.86e-4, 0.587),     # x1.53/x1.57 | x1.43/x1.43
    "relu5_1": (4.35e-4, 0.768),     # x2.68/x2.49 | x2.25/x1.86
    # the paper's layers (raw conv outputs): the Gram loss varies far more between images there
    "conv1_1": (1.33e-2, 0.963),     # x4.36/x3.49 | x4.60/x3.55
    "conv2_1": (3.27e-1, 40.2),      # x3.77/x4.63 | x3.98/x4.91
    "conv3_1": (7.30e-2, 22.8),      # x2.77/x3.49 | x2.25/x2.79
    "conv4_1": (2.82e-2, 18.1),      # x4.14/x2.97 | x3.44/x3.08
    "conv5_1": (5.96e-2, 55.0),      # x2.80/x4.62 | x2.50/x3.51
}
STATISTIC_COLUMNS = ("wasserstein2", "sliced_wasserstein")
# Without a layer name: the geometric mean over the default style layers relu1_1..relu5_1.
_DEFAULT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _geometric_mean(values) -> float:
    values = list(values)
    product = 1.0
    for v in values:
        product *= v
    return product ** (1.0 / len(values))


# Under weighting "normalized" (nst_core.objective) each statistic's loss is divided by its target's
# energy (its loss against an all-zero output) and multiplied by this per-layer factor, so a photo's
# relative loss to a painting matches the Gram's ‖Ĝ−Â‖²/‖Â‖² and one strength means about the same for each
# statistic. Measured as RAW_LOSS_SCALES above, but on the relative losses: geometric mean of
# gram_rel / stat_rel over 5 pairs (chelsea/starry_night, astronaut/composition_vii, coffee/the_scream,
# chelsea/shipwreck, astronaut/the_scream) x 128 and 256 px; spread = (min, max) / geometric mean.
#                   layer: (wasserstein2, sliced_wasserstein)   spread W2 | SW
RELATIVE_LOSS_SCALES: dict[str, tuple[float, float]] = {
    "relu1_1": (2.15, 2.67),         # 0.54-2.70 | 0.62-2.47
    "relu2_1": (2.02, 3.25),         # 0.70-2.06 | 0.69-1.54
    "relu3_1": (2.17, 5.16),         # 0.72-1.52 | 0.59-1.32
    "relu4_1": (1.89, 4.48),         # 0.61-1.53 | 0.64-1.58
    "relu5_1": (2.50, 7.59),         # 0.49-1.51 | 0.78-1.17
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
