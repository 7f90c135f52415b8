"""The receptive field drawn on an image: the unit nearest `position`, its neighbour one stride away and
the centres of every unit of the layer, with the numbers as text."""

from __future__ import annotations

import torch

from ..image import as_bhwc
from .receptive import DEFAULT_ARCH, receptive_field
from .render import draw_boxes

NEIGHBOUR_COLOR = (40, 160, 255)
CENTER_COLOR = (255, 255, 0)


def field_overlay(image, layer: str, arch: str = DEFAULT_ARCH, position: float = 0.5) -> tuple[torch.Tensor, str]:
    """([B,H,W,3] with the field of one unit (red) and of its right-hand neighbour (blue) drawn, unit
    centres as yellow dots; a text of size, stride and offset)."""
    field = receptive_field(layer, arch)
    batch = as_bhwc(image)
    out = []
    h, w = batch.shape[1:3]
    units_h = max(1, int((h - 1 - field.offset) // field.stride) + 1) if h > field.offset else 1
    units_w = max(1, int((w - 1 - field.offset) // field.stride) + 1) if w > field.offset else 1
    row = min(units_h - 1, max(0, round((position * (h - 1) - field.offset) / field.stride)))
    col = min(units_w - 1, max(0, round((position * (w - 1) - field.offset) / field.stride)))
    box = field.box(row, col, h, w)
    for x in batch:
        x = x.permute(2, 0, 1)
        if col + 1 < units_w:
            x = draw_boxes(x, [field.box(row, col + 1, h, w)], color=NEIGHBOUR_COLOR)
        x = draw_boxes(x, [box], width=2)
        if field.stride >= 4:                       # denser centre grids would cover the image
            for r in range(units_h):
                for c in range(units_w):
                    cy, cx = int(round(field.center(r))), int(round(field.center(c)))
                    if 0 <= cy < h and 0 <= cx < w:
                        x[:, cy, cx] = torch.tensor(CENTER_COLOR, dtype=x.dtype) / 255
        out.append(x.permute(1, 2, 0))
    clipped = "" if box == (*field.span(col)[:1], *field.span(row)[:1], field.span(col)[1] + 1,
                            field.span(row)[1] + 1) else " (clipped at the image border: zero padding there)"
    text = (f"{arch} {field.describe()}\nunit (row {row}, col {col}) of a {units_h}x{units_w} map sees "
            f"x {box[0]}..{box[2] - 1}, y {box[1]}..{box[3] - 1}{clipped}; its neighbour (blue) is "
            f"{field.stride} px to the right")
    return torch.stack(out), text
