"""Content and style targets: what the optimized image must match, computed once under no_grad.

A target keeps its source images so it can be re-derived for another output size (coarse-to-fine)
or another colour treatment (colour preservation); features for a size are computed once and cached.

Masks (Gatys et al. 2017, "Controlling Perceptual Factors"): a style target's `mask` says where in the
output its style applies (several style targets with masks paint several regions), `image_masks` which
part of each painting to take, a content target's `mask` how much each region must keep the photo. Masks
are carried down to each layer's resolution by nst_core.statistics.layer_masks.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Sequence

import torch

from .errors import ImageError
from .image import resize, to_nchw
from .layers import parse_layers
from .settings import DEFAULTS, DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, OPTIONS, check_blend, \
    check_layer_weights
from .statistics import DEFAULT_STYLE_LOSS, get_statistic, layer_masks, mask_tensor
from .tiled_features import extract_features, extract_targets, fits_one_forward


def _images(images) -> list[torch.Tensor]:
    """One image, a [B,H,W,C] batch, or a list of either -> list of [1,3,H,W] on the CPU."""
    if isinstance(images, (list, tuple)):
        out = [image for item in images for image in _images(item)]
        if not out:
            raise ImageError("no style image given")
        return out
    batch = to_nchw(images)
    return [batch[i:i + 1] for i in range(batch.shape[0])]


def _features(vgg, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    # one forward, or tile by tile when a large image's forward would not fit (nst_core.tiled_features)
    with torch.inference_mode(False), torch.no_grad():
        return extract_features(vgg.grad_ready(), x.to(vgg.device), layers)


class _Target:
    """What both kinds of target share: masks carried to the layers and moving to another network."""

    def masks_at(self, size) -> dict[str, torch.Tensor | None]:
        """{layer: this target's mask [1,1,h,w] at that layer for an output of `size`, or None without one}."""
        if self.mask is None:
            return dict.fromkeys(self.layers)
        return layer_masks(self.mask, size, self.layers, self.vgg.layer_names, f"{self.kind} mask")

    def on(self, vgg):
        """This target read by another network of the same layers: a copy with its own cache (the images,
        layers, weights and masks shared), made once per network, so that runs sharing a target (a batch,
        a video's frames) compute its features or statistics on that network once per size."""
        if vgg is self.vgg:
            return self
        if vgg.layer_names != self.vgg.layer_names:
            raise ValueError("a target can only move to a network with the same layers")
        twins = self.__dict__.setdefault("_twins", {})
        if id(vgg) not in twins:
            twin = copy.copy(self)
            twin.vgg, twin._cache, twin._twins = vgg, {}, {}
            twins[id(vgg)] = (vgg, twin)                   # the network kept alive: its id is not reused
        return twins[id(vgg)][1]


class ContentTarget(_Target):
    """Features P of one content image at one or more layers, weighted by α (`weight`)."""

    kind = "content"

    def __init__(self, vgg, image, layers=DEFAULT_CONTENT_LAYERS, weight: float = DEFAULTS["content_weight"],
                 layer_weights: Sequence[float] | None = None, mask=None):
        self.vgg = vgg
        # 0..1 per pixel: how much each region must keep the photo (None: everywhere, as the paper)
        self.mask = _mask(mask, "content mask")
        self.layers = parse_layers(layers, vgg.layer_names)
        self.layer_weights = check_layer_weights(layer_weights, len(self.layers), 1.0, "content_layer_weights")
        self.weight = OPTIONS["content_weight"].check(weight)
        batch = _images(image)
        if len(batch) != 1:
            raise ImageError(f"a content target takes one image, got a batch of {len(batch)}")
        self.image = batch[0]
        self.size = tuple(self.image.shape[-2:])
        vgg.check_size(*self.size, self.layers)
        self._cache: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.features_at(self.size)
        self.masks_at(self.size)

    def image_at(self, size) -> torch.Tensor:
        return resize(self.image, tuple(size))

    def features_at(self, size) -> dict[str, torch.Tensor]:
        size = tuple(size)
        if size not in self._cache:
            self._cache[size] = _features(self.vgg, self.image_at(size), self.layers)
        return self._cache[size]

    def with_image(self, image: torch.Tensor) -> "ContentTarget":
        """The same target over another image (colour preservation swaps in the luminance)."""
        return ContentTarget(self.vgg, image.permute(0, 2, 3, 1), self.layers, self.weight, self.layer_weights,
                             self.mask)


class StyleTarget(_Target):
    """The statistics (by default the features' means and covariances) of one or more style images
    (blended), weighted per layer (w_l) and by β.

    By default each style image is resized to the output's pixel count (the paper resizes the style to
    the content's size) keeping its aspect ratio, times `scale`; `size=(H, W)` fixes the size instead.
    `style_loss`: which statistics are matched (nst_core.statistics.STATISTICS: gram, wasserstein2,
    sliced_wasserstein; scaled so one β means about the same for each). `mask`: where in the output
    this style applies; `image_masks`: one mask per style image (or one for all), the part to take.
    """

    kind = "style"

    def __init__(self, vgg, images, layers=DEFAULT_STYLE_LAYERS, layer_weights=None,
                 weight: float = DEFAULTS["style_weight"], blend: Sequence[float] | None = None,
                 scale: float = DEFAULTS["style_scale"], size=None, style_loss: str = DEFAULT_STYLE_LOSS,
                 mask=None, image_masks=None):
        self.vgg = vgg
        self.style_loss = OPTIONS["style_loss"].check(style_loss)
        self.statistic = get_statistic(self.style_loss)
        self.mask = _mask(mask, "style mask")
        self.layers = parse_layers(layers, vgg.layer_names)
        self.layer_weights = check_layer_weights(layer_weights, len(self.layers), 1.0 / len(self.layers))
        self.weight = OPTIONS["style_weight"].check(weight)
        self.images = _images(images)
        self.blend = check_blend(blend, len(self.images))
        self.scale = OPTIONS["style_scale"].check(scale)
        self.size = tuple(size) if size is not None else None
        self.image_masks = _image_masks(image_masks, len(self.images))
        self._cache: dict[tuple[int, int], dict] = {}

    def style_size(self, image: torch.Tensor, out_size) -> tuple[int, int]:
        if self.size is not None:
            h, w = self.size
        else:
            area = out_size[0] * out_size[1]
            ih, iw = image.shape[-2:]
            ratio = math.sqrt(area / (ih * iw))
            h, w = ih * ratio, iw * ratio
        return max(1, round(h * self.scale)), max(1, round(w * self.scale))

    def targets_at(self, out_size) -> dict:
        """{layer: the blended statistic of the style images} for an output of `out_size` (cached)."""
        out_size = tuple(out_size)
        if out_size not in self._cache:
            per_image = []
            for image, image_mask in zip(self.images, self.image_masks):
                size = self.style_size(image, out_size)
                self.vgg.check_size(*size, self.layers)
                masks = (layer_masks(image_mask, size, self.layers, self.vgg.layer_names, "style image mask")
                         if image_mask is not None else dict.fromkeys(self.layers))
                if self.statistic.additive and not fits_one_forward(self.vgg.arch, size, self.layers):
                    with torch.inference_mode(False):       # sums added tile by tile (large images)
                        per_image.append(extract_targets(self.vgg.grad_ready(), resize(image, size).to(
                            self.vgg.device), self.layers, self.statistic, masks))
                    continue
                feats = _features(self.vgg, resize(image, size), self.layers)
                per_image.append({name: self.statistic.target(feats[name], masks[name]) for name in self.layers})
            self._cache[out_size] = {name: self.statistic.blend([t[name] for t in per_image], self.blend)
                                     for name in self.layers}
        return self._cache[out_size]

    def with_images(self, transform: Callable[[torch.Tensor], torch.Tensor]) -> "StyleTarget":
        """The same target over transformed style images (colour matching, luminance)."""
        images = [transform(image).permute(0, 2, 3, 1) for image in self.images]
        return StyleTarget(self.vgg, images, self.layers, self.layer_weights, self.weight, self.blend,
                           self.scale, self.size, self.style_loss, self.mask, self.image_masks)


def _image_masks(masks, count: int) -> list:
    """One mask (or None) per style image: None, one mask for all, or a list of `count`."""
    if masks is None:
        return [None] * count
    if not isinstance(masks, (list, tuple)):
        masks = [masks] * count
    if len(masks) != count:
        raise ImageError(f"{len(masks)} style image masks given for {count} style images")
    return [_mask(m, "style image mask") for m in masks]


def _mask(mask, what: str) -> torch.Tensor | None:
    """A checked mask [1,1,H,W] as a normal tensor (the loss keeps it for backward; ComfyUI builds targets
    under inference mode, whose tensors autograd refuses), or None."""
    if mask is None:
        return None
    with torch.inference_mode(False):
        return mask_tensor(mask, what).clone()
