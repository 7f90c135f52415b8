"""Simple region masks drawn from a few numbers (a half of the image, an ellipse), with a soft edge.

They feed the masked targets: NST Style Target's `mask` (two styles, one per half) and NST Content
Target's `mask` (keep a face photographic). Every default and range is defined once here (`OPTIONS`);
the NST Shape Mask node builds its widgets from them.

    mask = shape_mask((h, w), "ellipse", x=0.5, y=0.4, size=0.4, aspect=1.3, feather=0.1)   # [H,W] 0..1
"""

from __future__ import annotations

import torch

from .settings import MAX_SIDE, Option, OptionError

SHAPES = ("left", "right", "top", "bottom", "ellipse")
DEFAULT_SHAPE = "left"
DEFAULT_X = 0.5          # left/right: where the split is; ellipse: the centre (fraction of the width)
DEFAULT_Y = 0.5          # top/bottom: where the split is; ellipse: the centre (fraction of the height)
DEFAULT_SIZE = 0.5       # ellipse width as a fraction of the image width
DEFAULT_ASPECT = 1.0     # ellipse height / width in pixels (1 = a circle)
DEFAULT_FEATHER = 0.05   # soft edge: < 1 a fraction of the shorter side, >= 1 pixels; 0 = hard edge
DEFAULT_OUTSIDE = 0.0    # the mask's value outside the shape (inside it is 1)

OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("shape", DEFAULT_SHAPE, str, "left/right/top/bottom: that part of the image up to x (or y) is 1; "
                                        "ellipse: an ellipse around (x, y)", choices=SHAPES),
    Option("x", DEFAULT_X, float, "left/right: where the split lies; ellipse: its centre "
                                  "(fraction of the width, 0 = left edge)", min=0.0, max=1.0),
    Option("y", DEFAULT_Y, float, "top/bottom: where the split lies; ellipse: its centre "
                                  "(fraction of the height, 0 = top edge)", min=0.0, max=1.0),
    Option("size", DEFAULT_SIZE, float, "ellipse width as a fraction of the image width "
                                        "(ignored by the halves)", min=0.0, max=4.0),
    Option("aspect", DEFAULT_ASPECT, float, "ellipse height / width in pixels (1 = a circle, 1.3 = an upright "
                                            "oval such as a face)", min=0.05, max=20.0),
    Option("feather", DEFAULT_FEATHER, float, "width of the soft edge: below 1 a fraction of the shorter "
                                              "side, from 1 on pixels; 0 = a hard edge", min=0.0,
           max=float(MAX_SIDE)),
    Option("outside", DEFAULT_OUTSIDE, float, "the mask's value outside the shape (inside: 1). With a content "
                                              "mask, 0.2 and a 5x content weight keep the shape 5x more than "
                                              "the rest, which still keeps the photo's layout", min=0.0, max=1.0),
)}


def _smoothstep(t: torch.Tensor) -> torch.Tensor:
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def shape_mask(size, shape: str = DEFAULT_SHAPE, x: float = DEFAULT_X, y: float = DEFAULT_Y,
               extent: float = DEFAULT_SIZE, aspect: float = DEFAULT_ASPECT,
               feather: float = DEFAULT_FEATHER, outside: float = DEFAULT_OUTSIDE) -> torch.Tensor:
    """A [H,W] float32 mask in 0..1 for an image of `size` = (height, width): 1 inside the shape, 0 outside,
    a smoothstep ramp `feather` wide centred on the edge (so the edge itself is 0.5 and the ramp is
    symmetric: mask + the opposite half's mask = 1); `outside` lifts the 0 (outside + (1 - outside) * shape).
    `extent` is the ellipse width (option "size").
    Raises OptionError naming the option for a refused value."""
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise OptionError("image", f"expected an image size (height, width), got {size!r}") from None
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise OptionError("image", f"image size {width}x{height} must lie in 1..{MAX_SIDE} px per side")
    shape = OPTIONS["shape"].check(shape)
    x, y = OPTIONS["x"].check(x), OPTIONS["y"].check(y)
    extent, aspect = OPTIONS["size"].check(extent), OPTIONS["aspect"].check(aspect)
    feather = OPTIONS["feather"].check(feather)
    soft = feather * min(height, width) if feather < 1.0 else float(feather)    # below 1: a fraction of the side
    floor = OPTIONS["outside"].check(outside)

    cols = (torch.arange(width, dtype=torch.float32) + 0.5).view(1, width)      # pixel centres
    rows = (torch.arange(height, dtype=torch.float32) + 0.5).view(height, 1)
    cx, cy = x * width, y * height
    halves = {"left": cx - cols, "right": cols - cx, "top": cy - rows, "bottom": rows - cy}
    if shape in halves:
        inside = halves[shape].expand(height, width)      # signed distance to the edge, > 0 inside
    else:
        a = max(extent * width / 2.0, 1e-6)                # half-axes in pixels
        b = max(a * aspect, 1e-6)
        dx, dy = cols - cx, rows - cy
        r = torch.sqrt((dx / a) ** 2 + (dy / b) ** 2)      # 1 on the ellipse
        # distance to the ellipse to first order: (1 - r) / |grad r| (exact on the axes of a circle)
        grad = torch.sqrt((dx / a ** 2) ** 2 + (dy / b ** 2) ** 2) / r.clamp_min(1e-9)
        inside = torch.where(r > 1e-9, (1.0 - r) / grad.clamp_min(1e-12), torch.full_like(r, min(a, b)))
    mask = (inside > 0).float() if soft <= 0 else _smoothstep(0.5 + inside / soft).float()
    return mask if floor == 0 else floor + (1.0 - floor) * mask


def inverted(mask: torch.Tensor) -> torch.Tensor:
    """1 - mask: the rest of the image (the other region)."""
    return 1.0 - mask
