"""A test clip from one photo: a camera panning (and zooming) across it, so the true motion is known.

Frame t is the window centred at c + t·(dx, dy) whose size is the output size / zoom^t, resampled to the
output size. The output size is the largest whose every window fits inside the photo. With zoom 1 and
whole-pixel shifts the frames are exact crops: the backward flow flow(t, t−1) is (dx, dy) everywhere
except the strip entering the view. Used by the tests and the video template.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ImageError
from ..image import as_bhwc
from .options import FRAME_COUNT, PAN_X, PAN_Y, ZOOM

# the smallest frame side the default network takes down to relu5_1 (VGG pools 4 times before it)
MIN_FRAME_SIDE = 32


def pan_clip(image, frames: int = FRAME_COUNT.default, dx: float = PAN_X.default, dy: float = PAN_Y.default,
             zoom: float = ZOOM.default, size=None) -> torch.Tensor:
    """[T,h,w,3] frames of a camera moving by (dx, dy) px and zooming by `zoom` per frame over `image`;
    `size` (h, w) picks a smaller frame than the largest that fits."""
    photo = as_bhwc(image)
    if photo.shape[0] != 1:
        raise ImageError(f"a pan clip is made from one image, got a batch of {photo.shape[0]}")
    count, dx, dy, zoom = FRAME_COUNT.check(frames), PAN_X.check(dx), PAN_Y.check(dy), ZOOM.check(zoom)
    H, W = photo.shape[1:3]
    largest = max(zoom ** -t for t in range(count))          # the widest window, relative to the output
    h = math.floor((H - abs(dy) * (count - 1)) / largest)
    w = math.floor((W - abs(dx) * (count - 1)) / largest)
    if size is not None:
        if int(size[0]) > h or int(size[1]) > w:
            raise ImageError(f"frames of {int(size[1])}x{int(size[0])} px do not fit: at most {w}x{h} px here")
        h, w = int(size[0]), int(size[1])
    if min(h, w) < MIN_FRAME_SIDE:
        raise ImageError(f"a {W}x{H} image leaves frames of {max(w, 0)}x{max(h, 0)} px for {count} frames moving "
                         f"({dx:g}, {dy:g}) px with zoom {zoom:g}; frames need at least {MIN_FRAME_SIDE} px: "
                         "use a larger image, fewer frames or less motion")
    # the path's centre at the photo's centre, frame 0's corner on a whole pixel (then whole-pixel moves
    # without zoom give exact crops)
    cx0 = math.floor((W - 1) / 2 - dx * (count - 1) / 2 - (w - 1) / 2) + (w - 1) / 2
    cy0 = math.floor((H - 1) / 2 - dy * (count - 1) / 2 - (h - 1) / 2) + (h - 1) / 2
    source = photo.permute(0, 3, 1, 2).float()
    out = []
    for t in range(count):
        scale = zoom ** -t
        xs = cx0 + dx * t + (torch.arange(w, dtype=torch.float32) - (w - 1) / 2) * scale
        ys = cy0 + dy * t + (torch.arange(h, dtype=torch.float32) - (h - 1) / 2) * scale
        gy, gx = torch.meshgrid(ys * (2 / (H - 1)) - 1, xs * (2 / (W - 1)) - 1, indexing="ij")
        grid = torch.stack((gx, gy), dim=-1).unsqueeze(0)
        out.append(F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=True))
    return torch.cat(out).permute(0, 2, 3, 1).clamp(0, 1).contiguous()


__all__ = ["MIN_FRAME_SIDE", "pan_clip"]
