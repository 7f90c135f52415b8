"""Targets of large images, tile by tile: content features and style statistics without one whole forward.

A 4096x4096 image does not fit one forward: relu1_1 alone is 64 x 16.7 M floats (4.3 GB), and the
default style layers' outputs together 8.7 GB. The targets are computed once, without gradients, from
tiles with the tiled objective's exact geometry (nst_core.tiling: a halo of the deepest layer's reach,
crops aligned to the network's stride), so each layer's core is the whole image's feature there:
  - `extract_features` assembles the requested layers' full maps from the tiles' cores (the content
    target: relu4_2 of a 4096 px image is 537 MB);
  - `extract_targets` adds an additive statistic's sums over the cores (the Gram's Σ m f fᵀ, W2's
    moments; masks included) and finishes its target from the whole image's, never holding a full-size map;
  - `extract_losses` adds objective terms' sums the same way and finishes their losses (the photo's own
    distance to the painting at a large level's size, nst_core.photo_distance).
All run untiled when the whole no-grad forward fits FORWARD_BYTES.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

import torch

from .memory import FLOAT, SAFETY, layer_outputs
from .errors import ImageError
from .statistics.base import total_weight
from .tiling import MAX_TILES_PER_AXIS, axis_options, halo_and_stride, layer_core, plan_tiles, reach

# Above this estimated peak the targets' forward is tiled. 1 GiB keeps target building inside the
# 3 GiB that a 2048 px run is allowed (a whole 2048x2048 no-grad forward to relu5_1 needs ~4 GB).
FORWARD_BYTES = 2 ** 30


def forward_bytes(arch: str, size, layers, keep: bool = True) -> int:
    """Estimated peak of one no-grad forward at `size`: two layer outputs alive at once, plus the
    requested layers' outputs when they are kept (`keep`)."""
    largest, counts = layer_outputs(arch, size, layers)
    kept = sum(counts.values()) if keep else 0
    return int(SAFETY * (2 * largest + kept) * FLOAT)


def fits_one_forward(arch: str, size, layers) -> bool:
    """True when the whole no-grad forward at `size` fits FORWARD_BYTES (the targets are not tiled)."""
    return forward_bytes(arch, tuple(int(s) for s in size), list(layers)) <= FORWARD_BYTES


def forward_tile(arch: str, size, layers, budget: int, *, keep_full: bool) -> tuple[int, int] | None:
    """The tile (th, tw) whose no-grad forwards fit `budget` with the least forwarded area; `size` when
    the whole forward fits; None when no tile does. `keep_full`: the full-size maps are assembled too."""
    size = tuple(int(s) for s in size)
    if forward_bytes(arch, size, layers, keep_full) <= budget:
        return size
    halo, stride = halo_and_stride(arch, layers)
    assembled = forward_bytes(arch, size, layers) - forward_bytes(arch, size, layers, keep=False) \
        if keep_full else 0
    fitting = [(sum_h * sum_w, (th, tw)) for th, crop_h, sum_h in axis_options(size[0], halo, stride)
               for tw, crop_w, sum_w in axis_options(size[1], halo, stride)
               if forward_bytes(arch, (crop_h, crop_w), layers) + assembled <= budget]
    return min(fitting, key=lambda option: option[0])[1] if fitting else None


# The hook of `reporting_tiles`, None elsewhere: the targets of a 4096 px image take minutes on a CPU, so
# progress and Cancel must not wait for them.
_ON_TARGET_TILE: ContextVar[Callable | None] = ContextVar("on_target_tile", default=None)


@contextmanager
def reporting_tiles(hook: Callable[[tuple[int, int], int, int], None] | None):
    """Within this block, tiled target forwards call `hook(size, tile, tiles)` before each tile."""
    token = _ON_TARGET_TILE.set(hook)
    try:
        yield
    finally:
        _ON_TARGET_TILE.reset(token)


def _tiled_forward(vgg, x: torch.Tensor, layers, tile, on_core: Callable) -> None:
    """Forward `x` tile by tile (no grad); `on_core(name, core features, (y0, y1, x0, x1) at that layer)`
    for every requested layer of every tile."""
    arch, size = vgg.arch, tuple(x.shape[-2:])
    halo, stride = halo_and_stride(arch, layers)
    strides = {name: reach(arch, name).stride for name in layers}
    tiles = plan_tiles(size, tile, halo, stride)
    hook = _ON_TARGET_TILE.get()
    for t in tiles:
        if hook is not None:
            hook(size, t.index + 1, len(tiles))
        cy0, cy1, cx0, cx1 = t.crop

        def on_feature(name, h, t=t):
            on_core(name, *layer_core(h, t, strides[name]))

        with torch.no_grad():
            vgg.features(x[..., cy0:cy1, cx0:cx1], layers, on_feature)


def _tile_or_whole(vgg, size, layers, tile, keep_full: bool):
    if tile is not None:
        return tuple(tile) if not isinstance(tile, int) else (tile, tile)
    chosen = forward_tile(vgg.arch, size, layers, FORWARD_BYTES, keep_full=keep_full)
    # nothing fits the target budget: the smallest tiles the search allows, as the best that can be done
    return chosen or tuple(max(16, math.ceil(s / MAX_TILES_PER_AXIS)) for s in size)


def extract_features(vgg, x: torch.Tensor, layers, tile=None) -> dict[str, torch.Tensor]:
    """{layer: features of x [1,3,H,W] at that layer}, detached: one forward when it fits FORWARD_BYTES,
    else assembled from tiles (`tile`: force a core size, for tests)."""
    layers = list(layers)
    size = tuple(x.shape[-2:])
    tile = _tile_or_whole(vgg, size, layers, tile, keep_full=True)
    if tile[0] >= size[0] and tile[1] >= size[1]:
        with torch.no_grad():
            return {k: v.detach() for k, v in vgg.features(x, layers).items()}
    out: dict[str, torch.Tensor] = {}

    def on_core(name, core, where):
        gy0, gy1, gx0, gx1 = where
        if name not in out:
            s = reach(vgg.arch, name).stride
            out[name] = core.new_empty((core.shape[0], core.shape[1], size[0] // s, size[1] // s))
        out[name][..., gy0:gy1, gx0:gx1] = core

    _tiled_forward(vgg, x, layers, tile, on_core)
    return {name: out[name] for name in layers}


def extract_targets(vgg, x: torch.Tensor, layers, statistic, masks=None, tile=None) -> dict:
    """{layer: `statistic`'s target} of x (an additive statistic: its sums over positions, m = 1 without a
    mask; `masks` {layer: [1,1,h,w] or None} at each layer's resolution), as statistic.target, from tiles."""
    layers = list(layers)
    masks = masks or {}
    size = tuple(x.shape[-2:])
    tile = _tile_or_whole(vgg, size, layers, tile, keep_full=False)
    sums: dict[str, list] = {}

    def on_core(name, core, where):
        gy0, gy1, gx0, gx1 = where
        mask = masks.get(name)
        weights = None if mask is None else \
            mask[..., gy0:gy1, gx0:gx1].to(core.device, torch.float32).reshape(-1)
        total, count = sums.get(name, (0, 0))
        sums[name] = (total + statistic.sums(core, weights), count + total_weight(core, weights))

    _tiled_forward(vgg, x, layers, tile, on_core)
    if any(not bool(sums[name][1] > 0) for name in layers):
        raise ImageError("the mask is empty at this layer (all zero): it selects no pixel to match")
    return {name: statistic.target_from(statistic.finish(*sums[name])) for name in layers}


def extract_losses(vgg, x: torch.Tensor, terms: dict, generator=None, tile=None) -> dict[str, list[float]]:
    """{layer: [each term's loss of x]} for `terms` {layer: [nst_core.objective.Term]}, no grad: one
    forward when it fits FORWARD_BYTES (or a term is not additive: it needs the whole map), else each term
    finished from its sums over the tiles' cores (Term.sums, Term.loss_of)."""
    layers = list(terms)
    size = tuple(x.shape[-2:])
    tile = _tile_or_whole(vgg, size, layers, tile, keep_full=False)
    whole = tile[0] >= size[0] and tile[1] >= size[1]
    if whole or not all(term.additive for layer_terms in terms.values() for term in layer_terms):
        losses: dict[str, list[float]] = {}

        def on_feature(name, h):
            losses[name] = [float(term.loss(h, generator)) for term in terms[name]]

        with torch.no_grad():
            vgg.features(x, layers, on_feature)
        return losses
    sums: dict[tuple[str, int], tuple] = {}

    def on_core(name, core, where):
        for index, term in enumerate(terms[name]):
            total, count = sums.get((name, index), (0, 0))
            sums[name, index] = (total + term.sums(core, where), count + term.count(where))

    _tiled_forward(vgg, x, layers, tile, on_core)
    return {name: [float(term.loss_of(*sums[name, index])) for index, term in enumerate(terms[name])]
            for name in layers}


__all__ = ["FORWARD_BYTES", "extract_features", "extract_losses", "extract_targets", "fits_one_forward",
           "forward_bytes", "forward_tile", "reporting_tiles"]
