"""An exact tiled objective: the loss and pixel gradient of an Objective, evaluated tile by tile.

Why it is exact. The content loss, the Gram and W2 are made of sums over positions (the statistics'
`sums`), so the whole image's sums are the sum of the tiles' core sums. Pass 1 forwards each tile (its
core plus a halo of real pixels), crops every layer to the tile's core and adds up each term's sums; the
terms are finished from the whole sums by the objective's own code (objective.Term.loss_of), and the
gradient of the loss w.r.t. each sum is held fixed. Pass 2 forwards each tile with grad and
back-propagates those held gradients through its sums (the chain rule). The features are exact when the
halo is at least the deepest layer's reach (`reach`: a core unit sees only real pixels) and every crop
starts at a multiple of the network's stride at that depth (the pooling windows pair the same pixels as
in the whole image): no seam can appear; only the float summation order differs.

The stem. Most of the memory is in the first blocks, most of the reach in the last ones. So the tiles may
forward only the layers up to a pooling layer (`stem`, e.g. "pool2": halo 8 px instead of 80) and stitch
their cores of its output into the whole image's map; the layers behind it, the trunk, run once on that
map, whole, with grad. `choose_tile` takes the cheapest (stem, tile) that fits; the L-BFGS pairs do not
tile, so it takes them off the budget first. Measurements: nst_core/bench/README.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

from .errors import ImageError
from .layers import Layer, feature_shape, layer_table
from .memory import FLOAT, SAFETY, activation_bytes, available_bytes, layer_outputs
from .objective import with_gradient
from .settings import LBFGS_PAIRS, OptionError
from .statistics import STATISTICS

# image-sized float32 buffers a tiled evaluation keeps besides the tile's activations: the pixels, the
# gradient accumulator, the gradient saved for backward, the TV term's autograd (3), the crop and its grad
IMAGE_BUFFERS = 8
# style statistics that are sums over positions, so that the tiles' sums add up to the image's
TILEABLE_STATISTICS = tuple(name for name, statistic in STATISTICS.items() if statistic.additive)
# at most this many tiles per axis are considered by choose_tile (tiles of 1/64 of the side are all halo)
MAX_TILES_PER_AXIS = 64


# ---------------------------------------------------------------------------------------------- geometry

def reach(arch: str, layer: str) -> Layer:
    """The layer table's row of `layer`: its stride and reach (`before`, `after`, `radius`) in input
    pixels. (VGG-16 conv5_3: 196 px, the published receptive field; VGG-19 relu5_1: 156 px.)"""
    if layer not in layer_table(arch).names:
        raise OptionError("layers", f"unknown layer {layer!r} for {arch}")
    return layer_table(arch)[layer]


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
    table = layer_table(arch)
    deepest = table.deepest(layers).position
    return [None] + [pool.name for pool in table.pools if pool.position < deepest]


def stem_layers(arch: str, layers, stem: str | None) -> list[str]:
    """The layers the tiles forward: `layers` up to `stem` plus the stem itself (all of them: None)."""
    if stem is None:
        return list(layers)
    table = layer_table(arch)
    if stem not in table.names or table[stem].kind != "pool":
        raise OptionError("stem", f"the stem must be a pooling layer of {arch}, got {stem!r}")
    end = table[stem].position
    return [name for name in layers if table[name].position < end] + [stem]


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
    grid = itertools.product(zip(rows, row_crops), zip(cols, col_crops))
    return [Tile(i, (*ry, *rx), (*cy, *cx)) for i, ((ry, cy), (rx, cx)) in enumerate(grid)]


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


def optimizer_bytes(size, lbfgs_pairs: int = LBFGS_PAIRS) -> int:
    """L-BFGS state: (2·lbfgs_pairs + 6) image-sized float32 vectors, as nst_core.memory counts it."""
    h, w = size
    return (2 * lbfgs_pairs + 6) * 3 * h * w * FLOAT if lbfgs_pairs else 0


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
    """One crop's graph, plus a no-grad forward of another crop beside it (~2 of its largest layer output)."""
    graph = activation_bytes(arch, crop, layers)
    if tiles > 1:
        graph += 2 * layer_outputs(arch, crop, layers)[0] * FLOAT
    return int(SAFETY * graph)


def _grid(arch: str, size, layers, tile, stem: str | None, halo: int | None) -> tuple[list[str], list[Tile]]:
    """(the layers the tiles forward, the tiles) of a tiling; halo None: the smallest exact one."""
    front = stem_layers(arch, layers, stem)
    need, stride = halo_and_stride(arch, front)
    return front, plan_tiles(size, _pair(tile, "tile"), need if halo is None else halo, stride)


def tiled_bytes(vgg, size, layers, tile, stem: str | None = None, halo: int | None = None) -> int:
    """Estimated peak of one tiled loss + gradient (no optimizer state): the largest crop's graph, a
    no-grad forward of another crop beside it, the trunk behind `stem` and the image-sized buffers."""
    arch, (h, w) = _arch(vgg), size
    front, tiles = _grid(arch, size, layers, tile, stem, halo)
    crop = (max(t.crop_size[0] for t in tiles), max(t.crop_size[1] for t in tiles))
    return (_graph_bytes(arch, crop, front, len(tiles)) + trunk_bytes(arch, size, layers, stem)
            + IMAGE_BUFFERS * 3 * h * w * FLOAT)


def axis_options(length: int, halo: int, stride: int) -> list[tuple[int, int, int]]:
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
    once on the whole map (checked against measured steps: nst_core/bench/README.md)."""
    front, tiles = _grid(arch, size, layers, tile, stem, halo)
    area = [t.crop_size[0] * t.crop_size[1] for t in tiles]
    h, w = size
    table = layer_table(arch)
    total = table.macs(layers)
    stem_share = table.macs(front) / total
    trunk_share = 0.0 if stem is None else table.macs(layers, after=stem) / total
    return (stem_share * (3 * sum(area) - area[-1]) + 2 * trunk_share * h * w) / (h * w)


def choose_tile(vgg, size, layers, budget_bytes: int, *, lbfgs_pairs: int = LBFGS_PAIRS,
                halo: int | None = None, stems=None) -> Tiling | None:
    """The tiling (tile (th, tw) px, stem) whose evaluation fits `budget_bytes` with the least computation
    (`tiling_cost`), over every stem of `stems` (default `stem_candidates`) and every distinct tile grid.

    The L-BFGS state (`optimizer_bytes`, lbfgs_pairs=0 for Adam/SGD) is taken off the budget first.
    Returns Tiling(size) when the untiled step fits, None when no tiling fits (the pairs alone may exceed
    the budget). `halo`: a larger halo than each stem needs (as TiledObjective takes it).
    """
    arch, size = _arch(vgg), tuple(int(s) for s in size)
    room = budget_bytes - optimizer_bytes(size, lbfgs_pairs)
    if untiled_bytes(arch, size, layers) <= room:
        return Tiling(size)
    buffers = IMAGE_BUFFERS * 3 * size[0] * size[1] * FLOAT
    table = layer_table(arch)
    total = table.macs(layers)
    best = None
    for stem in (stem_candidates(arch, layers) if stems is None else stems):
        trunk = trunk_bytes(arch, size, layers, stem)
        if trunk + buffers > room:
            continue
        front = stem_layers(arch, layers, stem)
        need, stride = halo_and_stride(arch, front)
        pad = need if halo is None else max(need, stride * math.ceil(int(halo) / stride))
        stem_share = table.macs(front) / total
        trunk_cost = 0.0 if stem is None else 2 * table.macs(layers, after=stem) / total * size[0] * size[1]
        for th, crop_h, sum_h in axis_options(size[0], pad, stride):
            for tw, crop_w, sum_w in axis_options(size[1], pad, stride):
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

def layer_core(h: torch.Tensor, tile: Tile, stride: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """The tile's core of `h`, a layer's output over the tile's crop, and where that core lies in the
    whole layer's output (y0, y1, x0, x1); `stride`: the layer's (crops start at multiples of it)."""
    y0, y1, x0, x1 = (v // stride for v in tile.core)
    oy, ox = tile.crop[0] // stride, tile.crop[2] // stride
    return h[..., y0 - oy:y1 - oy, x0 - ox:x1 - ox], (y0, y1, x0, x1)


@dataclass
class _TilePass:
    """One tile's forward: the crop it forwarded, its cores' sums and counts per (layer, term index), its
    core of the stem's output with where that lies in the map (None without a stem)."""
    crop: torch.Tensor
    sums: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    stem: tuple | None = None


class TiledObjective:
    """The loss and pixel gradient of `objective` (an nst_core.Objective), computed tile by tile.

    tile: core side in px, or (height, width); None chooses it and the stem with `choose_tile` from
    `budget_bytes` (default: the device's free memory) and `lbfgs_pairs` (0 for Adam/SGD). stem: None =
    the tiles forward the whole network; a pooling layer ("pool2"): the module docstring's stem. halo:
    None = the smallest exact halo; a larger one is rounded up to the stride, a smaller one is refused.
    `on_tile(pass_number, tile_index, tiles)` is called before each tile's forward, for progress.

    Called like an Objective: `total, parts = tiled(x)` with x [B,3,H,W] at objective.size; `total` is
    attached to x (its backward adds the precomputed gradient), so `total.backward()` works as for the
    Objective; parts {"total", "content", "style", "tv"} hold the same values.
    """

    def __init__(self, objective, tile=None, halo: int | None = None, *, stem: str | None = None,
                 budget_bytes: int | None = None, lbfgs_pairs: int = LBFGS_PAIRS,
                 on_tile: Callable[[int, int, int], None] | None = None):
        self.objective = objective
        self.vgg = objective.vgg
        self.size = tuple(objective.size)
        self.layers = list(objective.layers)
        self.on_tile = on_tile
        if tile is None and self.layers:
            budget = budget_bytes if budget_bytes is not None else available_bytes(self.vgg.device)
            choice = Tiling(self.size) if budget is None else \
                choose_tile(self.vgg, self.size, self.layers, budget, lbfgs_pairs=lbfgs_pairs, halo=halo,
                            stems=None if stem is None else [stem])
            if choice is None:
                raise ImageError(
                    f"an image of {self.size[1]}x{self.size[0]} px does not fit {budget / 2**30:.1f} GiB even "
                    f"in the smallest tiles ({lbfgs_pairs} L-BFGS pairs take "
                    f"{optimizer_bytes(self.size, lbfgs_pairs) / 2**30:.1f} GiB of it): raise the memory cap, "
                    "lower the size or keep fewer L-BFGS pairs")
            tile, stem = choice
        elif tile is None:
            tile = self.size
        self.stem = stem if self.layers else None
        # the tiles forward these (with their halo); the trunk, the rest, on the whole stitched map
        self.front = stem_layers(self.vgg.arch, self.layers, self.stem) if self.layers else []
        self.trunk = [name for name in self.layers if name not in self.front]
        for name in self.front:
            for term in objective.terms.get(name, ()):
                if not term.additive:
                    raise OptionError("style_loss", f"the {term.statistic.name} style loss cannot be tiled (only "
                                      f"{', '.join(TILEABLE_STATISTICS)}: sums over positions); use a smaller "
                                      "size or a larger memory budget")
        need, self.stride = halo_and_stride(self.vgg.arch, self.front) if self.front else (0, 1)
        if halo is None:
            halo = need
        elif int(halo) < need:
            raise OptionError("halo", f"a halo of {int(halo)} px is too small for layers up to "
                              f"{layer_table(self.vgg.arch).deepest(self.front).name}: the exact tiled loss "
                              f"needs at least {need} px")
        self.halo = self.stride * math.ceil(int(halo) / self.stride)
        th, tw = _pair(tile, "tile")
        # inner boundaries must be multiples of the stride; a tile at least the image's side is one piece
        self.tile = tuple(side if t >= side else max(self.stride, t - t % self.stride)
                          for t, side in zip((th, tw), self.size))
        self.tiles = plan_tiles(self.size, self.tile, self.halo, self.stride)
        self._strides = {name: reach(self.vgg.arch, name).stride for name in self.front}

    def __getattr__(self, name):
        # anything else the loop or a caller reads (weights, targets, autocast...) is the objective's
        if name == "objective":
            raise AttributeError(name)
        return getattr(self.objective, name)

    def describe(self) -> str:
        """'4 tiles of up to 64x64 px (halo 64 px)' (width x height), '... (halo 8 px, to pool2)'."""
        stem = f", to {self.stem}" if self.stem else ""
        return f"{len(self.tiles)} tiles of up to {self.tile[1]}x{self.tile[0]} px (halo {self.halo} px{stem})"

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if tuple(x.shape[-2:]) != self.size:
            raise ImageError(f"the tiled objective is for {self.size[1]}x{self.size[0]} px, "
                             f"got {x.shape[-1]}x{x.shape[-2]} px")
        content = style = x.new_zeros(())
        gradient, want_grad = None, x.requires_grad and torch.is_grad_enabled()
        if self.layers:
            with torch.inference_mode(False):
                content, style, gradient = self._evaluate(x.detach(), want_grad)
        value = self.objective.layer_total(content, style)
        return self.objective.combine(x, content, style, value if gradient is None else
                                      with_gradient(x, value, gradient))

    # -- the two passes

    def _evaluate(self, x: torch.Tensor, want_grad: bool):
        """(content, style, pixel gradient or None) of the layer terms at x (detached), by the module
        docstring's two passes. The last tile's pass-1 graph is kept, so it is forwarded once."""
        obj, tiles = self.objective, self.tiles
        sums: dict = {}
        counts: dict = {}
        stitched: list[torch.Tensor] = []
        for tile in tiles:
            kept = self._tile(x, tile, 1, with_grad=want_grad and tile is tiles[-1], stitched=stitched)
            for key, value in kept.sums.items():
                sums[key] = sums[key] + value.detach() if key in sums else value.detach()
                counts[key] = counts[key] + kept.counts[key] if key in counts else kept.counts[key]
        content = style = x.new_zeros((), dtype=torch.float32)
        map_gradient = None
        if self.trunk:
            stem_map = stitched.pop().requires_grad_(want_grad)
            with torch.set_grad_enabled(want_grad):
                content, style = obj.layer_terms(stem_map, self.trunk, after=self.stem)
                if want_grad:
                    weighted = obj.layer_total(content, style)
                    map_gradient = torch.autograd.grad(weighted, stem_map)[0] if weighted.requires_grad \
                        else torch.zeros_like(stem_map)
            content, style = content.detach(), style.detach()
        # the tiles' terms finished from the whole sums, and the gradient w.r.t. each sum
        leaves = {key: value.detach().requires_grad_(want_grad) for key, value in sums.items()}
        with torch.set_grad_enabled(want_grad):
            front = {"content": x.new_zeros((), dtype=torch.float32), "style": x.new_zeros((), dtype=torch.float32)}
            for (name, index), leaf in leaves.items():
                term = obj.terms[name][index]
                front[term.kind] = front[term.kind] + term.loss_of(leaf, counts[name, index])
            weighted = obj.layer_total(front["content"], front["style"])
        content, style = content + front["content"].detach(), style + front["style"].detach()
        if not want_grad:
            return content, style, None
        keys = list(leaves)
        grads = dict(zip(keys, torch.autograd.grad(weighted, [leaves[k] for k in keys], allow_unused=True))) \
            if weighted.requires_grad else {}
        gradient = torch.zeros_like(x)
        self._backward(gradient, tiles[-1], kept, grads, map_gradient)
        del kept
        for tile in tiles[:-1]:                              # pass 2: the held gradients through each tile
            self._backward(gradient, tile, self._tile(x, tile, 2, with_grad=True), grads, map_gradient)
        return content, style, gradient

    @staticmethod
    def _backward(gradient, tile: Tile, forward: _TilePass, grads: dict, map_gradient) -> None:
        """Back-propagates the held gradients of one tile's sums (and its core of the stem's map) to its
        crop and adds the crop's gradient to `gradient`."""
        roots = [(forward.sums[key], grad) for key, grad in grads.items() if grad is not None]
        if forward.stem is not None and map_gradient is not None:
            core, (y0, y1, x0, x1) = forward.stem
            roots.append((core, map_gradient[..., y0:y1, x0:x1].to(core.dtype)))
        roots = [(root, grad) for root, grad in roots if root.requires_grad]
        if not roots:
            return
        torch.autograd.backward([root for root, _ in roots], [grad for _, grad in roots])
        y0, y1, x0, x1 = tile.crop
        gradient[..., y0:y1, x0:x1] += forward.crop.grad

    def _tile(self, x, tile: Tile, pass_number: int, *, with_grad: bool, stitched=None) -> _TilePass:
        """Forward one tile's crop: its terms' sums and counts over its cores; its core of the stem's output
        goes into stitched[0] too (when given; created at the first tile)."""
        obj = self.objective
        if self.on_tile is not None:
            self.on_tile(pass_number, tile.index, len(self.tiles))
        cy0, cy1, cx0, cx1 = tile.crop
        crop = x[..., cy0:cy1, cx0:cx1]
        if with_grad:
            crop = crop.detach().requires_grad_(True)
        forward = _TilePass(crop)

        def on_feature(name, h):
            core, region = layer_core(h, tile, self._strides[name])
            if name == self.stem:
                if stitched is not None:
                    if not stitched:
                        mh, mw, _ = feature_shape(self.vgg.arch, self.size, name)
                        stitched.append(h.new_zeros(h.shape[:2] + (mh, mw)).contiguous(
                            memory_format=torch.channels_last if h.stride(1) == 1 else torch.contiguous_format))
                    y0, y1, x0, x1 = region
                    stitched[0][..., y0:y1, x0:x1] = core.detach()
                forward.stem = (core, region)
            with torch.autocast(x.device.type, enabled=False):
                for index, term in enumerate(obj.terms.get(name, ())):
                    forward.sums[name, index] = term.sums(core, region)
                    forward.counts[name, index] = term.count(region)

        with torch.set_grad_enabled(with_grad), \
                torch.autocast(x.device.type, dtype=obj.autocast, enabled=obj.autocast is not None):
            self.vgg.features(crop, self.front, on_feature)
        return forward


__all__ = ["TILEABLE_STATISTICS", "Tile", "TiledObjective", "Tiling", "axis_options", "choose_tile", "halo_and_stride",
           "layer_core", "optimizer_bytes", "plan_tiles", "reach", "split", "stem_candidates", "stem_layers",
           "tiled_bytes", "tiling_cost", "trunk_bytes", "untiled_bytes"]
