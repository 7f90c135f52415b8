"""The video options, defined once here (the engine's other options live in nst_core.settings)."""

from __future__ import annotations

from ..settings import MAX_WEIGHT, Option

# Relative to the style weight β (frames.py): at 10 frames keep drifting, at 1e3 they hold without losing
# style (nst_core/bench/README.md)
DEFAULT_TEMPORAL_WEIGHT = 1e3

TEMPORAL_WEIGHT = Option(
    "temporal_weight", DEFAULT_TEMPORAL_WEIGHT, float,
    "weight of the temporal loss (Ruder et al. 2016), relative to the style weight β: how strongly each "
    "frame keeps the previous result warped onto it, where the optical flow is reliable; 0 = every frame "
    "stylized on its own",
    min=0.0, max=MAX_WEIGHT)

# chunked clips (chunks.py): a long clip cut into chunks that can run in parallel, each next one starting on
# the last frame of the one before and aligned to it there. 0 = one chunk (the whole clip in order).
CHUNK_FRAMES = Option("chunk_frames", 0, int,
                      "frames per chunk when the clip is cut into chunks that can run in parallel (neighbours "
                      "share one frame, where the later chunk is aligned to the earlier); 0 = no chunks",
                      min=0, max=100000)

# a synthetic clip from one photo (synthetic.py): the camera's motion per frame
FRAME_COUNT = Option("frame_count", 8, int, "number of frames of the clip", min=1, max=1000)
PAN_X = Option("pan_x", 4.0, float, "camera motion to the right per frame in px (negative: to the left)",
               min=-256.0, max=256.0)
PAN_Y = Option("pan_y", 0.0, float, "camera motion down per frame in px (negative: up)", min=-256.0, max=256.0)
ZOOM = Option("zoom", 1.0, float, "zoom per frame (1.02 = 2 % closer each frame; 1 = none)", min=0.5, max=2.0)

__all__ = ["CHUNK_FRAMES", "DEFAULT_TEMPORAL_WEIGHT", "FRAME_COUNT", "PAN_X", "PAN_Y", "TEMPORAL_WEIGHT", "ZOOM"]
