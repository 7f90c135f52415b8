"""The run plan: which sizes a run optimizes at and how many steps each gets, decided once, as a value.

A plan is a list of levels from coarse to fine whose steps add up exactly to the steps asked for (a plain
run is one level). Coarse-to-fine (`plan_run(..., coarse_to_fine=True)`): the coarse levels are cheap and
settle the large-scale structure that is slow to emerge at full size, so the final level needs few of its
expensive steps. Levels halve the side while the coarsest long side stays >= COARSEST_LONG_SIDE, the last
step up is a factor √2 (LAST_RATIO), and the steps are shared out in the proportions LEVEL_SHARES; a level
whose side exceeds EXPENSIVE_SIDE gets its share divided by (side / EXPENSIVE_SIDE), since a step costs
~ its pixel count and the large levels mostly add detail.

`decide` is the whole decision of a run, made once before any work: from the options, the network and the
targets it gives the levels (size, steps, look size, precision (nst_core.precision), tiles and stem,
L-BFGS pairs: `fit_memory`, for the budget `max_memory_gb`), the weighting the run uses and the relative
weighting's unit (the photo's distance to the painting). The loop executes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from typing import Sequence

import torch

from .errors import ImageError
from .grain import GRAIN_WEIGHT
from .image import fit_max_side
from . import memory
from .photo_distance import StyleUnits, style_units as measure_style_units
from .precision import BFLOAT16, FLOAT32, coarse_level_precision
from .settings import (DEFAULTS, HIGH_RES_POOLING_SIDE, LBFGS_PAIRS, OPTIONS, SIZE_FREE_WEIGHTINGS, OptionError,
                       resolve_weighting)

COARSEST_LONG_SIDE = 128
# The last step up, to the final size, is a factor √2 rather than 2: upsampled 2x, the coarse result's
# strokes are read far from the photo by relu4_2 at the finer resolution (nst_core.bench time to quality)
LAST_RATIO = 2 ** 0.5
# ... and while its short side stays >= this: every VGG layer down to pool5 still has a pixel there
COARSEST_SHORT_SIDE = 32
# Relative step shares: the coarsest level (where the arrangement is found), each level in between, the
# final level; normalized so that the levels' steps add up to the steps asked for.
LEVEL_SHARES = (1.0, 2 / 15, 0.4)
# Below this many steps the plan is one level: after each upsampling L-BFGS needs some steps to rebuild
# its curvature pairs, which a tiny budget cannot pay for.
MIN_PYRAMID_STEPS = 100
# Levels with a longer side than this get their share divided by (side / EXPENSIVE_SIDE) (see above).
EXPENSIVE_SIDE = 512

# L-BFGS pairs under a memory budget (24 B per pixel each): when a level does not fit with LBFGS_PAIRS
# pairs untiled, they get at most PAIRS_SHARE of the budget (the rest goes to the activations: bigger
# tiles mean less halo) and never fewer than MIN_PAIRS. Pairs are the cheapest thing to give up
# (L-BFGS's usual m is 3-20, Nocedal & Wright; nst_core.bench.history).
PAIRS_SHARE = 1 / 3
MIN_PAIRS = 5
GIB = 2 ** 30


@dataclass(frozen=True)
class Level:
    """One size of a plan: `steps` optimizer steps at `size` (H, W), after `first_step` earlier steps."""

    index: int
    size: tuple[int, int]
    steps: int
    first_step: int
    # the memory decision (fit_memory): None = untiled, else the tiles' core (th, tw) px, their count and
    # their stem (the pooling layer they forward up to, None = the whole network: nst_core.tiling); the
    # L-BFGS pairs this level's optimizer keeps
    tile: tuple[int, int] | None = None
    tiles: int = 1
    stem: str | None = None
    lbfgs_pairs: int = LBFGS_PAIRS
    # the size (H, W) this level also matches its targets at, the look size (nst_core.look), None = none
    look: tuple[int, int] | None = None
    # the precision its convs run in (nst_core.precision: "float32" or "bfloat16"; with_precision)
    precision: str = FLOAT32

    @property
    def label(self) -> str:
        """'256x170 px' (width x height)."""
        return f"{self.size[1]}x{self.size[0]} px"

    @property
    def tiled_label(self) -> str:
        """'2048x1366 px, 9 tiles (look 256x171)' (the label alone when untiled and without a look term);
        ', bfloat16' follows the size of a level that runs in bfloat16."""
        return (self.label + (f", {self.precision}" if self.precision != FLOAT32 else "")
                + (f", {self.tiles} tiles" if self.tile is not None else "")
                + (f" (look {self.look[1]}x{self.look[0]})" if self.look is not None else ""))

    @property
    def last_step(self) -> int:
        return self.first_step + self.steps


@dataclass(frozen=True)
class RunPlan:
    """The levels of a run, coarse to fine (the last level's size is the output's), and what `decide`
    resolved for the whole run: the weighting it runs with, the relative weighting's unit and the notes
    the decision leaves (an older workflow's paper β)."""

    levels: tuple[Level, ...]
    # the memory budget the levels were fitted to (bytes; None: not fitted, every level untiled)
    budget_bytes: int | None = None
    weighting: str = OPTIONS["weighting"].default
    # the relative weighting's units (nst_core.photo_distance.StyleUnits: at the look size and at each
    # larger level's own size), none under another weighting
    units: StyleUnits = StyleUnits()
    # the grain term's weight at every level (nst_core.grain): size-free weightings with a style, else 0
    grain_weight: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def style_units(self) -> tuple[tuple[float, ...], ...]:
        """Per style target its layers' units 1/d_l at the look size under "relative", () otherwise."""
        return self.units.look

    @property
    def steps(self) -> int:
        return sum(level.steps for level in self.levels)

    @property
    def size(self) -> tuple[int, int]:
        return self.levels[-1].size

    def __len__(self) -> int:
        return len(self.levels)

    def describe(self) -> str:
        """'128x85 px x 167, 256x170 px x 133' (or '256x170 px x 300' for one level)."""
        return ", ".join(f"{level.tiled_label} x {level.steps}" for level in self.levels)

    def is_tight(self, optimizer: str = "lbfgs") -> bool:
        """Whether the memory budget shaped the plan: a level tiles or keeps fewer L-BFGS pairs."""
        full = LBFGS_PAIRS if optimizer == "lbfgs" else 0
        return any(level.tile is not None or level.lbfgs_pairs < full for level in self.levels)

    def cost(self) -> float:
        """The plan's cost in final-size steps (a step's cost ~ its pixel count)."""
        final = self.size[0] * self.size[1]
        return sum(level.steps * level.size[0] * level.size[1] / final for level in self.levels)


def make_plan(sizes, steps) -> RunPlan:
    """A plan from explicit sizes ((H, W) each, coarse to fine) and steps (one int per level)."""
    sizes = [_size(s) for s in sizes]
    steps = [int(n) for n in steps]
    if not sizes:
        raise ValueError("a plan needs at least one size")
    if len(steps) != len(sizes):
        raise ValueError(f"{len(steps)} step counts given for {len(sizes)} sizes")
    if any(n < 1 for n in steps):
        raise ValueError(f"every level needs at least 1 step, got {steps}")
    levels, first = [], 0
    for index, (size, n) in enumerate(zip(sizes, steps)):
        levels.append(Level(index, size, n, first))
        first += n
    return RunPlan(tuple(levels))


def level_sizes(size) -> list[tuple[int, int]]:
    """Sizes from coarse to fine, halving the side while the coarsest long side stays >= COARSEST_LONG_SIDE
    and its short side >= COARSEST_SHORT_SIDE; when there is a coarser level, the last step up is a factor
    LAST_RATIO (√2): 512 px -> 128, 256, 362, 512."""
    h, w = _size(size)
    count = 1
    while max(h, w) / 2 ** count >= COARSEST_LONG_SIDE and min(h, w) / 2 ** count >= COARSEST_SHORT_SIDE:
        count += 1
    scales = [2 ** i for i in reversed(range(count))]
    if count > 1:
        scales.insert(-1, LAST_RATIO)
    sizes = []
    for scale in scales:
        candidate = (max(1, round(h / scale)), max(1, round(w / scale)))
        if not sizes or candidate != sizes[-1]:
            sizes.append(candidate)
    return sizes


def share_steps(steps: int, count: int, sides=None) -> list[int]:
    """`steps` shared out over `count` levels in the proportions LEVEL_SHARES, adding up exactly
    (largest remainders; every level gets at least one step). `sides`: the levels' long sides; a level
    above EXPENSIVE_SIDE has its share divided by (side / EXPENSIVE_SIDE)."""
    if count == 1:
        return [steps]
    shares = [LEVEL_SHARES[0]] + [LEVEL_SHARES[1]] * (count - 2) + [LEVEL_SHARES[2]]
    if sides is not None:
        shares = [s / max(1.0, side / EXPENSIVE_SIDE) for s, side in zip(shares, sides)]
    total = sum(shares)
    exact = [steps * s / total for s in shares]
    counts = [max(1, int(e)) for e in exact]
    order = sorted(range(count), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    i = 0
    while sum(counts) < steps:
        counts[order[i % count]] += 1
        i += 1
    while sum(counts) > steps:                       # only when max(1, ...) lifted a tiny level
        j = max(range(count), key=lambda k: counts[k])
        counts[j] -= 1
    return counts


def plan_run(size, steps: int, coarse_to_fine: bool = False) -> RunPlan:
    """The sizes and steps of a run of `steps` steps ending at `size` ((H, W) or one int for a square).

    One level unless `coarse_to_fine`, the long side is at least 2 x COARSEST_LONG_SIDE and `steps` is at
    least MIN_PYRAMID_STEPS. The rest of the decision (look sizes, precision, memory, weighting): `decide`.
    """
    steps = OPTIONS["steps"].check(steps)
    size = _size(size)
    sizes = level_sizes(size) if coarse_to_fine and steps >= MIN_PYRAMID_STEPS else [size]
    return make_plan(sizes, share_steps(steps, len(sizes), [max(s) for s in sizes]))


def decide(options, vgg, content=None, style=None, *, size=None, levels: RunPlan | None = None,
           style_units: StyleUnits | Sequence[Sequence[float]] | None = None) -> RunPlan:
    """The whole plan of a run, decided once: `options` (nst_core.options.RunOptions) for `vgg` and the
    targets as the run optimizes them (after colour preservation: nst_core.color.prepare).

    Sizes and steps: `levels` as given (make_plan), else plan_run(size or the content's size, steps,
    coarse_to_fine). Then the weighting (settings.resolve_weighting: an older workflow's paper β runs
    with "paper" and leaves a note; a strength under "paper" is refused), each level's look size
    (size-free weightings only), precision and memory (tiles, stem, L-BFGS pairs), and under "relative"
    the photo's distance to each painting at the look size and at each level larger than it
    (nst_core.photo_distance.StyleUnits; `style_units` when measured already, e.g. on a clip's first
    frame). Raises OptionError (naming the option) for anything the run cannot do, before any step.
    """
    from .tiling import TILEABLE_STATISTICS
    styles = [] if style is None else list(style) if isinstance(style, (list, tuple)) else [style]
    weighting, note = resolve_weighting(options.weighting, [s.weight for s in styles],
                                        content.weight if content is not None else 0.0)
    if levels is None:
        if size is None:
            if content is None:
                raise OptionError("size", "give the output size when there is no content target")
            size = content.size
        levels = plan_run(size, options.steps, options.coarse_to_fine)
    layers = list(dict.fromkeys([*(content.layers if content is not None else ()),
                                 *(name for s in styles for name in s.layers)]))
    plan = with_looks(levels, options.look_size if weighting in SIZE_FREE_WEIGHTINGS and layers else 0)
    plan = with_precision(plan, options.coarse_precision, vgg.device, options.cuda_autocast)
    if layers:
        plan = fit_memory(plan, vgg, layers, max_memory_gb=options.max_memory_gb, tile_size=options.tile_size,
                          optimizer=options.optimizer,
                          tileable=all(s.statistic.name in TILEABLE_STATISTICS for s in styles))
    if options.init == "style" and not styles:
        raise OptionError("init", "init 'style' needs a style target")
    if options.init == "content" and content is None:
        raise OptionError("init", "init 'content' needs a content target")
    if style_units is not None and (weighting != "relative" or len(_look_units(style_units)) != len(styles)):
        raise OptionError("style_units", f"{len(_look_units(style_units))} unit(s) given for {len(styles)} "
                                          f"style target(s) under weighting {weighting}: they are the relative "
                                          "weighting's, one per style target")
    if weighting != "relative":
        units = StyleUnits()
    elif isinstance(style_units, StyleUnits):
        units = style_units
    elif style_units is not None:
        units = StyleUnits(look=_look_units(style_units))
    else:
        units = StyleUnits(look=measure_style_units(vgg, content, styles, options.look_size))
    units = with_level_units(units, plan, vgg, content, styles, options.high_res_pooling)
    grain = GRAIN_WEIGHT if weighting in SIZE_FREE_WEIGHTINGS and any(s.weight > 0 for s in styles) else 0.0
    return replace(plan, weighting=weighting, units=units, grain_weight=grain,
                   notes=(note,) if note else ())


def _look_units(style_units) -> tuple[tuple[float, ...], ...]:
    if isinstance(style_units, StyleUnits):
        return style_units.look
    return tuple(tuple(float(u) for u in target) for target in style_units)


def level_network(vgg, level: Level, high_res_pooling: str = DEFAULTS["high_res_pooling"]):
    """The network a level runs on: `vgg`, or its average-pooling twin for a level of
    HIGH_RES_POOLING_SIDE px and more when `high_res_pooling` is "avg" (settings.HIGH_RES_POOLINGS)."""
    if high_res_pooling == "avg" and vgg.pooling == "max" and max(level.size) >= HIGH_RES_POOLING_SIDE:
        return vgg.with_pooling("avg")
    return vgg


def with_level_units(units: StyleUnits, plan: RunPlan, vgg, content, styles,
                     high_res_pooling: str = DEFAULTS["high_res_pooling"]) -> StyleUnits:
    """`units` with the units of each level that has a look term (one larger than the look size) at its own
    size, on the network it runs on (level_network), where `units` has none for that size yet (a clip's
    frames reuse frame 0's). Unchanged without look units or without a photo (another weighting, a texture)."""
    if not units.look or content is None:
        return units
    known = dict(units.levels)
    for level in plan.levels:
        if level.look is not None and level.size not in known:
            net = level_network(vgg, level, high_res_pooling)
            known[level.size] = measure_style_units(net, content.on(net), [s.on(net) for s in styles],
                                                    size=level.size)
    return replace(units, levels=tuple(known.items()))


def level_look(size, look_size: int) -> tuple[int, int] | None:
    """(H, W) a level of `size` holds its look at: the long side `look_size`, aspect kept; None when the
    level is not larger than that, `look_size` is 0 (off), or that size's short side would be below
    COARSEST_SHORT_SIDE (a banner: the deep layers would have no position there)."""
    h, w = _size(size)
    if not look_size or max(h, w) <= int(look_size):
        return None
    look = fit_max_side(h, w, int(look_size))
    return look if min(look) >= COARSEST_SHORT_SIDE else None


def with_looks(plan: RunPlan, look_size: int) -> RunPlan:
    """`plan` with each level's look size for `look_size` (nst_core.look; 0 = none)."""
    return replace(plan, levels=tuple(replace(level, look=level_look(level.size, look_size))
                                      for level in plan.levels))


def with_precision(plan: RunPlan, coarse_precision: str, device, cuda_autocast: bool = False) -> RunPlan:
    """`plan` with its levels' precision: the levels below the final one in the precision
    `coarse_precision` means on `device` (nst_core.precision.coarse_level_precision), the final level in
    float32 (bfloat16 gradients stall L-BFGS near the optimum: nst_core.precision). `cuda_autocast`
    (an engine-only option): every level in bfloat16 on a GPU that has it."""
    coarse = coarse_level_precision(OPTIONS["coarse_precision"].check(coarse_precision), device)
    final = FLOAT32
    if cuda_autocast and torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported():
        coarse = final = BFLOAT16
    last = len(plan.levels) - 1
    return replace(plan, levels=tuple(replace(level, precision=final if level.index == last else coarse)
                                      for level in plan.levels))


def budget_bytes(max_memory_gb, device) -> int | None:
    """The memory budget in bytes: max_memory_gb GiB, or (0) the device's free memory (None: unknown)."""
    gb = OPTIONS["max_memory_gb"].check(max_memory_gb)
    if gb > 0:
        return int(gb * GIB)
    return memory.available_bytes(device)


def fit_memory(plan: RunPlan, vgg, layers, *, max_memory_gb=0.0, tile_size=0, optimizer: str = "lbfgs",
               tileable: bool = True, budget: int | None = None) -> RunPlan:
    """`plan` with each level's memory decision: untiled or its tile, and its L-BFGS pairs.

    Per level: untiled with LBFGS_PAIRS pairs when that fits the budget; else untiled with the pairs
    the rest of the budget holds, if at least MIN_PAIRS (a tiled step costs >= 1.17x); else tiled: the
    pairs get what PAIRS_SHARE of the budget holds (at least MIN_PAIRS) and the cheapest tile
    that fits the rest (tiling.choose_tile); if none does, the pairs drop to MIN_PAIRS and the tile
    is chosen again. `tile_size` > 0 forces that tile (experts).
    Raises OptionError naming max_memory_gb (or tile_size) when even that does not fit. Adam and SGD keep
    no pairs. `tileable`: False when a style statistic is not a sum over positions (W2, sliced).
    A level with a look term (`Level.look`, nst_core.look) also evaluates the network at that
    size, untiled: its activations come off that level's budget.
    """
    from .tiling import halo_and_stride, optimizer_bytes, plan_tiles, stem_layers, untiled_bytes

    tile_size = OPTIONS["tile_size"].check(tile_size)
    layers = list(layers)
    device = vgg.device if hasattr(vgg, "device") else "cpu"
    arch = vgg if isinstance(vgg, str) else vgg.arch
    if budget is None:
        budget = budget_bytes(max_memory_gb, device)
    full = LBFGS_PAIRS if optimizer == "lbfgs" else 0
    levels, whole_budget = [], budget
    for level in plan.levels:
        size = level.size
        budget = whole_budget if whole_budget is None or level.look is None else \
            whole_budget - untiled_bytes(arch, level.look, layers)
        if tile_size and tile_size < max(size):
            if not tileable:
                raise OptionError("tile_size", "this style loss cannot be tiled (only the Gram and W2 losses "
                                               "are made of sums over positions); set tile_size to 0")
            tile, pairs = _forced_tiling(arch, size, layers, tile_size, budget, full)
            if pairs is None:
                need = _forced_tiling(arch, size, layers, tile_size, None, full, cheapest_memory=True)[0]
                raise OptionError("tile_size", f"tiles of {tile_size} px at {level.label} need "
                                  f"{(need + optimizer_bytes(size, min(full, MIN_PAIRS))) / GIB:.2f} GiB, more "
                                  f"than the memory budget ({_budget_text(whole_budget, max_memory_gb)}); use smaller "
                                  "tiles, 0 (automatic) or raise max_memory_gb")
        elif budget is None or untiled_bytes(arch, size, layers) + optimizer_bytes(size, full) <= budget:
            tile, pairs = None, full
        else:
            tile, pairs = _tiled_choice(arch, size, layers, budget, full, tileable)
            if tile is None and pairs is None:
                smallest = _smallest_need(arch, size, layers, min(full, MIN_PAIRS), tileable)
                how = "in the smallest tiles" if tileable else "untiled (this style loss cannot be tiled)"
                raise OptionError("max_memory_gb", f"an image of {level.label} needs at least "
                                  f"{smallest / GIB:.2f} GiB {how} with {min(full, MIN_PAIRS)} L-BFGS pairs, "
                                  f"more than the memory budget ({_budget_text(whole_budget, max_memory_gb)}); raise "
                                  "max_memory_gb or lower the size")
        if tile is not None and tuple(tile.tile) == tuple(size):
            tile = None
        tiles = 1
        if tile is not None:
            halo, stride = halo_and_stride(arch, stem_layers(arch, layers, tile.stem))
            tiles = len(plan_tiles(size, tile.tile, halo, stride))
        levels.append(replace(level, tile=None if tile is None else tuple(tile.tile), tiles=tiles,
                              stem=None if tile is None else tile.stem, lbfgs_pairs=pairs))
    return replace(plan, levels=tuple(levels), budget_bytes=whole_budget)


def _forced_tiling(arch, size, layers, tile_size: int, budget: int | None, full: int, *,
                   cheapest_memory: bool = False):
    """(Tiling, pairs) for tiles of `tile_size` px (the expert's choice): the stem of least
    tiling.tiling_cost whose step fits `budget` with the most pairs (pairs None: none fits).
    cheapest_memory: (the least bytes any stem needs, None) instead, for the error message."""
    from .tiling import Tiling, halo_and_stride, stem_candidates, stem_layers, tiled_bytes, tiling_cost
    options = []
    for stem in stem_candidates(arch, layers):
        _, stride = halo_and_stride(arch, stem_layers(arch, layers, stem))
        # as TiledObjective takes it: inner tile borders on multiples of the tiles' stride
        tile = tuple(side if tile_size >= side else max(stride, tile_size - tile_size % stride) for side in size)
        need = tiled_bytes(arch, size, layers, tile, stem=stem)
        options.append((tiling_cost(arch, size, layers, tile, stem), need, Tiling(tile, stem)))
    if cheapest_memory:
        return min(need for _, need, _ in options), None
    best = (None, None)
    for _, need, tiling in sorted(options, key=lambda o: o[0]):
        pairs = full if budget is None else _pairs(budget - need, size[0] * size[1], full)
        if pairs is not None and (best[1] is None or pairs > best[1]):
            best = (tiling, pairs)
            if pairs == full:
                break
    return best


def _pairs(room: int, px: int, full: int) -> int | None:
    """The most L-BFGS pairs (<= full) whose state fits `room` bytes; None below the floor."""
    if full == 0:
        return 0 if room >= 0 else None
    pairs = min(full, (room // (3 * px * 4) - 6) // 2)
    return pairs if pairs >= min(full, MIN_PAIRS) else None


def _tiled_choice(arch, size, layers, budget: int, full: int, tileable: bool):
    """(tile or None for untiled, pairs) for a level that does not fit untiled with `full` pairs;
    (None, None) when nothing fits."""
    from .tiling import choose_tile, optimizer_bytes, untiled_bytes
    px = size[0] * size[1]
    floor = min(full, MIN_PAIRS)
    untiled = _pairs(budget - untiled_bytes(arch, size, layers), px, full)
    if untiled is not None:                  # fewer pairs cost less than tiling's >= 1.17x per step
        return None, untiled
    if not tileable:
        return None, None
    shared = max(floor, min(full, _pairs(int(PAIRS_SHARE * budget), px, full) or floor))
    for pairs in dict.fromkeys((shared, floor)):
        room = budget - optimizer_bytes(size, pairs)
        if room <= 0:
            continue
        tiling = choose_tile(arch, size, layers, room, lbfgs_pairs=0)
        if tiling is not None:
            return tiling, pairs
    return None, None


def _smallest_need(arch, size, layers, pairs: int, tileable: bool) -> int:
    """Bytes of the cheapest configuration: the smallest tiles (or untiled) plus `pairs` pairs."""
    from .tiling import (MAX_TILES_PER_AXIS, halo_and_stride, optimizer_bytes, stem_candidates, stem_layers,
                         tiled_bytes, untiled_bytes)
    if not tileable:
        return untiled_bytes(arch, size, layers) + optimizer_bytes(size, pairs)
    needs = []
    for stem in stem_candidates(arch, layers):
        _, stride = halo_and_stride(arch, stem_layers(arch, layers, stem))
        tile = tuple(max(stride, stride * math.ceil(side / MAX_TILES_PER_AXIS / stride)) for side in size)
        needs.append(tiled_bytes(arch, size, layers, tile, stem=stem))
    return min(needs) + optimizer_bytes(size, pairs)


def _budget_text(budget: int | None, max_memory_gb) -> str:
    if budget is None:
        return "unknown"
    if float(max_memory_gb or 0) > 0:
        return f"max_memory_gb = {float(max_memory_gb):g}"
    return f"max_memory_gb = 0: automatic, {budget / GIB:.2f} GiB free"


def _size(size) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ImageError(f"size must be positive, got {size}")
    return h, w


__all__ = ["COARSEST_LONG_SIDE", "COARSEST_SHORT_SIDE", "EXPENSIVE_SIDE", "PAIRS_SHARE", "LEVEL_SHARES",
           "MIN_PAIRS", "MIN_PYRAMID_STEPS", "Level", "RunPlan", "budget_bytes", "decide", "fit_memory",
           "level_sizes", "make_plan", "plan_run", "share_steps", "level_look", "with_precision", "with_looks"]
