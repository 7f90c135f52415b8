"""Top-activating patches (Zeiler & Fergus 2014): over many images, the input patches that drive one
channel most, each cropped at its unit's receptive field, optionally with the gradient of the unit's
activation projected back to the pixels (what in the patch the unit responds to)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ImageError, LayerError
from ..image import as_bhwc, fit_max_side, load_image, resize, to_nchw
from .receptive import ReceptiveField, receptive_field
from .render import enlarge, grid, label_tiles, pad_to

DEFAULT_K = 9
DEFAULT_OVERLAP = 0.5     # most IoU allowed between two returned boxes of one image (1.0: no suppression)
DEFAULT_MAX_SIDE = 256    # images are shrunk to this long side before the search
MAX_K = 100
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
PATCH_BACKGROUND = 0.5
TILE_SIDE = 64            # small patches are shown enlarged (nearest) to about this side


@dataclass
class TopPatches:
    """values: the channel's activation at each returned unit, highest first; units: (image, row, col);
    boxes: (image, x0, y0, x1, y1) in the (shrunk) image's pixels, x1/y1 exclusive; patches: [h,w,3] crops;
    grid: [1,H,W,3] of the patches (padded to the field size, labelled with their rank);
    gradients / gradient_grid: the projection of each activation to its patch (None unless asked)."""
    layer: str
    channel: int
    field: ReceptiveField
    values: list[float]
    units: list[tuple[int, int, int]]
    boxes: list[tuple[int, int, int, int, int]]
    patches: list[torch.Tensor]
    grid: torch.Tensor
    images: list[torch.Tensor] = field(repr=False, default_factory=list)
    gradients: list[torch.Tensor] | None = None
    gradient_grid: torch.Tensor | None = None


def gather_images(images, max_side: int = DEFAULT_MAX_SIDE) -> list[torch.Tensor]:
    """A folder path, a file path, a [B,H,W,3] batch, a PIL image or a list of these -> [1,3,H,W] each,
    the long side at most `max_side`."""
    out: list[torch.Tensor] = []
    items = images if isinstance(images, (list, tuple)) else [images]
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            path = Path(item).expanduser()
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise ImageError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
                batch = [to_nchw(load_image(p)) for p in files]
            else:
                batch = [to_nchw(load_image(path))]
        else:
            tensor = to_nchw(as_bhwc(item))
            batch = [tensor[i:i + 1] for i in range(tensor.shape[0])]
        for x in batch:
            out.append(resize(x, fit_max_side(x.shape[2], x.shape[3], int(max_side))))
    if not out:
        raise ImageError("no images given")
    return out


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def select_units(maps: list[torch.Tensor], field_: ReceptiveField, sizes, k: int, overlap: float):
    """Greedy: the highest units first, skipping one whose box overlaps a kept box of the same image by
    more than `overlap` IoU. Returns [(value, image, row, col, box)]."""
    values = torch.cat([m.flatten() for m in maps])
    owners = torch.cat([torch.full((m.numel(),), i) for i, m in enumerate(maps)])
    offsets = torch.cat([torch.arange(m.numel()) for m in maps])
    order = values.argsort(descending=True, stable=True)
    kept: list[tuple] = []
    for index in order.tolist():
        image = int(owners[index])
        width_units = maps[image].shape[1]
        row, col = divmod(int(offsets[index]), width_units)
        h, w = sizes[image]
        box = field_.box(row, col, h, w)
        if any(other[1] == image and _iou(box, other[4]) > overlap for other in kept):
            continue
        kept.append((float(values[index]), image, row, col, box))
        if len(kept) == k:
            break
    return kept


def _gradient_tile(vgg, x: torch.Tensor, layer: str, channel: int, row: int, col: int, box) -> torch.Tensor:
    """d activation / d pixels inside the box, as a signed image: gray 0, brighter where raising the
    pixel raises the activation (each patch scaled by its own largest magnitude)."""
    with torch.inference_mode(False), torch.enable_grad():
        pixels = x.detach().clone().requires_grad_(True)
        vgg.features(pixels, [layer])[layer][0, channel, row, col].backward()
        grad = pixels.grad[0, :, box[1]:box[3], box[0]:box[2]]
    return (0.5 + 0.5 * grad / grad.abs().max().clamp_min(1e-20)).cpu()


def top_patches(vgg, images, layer: str, channel: int, k: int = DEFAULT_K, overlap: float = DEFAULT_OVERLAP,
                gradients: bool = False, max_side: int = DEFAULT_MAX_SIDE) -> TopPatches:
    """The k units of `channel` at `layer` with the highest activation over `images` (a folder, files, a
    batch or a list), as patches cropped at the receptive field with their boxes."""
    (layer,) = vgg.check_layers([layer])
    k = int(k)
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")
    if not 0.0 <= float(overlap) <= 1.0:
        raise ValueError(f"overlap must be between 0 and 1, got {overlap}")
    vgg = vgg.grad_ready()
    field_ = receptive_field(layer, vgg.arch)
    batch = gather_images(images, max_side)
    maps, sizes = [], []
    with torch.inference_mode(False), torch.no_grad():
        for x in batch:
            vgg.check_size(x.shape[2], x.shape[3], [layer])
            feats = vgg.features(x.to(vgg.device), [layer])[layer]
            if not 0 <= int(channel) < feats.shape[1]:
                raise LayerError(f"channel {channel} out of range for {layer}: it has channels "
                                 f"0..{feats.shape[1] - 1}")
            maps.append(feats[0, int(channel)].float().cpu())
            sizes.append((x.shape[2], x.shape[3]))
    kept = select_units(maps, field_, sizes, k, float(overlap))
    patches, tiles, grads, grad_tiles = [], [], [], []
    side = min(field_.size, max(max(s) for s in sizes))
    for rank, (value, image, row, col, box) in enumerate(kept, start=1):
        x0, y0, x1, y1 = box
        crop = batch[image][0, :, y0:y1, x0:x1]
        patches.append(crop.permute(1, 2, 0).contiguous())
        tiles.append(pad_to(crop, side, side, PATCH_BACKGROUND))
        if gradients:
            tile = _gradient_tile(vgg, batch[image].to(vgg.device), layer, int(channel), row, col, box)
            grads.append(tile.permute(1, 2, 0).contiguous())
            grad_tiles.append(pad_to(tile, side, side, PATCH_BACKGROUND))
    labels = [f"{rank}: {value:.3g}" for rank, (value, *_rest) in enumerate(kept, start=1)]
    result = TopPatches(
        layer, int(channel), field_, [v for v, *_ in kept], [(i, r, c) for _, i, r, c, _ in kept],
        [(i, *box) for _, i, _, _, box in kept], patches, grid(label_tiles(enlarge(torch.stack(tiles), TILE_SIDE), labels)),
        images=[x[0].permute(1, 2, 0) for x in batch])
    if gradients:
        result.gradients = grads
        result.gradient_grid = grid(label_tiles(enlarge(torch.stack(grad_tiles), TILE_SIDE), labels))
    return result
