"""The engine's high-level calls: style transfer and the paper's reconstructions (Figure 1).

Data flows one way: images -> targets -> run plan -> loop -> Result. `optimize` is the one path every
call takes: it checks the options, makes the plan, builds one objective per level and runs the loop.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from . import color, memory
from .errors import ImageError, NSTError
from .image import as_bhwc, fit_image, resize
from .loader import load_vgg
from .coarse_view import CoarseView
from .loop import Result, TileProgress, initial_image, run, target_reporter
from .photo_distance import style_scales as photo_style_scales
from .objective import Objective
from .layers import min_input_size
from .plan import Level, RunPlan, fit_memory, make_plan, plan_run, with_precision, with_views
from .tiling import TILEABLE_STATISTICS
from .settings import (CONTENT_LADDER, DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, DEFAULTS,
                       HIGH_RES_POOLING_SIDE, OPTIONS, SIZE_FREE_WEIGHTINGS, OptionError, check,
                       resolve_weighting)
from .spectral_noise import spectrum_noise
from .targets import ContentTarget, StyleTarget
from .tiled_features import reporting_tiles

# Reconstructions start from white noise of this amplitude around mid-gray (0.5 ± 0.05), as
# jcjohnson's neural-style does. Full-range noise leaves high-frequency residue in the near-null space
# of the first convolutions: measured at 64 px, 150 L-BFGS steps, conv1_2 reaches 17 dB PSNR from
# full-range noise and 30-44 dB from low-amplitude noise.
RECONSTRUCTION_NOISE = 0.1
# Texture synthesis starts from seeded noise with the painting's power spectrum (TEXTURE_START "spectrum",
# nst_core.spectral_noise; "white": the paper's full-range white noise) and runs every step at full size
# (TEXTURE_COARSE_SHARE: the share of steps spent at half the size first). White noise leaves its grain.
# Share of luminance power above half the Nyquist frequency / the painting's at the same size, ladder
# conv1_1 .. +conv5_1 (`python -m nst_core.bench.texture`), 128 px, 100 steps, weighting normalized,
# full-spectrum start: The Starry Night 1.09/1.15/1.16/1.19/1.24x, The Scream 1.09/1.04/1.20/1.36/1.56x.
# From white noise with the coarse half (an earlier default) Starry Night 1.53/1.41/1.85/1.94/2.66x, at
# full size alone 3.5-8.8x; Wasserstein-2 and sliced W from white noise were no cleaner (64 px: 1.70/1.57x,
# 2.85/2.06x worst rung).
# The scale of the structures (autocorrelation radius, nst_core.texture_metrics) is the power spectrum
# seen another way (Wiener-Khinchin): from the full spectrum every rung has the painting's, flat with
# depth (Starry Night 9.5-10.4 px). So the start keeps the painting's spectrum only at periods up to
# TEXTURE_MAX_PERIOD px and spreads the power of longer periods evenly over their frequencies (same
# variance, same grain share: nst_core.spectral_noise.spread_long_range); 16 px is above what conv1_1 and
# conv2_1 see (3 and 10 px). From that start alone the deep rungs added fine strokes and the radius fell
# (Starry Night 7.3 -> 7.5 px peaking at 8.7; The Scream 5.7 -> 4.2 px, grain up to 2.3x). TEXTURE_CHAIN
# starts each cumulative rung from the previous rung's texture, which already matches all but the new
# layer: the new layer adds larger structures to it. Measured at 128 px, 200 steps (the defaults), radius
# per rung: Starry Night 6.0/8.6/9.0/9.3/9.4 px, The Scream 5.9/8.8/11.1/12.2/12.6, Shipwreck
# 5.8/8.6/9.5/10.0/10.4 (non-decreasing), Composition VII 4.1/4.7/4.8/4.9/4.7 (its own radius is 5.2 px:
# the last rung dips 4 %; at 192 px 4.6/5.9/6.1/6.2/6.2, its own 7.1); grain 0.98-1.36x the painting's.
# At 100 steps Starry Night's last rung dipped 1 % (8.5 -> 8.4). Below ~100 px the deepest layers see the
# whole image and add grain only: at 64 px the radius is flat (Starry Night 5.3/5.5/5.4/5.2/5.1 px, 30 steps).
TEXTURE_START = "spectrum"
TEXTURE_MAX_PERIOD = 16
TEXTURE_CHAIN = True
TEXTURE_NOISE = 1.0
TEXTURE_COARSE_SHARE = 0.0


def optimize(vgg, content: ContentTarget | None = None, style: StyleTarget | Sequence[StyleTarget] | None = None, *,
             init: str = DEFAULTS["init"], init_image=None, optimizer: str = DEFAULTS["optimizer"],
             steps: int = DEFAULTS["steps"], lr: float | None = None, tv_weight: float = DEFAULTS["tv_weight"],
             seed: int = DEFAULTS["seed"], size=None, callback: Callable | None = None,
             preserve_color: str = DEFAULTS["preserve_color"], coarse_to_fine: bool = False,
             plan: RunPlan | None = None, pixel_terms=(), max_memory_gb: float = DEFAULTS["max_memory_gb"],
             tile_size: int = DEFAULTS["tile_size"], weighting: str = DEFAULTS["weighting"],
             high_res_pooling: str = DEFAULTS["high_res_pooling"],
             look_size: int = DEFAULTS["look_size"], style_scales: Sequence[float] | None = None,
             coarse_precision: str = DEFAULTS["coarse_precision"]) -> Result:
    """Optimize an image against prebuilt targets; the output size defaults to the content's size.

    The run follows a plan (`nst_core.plan.plan_run(size, steps, coarse_to_fine)`, or `plan` as given):
    its levels' steps add up to `steps`. With `coarse_to_fine` runs of at least 100 steps on images with a
    long side of at least 256 px start at sizes halved down to a ~128 px long side (see nst_core.plan).
    `style`: one StyleTarget, or several with masks (one style per region, Gatys et al. 2017).
    `pixel_terms`: extra losses on the pixels (nst_core.objective.PixelTerm), e.g. video's temporal term.
    `weighting`: "relative" (a style strength free of the size and of the pair), "normalized" (free of the
    size) or "paper" (nst_core.objective.Objective); a relative or normalized style weight above
    settings.MAX_STRENGTH is an older workflow's paper β and runs with "paper", with a warning
    (settings.resolve_weighting).
    `max_memory_gb` (0 = the device's free memory) and `tile_size` (0 = automatic): the plan computes a
    level tile by tile (exactly) and keeps fewer L-BFGS pairs where it would not fit (plan.fit_memory).
    `high_res_pooling`: "avg" runs the levels of settings.HIGH_RES_POOLING_SIDE px and more with average
    pooling when `vgg` pools by max (the targets of those levels are read by that network too); "same"
    keeps the network's pooling (settings.HIGH_RES_POOLINGS says why).
    `look_size`: under "relative" and "normalized", levels larger than this also match the targets seen at
    this size (nst_core.coarse_view: one look at every output size); 0 = off. "relative" measures the
    photo's distance to the painting at this size, or at the output's size when smaller (256 px when off:
    nst_core.photo_distance). `style_scales`: that unit (1/d per style target) measured already, e.g. on a
    clip's first frame (nst_core.video), so that every frame gets one strength; "relative" only.
    `coarse_precision`: the precision of the levels below the final one ("auto": bfloat16 on a CPU with
    native bfloat16, else float32; nst_core.precision); the final level runs in float32.
    """
    opts = check(init=init, optimizer=optimizer, steps=steps, lr=lr, tv_weight=tv_weight, seed=seed,
                 preserve_color=preserve_color, coarse_to_fine=bool(coarse_to_fine),
                 max_memory_gb=max_memory_gb, tile_size=tile_size, high_res_pooling=high_res_pooling,
                 look_size=look_size, coarse_precision=coarse_precision)
    if plan is None:
        if size is None:
            if content is None:
                raise OptionError("size", "give the output size when there is no content target")
            size = content.size
        plan = plan_run(size, opts["steps"], opts["coarse_to_fine"])
    styles = [] if style is None else list(style) if isinstance(style, (list, tuple)) else [style]
    weighting, legacy = resolve_weighting(weighting, [s.weight for s in styles])
    layers = list(dict.fromkeys([*(content.layers if content is not None else ()),
                                 *(name for s in styles for name in s.layers)]))
    # the look held at one size: coarse views of the network's terms, under the size-free weightings only
    plan = with_views(plan, opts["look_size"] if weighting in SIZE_FREE_WEIGHTINGS and layers else 0)
    plan = with_precision(plan, opts["coarse_precision"], vgg.device)
    if layers:
        # memory decided once, before any target is computed: tiles and L-BFGS pairs per level
        plan = fit_memory(plan, vgg, layers, max_memory_gb=opts["max_memory_gb"], tile_size=opts["tile_size"],
                          optimizer=opts["optimizer"],
                          tileable=all(s.statistic.name in TILEABLE_STATISTICS for s in styles))
        if vgg.device.type == "cpu" and plan.is_tight(opts["optimizer"]):
            memory.track_live_memory()         # before the targets: they are built at every level's size
    if opts["init"] == "style" and style is None:
        raise OptionError("init", "init 'style' needs a style target")
    if opts["init"] == "content" and content is None:
        raise OptionError("init", "init 'content' needs a content target")
    content, style, to_output, notes = color.prepare(opts["preserve_color"], content, style)
    notes[:0] = [legacy] if legacy else []
    final_area = plan.size[0] * plan.size[1]
    # the pair's unit under "relative", once for every level (or given: a clip's, nst_core.video)
    count = 0 if style is None else len(style) if isinstance(style, (list, tuple)) else 1
    if style_scales is not None and (weighting != "relative" or len(style_scales) != count):
        raise OptionError("style_scales", f"{len(style_scales)} scale(s) given for {count} style target(s) "
                                          f"under weighting {weighting}: they are the relative weighting's, "
                                          "one per style target")
    scales = None if weighting != "relative" else tuple(style_scales) if style_scales is not None else \
        photo_style_scales(vgg, content, style, plan.size, opts["look_size"])
    # every level's objective first: size and memory errors surface before any work is done
    with reporting_tiles(target_reporter(getattr(callback, "tile", None))):
        objectives = []
        for level in plan.levels:
            net = level_network(vgg, level, opts["high_res_pooling"])
            objectives.append(Objective(net, _on(content, net), _on(style, net), opts["tv_weight"], level.size,
                                        content_weight=_level_content_weight(content, level, final_area,
                                                                             weighting),
                                        pixel_terms=(*pixel_terms, *_views(vgg, content, style, level,
                                                                           weighting, scales)),
                                        seed=opts["seed"] + level.index, weighting=weighting,
                                        style_scales=scales, precision=level.precision))
    first_style = style[0] if isinstance(style, (list, tuple)) else style
    x0 = initial_image(opts["init"], plan.levels[0].size, content=content, style=first_style,
                       init_image=init_image, seed=opts["seed"], device=vgg.device)
    if to_output is not None and opts["init"] in ("style", "image", "noise"):
        x0 = color.luminance_rgb(x0)
    result = run(plan, objectives, x0, optimizer=opts["optimizer"], lr=opts["lr"], callback=callback,
                 next_level=_upsampler(content), to_output=to_output)
    result.warnings[:0] = notes
    result.style_scales = scales or ()
    return result


def level_network(vgg, level: Level, high_res_pooling: str = DEFAULTS["high_res_pooling"]):
    """The network a level runs on: `vgg`, or its average-pooling twin for a level of
    HIGH_RES_POOLING_SIDE px and more when `high_res_pooling` is "avg" (settings.HIGH_RES_POOLINGS)."""
    if high_res_pooling == "avg" and vgg.pooling == "max" and max(level.size) >= HIGH_RES_POOLING_SIDE:
        return vgg.with_pooling("avg")
    return vgg


def _views(vgg, content, style, level: Level, weighting: str, scales=()) -> tuple[CoarseView, ...]:
    """The level's coarse view (nst_core.coarse_view, `level.view`): the objective at the view's size, on
    `vgg` as a run of that size has it (a view is below HIGH_RES_POOLING_SIDE), with the pair's `scales`."""
    if level.view is None:
        return ()
    return (CoarseView(Objective(vgg, content, style, 0.0, level.view, weighting=weighting,
                                 style_scales=scales, precision=level.precision)),)


def _on(targets, net):
    """Content or style target(s) read by `net` (None stays None)."""
    if targets is None:
        return None
    if isinstance(targets, (list, tuple)):
        return [target.on(net) for target in targets]
    return targets.on(net)


def _level_content_weight(content, level: Level, final_area: int, weighting: str) -> float | None:
    """Under "paper", α times (final area / level area): the content loss grows with the pixel count, the
    Gram loss does not, so each level optimizes the per-pixel balance of the final one (its losses equal a
    plain run's). Under "relative" and "normalized" every term is size-free already: α as it is (None)."""
    if content is None or weighting != "paper":
        return None
    return content.weight * final_area / (level.size[0] * level.size[1])


def _upsampler(content) -> Callable[[torch.Tensor, Level], torch.Tensor]:
    """A level's start from the previous result: upsampled, plus the content's detail band.

    Upsampling blurs: the finest octave (which the shallow style layers and the content layer see) is
    missing. The content's own detail band at this level, content(size) - upsample(content(previous)), is
    added back: measured at 512 px the final level starts at a 20% lower loss (2.8e6 instead of 3.5e6).
    """
    def next_level(x: torch.Tensor, level: Level) -> torch.Tensor:
        previous = tuple(x.shape[-2:])
        x = resize(x.clamp(0, 1), level.size)
        if content is None:
            return x
        detail = content.image_at(level.size) - resize(content.image_at(previous), level.size)
        return (x + detail.to(x.device)).clamp(0, 1)
    return next_level


def item_seed(seed: int, index: int) -> int:
    """The seed of item `index` of a batch run with `seed`: seed + index (mod 2**32), so item 0 is the
    single run's and a batch of N gives the same images as N single runs with these seeds."""
    return (int(seed) + int(index)) % (OPTIONS["seed"].max + 1)


def optimize_batch(vgg, contents: Sequence[ContentTarget], style: StyleTarget | None = None, *,
                   seed: int = DEFAULTS["seed"], callback: Callable | None = None, **options) -> list[Result]:
    """`optimize` for each content target in turn (item i with `item_seed(seed, i)`), progress over the
    whole batch: the callback's step/total count every item's steps and `stage`/`stages` say which item.

    One by one, not in one batched forward: L-BFGS shares its line search and curvature history across
    everything it optimizes, so a batched run would couple the items and give other images than single
    runs; one by one, each item is exactly its single run (and peak memory is one item's).
    """
    seed = OPTIONS["seed"].check(seed)
    results: list[Result] = []
    total = None
    for index, content in enumerate(contents):
        place = _placed(callback, index, len(contents), lambda: total)
        result = optimize(vgg, content, style, seed=item_seed(seed, index), callback=place, **options)
        if total is None:
            total = result.plan.steps * len(contents)
        for entry in result.history:
            entry["stage"] = index
        results.append(result)
        if result.stopped == "callback":
            break
    return results


def _placed(callback, index: int, count: int, total_of: Callable[[], int | None]):
    """The callback of batch item `index`: its Progress (and TileProgress, when the callback hears tiles)
    moved to the batch's step and total."""
    if callback is None:
        return None

    def move(p):
        steps = p.total
        p.step += index * steps
        p.total = total_of() or steps * count
        p.stage, p.stages = index, count
        return p

    def place(p):
        callback(move(p))
    if getattr(callback, "tile", None) is not None:
        place.tile = lambda t: callback.tile(move(t) if isinstance(t, TileProgress) else t)
    return place


def stylize(content_image, style_image, *, vgg=None, content_layers=DEFAULT_CONTENT_LAYERS,
            style_layers=DEFAULT_STYLE_LAYERS, style_layer_weights=None,
            content_weight: float = DEFAULTS["content_weight"], style_weight: float = DEFAULTS["style_weight"],
            style_blend: Sequence[float] | None = None, style_scale: float = DEFAULTS["style_scale"],
            max_size: int | None = DEFAULTS["max_size"], coarse_to_fine: bool = DEFAULTS["coarse_to_fine"],
            style_loss: str = DEFAULTS["style_loss"], **options):
    """Gatys style transfer of `content_image` in the style of `style_image` (one image or a list).

    `max_size` caps the output's long side (the content is resized down, never up); other keyword
    options are those of `optimize` (init, init_image, optimizer, steps, lr, tv_weight, seed, callback,
    preserve_color). `steps` is the number of optimizer steps in all; coarse-to-fine (default) shares
    them out over smaller sizes first (nst_core.plan). `style_loss`: gram (the paper), wasserstein2 or
    sliced_wasserstein (nst_core.statistics). `weighting` (an `optimize` option): "relative" (default)
    makes `style_weight` a strength free of the size and the pair (default 5), "normalized" free of the size,
    "paper" the raw β of Gatys et al.

    Several contents: a [B,H,W,3] batch gives one Result whose image is [B,H,W,3] (history entries carry
    the item as "stage"); a list of images (any sizes) gives a list of Results. Item i uses
    `item_seed(seed, i)`; see `optimize_batch`.
    """
    vgg = vgg or load_vgg()
    styles = style_image if isinstance(style_image, (list, tuple)) else [style_image]
    with reporting_tiles(target_reporter(getattr(options.get("callback"), "tile", None))):
        style = StyleTarget(vgg, styles, style_layers, style_layer_weights, style_weight, style_blend,
                            style_scale, style_loss=style_loss)
        items = [fit(image, max_size) for image in _content_items(content_image)]
        contents = [ContentTarget(vgg, image, content_layers, content_weight) for image in items]
    if not isinstance(content_image, (list, tuple)) and len(contents) == 1:
        return optimize(vgg, contents[0], style, coarse_to_fine=coarse_to_fine, **options)
    results = optimize_batch(vgg, contents, style, coarse_to_fine=coarse_to_fine, **options)
    if isinstance(content_image, (list, tuple)):
        return results
    return Result.batch(results)


def _content_items(content_image) -> list[torch.Tensor]:
    """A list of images, or the items of a [B,H,W,C] batch, each [1,H,W,3]."""
    if isinstance(content_image, (list, tuple)):
        if not content_image:
            raise ImageError("no content image given")
        return [as_bhwc(image) for image in content_image]
    batch = as_bhwc(content_image)
    return [batch[i:i + 1] for i in range(batch.shape[0])]


def reconstruct_content(image, layers: Sequence[str] = CONTENT_LADDER, *, vgg=None,
                        steps: int = DEFAULTS["reconstruction_steps"], optimizer: str = DEFAULTS["optimizer"],
                        lr: float | None = None, seed: int = DEFAULTS["seed"],
                        max_size: int | None = DEFAULTS["reconstruction_max_size"],
                        callback: Callable | None = None, weighting: str = DEFAULTS["weighting"]) -> Result:
    """Invert the network from one layer at a time, starting from white noise: a batch, one per layer.
    (One term per run, so `weighting` only scales the recorded loss: relative to the target under
    "relative" and "normalized", the paper's raw ½Σ(F−P)² under "paper".)"""
    vgg = vgg or load_vgg()
    layers = vgg.check_layers(layers)
    image = fit(image, max_size)
    stages = [(ContentTarget(vgg, image, [name], 1.0), None) for name in layers]
    return _ladder(vgg, stages, tuple(image.shape[1:3]), steps=steps, optimizer=optimizer, lr=lr, seed=seed,
                   callback=callback, noise_scale=RECONSTRUCTION_NOISE, weighting=weighting)


def reconstruct_style(image, layers: Sequence[str] = DEFAULT_STYLE_LAYERS, *, cumulative: bool = True,
                      vgg=None, steps: int = DEFAULTS["reconstruction_steps"],
                      optimizer: str = DEFAULTS["optimizer"], lr: float | None = None,
                      seed: int = DEFAULTS["seed"], size=None,
                      max_size: int | None = DEFAULTS["reconstruction_max_size"],
                      callback: Callable | None = None, weighting: str = DEFAULTS["weighting"],
                      chain: bool = TEXTURE_CHAIN) -> Result:
    """Texture synthesis from Gram matrices, from seeded noise with the painting's power spectrum at
    periods up to TEXTURE_MAX_PERIOD px (TEXTURE_START; white noise as in the paper with "white"). `cumulative` gives
    the paper's ladder (conv1_1; conv1_1+conv2_1; ...), each rung started from the previous rung's texture
    when `chain` (False: every rung from the same noise, as the paper); otherwise one layer per image.
    Output at the image's size or `size`.
    `weighting` "relative" or "normalized" makes each layer's Gram term relative to its target (a
    cumulative rung weighs its layers by relative error), "paper" keeps the raw E_l."""
    vgg = vgg or load_vgg()
    layers = vgg.check_layers(layers)
    image = fit(image, max_size)
    out_size = tuple(size) if size is not None else tuple(image.shape[1:3])
    sets = [layers[:i + 1] for i in range(len(layers))] if cumulative else [[name] for name in layers]
    stages = [(None, StyleTarget(vgg, image, names, None, 1.0, size=out_size)) for names in sets]
    start = ((lambda level_size, level_seed: spectrum_noise(image, level_size, level_seed, device=vgg.device,
                                                            max_period=TEXTURE_MAX_PERIOD))
             if TEXTURE_START == "spectrum" else None)
    return _ladder(vgg, stages, out_size, steps=steps, optimizer=optimizer, lr=lr, seed=seed,
                   callback=callback, noise_scale=TEXTURE_NOISE, coarse_share=TEXTURE_COARSE_SHARE,
                   weighting=weighting, start=start, chain=cumulative and chain)


def _ladder(vgg, stages, size, *, steps, optimizer, lr, seed, callback, noise_scale,
            coarse_share: float = 0.0, weighting: str = DEFAULTS["weighting"],
            start: Callable | None = None, chain: bool = False) -> Result:
    """One run per stage (the same plan each), as one batch and one history.
    `coarse_share` of the steps run at half the size first when every stage's layers fit there.
    `start(size, seed)` gives the first level's pixels [1,3,H,W]; default: white noise of `noise_scale`.
    `chain`: every stage after the first starts from the previous stage's result instead (for nested
    objectives, as the cumulative ladder's: the previous rung already matches all but the new layer)."""
    opts = check(steps=steps, optimizer=optimizer, lr=lr, seed=seed, weighting=weighting)
    plan = plan_run(size, opts["steps"])
    half = (size[0] // 2, size[1] // 2)
    deepest = max(max(min_input_size(name) for name in (c or s).layers) for c, s in stages)
    coarse_steps = round(opts["steps"] * coarse_share)
    if 1 <= coarse_steps < opts["steps"] and min(half) >= deepest:
        plan = make_plan([half, size], [coarse_steps, opts["steps"] - coarse_steps])
    images, history, notes, stopped = [], [], [], None
    for index, (content, style) in enumerate(stages):
        objectives = [Objective(vgg, content, style, 0.0, level.size, weighting=opts["weighting"])
                      for level in plan.levels]
        if chain and images:
            x0 = resize(images[-1].permute(0, 3, 1, 2).contiguous(), plan.levels[0].size).to(vgg.device)
        elif start is not None:
            x0 = start(plan.levels[0].size, opts["seed"])
        else:
            x0 = initial_image("noise", plan.levels[0].size, seed=opts["seed"], device=vgg.device,
                               noise_scale=noise_scale)
        result = run(plan, objectives, x0, optimizer=opts["optimizer"], lr=opts["lr"], callback=callback,
                     stage=index, stages=len(stages), step_offset=index * plan.steps,
                     total=plan.steps * len(stages))
        images.append(result.image)
        history += result.history
        notes += result.warnings
        stopped = result.stopped
        if stopped == "callback":
            break
    return Result(torch.cat(images), history, stopped, notes, plan)


def fit(image, max_size: int | None) -> torch.Tensor:
    """One image as [1,H,W,3] with the long side at most `max_size` (never enlarged; None = as it is)."""
    image = as_bhwc(image)
    if image.shape[0] != 1:
        raise ImageError(f"expected one image, got a batch of {image.shape[0]}")
    return fit_image(image, OPTIONS["max_size"].check(max_size) if max_size else None)


__all__ = ["NSTError", "fit", "item_seed", "optimize", "optimize_batch", "reconstruct_content", "reconstruct_style", "stylize"]
