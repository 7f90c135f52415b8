"""The engine's high-level calls: style transfer and the paper's reconstructions (Figure 1).

Data flows one way: options + images -> targets -> run plan -> loop -> Result. `optimize` is the one path
every transfer takes: its options (nst_core.options.RunOptions) are checked once, nst_core.plan.decide
makes the whole plan, one objective per level is built from it, and the loop executes it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import torch

from . import color
from .errors import ImageError, NSTError
from .grain import GrainTerm
from .image import as_bhwc, fit_image, resize
from .loader import load_vgg
from .look import LookTerm
from .loop import Result, TileProgress, initial_image, run, target_reporter
from .objective import Objective
from .layers import min_input_size
from .options import NAMES as OPTION_NAMES, RunOptions
from .photo_distance import StyleUnits
from .plan import Level, RunPlan, decide, level_network, make_plan, plan_run
from .settings import CONTENT_LADDER, DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, OPTIONS, OptionError
from .spectral_noise import spectrum_noise
from .targets import ContentTarget, StyleTarget
from .tiled_features import reporting_tiles

# Reconstructions start from white noise of this amplitude around mid-gray (0.5 ± 0.05), as jcjohnson's
# neural-style does: full-range noise leaves high-frequency residue in the first convolutions' near-null space.
RECONSTRUCTION_NOISE = 0.1
# Texture synthesis starts from seeded noise with the painting's power spectrum (TEXTURE_START "spectrum",
# nst_core.spectral_noise; "white": the paper's white noise, which leaves its grain), keeping the spectrum
# only at periods up to TEXTURE_MAX_PERIOD px (longer periods spread evenly: no imposed layout), runs every
# step at full size (TEXTURE_COARSE_SHARE) and starts each cumulative rung from the previous rung's texture
# (TEXTURE_CHAIN), so deeper rungs add larger structures. Grain and structure radius per rung:
# `python -m nst_core.bench.texture` (figures in nst_core/bench/README.md).
TEXTURE_START = "spectrum"
TEXTURE_MAX_PERIOD = 16
TEXTURE_CHAIN = True
TEXTURE_NOISE = 1.0
TEXTURE_COARSE_SHARE = 0.0
# a `max_size` keyword not given: the options' value applies (None itself means "as it is")
_AS_OPTIONS = object()


def optimize(vgg, content: ContentTarget | None = None, style: StyleTarget | Sequence[StyleTarget] | None = None, *,
             options: RunOptions | None = None, init_image=None, size=None, callback: Callable | None = None,
             plan: RunPlan | None = None, pixel_terms=(),
             style_units: StyleUnits | Sequence[Sequence[float]] | None = None, **keywords) -> Result:
    """Optimize an image against prebuilt targets with `options` (nst_core.options.RunOptions); keyword
    options (steps=50, weighting="paper", ...) change those (or the defaults) and are checked the same way.
    Without `options` a call runs one level unless coarse_to_fine=True (prebuilt targets: Gatys' plain run).

    The run is decided once by nst_core.plan.decide (sizes and steps, look sizes, precision, memory,
    weighting, the relative unit), then executed by nst_core.loop.run. The output size defaults to the
    content's size (`size` otherwise); `plan`: explicit levels (make_plan) instead of plan_run's.
    `style`: one StyleTarget, or several with masks (one style per region, Gatys et al. 2017).
    `pixel_terms`: extra losses on the pixels (nst_core.objective.PixelTerm), e.g. video's temporal term.
    `style_units`: the relative weighting's units measured already (a plan's `units`, or per style target
    1/d_l per layer at the look size), e.g. on a clip's first frame (nst_core.video), so that every frame
    gets one strength; what they lack (a larger level's own size) is measured.
    """
    options = _run_options(options, keywords, coarse_to_fine=False)
    content, style, to_output, plan = prepare(vgg, content, style, options, size=size, levels=plan,
                                              style_units=style_units)
    final_area = plan.size[0] * plan.size[1]
    # the measured units (None: not "relative"): the look size's for the look terms and every level up to
    # it, a larger level's own size's for its own term (nst_core.photo_distance)
    relative = plan.weighting == "relative"
    grain = _grain_terms(style, plan.grain_weight)
    # every level's objective first: size and memory errors surface before any work is done
    with reporting_tiles(target_reporter(getattr(callback, "tile", None))):
        objectives = []
        for level in plan.levels:
            net = level_network(vgg, level, options.high_res_pooling)
            objectives.append(Objective(net, _on(content, net), _on(style, net), options.tv_weight, level.size,
                                        content_weight=_level_content_weight(content, level, final_area,
                                                                             plan.weighting),
                                        pixel_terms=(*pixel_terms, *grain,
                                                     *_look_terms(vgg, content, style, level, plan.weighting,
                                                                  plan.units.look if relative else None)),
                                        seed=options.seed + level.index, weighting=plan.weighting,
                                        style_units=plan.units.at(level.size) if relative else None,
                                        precision=level.precision))
    first_style = style[0] if isinstance(style, (list, tuple)) else style
    x0 = initial_image(options.init, plan.levels[0].size, content=content, style=first_style,
                       init_image=init_image, seed=options.seed, device=vgg.device)
    if to_output is not None and options.init in ("style", "image", "noise"):
        x0 = color.luminance_rgb(x0)
    return run(plan, objectives, x0, options, callback=callback, next_level=_upsampler(content),
               to_output=to_output)


def prepare(vgg, content, style, options: RunOptions, *, size=None, levels: RunPlan | None = None,
            style_units: StyleUnits | Sequence[Sequence[float]] | None = None):
    """(content, style, to_output, plan): the targets as the run optimizes them (colour preservation,
    nst_core.color.prepare) and the run's whole plan for them (nst_core.plan.decide; its notes include
    colour preservation's). A clip measures its unit with this on its first frame (nst_core.video)."""
    content, style, to_output, colour_notes = color.prepare(options.preserve_color, content, style)
    plan = decide(options, vgg, content, style, size=size, levels=levels, style_units=style_units)
    return content, style, to_output, replace(plan, notes=plan.notes + tuple(colour_notes))


def _run_options(options: RunOptions | None, keywords: dict, **defaults) -> RunOptions:
    """`options` with the keyword options of a call; without `options`, `defaults` first (a call's own
    defaults, e.g. optimize's one-level plan). An unknown keyword is a TypeError naming it."""
    if "coarse_to_fine" in keywords:
        keywords = {**keywords, "coarse_to_fine": bool(keywords["coarse_to_fine"])}
    if options is None:
        return RunOptions.of(None, **{**defaults, **keywords})
    return RunOptions.of(options, **keywords)


def _look_terms(vgg, content, style, level: Level, weighting: str, units=None) -> tuple[LookTerm, ...]:
    """The level's look term (nst_core.look, `level.look`): the objective at the look size, on `vgg` as a
    run of that size has it (the look size is below HIGH_RES_POOLING_SIDE), with the look size's `units`."""
    if level.look is None:
        return ()
    return (LookTerm(Objective(vgg, content, style, 0.0, level.look, weighting=weighting,
                               style_units=units, precision=level.precision)),)


def _grain_terms(style, weight: float) -> tuple[GrainTerm, ...]:
    """The run's grain term (nst_core.grain) when the plan gives it a weight; one for all levels (it keeps
    the paintings' power per size)."""
    if not weight:
        return ()
    return (GrainTerm(style if isinstance(style, (list, tuple)) else [style], weight),)


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
    added back, so the level starts at a lower loss.
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
                   options: RunOptions | None = None, callback: Callable | None = None,
                   **keywords) -> list[Result]:
    """`optimize` for each content target in turn (item i with `item_seed(seed, i)`), progress over the
    whole batch: the callback's step/total count every item's steps and `stage`/`stages` say which item.
    Keyword options as `optimize`'s; other keywords (init_image, size, plan, pixel_terms) go to each run.

    One by one, not in one batched forward: L-BFGS shares its line search and curvature history across
    everything it optimizes, so a batched run would couple the items and give other images than single
    runs; one by one, each item is exactly its single run (and peak memory is one item's).
    """
    chosen = {name: value for name, value in keywords.items() if name in OPTION_NAMES}
    rest = {name: value for name, value in keywords.items() if name not in OPTION_NAMES}
    options = _run_options(options, chosen, coarse_to_fine=False)
    results: list[Result] = []
    total = None
    for index, content in enumerate(contents):
        place = _placed(callback, index, len(contents), lambda: total)
        result = optimize(vgg, content, style, options=options.replace(seed=item_seed(options.seed, index)),
                          callback=place, **rest)
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


def stylize(content_image, style_image, *, vgg=None, options: RunOptions | None = None,
            content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS, style_layer_weights=None,
            style_blend: Sequence[float] | None = None, style_masks=None, max_size: int | None = _AS_OPTIONS,
            **keywords):
    """Gatys style transfer of `content_image` in the style of `style_image` (one image or a list).

    `options` (nst_core.options.RunOptions) and keyword options (steps, style_weight, weighting,
    style_loss, ...) as `optimize`'s; here coarse-to-fine is on by default (RunOptions'). Other keywords
    (init_image, callback) go to `optimize`. `max_size` (options.max_size) caps the output's long side
    (the content is shrunk, never enlarged; None: as it is). `style_loss`: wasserstein2 (default), gram
    (the paper) or sliced_wasserstein (nst_core.statistics). `weighting`: "relative" (default) makes `style_weight` a
    strength free of the size and the pair (default 5), "normalized" free of the size, "paper" the raw β.

    Several style images are blended (`style_blend`), or with `style_masks` (one mask per style image,
    [H,W] / [1,H,W] / [1,H,W,1], 0..1, where in the output that style applies) each paints its region
    (Gatys et al. 2017), each with `style_weight`.

    Several contents: a [B,H,W,3] batch gives one Result whose image is [B,H,W,3] (history entries carry
    the item as "stage"); a list of images (any sizes) gives a list of Results. Item i uses
    `item_seed(seed, i)`; see `optimize_batch`.
    """
    chosen = {name: value for name, value in keywords.items() if name in OPTION_NAMES}
    rest = {name: value for name, value in keywords.items() if name not in OPTION_NAMES}
    if max_size is not _AS_OPTIONS and max_size is not None:
        chosen["max_size"] = max_size
    options = _run_options(options, chosen)
    side = None if max_size is None else options.max_size
    vgg = vgg or load_vgg(arch=options.architecture, pooling=options.pooling, convention=options.convention,
                          normalized=options.normalized)
    images = list(style_image) if isinstance(style_image, (list, tuple)) else [style_image]
    with reporting_tiles(target_reporter(getattr(rest.get("callback"), "tile", None))):
        style = _style_targets(vgg, images, style_masks, style_layers, style_layer_weights, style_blend, options)
        items = [fit(image, side) for image in _content_items(content_image)]
        contents = [ContentTarget(vgg, image, content_layers, options.content_weight) for image in items]
    if not isinstance(content_image, (list, tuple)) and len(contents) == 1:
        return optimize(vgg, contents[0], style, options=options, **rest)
    results = optimize_batch(vgg, contents, style, options=options, **rest)
    if isinstance(content_image, (list, tuple)):
        return results
    return Result.batch(results)


def _style_targets(vgg, images, masks, layers, layer_weights, blend, options: RunOptions):
    """One StyleTarget blending the style images, or with `masks` one per image and region."""
    if masks is None:
        return StyleTarget(vgg, images, layers, layer_weights, options.style_weight, blend, options.style_scale,
                           style_loss=options.style_loss)
    masks = list(masks) if isinstance(masks, (list, tuple)) else [masks]
    if len(masks) != len(images):
        raise OptionError("style_masks", f"{len(masks)} mask(s) given for {len(images)} style image(s): give one "
                                         "mask per style image (where in the output that style applies)")
    if blend is not None:
        raise OptionError("style_blend", "style images with masks paint regions, they are not blended: leave "
                                         "style_blend empty")
    return [StyleTarget(vgg, image, layers, layer_weights, options.style_weight, None, options.style_scale,
                        style_loss=options.style_loss, mask=mask) for image, mask in zip(images, masks)]


def _content_items(content_image) -> list[torch.Tensor]:
    """A list of images, or the items of a [B,H,W,C] batch, each [1,H,W,3]."""
    if isinstance(content_image, (list, tuple)):
        if not content_image:
            raise ImageError("no content image given")
        return [as_bhwc(image) for image in content_image]
    batch = as_bhwc(content_image)
    return [batch[i:i + 1] for i in range(batch.shape[0])]


def reconstruct_content(image, layers: Sequence[str] = CONTENT_LADDER, *, vgg=None,
                        options: RunOptions | None = None, steps: int | None = None,
                        max_size: int | None = _AS_OPTIONS, callback: Callable | None = None,
                        **keywords) -> Result:
    """Invert the network from one layer at a time, starting from white noise: a batch, one per layer.
    `steps` and `max_size` are options.reconstruction_steps / reconstruction_max_size (max_size None: the
    image as it is); other keyword options (optimizer, lr, seed, weighting) as `optimize`'s.
    (One term per run, so `weighting` only scales the recorded loss: relative to the target under
    "relative" and "normalized", the paper's raw ½Σ(F−P)² under "paper".)"""
    options, side = _reconstruction_options(options, steps, max_size, keywords)
    vgg = vgg or load_vgg()
    layers = vgg.check_layers(layers)
    image = fit(image, side)
    stages = [(ContentTarget(vgg, image, [name], 1.0), None) for name in layers]
    return _ladder(vgg, stages, tuple(image.shape[1:3]), options, callback=callback,
                   noise_scale=RECONSTRUCTION_NOISE)


def reconstruct_style(image, layers: Sequence[str] = DEFAULT_STYLE_LAYERS, *, cumulative: bool = True,
                      vgg=None, options: RunOptions | None = None, steps: int | None = None, size=None,
                      max_size: int | None = _AS_OPTIONS, callback: Callable | None = None,
                      chain: bool = TEXTURE_CHAIN, **keywords) -> Result:
    """Texture synthesis from Gram matrices, from seeded noise with the painting's power spectrum at
    periods up to TEXTURE_MAX_PERIOD px (TEXTURE_START; white noise as in the paper with "white"). `cumulative` gives
    the paper's ladder (conv1_1; conv1_1+conv2_1; ...), each rung started from the previous rung's texture
    when `chain` (False: every rung from the same noise, as the paper); otherwise one layer per image.
    Output at the image's size or `size`. `steps`, `max_size` and keyword options as reconstruct_content's.
    `weighting` "relative" or "normalized" makes each layer's Gram term relative to its target (a
    cumulative rung weighs its layers by relative error), "paper" keeps the raw E_l."""
    options, side = _reconstruction_options(options, steps, max_size, keywords)
    vgg = vgg or load_vgg()
    layers = vgg.check_layers(layers)
    image = fit(image, side)
    out_size = tuple(size) if size is not None else tuple(image.shape[1:3])
    sets = [layers[:i + 1] for i in range(len(layers))] if cumulative else [[name] for name in layers]
    stages = [(None, StyleTarget(vgg, image, names, None, 1.0, size=out_size, style_loss="gram"))
              for names in sets]
    start = ((lambda level_size, level_seed: spectrum_noise(image, level_size, level_seed, device=vgg.device,
                                                            max_period=TEXTURE_MAX_PERIOD))
             if TEXTURE_START == "spectrum" else None)
    return _ladder(vgg, stages, out_size, options, callback=callback, noise_scale=TEXTURE_NOISE,
                   coarse_share=TEXTURE_COARSE_SHARE, start=start, chain=cumulative and chain)


def _reconstruction_options(options: RunOptions | None, steps, max_size, keywords: dict):
    """(options, the long side to shrink to or None) of a reconstruction call."""
    if steps is not None:
        keywords = {**keywords, "reconstruction_steps": steps}
    if max_size is not _AS_OPTIONS and max_size is not None:
        keywords = {**keywords, "reconstruction_max_size": max_size}
    options = _run_options(options, keywords)
    return options, None if max_size is None else options.reconstruction_max_size


def _ladder(vgg, stages, size, options: RunOptions, *, callback, noise_scale, coarse_share: float = 0.0,
            start: Callable | None = None, chain: bool = False) -> Result:
    """One run per stage (the same plan each, decided once for the last stage's targets), as one batch
    and one history. `coarse_share` of the steps run at half the size first when every stage's layers fit
    there. `start(size, seed)` gives the first level's pixels [1,3,H,W]; default: white noise of
    `noise_scale`. `chain`: every stage after the first starts from the previous stage's result instead
    (for nested objectives, as the cumulative ladder's: the previous rung already matches all but the
    new layer)."""
    steps = options.reconstruction_steps
    options = options.replace(steps=steps, init="noise", coarse_to_fine=False, look_size=0)
    levels = plan_run(size, steps)
    half = (size[0] // 2, size[1] // 2)
    deepest = max(max(min_input_size(name) for name in (c or s).layers) for c, s in stages)
    coarse_steps = round(steps * coarse_share)
    if 1 <= coarse_steps < steps and min(half) >= deepest:
        levels = make_plan([half, size], [coarse_steps, steps - coarse_steps])
    plan = decide(options, vgg, *stages[-1], levels=levels)
    images, history, notes, stopped = [], [], [], None
    for index, (content, style) in enumerate(stages):
        objectives = [Objective(vgg, content, style, 0.0, level.size, weighting=plan.weighting,
                                style_units=plan.style_units if plan.weighting == "relative" else None,
                                precision=level.precision)
                      for level in plan.levels]
        if chain and images:
            x0 = resize(images[-1].permute(0, 3, 1, 2).contiguous(), plan.levels[0].size).to(vgg.device)
        elif start is not None:
            x0 = start(plan.levels[0].size, options.seed)
        else:
            x0 = initial_image("noise", plan.levels[0].size, seed=options.seed, device=vgg.device,
                               noise_scale=noise_scale)
        result = run(plan, objectives, x0, options, callback=callback, stage=index, stages=len(stages),
                     step_offset=index * plan.steps, total=plan.steps * len(stages))
        images.append(result.image)
        history += result.history
        notes += [note for note in result.warnings if note not in notes]
        stopped = result.stopped
        if stopped == "callback":
            break
    return Result(torch.cat(images), history, stopped, notes, plan, options)


def fit(image, max_size: int | None) -> torch.Tensor:
    """One image as [1,H,W,3] with the long side at most `max_size` (never enlarged; None = as it is)."""
    image = as_bhwc(image)
    if image.shape[0] != 1:
        raise ImageError(f"expected one image, got a batch of {image.shape[0]}")
    return fit_image(image, OPTIONS["max_size"].check(max_size) if max_size else None)


__all__ = ["NSTError", "RunOptions", "fit", "item_seed", "optimize", "optimize_batch", "prepare",
           "reconstruct_content", "reconstruct_style", "stylize"]
