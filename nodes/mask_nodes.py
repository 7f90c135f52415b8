"""Mask nodes: NST Shape Mask draws a region (a half of the image, an ellipse) for the masked targets.

The drawing and every default live in the engine (nst_core/masks_shapes.py); this node reads the image's
size, turns its widgets into a `shape_mask` call and returns the mask and its inverse (the other region).
Input order is frozen: new inputs go at the end."""

from __future__ import annotations

from nst_core import masks_shapes as shapes

from .base import CATEGORY, NSTNode, outputs, widget


class NST_ShapeMask(NSTNode):
    NODE_ID = "NST_ShapeMask"
    DISPLAY_NAME = "NST Shape Mask"
    MENU = CATEGORY + "/image"
    SUMMARY = ("A mask the size of the image: its left/right/top/bottom part (split at x or y) or an "
               "ellipse around (x, y), with a soft edge. 'inverted' is the rest of the image. Feed them "
               "to NST Style Target's mask (a style per region) or NST Content Target's mask (keep a "
               "face photographic).")
    OUTPUTS = outputs(types=("MASK", "MASK"),
                      names=("mask", "inverted"),
                      tooltips=("[1,H,W], 1 inside the shape, 'outside' (0) elsewhere.",
                                "1 - mask: everything outside the shape."))
    NODE_WIDGETS = tuple(shapes.OPTIONS.values())

    @classmethod
    def inputs(cls):
        o = shapes.OPTIONS
        return {"required": {
            "image": ("IMAGE", {"tooltip": "The image the mask is for (only its size is used)."}),
            "shape": widget(o["shape"]),
            "x": widget(o["x"], step=0.01),
            "y": widget(o["y"], step=0.01),
            "size": widget(o["size"], step=0.01),
            "aspect": widget(o["aspect"], step=0.05),
            "feather": widget(o["feather"], step=0.01),
            "outside": widget(o["outside"], step=0.05),
        }}

    @classmethod
    def execute(cls, image, shape=shapes.DEFAULT_SHAPE, x=shapes.DEFAULT_X, y=shapes.DEFAULT_Y,
                size=shapes.DEFAULT_SIZE, aspect=shapes.DEFAULT_ASPECT, feather=shapes.DEFAULT_FEATHER,
                outside=shapes.DEFAULT_OUTSIDE):
        batch = cls.image_batch("image", image)
        height, width = batch.shape[1:3]
        mask = cls.call_engine(shapes.shape_mask, (height, width), shape, x=x, y=y, extent=size,
                               aspect=aspect, feather=feather, outside=outside)
        mask = mask.unsqueeze(0)
        return (mask, shapes.inverted(mask))


NODES = (NST_ShapeMask,)
