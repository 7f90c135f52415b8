"""Feature maps of one layer for one image, as a labelled grid (each map normalized on its own)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ImageError, LayerError
from ..image import to_nchw
from .render import grid, label_tiles

DEFAULT_TOP = 16          # channels shown when none are named: those with the most energy for this image
MAX_CHANNELS = 256        # a grid beyond this is unreadable; ask for a sub-set
DEFAULT_TILE = 96         # each map is upscaled (nearest) to at least this many pixels on its long side


@dataclass
class FeatureMaps:
    """grid: [1,H,W,3] image of the maps; features: the layer's raw [C,h,w] activations (all channels);
    channels: the channel index of each tile in grid order; energy: mean squared activation per channel."""
    layer: str
    grid: torch.Tensor
    features: torch.Tensor
    channels: list[int]
    energy: torch.Tensor


def _features(vgg, x: torch.Tensor, layer: str) -> torch.Tensor:
    vgg = vgg.grad_ready()
    with torch.inference_mode(False), torch.no_grad():
        return vgg.features(x.to(vgg.device), [layer])[layer].float().contiguous()


def choose_channels(energy: torch.Tensor, channels=None, top: int = DEFAULT_TOP) -> list[int]:
    """The named channels (checked against the layer's count), else the `top` with the most energy."""
    count = energy.numel()
    if channels is None or (isinstance(channels, (list, tuple)) and not channels):
        top = int(top)
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        top = min(top, count, MAX_CHANNELS)
        return energy.topk(top).indices.tolist()
    if isinstance(channels, int):
        channels = [channels]
    channels = [int(c) for c in channels]
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise LayerError(f"channel(s) {bad} out of range: this layer has channels 0..{count - 1}")
    if len(channels) > MAX_CHANNELS:
        raise ValueError(f"at most {MAX_CHANNELS} channels per grid, got {len(channels)}")
    return channels


def feature_maps(vgg, image, layer: str, channels=None, top: int = DEFAULT_TOP,
                 tile: int = DEFAULT_TILE) -> FeatureMaps:
    """The activation maps of `layer` for one image ([1,H,W,3] or PIL) as a grid of normalized tiles,
    each labelled with its channel index; `channels` (ints) picks them, else the `top` by energy."""
    (layer,) = vgg.check_layers([layer])
    x = to_nchw(image)
    if x.shape[0] != 1:
        raise ImageError(f"feature maps take one image, got a batch of {x.shape[0]}")
    feats = _features(vgg, x, layer)[0].cpu()
    energy = feats.pow(2).mean(dim=(1, 2))
    chosen = choose_channels(energy, channels, top)
    maps = feats[chosen]
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    maps = (maps - low) / (high - low).clamp_min(1e-12)   # a constant (dead) map shows black
    h, w = maps.shape[-2:]
    scale = max(1, round(tile / max(h, w)))
    maps = F.interpolate(maps.unsqueeze(1), scale_factor=scale, mode="nearest").expand(-1, 3, -1, -1)
    tiles = label_tiles(maps, [str(c) for c in chosen])
    return FeatureMaps(layer, grid(tiles), feats, chosen, energy)
