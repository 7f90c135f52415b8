"""Dense optical flow between content frames (OpenCV's DIS: classical, no network weights) and warping.

Convention: `flow(a, b)` is an [H,W,2] float32 tensor (dx, dy) on a's pixel grid such that
a(p) ≈ b(p + flow(p)); `warp(image_b, flow(a, b))` brings b onto a's grid. Ruder et al. 2016 warp the
previous result onto the current frame with the backward flow, flow(frame_t, frame_t-1).

OpenCV is an optional dependency (`pip install .[video]`); it is imported only when a flow is computed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NSTError

INSTALL_HINT = "pip install .[video]  (or: pip install opencv-python-headless)"
# DIS preset: "medium" is OpenCV's balance of speed and accuracy (its time is nothing next to one optimizer
# step; its error on small pans is far below a pixel: nst_core/bench/README.md)
DIS_PRESET = "medium"


class VideoDependencyError(NSTError):
    """The optional video dependency (OpenCV) is not installed."""


def require_opencv():
    """The cv2 module, or VideoDependencyError saying how to install it."""
    try:
        import cv2
    except ImportError:
        raise VideoDependencyError("temporal consistency needs optical flow from OpenCV, which is not installed; "
                                   f"install the video extra: {INSTALL_HINT}. (temporal_weight 0 stylizes "
                                   "the frames independently and needs no flow.)") from None
    return cv2


def available() -> bool:
    """True when OpenCV can be imported (the `video` extra is installed)."""
    try:
        require_opencv()
    except VideoDependencyError:
        return False
    return True


def _gray_u8(frame: torch.Tensor) -> np.ndarray:
    """[H,W,3] or [1,H,W,3] float 0..1 -> [H,W] uint8 luma (what DIS reads)."""
    frame = frame.reshape(frame.shape[-3:]).detach().float().cpu().clamp(0, 1)
    luma = frame @ torch.tensor([0.299, 0.587, 0.114])
    return (luma * 255.0 + 0.5).to(torch.uint8).numpy()


def optical_flow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """flow(a, b): [H,W,2] (dx, dy) with a(p) ≈ b(p + flow(p)); a and b are frames [H,W,3] in 0..1."""
    cv2 = require_opencv()
    dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{DIS_PRESET.upper()}"))
    flow = dis.calc(_gray_u8(a), _gray_u8(b), None)
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))


def flow_pair(previous: torch.Tensor, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(forward, backward) flows of two frames: flow(previous, current) and flow(current, previous)."""
    return optical_flow(previous, current), optical_flow(current, previous)


def sample_grid(flow: torch.Tensor) -> torch.Tensor:
    """grid_sample's [1,H,W,2] grid (align_corners=True) of the points p + flow(p)."""
    h, w = flow.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    x = (xs + flow[..., 0].float().cpu()) * (2.0 / max(w - 1, 1)) - 1.0
    y = (ys + flow[..., 1].float().cpu()) * (2.0 / max(h - 1, 1)) - 1.0
    return torch.stack((x, y), dim=-1).unsqueeze(0)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """image [B,C,H,W] sampled at p + flow(p) (bilinear; outside the frame the border pixel repeats)."""
    grid = sample_grid(flow).to(image.device).expand(image.shape[0], -1, -1, -1)
    return F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


# a point within half a pixel of the border lies on the border pixel's footprint: counted inside, so a
# flow that overshoots the edge by a fraction of a pixel does not drop the last column
INSIDE_MARGIN = 0.5


def lands_inside(flow: torch.Tensor) -> torch.Tensor:
    """[H,W] bool: p + flow(p) lies inside the frame (pixels entering the view land outside)."""
    h, w = flow.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    x, y = xs + flow[..., 0].float().cpu(), ys + flow[..., 1].float().cpu()
    m = INSIDE_MARGIN
    return (x >= -m) & (x <= w - 1 + m) & (y >= -m) & (y <= h - 1 + m)


__all__ = ["DIS_PRESET", "INSTALL_HINT", "VideoDependencyError", "available", "flow_pair", "lands_inside",
           "optical_flow", "require_opencv", "sample_grid", "warp"]
