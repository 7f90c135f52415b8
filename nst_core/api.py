"""The engine's high-level calls: style transfer and the paper's reconstructions (Figure 1)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from . import color
from .errors import ImageError
from .image import as_bhwc, fit_max_side, to_bhwc
from .models import load_vgg
from .optimize import DEFAULT_LR, Objective, Result, initial_image, run
from .pyramid import coarse_to_fine_schedule, optimize_pyramid
from .targets import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, ContentTarget, StyleTarget

# Defaults for the normalized Caffe VGG-19 (see README "Loss weights"); α is the content weight,
# β the style weight, and every style layer has w_l = 1/5 as in the paper.
DEFAULTS = {
    "content_weight": 1.0,
    "style_weight": 5e6,
    "tv_weight": 0.0,
    "steps": 300,
    "optimizer": "lbfgs",
    "init": "content",
    "max_size": 512,
    "reconstruction_steps": 200,
    "lr": dict(DEFAULT_LR),
}


# Reconstructions start from white noise of this amplitude around mid-gray (0.5 ± 0.05), as
# jcjohnson's neural-style does. Full-range noise leaves high-frequency residue in the near-null space
# of the first convolutions: measured at 64 px, 150 L-BFGS steps, conv1_2 reaches 17 dB PSNR from
# full-range noise and 30-44 dB from low-amplitude noise.
RECONSTRUCTION_NOISE = 0.1
# Texture synthesis starts from full-range white noise, as in the paper: a flat gray start has no
# structure for the Gram matching to grow from and converges far more slowly.
TEXTURE_NOISE = 1.0


def optimize(vgg, content: ContentTarget | None = None, style: StyleTarget | None = None, *,
             init: str = "content", init_image=None, optimizer: str = "lbfgs", steps: int = 300,
             lr: float | None = None, tv_weight: float = 0.0, seed: int = 0, size=None,
             callback: Callable | None = None, preserve_color: str = "none",
             coarse_to_fine: bool = False) -> Result:
    """Optimize an image against prebuilt targets. The output size defaults to the content's size.

    `coarse_to_fine`: run the default pyramid (`nst_core.pyramid.coarse_to_fine_schedule`: part of
    `steps` at sizes halved down to a ~128 px long side, the rest at full size) instead of `steps` steps
    at full size; only runs of at least 100 steps on images with a long side of at least 256 px
    get coarse levels.
    """
    if size is None:
        if content is None:
            raise ValueError("give `size` when there is no content target")
        size = content.size
    size = tuple(int(s) for s in size)
    if coarse_to_fine:
        sizes, level_steps = coarse_to_fine_schedule(size, steps)
        if len(sizes) > 1:
            return optimize_pyramid(vgg, content, style, sizes, level_steps, init=init, init_image=init_image,
                                    optimizer=optimizer, lr=lr, tv_weight=tv_weight, seed=seed,
                                    callback=callback, preserve_color=preserve_color)
    content, style, present, notes = color.prepare(preserve_color, content, style)
    objective = Objective(vgg, content, style, tv_weight, size)
    x0 = initial_image(init, size, content=content, style=style, init_image=init_image, seed=seed,
                       device=vgg.device)
    if present is not None and init in ("style", "image", "noise"):
        x0 = color.luminance_rgb(x0)
    x, history, stopped, run_notes = run(objective, x0, optimizer=optimizer, steps=steps, lr=lr,
                                         callback=callback, present=present)
    if present is not None:
        x = present(x)
    return Result(to_bhwc(x), history, stopped, notes + run_notes)


def stylize(content_image, style_image, *, vgg=None, content_layers=DEFAULT_CONTENT_LAYERS,
            style_layers=DEFAULT_STYLE_LAYERS, style_layer_weights=None,
            content_weight: float = DEFAULTS["content_weight"], style_weight: float = DEFAULTS["style_weight"],
            style_blend: Sequence[float] | None = None, style_scale: float = 1.0,
            max_size: int | None = DEFAULTS["max_size"], coarse_to_fine: bool = True, **options) -> Result:
    """Gatys style transfer of `content_image` in the style of `style_image` (one image or a list).

    `max_size` caps the output's long side (the content is resized down, never up); other keyword
    options are those of `optimize` (init, optimizer, steps, lr, tv_weight, seed, callback, preserve_color).

    `coarse_to_fine` (default): when the image's long side is at least 256 px and `steps` at least 100,
    spend half of `steps` at a ~128 px long side, a third at each level halving the side in between, then
    40% at full size (`nst_core.pyramid.coarse_to_fine_schedule`); at 512 px this reaches the loss of as
    many full-size L-BFGS steps several times sooner (README, "Speed").
    """
    vgg = vgg or load_vgg()
    content_image = _fit(content_image, max_size)
    content = ContentTarget(vgg, content_image, content_layers, content_weight)
    styles = style_image if isinstance(style_image, (list, tuple)) else [style_image]
    style = StyleTarget(vgg, styles, style_layers, style_layer_weights, style_weight, style_blend, style_scale)
    steps = int(options.pop("steps", DEFAULTS["steps"]))
    return optimize(vgg, content, style, steps=steps, coarse_to_fine=coarse_to_fine, **options)


def reconstruct_content(image, layers: Sequence[str] = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"),
                        *, vgg=None, steps: int = DEFAULTS["reconstruction_steps"], optimizer: str = "lbfgs",
                        lr: float | None = None, seed: int = 0, max_size: int | None = DEFAULTS["max_size"],
                        callback: Callable | None = None) -> Result:
    """Invert the network from one layer at a time, starting from white noise: a batch, one per layer."""
    vgg = vgg or load_vgg()
    layers = vgg.check_layers(layers)
    image = _fit(image, max_size)
    stages = []
    for name in layers:
        target = ContentTarget(vgg, image, [name], 1.0)
        stages.append((target, None))
    return _ladder(vgg, stages, steps=steps, optimizer=optimizer, lr=lr, seed=seed, callback=callback,
                   noise_scale=RECONSTRUCTION_NOISE)


def reconstruct_style(image, layers: Sequence[str] = DEFAULT_STYLE_LAYERS, *, cumulative: bool = True,
                      vgg=None, steps: int = DEFAULTS["reconstruction_steps"], optimizer: str = "lbfgs",
                      lr: float | None = None, seed: int = 0, size=None,
                      max_size: int | None = DEFAULTS["max_size"], callback: Callable | None = None) -> Result:
    """Texture synthesis from Gram matrices, from white noise. `cumulative` gives the paper's ladder
    (conv1_1; conv1_1+conv2_1; ...); otherwise one layer per image. Output at the image's size or `size`."""
    vgg = vgg or load_vgg()
    layers = vgg.check_layers(layers)
    image = _fit(image, max_size)
    out_size = tuple(size) if size is not None else tuple(image.shape[1:3])
    sets = [layers[:i + 1] for i in range(len(layers))] if cumulative else [[name] for name in layers]
    stages = [(None, StyleTarget(vgg, image, names, None, 1.0, size=out_size)) for names in sets]
    return _ladder(vgg, stages, steps=steps, optimizer=optimizer, lr=lr, seed=seed, callback=callback,
                   size=out_size, noise_scale=TEXTURE_NOISE)


def _ladder(vgg, stages, *, steps, optimizer, lr, seed, callback, noise_scale, size=None) -> Result:
    images, history, notes, stopped = [], [], [], None
    total = steps * len(stages)
    for index, (content, style) in enumerate(stages):
        out_size = size or content.size
        objective = Objective(vgg, content, style, 0.0, out_size)
        x0 = initial_image("noise", out_size, seed=seed, device=vgg.device, noise_scale=noise_scale)
        x, stage_history, stopped, stage_notes = run(
            objective, x0, optimizer=optimizer, steps=steps, lr=lr, callback=callback, stage=index,
            stages=len(stages), offset=index * steps, overall_total=total)
        images.append(to_bhwc(x))
        history += stage_history
        notes += stage_notes
        if stopped == "callback":
            break
    return Result(torch.cat(images), history, stopped, notes)


def _fit(image, max_size: int | None) -> torch.Tensor:
    """[1,H,W,3] with the long side at most `max_size` (never upscaled)."""
    image = as_bhwc(image)
    if image.shape[0] != 1:
        raise ImageError(f"expected one image, got a batch of {image.shape[0]}")
    if max_size:
        h, w = fit_max_side(image.shape[1], image.shape[2], int(max_size))
        if (h, w) != tuple(image.shape[1:3]):
            from .image import resize
            image = resize(image.permute(0, 3, 1, 2), (h, w)).permute(0, 2, 3, 1)
    return image
