"""Drawing helpers shared by the explorer: tile grids, labels and boxes (PIL, no fonts to ship)."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

GAP = 2                    # pixels between tiles
GAP_VALUE = 1.0            # white separators
LABEL_COLOR = (255, 255, 0)
BOX_COLOR = (255, 40, 40)


def to_image(x: torch.Tensor) -> Image.Image:
    """[3,H,W] in 0..1 -> PIL RGB."""
    array = x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def from_image(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> [3,H,W] float in 0..1."""
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def label_tiles(tiles: torch.Tensor, labels: list[str]) -> torch.Tensor:
    """Write each label in the top-left corner of its tile ([N,3,H,W]), on a dark backing for contrast."""
    out = []
    for tile, text in zip(tiles, labels):
        img = to_image(tile)
        draw = ImageDraw.Draw(img)
        left, top, right, bottom = draw.textbbox((1, 0), text)
        draw.rectangle((0, 0, right + 1, bottom + 1), fill=(0, 0, 0))
        draw.text((1, 0), text, fill=LABEL_COLOR)
        out.append(from_image(img))
    return torch.stack(out)


def grid(tiles: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """[N,3,h,w] tiles -> one [1,H,W,3] image, near-square, separated by GAP white pixels."""
    n, _, h, w = tiles.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = torch.full((3, rows * h + (rows - 1) * GAP, columns * w + (columns - 1) * GAP), GAP_VALUE)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[:, r * (h + GAP):r * (h + GAP) + h, c * (w + GAP):c * (w + GAP) + w] = tiles[i]
    return canvas.permute(1, 2, 0).unsqueeze(0).contiguous()


def pad_to(tile: torch.Tensor, height: int, width: int, value: float = 0.0) -> torch.Tensor:
    """Centre a [3,h,w] tile on a height x width canvas."""
    _, h, w = tile.shape
    canvas = torch.full((3, height, width), value)
    top, left = (height - h) // 2, (width - w) // 2
    canvas[:, top:top + h, left:left + w] = tile
    return canvas


def draw_boxes(image: torch.Tensor, boxes, labels=None, color=BOX_COLOR, width: int = 1) -> torch.Tensor:
    """[3,H,W] with rectangles (x0, y0, x1, y1; x1/y1 exclusive) and optional labels drawn on it."""
    img = to_image(image)
    draw = ImageDraw.Draw(img)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=color, width=width)
        if labels:
            draw.text((x0 + 2, y0 + 1), str(labels[i]), fill=color)
    return from_image(img)


def enlarge(tiles: torch.Tensor, min_side: int) -> torch.Tensor:
    """Upscale [N,3,h,w] tiles by a whole factor (nearest) so the long side reaches about `min_side`."""
    factor = max(1, round(min_side / max(tiles.shape[-2:])))
    if factor == 1:
        return tiles
    return torch.nn.functional.interpolate(tiles, scale_factor=factor, mode="nearest")
