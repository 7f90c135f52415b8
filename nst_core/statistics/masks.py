"""Masks: validated, resized to the output, and carried down the network to each layer's resolution.

Propagation by downsampling that follows the network's grid (one of Gatys et al. 2017's two ways): convs
keep the mask, each pooling layer averages 2x2 cells (flooring odd sizes as the VGG's pooling does), so a
deep cell's value is the share of its pixels inside the region. Not through the receptive fields: at
relu5_1 one spans ~250 px, the whole image at the coarse levels' 64-256 px, so the regions' deep
statistics (the large-scale texture) would bleed into each other.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ImageError
from ..layers import VGG19_LAYERS

# Values this far outside 0..1 (float round-off of a mask computed upstream) are clamped, not refused.
_TOLERANCE = 1e-4


def mask_tensor(mask, what: str = "mask") -> torch.Tensor:
    """A mask ([H,W] / [1,H,W] / [1,1,H,W] tensor or array, or a PIL image) -> float32 [1,1,H,W] in 0..1.

    PIL images are read as grayscale (L) / 255, 16-bit ones / 65535. Raises ImageError for other shapes,
    empty or non-finite masks, values outside 0..1 and all-zero masks."""
    if isinstance(mask, Image.Image):
        if mask.mode in ("I;16", "I;16B", "I;16L"):
            mask = np.asarray(mask, dtype=np.float32) / 65535.0
        elif mask.mode == "F":
            mask = np.asarray(mask, dtype=np.float32)
        else:
            mask = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    if not isinstance(mask, torch.Tensor):
        raise ImageError(f"{what} must be a tensor or a PIL image, got {type(mask).__name__}")
    shape = tuple(mask.shape)
    if mask.ndim < 2 or mask.ndim > 4 or any(s != 1 for s in shape[:-2]):
        raise ImageError(f"{what} must have shape [H,W], [1,H,W] or [1,1,H,W], got {list(shape)}")
    if mask.numel() == 0:
        raise ImageError(f"{what} is empty (shape {list(shape)})")
    mask = mask.detach().reshape(1, 1, *shape[-2:]).float()
    if not bool(torch.isfinite(mask).all()):
        raise ImageError(f"{what} contains NaN or infinite values")
    low, high = float(mask.min()), float(mask.max())
    if low < -_TOLERANCE or high > 1 + _TOLERANCE:
        raise ImageError(f"{what} values must lie in 0..1, got {low:g}..{high:g}")
    if high <= 0:
        raise ImageError(f"{what} is all zero: it selects no pixel, so its style would apply nowhere")
    return mask.clamp(0, 1)


def layer_masks(mask, size: Sequence[int], layers: Sequence[str],
                network_layers: Sequence[str] = VGG19_LAYERS, what: str = "mask") -> dict[str, torch.Tensor]:
    """The mask at each of `layers`' resolutions, {layer: [1,1,h,w]}, for an input image of `size` (H,W).

    `network_layers`: the VGG's layer names in forward order (vgg.layer_names); only its pooling layers
    change the resolution. Raises ImageError when the mask is invalid or covers no pixel at a layer."""
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ImageError(f"output size must be (H, W) with positive sides, got {size}")
    unknown = [name for name in layers if name not in network_layers]
    if unknown:
        raise ImageError(f"unknown layer(s) {', '.join(unknown)} for this network")
    wanted = set(layers)
    current = mask_tensor(mask, what)
    if tuple(current.shape[-2:]) != size:       # antialiased bilinear: area-correct when shrinking
        current = F.interpolate(current, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    out: dict[str, torch.Tensor] = {}
    for name in network_layers:
        if len(out) == len(wanted):
            break
        if name.startswith("pool"):
            if min(current.shape[-2:]) < 2:
                raise ImageError(f"an image of {size[1]}x{size[0]} px is too small to reach {name}")
            current = F.avg_pool2d(current, 2)
        if name in wanted:
            if not bool(current.sum() > 0):
                raise ImageError(f"{what} covers no pixel at layer {name} "
                                 f"({current.shape[-1]}x{current.shape[-2]} cells): enlarge the masked region")
            out[name] = current
    return {name: out[name] for name in layers}
