"""The video node: NST Stylize Frames, a clip (an IMAGE batch, as video loader nodes produce) stylized
frame by frame with Ruder et al.'s temporal consistency (nst_core.stylize_frames).

Like every node it only translates widgets into the engine call: the temporal weight's default and range
come from nst_core.video.TEMPORAL_WEIGHT, the others from nst_core.settings. Input order is FROZEN once
released (saved workflows store widget values by position): new inputs go at the end.
"""

from __future__ import annotations

import time

import nst_core
from nst_core.settings import DEFAULTS
from nst_core.video import CHUNK_FRAMES, INSTALL_HINT, TEMPORAL_WEIGHT, available, pan_clip, warped_differences
from nst_core.video.chunks import border_pairs
from nst_core.video.options import FRAME_COUNT, PAN_X, PAN_Y, ZOOM

from . import host
from .base import LEARNING_RATE, PREVIEW_EVERY, NSTNode, engine_widget, outputs, widget
from .headless.node_spec import NodeResult
from .nst_nodes import shown, step_reporter


def engine_widget_of(option, **extra) -> tuple:
    """The widget of a video option (defined in nst_core.video.options), its help as the tooltip."""
    return widget(option, option.help[:1].upper() + option.help[1:] + ".", **extra)


class NST_StylizeFrames(NSTNode):
    NODE_ID = "NST_StylizeFrames"
    DISPLAY_NAME = "NST Stylize Frames"
    SUMMARY = ("Stylizes the frames of a clip (an IMAGE batch, e.g. from a video loader) with temporal "
               "consistency (Ruder et al. 2016): each frame starts from the previous result moved along "
               "the optical flow of the frames, and a temporal loss keeps it there wherever the flow is "
               "reliable, so the style does not flicker. temporal_weight 0 = every frame on its own. "
               "Frames run at their own size: resize them first (NST Resize). chunk_frames cuts a long "
               "clip into chunks (for parallel runs outside ComfyUI), aligned where they meet.")
    OUTPUTS = outputs(types=("IMAGE", "STRING"),
                      names=("frames", "report"),
                      tooltips=("The stylized frames, an IMAGE batch in the input's order.",
                                "Settings, each frame's final losses and share of pixels held by the flow, and the "
                                "flicker: the mean difference between each frame and the previous one moved along "
                                "the flow."))
    OPTION_INPUTS = {"learning_rate": "lr"}
    NODE_WIDGETS = (LEARNING_RATE, PREVIEW_EVERY)        # temporal_weight is the engine's (nst_core.video)
    ERROR_INPUTS = {**NSTNode.ERROR_INPUTS, "image": "frames", "layers": "style"}
    REQUIRES = {"cv2": INSTALL_HINT}    # the optical flow of temporal consistency (OpenCV)

    @classmethod
    def inputs(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG (the same network as the style target)."}),
                "frames": ("IMAGE", {"tooltip": "The clip's frames, one size, in order (an IMAGE batch)."}),
                "style": ("NST_TARGET", {"tooltip": "From NST Style Target."}),
                "temporal_weight": widget(TEMPORAL_WEIGHT, "How strongly each frame keeps the previous result "
                                                           "moved along the optical flow, relative to the "
                                                           "style weight β. 0 = frames stylized "
                                                           "independently (they flicker)."),
                "steps": engine_widget("steps", "Optimizer steps per frame."),
                "init": engine_widget("init", "Start of the first frame (and of every frame when "
                                              "temporal_weight is 0): the content, white noise, the style, or "
                                              "init_image. Later frames start from the previous result."),
                "optimizer": engine_widget("optimizer"),
                "learning_rate": widget(LEARNING_RATE, step=0.001, round=0.0001),
                "content_weight": engine_widget("content_weight"),
                "tv_weight": engine_widget("tv_weight"),
                "seed": engine_widget("seed", control_after_generate=True),
                "preview_every": widget(PREVIEW_EVERY),
            },
            "optional": {
                "init_image": ("IMAGE", {"tooltip": "Start image of the first frame for init = image."}),
                "chunk_frames": widget(CHUNK_FRAMES, "Cut the clip into chunks of this many frames (at least 2), "
                                                     "each next one starting on the last frame of the one "
                                                     "before: their first frames are stylized in order, then "
                                                     "each chunk on its own (outside ComfyUI in parallel: "
                                                     "python -m nst_core.video --workers N), aligned to the "
                                                     "chunk before where they meet. Here they run one after "
                                                     "the other. 0 = no chunks (the clip in order)."),
            },
        }

    @classmethod
    def validate_inputs(cls, temporal_weight=None, content_weight=None, tv_weight=None):
        def check():
            if temporal_weight is not None:
                TEMPORAL_WEIGHT.check(temporal_weight)
            if content_weight is not None:
                nst_core.OPTIONS["content_weight"].check(content_weight)
            if tv_weight is not None:
                nst_core.OPTIONS["tv_weight"].check(tv_weight)
        return cls.validation_message(check)

    @classmethod
    def execute(cls, vgg, frames, style, temporal_weight=f"{TEMPORAL_WEIGHT.default:g}", steps=DEFAULTS["steps"],
                init=DEFAULTS["init"], optimizer=DEFAULTS["optimizer"], learning_rate=LEARNING_RATE.default,
                content_weight=f"{DEFAULTS['content_weight']:g}", tv_weight=f"{DEFAULTS['tv_weight']:g}",
                seed=DEFAULTS["seed"], preview_every=PREVIEW_EVERY.default, init_image=None,
                chunk_frames=CHUNK_FRAMES.default):
        vgg = cls.check_vgg(vgg)
        clip = cls.image_batch("frames", frames)
        style = cls.check_target(style, "style", nst_core.StyleTarget)
        if style is None:
            raise cls.error("style", "no style target connected")
        init_batch = cls.single_image("init_image", init_image) if init == "image" and init_image is not None \
            else None
        lr = cls.check(LEARNING_RATE, learning_rate) or None
        t0 = time.perf_counter()
        result = cls.call_engine(nst_core.stylize_frames, clip, style, vgg=vgg, temporal_weight=temporal_weight,
                                 steps=steps, init=init, init_image=init_batch, optimizer=optimizer, lr=lr,
                                 content_weight=content_weight, tv_weight=tv_weight, seed=seed, max_size=None,
                                 chunk_frames=chunk_frames,
                                  callback=step_reporter(cls.check(PREVIEW_EVERY, preview_every)))
        seconds = time.perf_counter() - t0
        host.soft_empty_cache()
        report = cls._report(result, clip, vgg, style, temporal_weight, steps, init, optimizer, seed, seconds)
        return NodeResult(result.image, report, ui=shown(report))

    @staticmethod
    def _report(result, clip, vgg, style, temporal_weight, steps, init, optimizer, seed, seconds) -> str:
        count, h, w = result.image.shape[:3]
        weight = TEMPORAL_WEIGHT.check(temporal_weight)
        lines = [f"NST Stylize Frames: {count}/{clip.shape[0]} frames of {w}x{h} px, {optimizer}, {int(steps)} "
                 f"steps per frame, init {init} (frame 0), seed {int(seed)}",
                 f"temporal_weight {weight:g} x β {style.weight:g}" + ("" if weight else " (frames independent)")
                 + f"; vgg {vgg.arch}, device {vgg.device}", f"time: {seconds:.1f} s"]
        if result.chunks:
            lines.append(f"{len(result.chunks)} chunks (frames " + ", ".join(f"{c.start}-{c.stop - 1}"
                         for c in result.chunks) + "), each aligned to the one before at their shared frame")
        if result.stopped:
            lines.append(f"stopped early: {result.stopped}")
        lines += [f"warning: {message}" for message in result.warnings]
        flicker = warped_differences(result.image, clip[:count]) if count > 1 and available() else []
        for t, frame in enumerate(result.frames):
            last = frame.losses
            parts = [f"{name} {last[name]:.4g}" for name in ("style", "content", "temporal") if name in last]
            if t and weight:
                parts.append(f"{float(result.masks[t].mean()) * 100:.0f} % of pixels held by the flow")
            if t and flicker:
                parts.append(f"flicker {flicker[t - 1]:.4f}")
            lines.append(f"frame {t}: " + ", ".join(parts))
        borders = [t for t in border_pairs(result.chunks) if t < count]
        if flicker and borders and len(borders) < len(flicker):
            inside = [value for t, value in enumerate(flicker, 1) if t not in borders]
            lines.append(f"flicker across chunk borders {sum(flicker[t - 1] for t in borders) / len(borders):.4f}, "
                         f"inside chunks {sum(inside) / len(inside):.4f}")
        if flicker:
            lines.append(f"mean flicker (mean |frame − previous frame moved along the flow| over the pixels the "
                         f"flow keeps, 0..1): {sum(flicker) / len(flicker):.4f}")
        return "\n".join(lines)


class NST_PanClip(NSTNode):
    NODE_ID = "NST_PanClip"
    DISPLAY_NAME = "NST Pan Clip (test clip from a photo)"
    MENU = NSTNode.MENU + "/image"
    SUMMARY = ("Makes a short clip from one photo: a camera panning (and zooming) across it, as an IMAGE "
               "batch. The motion is known, so it is a clean test of NST Stylize Frames without a video "
               "loader. Frames are the largest that fit the whole path.")
    OUTPUTS = outputs(types=("IMAGE",),
                      names=("frames",),
                      tooltips=("The frames [T,H,W,3], in order.",))
    ERROR_INPUTS = {**NSTNode.ERROR_INPUTS, "image": "image"}

    @classmethod
    def inputs(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The photo to pan across (one image; resize it first)."}),
                "frame_count": engine_widget_of(FRAME_COUNT),
                "pan_x": engine_widget_of(PAN_X, step=0.5),
                "pan_y": engine_widget_of(PAN_Y, step=0.5),
                "zoom": engine_widget_of(ZOOM, step=0.01),
            }
        }

    @classmethod
    def execute(cls, image, frame_count=FRAME_COUNT.default, pan_x=PAN_X.default, pan_y=PAN_Y.default,
                zoom=ZOOM.default):
        photo = cls.single_image("image", image)
        return (cls.call_engine(pan_clip, photo, frame_count, pan_x, pan_y, zoom),)


NODES = (NST_StylizeFrames, NST_PanClip)
