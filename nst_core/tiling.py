"""An exact tiled objective: the loss and pixel gradient of an Objective, evaluated tile by tile.

Why it is exact. A Gram matrix is a sum over positions, so the global Grams are the sum of the tiles' core
sums; the content loss is a sum over positions too. Pass 1 (no grad) forwards each tile (its core plus a
halo of real pixels), crops every requested layer to the tile's core at that layer's resolution and adds
up Σ F Fᵀ and the content terms. Pass 2 forwards each tile with grad and back-propagates a surrogate whose
gradient w.r.t. the core features is the true one with the global (G − A) held fixed:
dE_l/dF = (G − A) F / (N² M) (nst_core.losses), so the surrogate's backward is D_l F with
D_l = β·w_l·(G_l − A_l) / (N_l² M_l), plus α·w·(F − P) from the content term. Each core feature is
computed by exactly one tile, so the sum of the tiles' gradients w.r.t. their whole input crops is the
full image's gradient. The features themselves are exact when:
  - the halo is at least the deepest requested layer's reach (receptive field radius, `reach`), so a
    core unit sees only real pixels of its crop, and zero padding only where the image itself ends;
  - every crop starts at a multiple of the network's total stride at that depth, so the 2x2 pooling
    windows (max or avg, floor mode) pair the same pixels as in the whole image.
Nothing is approximated, so no seam can appear; only the float summation order differs (measured with
the real VGG-19 and the default layers: loss equal to ~1e-7 relative, gradient to 4e-7 at 512 px in
2x2 tiles, 6e-7 at 87x131 px in 15 tiles).

Cost. Pass 1 is an extra forward: the last tile's pass-1 forward is run with grad and its graph kept
until the Grams are complete, so a T-tile evaluation costs (2T − 1) tile forwards + T tile backwards
(one tile = the untiled cost), plus the halos' share of each crop. With the whole network in tiles that is
at least (2F + B)/(F + B) ≈ 1.46x an untiled step even without halos, and relu5_1's 80 px halo makes it
2.2x at 512 px (2x2 tiles).

The stem. Most of the memory is in the first blocks (full and half resolution: 64-128 channels per
pixel), most of the reach in the last ones. So the tiles may forward only the network's stem, the layers
up to a pooling layer (`stem`, e.g. "pool2": halo 8 px instead of 80), and stitch their cores of its
output into the whole image's map (exact for the same two reasons as above); the layers behind it, the
trunk, run once on that map, whole, with grad (a quarter of the pixels behind pool1, a sixteenth behind
pool2). The trunk's loss gives its gradient w.r.t. the map, and pass 2 back-propagates each tile's core of
it (with the stem layers' own terms) to the pixels. Cost: the stem's share of the multiply-adds (VGG-19 to
relu5_1: 11 % up to pool1, 26 % to pool2, 62 % to pool3) is forwarded twice with small halos, the rest once:
measured 1.10x / 1.14x / 1.38x an untiled step at 512 px and 1.16x / 1.15x / 1.21x at 1024 px (2x2 tiles
to pool1 / pool2 / pool3; `tiling_cost` models it). Memory: the trunk's graph (activation_bytes behind the
stem) and the map with its gradient are whole-image (`trunk_bytes`), so a tight budget takes a deeper stem
or none; `choose_tile` takes the cheapest (stem, tile) that fits. The trunk may use any style statistic.

Memory. A tiled evaluation holds one tile's graph (activation_bytes of the crop) plus one no-grad
forward of another tile and a few image-sized buffers. Measured (CPU, default layers, RSS growth during
one loss + gradient): untiled 1024² +1.66 GiB; tiled 1024² in 16 tiles of 256 px +0.34 GiB; tiled 2048²
in 16 tiles of 512 px +0.99 GiB. (memory.activation_bytes estimates 1.87 GiB at 1024², x SAFETY 2.33.) The L-BFGS history does not tile: it is
(2·history + 6) image-sized float32 vectors, (2·100 + 6)·12 B = 2472 B per pixel with the default 100
pairs, against ~2.3 KB per pixel for the untiled activations of the default layers (up to relu5_1,
with memory.SAFETY). So once tiled, the history is the limit: it alone takes 2.4 GiB at 1024², 9.7 GiB at
2048², 38.6 GiB at 4096², and fills a 3 GiB budget at ~1.3 MP (1140² px), a 22 GiB one at ~9.5 MP
(3090² px). `choose_tile` and `needs_tiling` subtract it from the budget (history_size=...); the run plan
(nst_core.plan.fit_memory) keeps fewer pairs at large sizes (each pair costs 24 B per pixel) and picks
the tile per level; the loop builds a TiledObjective for the levels it tiles.

Per-pixel cost of the whole network in tiles, measured side by side (nst_core.bench.scale, before the
stem): 2x2 tiles cost 2.6x the untiled step at 512 px (the 80 px halo makes each 256 px core a 336 px
crop: 1.72x the area, and pass 1 adds T − 1 forwards) and 2.0x at 1024 px (512 px cores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from .errors import ImageError
from .layers import layer_names
from .losses import content_loss, tv_loss
from .memory import FLOAT, SAFETY, activation_bytes, available_bytes, conv_macs, feature_shape, layer_outputs
from .settings import LBFGS_HISTORY, OptionError

# image-sized float32 buffers a tiled evaluation keeps besides the tile's activations: the pixels, the
# gradient accumulator, the gradient saved for backward, the TV term's autograd (3), the crop and its grad
IMAGE_BUFFERS = 8
# style statistics that are sums over positions, so that the tiles' sums add up to the image's
TILEABLE_STATISTICS = ("gram",)
# at most this many tiles per axis are considered by choose_tile (tiles of 1/64 of the side are all halo)
MAX_TILES_PER_AXIS = 64


# ---------------------------------------------------------------------------------------------- geometry

@dataclass(frozen=True)
class Reach:
    """How far a unit of `layer` sees, in input pixels: a unit at index i depends on the pixels
    [i·stride − before, i·stride + stride − 1 + after] (zero padding outside the image)."""
    layer: str
    stride: int
    before: int
    after: int

    @property
    def radius(self) -> int:
        return max(self.before, self.after)


def reach(arch: str, layer: str) -> Reach:
    """The reach of `layer` from the architecture: a 3x3 conv (padding 1) widens the window by one unit of
    the current stride on each side; a 2x2/2 pool widens it by one unit on the far side, then doubles
    the stride. (VGG-16 conv5_3: 196 px, the published receptive field; VGG-19 relu5_1: 156 px.)"""
    names = layer_names(arch)
    if layer not in names:
        raise OptionError("layers", f"unknown layer {layer!r} for {arch}")
    stride, start, end = 1, 0, 0            # window of unit 0: [start, end] in input pixels
    for name in names:
        if name.startswith("conv"):
            start, end = start - stride, end + stride
        elif name.startswith("pool"):
            end += stride
            stride *= 2
        if name == layer:
            return Reach(layer, stride, -start, end - (stride - 1))
    raise AssertionError("unreachable")


def halo_and_stride(arch: str, layers) -> tuple[int, int]:
    """(smallest exact halo, crop alignment) in pixels for `layers`: the deepest reach rounded up to a
    multiple of the largest stride, so that a crop starting a halo before an aligned core is aligned."""
    reaches = [reach(arch, name) for name in layers]
    stride = max(r.stride for r in reaches)
    radius = max(r.radius for r in reaches)
    return stride * math.ceil(radius / stride), stride


def stem_candidates(arch: str, layers) -> list[str | None]:
    """The stems a tiled evaluation of `layers` can use: None (the whole network tiled), then each pooling
    layer before the deepest of `layers` (tiles up to it, the rest on the whole stitched map)."""
    names = layer_names(arch)
    deepest = max(names.index(name) for name in layers)
    return [None] + [name for name in names[:deepest] if name.startswith("pool")]


def stem_layers(arch: str, layers, stem: str | None) -> list[str]:
    """The layers the tiles forward: `layers` up to `stem` plus the stem itself (all of them: None)."""
    if stem is None:
        return list(layers)
    names = layer_names(arch)
    if stem not in names or not stem.startswith("pool"):
        raise OptionError("stem", f"the stem must be a pooling layer of {arch}, got {stem!r}")
    end = names.index(stem)
    return [name for name in layers if names.index(name) < end] + [stem]


def split(length: int, tile: int, stride: int) -> list[tuple[int, int]]:
    """Cores [start, end) covering 0..length: ceil(length / tile) balanced pieces whose inner boundaries
    are multiples of `stride`."""
    count = max(1, math.ceil(length / tile))
    bounds = [0]
    for k in range(1, count):
        b = stride * round(k * length / count / stride)
        if bounds[-1] < b < length:
            bounds.append(b)
    bounds.append(length)
    return list(zip(bounds[:-1], bounds[1:]))


@dataclass(frozen=True)
class Tile:
    """One tile: its core (rows y0:y1, cols x0:x1) and the crop forwarded (the core plus the halo,
    clipped to the image), in input pixels."""
    index: int
    core: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]

    @property
    def crop_size(self) -> tuple[int, int]:
        y0, y1, x0, x1 = self.crop
        return y1 - y0, x1 - x0


def _crops(spans, halo: int, length: int) -> list[tuple[int, int]]:
    return [(max(0, a - halo), min(length, b + halo)) for a, b in spans]


def plan_tiles(size, tile, halo: int, stride: int) -> list[Tile]:
    """The tiles of an image of `size` (H, W) with cores of at most about `tile` (th, tw) px, row-major."""
    (h, w), (th, tw) = size, tile
    rows, cols = split(h, th, stride), split(w, tw, stride)
    row_crops, col_crops = _crops(rows, halo, h), _crops(cols, halo, w)
    tiles = []
    for (ry, cy) in zip(rows, row_crops):
        for (rx, cx) in zip(cols, col_crops):
            tiles.append(Tile(len(tiles), (*ry, *rx), (*cy, *cx)))
    return tiles


def _pair(tile, name: str) -> tuple[int, int]:
    if isinstance(tile, int):
        tile = (tile, tile)
    try:
        th, tw = (int(t) for t in tile)
    except (TypeError, ValueError):
        raise OptionError(name, f"give one tile side or (height, width) in pixels, got {tile!r}") from None
    if th < 1 or tw < 1:
        raise OptionError(name, f"tile sides must be positive, got {th}x{tw}")
    return th, tw


# ------------------------------------------------------------------------------------------------ memory

def _arch(vgg) -> str:
    return vgg if isinstance(vgg, str) else vgg.arch


def _largest(arch: str, size, layers) -> int:
    """Bytes of the largest layer output up to the deepest of `layers` (a no-grad forward holds ~2)."""
    return layer_outputs(arch, size, layers)[0] * FLOAT


def optimizer_bytes(size, history_size: int = LBFGS_HISTORY) -> int:
    """L-BFGS state: (2·history_size + 6) image-sized float32 vectors, as nst_core.memory counts it."""
    h, w = size
    return (2 * history_size + 6) * 3 * h * w * FLOAT if history_size else 0


def untiled_bytes(vgg, size, layers) -> int:
    """Estimated peak of one untiled loss + gradient (no optimizer state)."""
    h, w = size
    return int(SAFETY * activation_bytes(_arch(vgg), size, layers)) + IMAGE_BUFFERS * 3 * h * w * FLOAT


def trunk_bytes(arch: str, size, layers, stem: str | None) -> int:
    """The whole-image part of a tiled evaluation with `stem`: the trunk's graph (activation_bytes behind
    the stem) plus the stitched map and its gradient; 0 without a stem."""
    if stem is None:
        return 0
    h, w, channels = feature_shape(arch, size, stem)
    return int(SAFETY * activation_bytes(arch, size, layers, after=stem)) + 2 * channels * h * w * FLOAT


def _graph_bytes(arch: str, crop, layers, tiles: int) -> int:
    """One crop's graph, plus a no-grad forward of another crop beside it when there are several."""
    graph = activation_bytes(arch, crop, layers)
    if tiles > 1:
        graph += 2 * _largest(arch, crop, layers)
    return int(SAFETY * graph)


def tiled_bytes(vgg, size, layers, tile, stem: str | None = None, halo: int | None = None) -> int:
    """Estimated peak of one tiled loss + gradient (no optimizer state): the largest crop's graph, a
    no-grad forward of another crop beside it, the trunk behind `stem` (`trunk_bytes`) and the
    image-sized buffers."""
    arch, (h, w) = _arch(vgg), size
    front = stem_layers(arch, layers, stem)
    need, stride = halo_and_stride(arch, front)
    halo = need if halo is None else halo
    tiles = plan_tiles(size, _pair(tile, "tile"), halo, stride)
    crop = (max(t.crop_size[0] for t in tiles), max(t.crop_size[1] for t in tiles))
    return (_graph_bytes(arch, crop, front, len(tiles)) + trunk_bytes(arch, size, layers, stem)
            + IMAGE_BUFFERS * 3 * h * w * FLOAT)


def needs_tiling(vgg, size, layers, budget_bytes: int, *, history_size: int = LBFGS_HISTORY) -> bool:
    """True when one untiled step at `size` (H, W) (activations + L-BFGS state) exceeds the budget."""
    size = tuple(int(s) for s in size)
    return untiled_bytes(vgg, size, layers) + optimizer_bytes(size, history_size) > budget_bytes


def _axis_options(length: int, halo: int, stride: int) -> list[tuple[int, int, int]]:
    """(tile, largest crop, sum of crops) for each distinct tiling of one axis, fewest tiles first."""
    seen, options = set(), []
    for count in range(1, min(MAX_TILES_PER_AXIS, math.ceil(length / stride)) + 1):
        tile = stride * math.ceil(math.ceil(length / count) / stride)
        spans = split(length, tile, stride)
        if len(spans) in seen:
            continue
        seen.add(len(spans))
        crops = _crops(spans, halo, length)
        options.append((tile, max(b - a for a, b in crops), sum(b - a for a, b in crops)))
    return options


class Tiling(NamedTuple):
    """A tiled evaluation's shape: the tiles' core (th, tw) px and the stem they forward (None: the whole
    network; see TiledObjective)."""
    tile: tuple[int, int]
    stem: str | None = None


def tiling_cost(arch: str, size, layers, tile, stem: str | None, halo: int | None = None) -> float:
    """Multiply-adds of one tiled loss + gradient, in units of one untiled forward (an untiled step costs
    ~2: forward and input-gradient backward). The tiles forward the stem twice (pass 1, pass 2; the last
    tile once) and back-propagate it once, each crop with its halo; the trunk runs forward and backward
    once on the whole map. Measured against it (512 px, 2x2 tiles, VGG-19, default layers, CPU): stem pool2
    1.16x the untiled step (model 1.12x), pool3 1.45x (1.40x), the whole network 2.19x (2.37x)."""
    front = stem_layers(arch, layers, stem)
    need, stride = halo_and_stride(arch, front)
    tiles = plan_tiles(size, _pair(tile, "tile"), need if halo is None else halo, stride)
    area = [t.crop_size[0] * t.crop_size[1] for t in tiles]
    h, w = size
    total = conv_macs(arch, layers)
    stem_share = conv_macs(arch, front) / total
    trunk_share = 0.0 if stem is None else conv_macs(arch, layers, after=stem) / total
    return (stem_share * (3 * sum(area) - area[-1]) + 2 * trunk_share * h * w) / (h * w)


def choose_tile(vgg, size, layers, budget_bytes: int, *, history_size: int = LBFGS_HISTORY,
                halo: int | None = None, stems=None) -> Tiling | None:
    """The tiling (tile (th, tw) px, stem) whose evaluation fits `budget_bytes` with the least computation.

    The budget covers the whole step: the L-BFGS state (`optimizer_bytes`, history_size=0 for Adam/SGD)
    is taken off first. Returns Tiling(size) when the untiled step fits, None when no tiling fits (the
    history alone may exceed the budget: see the module's docstring). Among the tilings that fit (every
    stem of `stems`, default `stem_candidates`, with every distinct tile grid), the one of least
    `tiling_cost` wins: the deepest stem whose trunk fits, with the largest tiles along the cheaper axis.
    `halo`: a larger halo than each stem needs (as TiledObjective takes it).
    """
    arch, size = _arch(vgg), tuple(int(s) for s in size)
    room = budget_bytes - optimizer_bytes(size, history_size)
    if untiled_bytes(arch, size, layers) <= room:
        return Tiling(size)
    buffers = IMAGE_BUFFERS * 3 * size[0] * size[1] * FLOAT
    total = conv_macs(arch, layers)
    best = None
    for stem in (stem_candidates(arch, layers) if stems is None else stems):
        trunk = trunk_bytes(arch, size, layers, stem)
        if trunk + buffers > room:
            continue
        front = stem_layers(arch, layers, stem)
        need, stride = halo_and_stride(arch, front)
        pad = need if halo is None else max(need, stride * math.ceil(int(halo) / stride))
        stem_share = conv_macs(arch, front) / total
        trunk_cost = 0.0 if stem is None else 2 * conv_macs(arch, layers, after=stem) / total * size[0] * size[1]
        for th, crop_h, sum_h in _axis_options(size[0], pad, stride):
            for tw, crop_w, sum_w in _axis_options(size[1], pad, stride):
                if (th, tw) == size:
                    continue
                tiles = math.ceil(size[0] / th) * math.ceil(size[1] / tw)
                if _graph_bytes(arch, (crop_h, crop_w), front, tiles) + trunk + buffers > room:
                    continue
                cost = stem_share * (3 * sum_h * sum_w - crop_h * crop_w) + trunk_cost
                if best is None or cost < best[0]:
                    best = (cost, Tiling((th, tw), stem))
    return None if best is None else best[1]


# ------------------------------------------------------------------------------------------- evaluation

def _flat_positions(features: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """[B,N,h,w] (any strides, e.g. a crop of a channels-last map) -> ([B,h·w,N] float32, channels_last)."""
    b, n, h, w = features.shape
    wide = features if features.dtype == torch.float64 else features.float()
    if features.stride(1) == 1:
        return wide.permute(0, 2, 3, 1).reshape(b, h * w, n), True
    return wide.reshape(b, n, h * w).transpose(1, 2), False


def _gram_sum(features: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Σ over positions of m_i f_i f_iᵀ (m = 1 without weights), [B,N,N] in float32."""
    flat, _ = _flat_positions(features)
    if weights is None:
        return torch.bmm(flat.transpose(1, 2), flat)
    return torch.bmm(flat.transpose(1, 2) * weights.view(1, 1, -1), flat)


class _HeldGram(torch.autograd.Function):
    """A zero whose gradient w.r.t. the core features F is D F (each position times its mask weight m_i),
    D = held[key]: filled in once the global Grams are known, possibly after this node was built (that is
    what lets pass 1 keep its last tile's graph)."""

    @staticmethod
    def forward(ctx, features, weights, held, key):
        ctx.save_for_backward(features, weights)
        ctx.held, ctx.key = held, key
        return features.new_zeros((), dtype=torch.float32)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        features, weights = ctx.saved_tensors
        b, n, h, w = features.shape
        d = ctx.held[ctx.key] * grad                         # [B,N,N], symmetric
        flat, channels_last = _flat_positions(features)      # [B,M,N]
        out = torch.bmm(flat, d)                             # (D F)ᵀ
        if weights.numel():
            out = out * weights.view(1, h * w, 1)
        if channels_last:
            out = out.view(b, h, w, n).permute(0, 3, 1, 2)
        else:
            out = out.transpose(1, 2).reshape(b, n, h, w)
        return out.to(features.dtype), None, None, None


class _HeldMapGradient(torch.autograd.Function):
    """A zero whose gradient w.r.t. a tile's core of the stem's output is the trunk's gradient there:
    held["stem"] (the whole map's, filled in once the trunk has run) cropped to `region` (rows y0:y1,
    cols x0:x1 of the map)."""

    @staticmethod
    def forward(ctx, features, held, region):
        ctx.held, ctx.region, ctx.dtype = held, region, features.dtype
        return features.new_zeros((), dtype=torch.float32)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        y0, y1, x0, x1 = ctx.region
        return (ctx.held["stem"][..., y0:y1, x0:x1] * grad).to(ctx.dtype), None, None


class _PrecomputedGradient(torch.autograd.Function):
    """`value`, attached to x with a precomputed gradient: backward gives grad_output · gradient."""

    @staticmethod
    def forward(ctx, x, value, gradient):
        ctx.save_for_backward(gradient)
        return value.detach().clone()

    @staticmethod
    def backward(ctx, grad):
        (gradient,) = ctx.saved_tensors
        return gradient * grad, None, None


class TiledObjective:
    """The loss and pixel gradient of `objective` (an nst_core.Objective), computed tile by tile.

    tile: core side in px, or (height, width); None chooses it and the stem with `choose_tile` from
    `budget_bytes` (default: the device's free memory) and `history_size` (the optimizer's L-BFGS pairs, 0
    for Adam/SGD). stem: None = the tiles forward the whole network; a pooling layer ("pool2") = the tiles
    forward the layers up to it (with the small halo those need), their cores of its output are stitched
    into the whole image's map, and the layers behind it run once on that map, whole (see the module's
    docstring: the "trunk"). halo: None = the smallest exact halo (`halo_and_stride` of the tiles' layers);
    a larger one is rounded up to the stride, a smaller one is refused. `on_tile(pass_number, tile_index,
    tiles)` is called before each tile's forward (pass 1 or 2), for progress.

    Called like an Objective: `total, parts = tiled(x)` with x [B,3,H,W] at objective.size; `total` is
    attached to x (its backward adds the precomputed gradient), so `total.backward()` works as for the
    Objective; parts {"total", "content", "style", "tv"} hold the same values.
    """

    def __init__(self, objective, tile=None, halo: int | None = None, *, stem: str | None = None,
                 budget_bytes: int | None = None, history_size: int = LBFGS_HISTORY,
                 on_tile: Callable[[int, int, int], None] | None = None):
        self.objective = objective
        self.vgg = objective.vgg
        self.size = tuple(objective.size)
        self.layers = list(objective.layers)
        self.on_tile = on_tile
        if tile is None and self.layers:
            budget = budget_bytes if budget_bytes is not None else available_bytes(self.vgg.device)
            choice = Tiling(self.size) if budget is None else \
                choose_tile(self.vgg, self.size, self.layers, budget, history_size=history_size, halo=halo,
                            stems=None if stem is None else [stem])
            if choice is None:
                raise ImageError(
                    f"an image of {self.size[1]}x{self.size[0]} px does not fit {budget / 2**30:.1f} GiB even "
                    f"in the smallest tiles ({history_size} L-BFGS pairs take "
                    f"{optimizer_bytes(self.size, history_size) / 2**30:.1f} GiB of it): raise the memory cap, "
                    "lower the size or keep fewer L-BFGS pairs")
            tile, stem = choice
        elif tile is None:
            tile = self.size
        self.stem = stem if self.layers else None
        # the tiles forward these (with their halo); the trunk, the rest, on the whole stitched map
        self.front = stem_layers(self.vgg.arch, self.layers, self.stem) if self.layers else []
        self.trunk = [name for name in self.layers if name not in self.front]
        for name, entries in objective.terms.items():
            for kind, _, statistic, _, _ in entries:
                if kind == "style" and name in self.front and \
                        getattr(statistic, "name", "gram") not in TILEABLE_STATISTICS:
                    raise OptionError("style_loss", f"the {statistic.name} style loss cannot be tiled (only "
                                      f"{', '.join(TILEABLE_STATISTICS)}: sums over positions); use a smaller "
                                      "size or a larger memory budget")
        if self.front:
            need, self.stride = halo_and_stride(self.vgg.arch, self.front)
        else:
            need, self.stride = 0, 1
        if halo is None:
            halo = need
        elif int(halo) < need:
            raise OptionError("halo", f"a halo of {int(halo)} px is too small for layers up to "
                              f"{self._deepest()}: the exact tiled loss needs at least {need} px")
        self.halo = self.stride * math.ceil(int(halo) / self.stride)
        th, tw = _pair(tile, "tile")
        # inner boundaries must be multiples of the stride; a tile at least the image's side is one piece
        self.tile = tuple(side if t >= side else max(self.stride, t - t % self.stride)
                          for t, side in zip((th, tw), self.size))
        self.tiles = plan_tiles(self.size, self.tile, self.halo, self.stride)
        self._strides = {name: reach(self.vgg.arch, name).stride for name in self.front}
        self.pixel_terms = tuple(getattr(objective, "pixel_terms", ()))
        self.term_names = tuple(getattr(objective, "term_names", ("total", "content", "style", "tv")))

    def __getattr__(self, name):
        # anything else the loop or a caller reads (weights, targets, autocast...) is the objective's
        if name == "objective":
            raise AttributeError(name)
        return getattr(self.objective, name)

    def _deepest(self) -> str:
        names = layer_names(self.vgg.arch)
        return max(self.front, key=names.index)

    def describe(self) -> str:
        """'4 tiles of up to 64x64 px (halo 64 px)' (width x height), '... (halo 8 px, to pool2)'."""
        stem = f", to {self.stem}" if self.stem else ""
        return f"{len(self.tiles)} tiles of up to {self.tile[1]}x{self.tile[0]} px (halo {self.halo} px{stem})"

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if tuple(x.shape[-2:]) != self.size:
            raise ImageError(f"the tiled objective is for {self.size[1]}x{self.size[0]} px, "
                             f"got {x.shape[-1]}x{x.shape[-2]} px")
        obj = self.objective
        zero = x.new_zeros(())
        want_grad = x.requires_grad and torch.is_grad_enabled()
        content, style, gradient = zero, zero, None
        if self.layers:
            with torch.inference_mode(False):
                content, style, gradient = self._evaluate(x.detach(), want_grad)
        value = zero
        if obj.content_weight:
            value = value + obj.content_weight * content
        if obj.style_weight:
            value = value + obj.style_weight * style
        total = _PrecomputedGradient.apply(x, value, gradient) if gradient is not None else value
        tv = tv_loss(x) if obj.tv_weight else zero
        if obj.tv_weight:
            total = total + obj.tv_weight * tv
        parts = {"content": content, "style": style, "tv": tv}
        for term in self.pixel_terms:                        # pixel-level terms: on the whole image, like TV
            value = term.loss(x)
            parts[term.name] = value
            if term.weight:
                total = total + term.weight * value
        return total, {"total": total, **parts}

    # -- the two passes

    def _evaluate(self, x: torch.Tensor, want_grad: bool):
        """(content, style, pixel gradient or None) of the layer terms at x (detached)."""
        obj, tiles = self.objective, self.tiles
        held: dict = {}
        sums: dict[tuple[str, int], list] = {}              # (layer, term index): [Σ m f fᵀ, Σ m]
        content = x.new_zeros((), dtype=torch.float32)
        stitched: list[torch.Tensor] = []                   # the stem's output over the whole image
        kept = None
        for tile in tiles:                                   # pass 1: Grams and content over the cores
            keep = want_grad and tile is tiles[-1]           # its graph is kept for pass 2
            c, pieces, crop = self._tile(x, tile, 1, with_grad=keep, sums=sums, held=held, stitched=stitched)
            content = content + c
            if keep:
                kept = (tile, pieces, crop)
        style = x.new_zeros((), dtype=torch.float32)
        if self.trunk:
            trunk_content, trunk_style = self._trunk(stitched[0], want_grad, held)
            content, style = content + trunk_content, style + trunk_style
        del stitched
        for name, entries in obj.terms.items():
            if name not in self.front:
                continue
            for index, (kind, w, _, target, _) in enumerate(entries):
                if kind != "style":
                    continue
                n = target.shape[-1]
                total, weight = sums[name, index]
                if not weight > 0:
                    raise ImageError("the mask is empty at this layer (all zero): it selects no pixel to match")
                diff = total / weight - target
                style = style + w * diff.pow(2).sum() / (4.0 * n * n)
                held[name, index] = (obj.style_weight * w / (n * n * weight)) * diff
        if not want_grad:
            return content, style, None
        gradient = torch.zeros_like(x)
        self._backward(gradient, *kept)
        del kept
        for tile in tiles[:-1]:                              # pass 2: gradient with (G − A) held fixed
            _, pieces, crop = self._tile(x, tile, 2, with_grad=True, sums=None, held=held)
            self._backward(gradient, tile, pieces, crop)
        return content, style, gradient

    def _trunk(self, stitched: torch.Tensor, want_grad: bool, held: dict):
        """The layers behind the stem on the whole stitched map: (their content, their style), detached;
        with want_grad, held["stem"] = the gradient of their weighted sum w.r.t. the map."""
        obj = self.objective
        leaf = stitched.requires_grad_(want_grad)
        losses: dict[str, list] = {"content": [], "style": []}

        def on_feature(name, h):
            for kind, loss in obj.layer_losses(name, h):
                losses[kind].append(loss)

        autocast = obj.autocast
        with torch.set_grad_enabled(want_grad), \
                torch.autocast(leaf.device.type, dtype=autocast, enabled=autocast is not None):
            self.vgg.features(leaf, self.trunk, on_feature, after=self.stem)
        zero = leaf.new_zeros((), dtype=torch.float32)
        content, style = sum(losses["content"], zero), sum(losses["style"], zero)
        if want_grad:
            weighted = obj.content_weight * content + obj.style_weight * style
            held["stem"] = torch.autograd.grad(weighted, leaf)[0] if weighted.requires_grad \
                else torch.zeros_like(leaf)
        return content.detach(), style.detach()

    @staticmethod
    def _backward(gradient, tile, pieces, crop) -> None:
        if not pieces:
            return
        torch.autograd.backward(sum(pieces))
        y0, y1, x0, x1 = tile.crop
        gradient[..., y0:y1, x0:x1] += crop.grad

    def _tile(self, x, tile: Tile, pass_number: int, *, with_grad: bool, sums, held, stitched=None):
        """Forward one tile's crop. Adds its cores' Σ m f fᵀ and Σ m into `sums` (when given), its core of
        the stem's output into stitched[0] (when given; created at the first tile) and returns (its content
        value, the surrogate pieces to back-propagate (with_grad), the crop leaf)."""
        obj = self.objective
        if self.on_tile is not None:
            self.on_tile(pass_number, tile.index, len(self.tiles))
        cy0, cy1, cx0, cx1 = tile.crop
        ky0, ky1, kx0, kx1 = tile.core
        crop = x[..., cy0:cy1, cx0:cx1]
        if with_grad:
            crop = crop.detach().requires_grad_(True)
        pieces: list[torch.Tensor] = []
        content = [x.new_zeros((), dtype=torch.float32)]

        def on_feature(name, h):
            s = self._strides[name]
            # the core at this layer, in global and in crop units (crop origins are multiples of s)
            gy0, gy1, gx0, gx1 = ky0 // s, ky1 // s, kx0 // s, kx1 // s
            oy, ox = cy0 // s, cx0 // s
            f = h[..., gy0 - oy:gy1 - oy, gx0 - ox:gx1 - ox]
            if name == self.stem:
                if stitched is not None:
                    if not stitched:
                        mh, mw, _ = feature_shape(self.vgg.arch, self.size, name)
                        stitched.append(h.new_zeros(h.shape[:2] + (mh, mw)).contiguous(
                            memory_format=torch.channels_last if h.stride(1) == 1 else torch.contiguous_format))
                    stitched[0][..., gy0:gy1, gx0:gx1] = f.detach()
                if with_grad:
                    pieces.append(_HeldMapGradient.apply(f, held, (gy0, gy1, gx0, gx1)))
            with torch.autocast(x.device.type, enabled=False):
                for index, (kind, w, _, target, mask) in enumerate(obj.terms.get(name, ())):
                    m = None if mask is None else mask[..., gy0:gy1, gx0:gx1].to(f.device, torch.float32)
                    if kind == "content":
                        p = target[..., gy0:gy1, gx0:gx1]
                        if sums is not None:
                            content[0] = content[0] + w * content_loss(f.detach(), p, m)
                        if with_grad and obj.content_weight:
                            pieces.append((obj.content_weight * w) * content_loss(f, p, m))
                        continue
                    weights = None if m is None else m.reshape(-1)
                    if sums is not None:
                        total, weight = sums.get((name, index), (0, 0))
                        sums[name, index] = [total + _gram_sum(f.detach(), weights),
                                             weight + (f.shape[-2] * f.shape[-1] if weights is None
                                                       else weights.sum())]
                    if with_grad and obj.style_weight:
                        none = f.new_empty(0, dtype=torch.float32)
                        pieces.append(_HeldGram.apply(f, none if weights is None else weights, held,
                                                      (name, index)))

        autocast = obj.autocast
        grad_mode = torch.enable_grad() if with_grad else torch.no_grad()
        with grad_mode, torch.autocast(x.device.type, dtype=autocast, enabled=autocast is not None):
            self.vgg.features(crop, self.front, on_feature)
        return content[0], pieces, crop


__all__ = ["Reach", "Tile", "TiledObjective", "Tiling", "choose_tile", "halo_and_stride", "needs_tiling",
           "optimizer_bytes", "plan_tiles", "reach", "split", "stem_candidates", "stem_layers", "tiled_bytes",
           "tiling_cost", "trunk_bytes", "untiled_bytes"]
