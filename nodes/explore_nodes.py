"""The layer explorer's nodes: one per idea (feature maps, channel visualization, top patches, receptive
field). They only parse widgets (the explorer's Options, nst_core/explore/options.py) and call the engine;
progress and previews go through `host`. Input order is frozen: new inputs go at the end."""

from __future__ import annotations

import nst_core
from nst_core.explore import options as opt
from nst_core.explore.channels import visualize_channel
from nst_core.explore.maps import feature_maps
from nst_core.explore.overlay import field_overlay
from nst_core.explore.patches import top_patches

from . import host
from .base import CATEGORY, NSTNode, outputs, widget

PREVIEW_EVERY = 5


def _vgg_input():
    return ("NST_VGG", {"tooltip": "The network, from NST Load VGG."})


class _ExploreNode(NSTNode):
    MENU = CATEGORY + "/explore"
    IS_EXPERIMENTAL = True          # research views of the network: their outputs may still change
    # layer names are checked before the engine runs: its LayerErrors are then about channel numbers
    ERROR_INPUTS = {"weights": "vgg", "layers": "channels", "image": "image"}

    @classmethod
    def channel_list(cls, name: str, text) -> list[int] | None:
        """'0, 12, 40' -> [0, 12, 40]; '' -> None."""
        parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
        if not parts:
            return None
        try:
            return [int(p) for p in parts]
        except ValueError:
            raise cls.error(name, f"expected channel numbers such as 0, 12, 40, got {text!r}") from None


class NST_FeatureMaps(_ExploreNode):
    NODE_WIDGETS = (opt.LAYER, opt.CHANNELS, opt.TOP)
    NODE_ID = "NST_FeatureMaps"
    DISPLAY_NAME = "NST Feature Maps"
    SUMMARY = ("The activation maps of one layer for an image, as a grid: each map normalized on its own "
               "and labelled with its channel index. Without channels named, the ones with the most "
               "energy for this image.")
    OUTPUTS = outputs(types=("IMAGE", "STRING"),
                      names=("maps", "channels"),
                      tooltips=("The activation maps as a labelled grid (each map normalized on its own).",
                                "The channels shown and their energy, as text."))

    @classmethod
    def inputs(cls):
        return {"required": {"vgg": _vgg_input(), "image": ("IMAGE", {"tooltip": "One image."}),
                             "layer": widget(opt.LAYER), "channels": widget(opt.CHANNELS),
                             "top": widget(opt.TOP)}}

    @classmethod
    def execute(cls, vgg, image, layer=opt.LAYER.default, channels=opt.CHANNELS.default, top=opt.TOP.default):
        vgg = cls.check_vgg(vgg)
        image = cls.single_image("image", image)
        (layer,) = cls.layers("layer", layer, vgg)
        chosen = cls.channel_list("channels", channels)
        top = cls.check(opt.TOP, top)
        result = cls.call_engine(feature_maps, vgg, image, layer, chosen, top)
        h, w = result.features.shape[-2:]
        text = (f"{layer}: {result.features.shape[0]} channels of {w}x{h}; shown: "
                + ", ".join(map(str, result.channels)))
        return (result.grid, text)


class NST_VisualizeChannel(_ExploreNode):
    NODE_WIDGETS = (opt.LAYER, opt.VIS_CHANNELS, opt.SIZE, opt.STEPS, opt.SEED)
    NODE_ID = "NST_VisualizeChannel"
    DISPLAY_NAME = "NST Visualize Channel"
    SUMMARY = ("The image a channel responds to most (activation maximization with a decorrelated "
               "colour and frequency parameterization, jitter and TV, as in Olah et al. 2017). One image "
               "per channel, optimized together.")
    OUTPUTS = outputs(types=("IMAGE", "STRING"),
                      names=("images", "activations"),
                      tooltips=("One image per channel: what drives it most.",
                                "Each channel's mean activation on its image, as text."))

    @classmethod
    def inputs(cls):
        return {"required": {"vgg": _vgg_input(), "layer": widget(opt.LAYER),
                             "channels": widget(opt.VIS_CHANNELS), "size": widget(opt.SIZE),
                             "steps": widget(opt.STEPS), "seed": widget(opt.SEED)}}

    @classmethod
    def execute(cls, vgg, layer=opt.LAYER.default, channels=opt.VIS_CHANNELS.default, size=opt.SIZE.default,
                steps=opt.STEPS.default, seed=opt.SEED.default):
        vgg = cls.check_vgg(vgg)
        (layer,) = cls.layers("layer", layer, vgg)
        chosen = cls.channel_list("channels", channels)
        if chosen is None:
            raise cls.error("channels", "name at least one channel, e.g. 0 or 0, 12, 40")
        size, steps, seed = cls.check(opt.SIZE, size), cls.check(opt.STEPS, steps), cls.check(opt.SEED, seed)
        bar = host.ProgressBar(steps)

        def callback(progress):
            host.check_interrupted()
            preview = None
            if progress.step % PREVIEW_EVERY == 0 or progress.step == progress.total:
                preview = nst_core.to_pil(progress.image)
            bar.update(progress.step, progress.total, preview)

        result = cls.call_engine(visualize_channel, vgg, layer, chosen, size=size, steps=steps, seed=seed,
                                 callback=callback)
        text = "\n".join(f"{name} channel {c}: mean activation {a:.3g}"
                         for name, c, a in zip(result.layers, result.channels, result.activations))
        return (result.images, text)


class NST_TopPatches(_ExploreNode):
    NODE_WIDGETS = (opt.LAYER, opt.CHANNEL, opt.K, opt.OVERLAP, opt.GRADIENTS, opt.MAX_SIDE)
    NODE_ID = "NST_TopPatches"
    DISPLAY_NAME = "NST Top Patches"
    SUMMARY = ("Over a batch of images, the patches that drive one channel most (Zeiler & Fergus 2014), "
               "cropped at the layer's receptive field; optionally the gradient of each activation "
               "projected back to its patch (gray = 0).")
    OUTPUTS = outputs(types=("IMAGE", "IMAGE", "IMAGE", "STRING"),
                      names=("patches", "gradients", "boxes", "report"),
                      tooltips=("The top patches as a grid, strongest first.", "The gradient of the activation on each "
                                "patch (what in the patch drives it).", "The images with the patches' boxes drawn.",
                                "Values, images and boxes as text."))
    ERROR_INPUTS = {"weights": "vgg", "layers": "channel", "image": "images"}

    @classmethod
    def inputs(cls):
        return {"required": {"vgg": _vgg_input(), "images": ("IMAGE", {"tooltip": "A batch of images."}),
                             "layer": widget(opt.LAYER), "channel": widget(opt.CHANNEL), "k": widget(opt.K),
                             "overlap": widget(opt.OVERLAP, step=0.05), "gradients": widget(opt.GRADIENTS),
                             "max_side": widget(opt.MAX_SIDE)}}

    @classmethod
    def execute(cls, vgg, images, layer=opt.LAYER.default, channel=opt.CHANNEL.default, k=opt.K.default,
                overlap=opt.OVERLAP.default, gradients=opt.GRADIENTS.default, max_side=opt.MAX_SIDE.default):
        from nst_core.explore.render import draw_boxes
        import torch

        vgg = cls.check_vgg(vgg)
        batch = cls.image_batch("images", images)
        (layer,) = cls.layers("layer", layer, vgg)
        channel, k = cls.check(opt.CHANNEL, channel), cls.check(opt.K, k)
        overlap, gradients = cls.check(opt.OVERLAP, overlap), cls.check(opt.GRADIENTS, gradients)
        max_side = cls.check(opt.MAX_SIDE, max_side)
        result = cls.call_engine(top_patches, vgg, batch, layer, channel, k=k, overlap=overlap,
                                 gradients=gradients, max_side=max_side)
        marked = []
        for index, image in enumerate(result.images):
            own = [(b[1:], rank) for rank, b in enumerate(result.boxes, start=1) if b[0] == index]
            x = image.permute(2, 0, 1)
            if own:
                x = draw_boxes(x, [b for b, _ in own], [r for _, r in own])
            marked.append(x.permute(1, 2, 0))
        grads = result.gradient_grid if result.gradient_grid is not None else torch.zeros(1, 64, 64, 3)
        lines = [f"{layer} channel {channel} (receptive field {result.field.size} px):"]
        lines += [f"{rank}. image {b[0]} box x {b[1]}..{b[3] - 1}, y {b[2]}..{b[4] - 1}: {v:.4g}"
                  for rank, (v, b) in enumerate(zip(result.values, result.boxes), start=1)]
        return (result.grid, grads, torch.stack(marked), "\n".join(lines))


class NST_ReceptiveField(_ExploreNode):
    NODE_WIDGETS = (opt.LAYER, opt.ARCH, opt.POSITION)
    NODE_ID = "NST_ReceptiveField"
    DISPLAY_NAME = "NST Receptive Field"
    SUMMARY = ("What one unit of a layer sees: its receptive field drawn on the image (red), its "
               "neighbour one stride away (blue), the unit centres (yellow), and the size, stride and "
               "offset as text, computed from the architecture.")
    OUTPUTS = outputs(types=("IMAGE", "STRING"),
                      names=("overlay", "field"),
                      tooltips=("The image with a unit's receptive field drawn.", "Size, stride and offset as text."))
    ERROR_INPUTS = {"weights": "vgg", "layers": "layer", "image": "image"}

    @classmethod
    def inputs(cls):
        return {"required": {"image": ("IMAGE", {"tooltip": "The image to draw on."}),
                             "layer": widget(opt.LAYER), "architecture": widget(opt.ARCH),
                             "position": widget(opt.POSITION, step=0.05)}}

    @classmethod
    def execute(cls, image, layer=opt.LAYER.default, architecture=opt.ARCH.default, position=opt.POSITION.default):
        batch = cls.image_batch("image", image)
        architecture = cls.check(opt.ARCH, architecture)
        position = cls.check(opt.POSITION, position)
        overlay, text = cls.call_engine(field_overlay, batch, str(layer).strip(), architecture, position)
        return (overlay, text)


NODES = (NST_FeatureMaps, NST_VisualizeChannel, NST_TopPatches, NST_ReceptiveField)
