"""Every option of the engine defined once: its default, its choices or range, its help text, its check.

The nodes build their widgets from `OPTIONS`, both command lines their flags, the README quotes them;
`Option.check` is the one validation of a value, used by the engine's public calls (so a Python caller, a
node and a CLI are refused the same way). A refused value raises `OptionError`, which names the option:
nodes map that name to their input, the CLIs to their flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import NSTError

# ---------------------------------------------------------------------------------------------
# choice lists

OPTIMIZERS = ("lbfgs", "adam", "sgd")
INITS = ("content", "noise", "style", "image")
COLOR_MODES = ("none", "luminance", "histogram")
POOLINGS = ("max", "avg")
# What the plan levels of at least HIGH_RES_POOLING_SIDE px pool with when the network pools by max: "avg",
# or "same". Max pooling routes each gradient through one position in four, and at >= 1024 px the top
# levels grow a 4 px grid into the picture (nst_core/bench/README.md, "No grid at large sizes").
HIGH_RES_POOLINGS = ("avg", "same")
# The precision of the convs at a plan's levels below the final one (nst_core.precision): auto = bfloat16
# on a CPU that has it natively (2.8x faster evaluations at 512 px), float32 elsewhere; the final level
# is always float32 (bfloat16 gradients stall L-BFGS near the optimum)
COARSE_PRECISIONS = ("auto", "float32", "bfloat16")
HIGH_RES_POOLING_SIDE = 768
ARCHITECTURE_CHOICES = ("auto", "vgg19", "vgg16")
CONVENTIONS = ("caffe", "torchvision")       # input conventions of weight families (vgg.py)
CONVENTION_CHOICES = ("auto",) + CONVENTIONS
RECONSTRUCTION_MODES = ("content", "style")
STYLE_LOSSES = ("gram", "wasserstein2", "sliced_wasserstein")     # nst_core.statistics.STATISTICS
# How the loss terms are scaled (nst_core.objective): "relative" = "normalized" with each style term in
# units of the photo's own distance to the painting (nst_core.photo_distance: the same look for every pair),
# "normalized" = each layer's term relative to its target's energy (dimensionless: one style strength looks
# the same at every size; pairs far from their painting are pulled ~3x further), "paper" = Gatys et al.'s
# raw α·½Σ(F−P)² + β·Σ w_l E_l (the Figure 3 α/β ratios; depends on the size).
WEIGHTINGS = ("relative", "normalized", "paper")
# The weightings whose terms are size-free (coarse views, the legacy-β check): all but "paper"
SIZE_FREE_WEIGHTINGS = ("relative", "normalized")

# Learning rates per optimizer (L-BFGS: a line-search-free unit step; Adam/SGD: pixel units, see loop.py).
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02, "sgd": 0.01}

# Layers. The engine's defaults take the ReLU outputs (as Gatys' own code, neural-style and pystiche do):
# on the normalized network their per-layer style losses lie within one order of magnitude of each other,
# while the raw conv outputs of the paper's layers do not (conv1_1 is ~1000x below conv2_1).
DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# The layers of Gatys et al. 2016 (CVPR), for reproducing the paper to the letter.
PAPER_CONTENT_LAYERS = ("conv4_2",)
PAPER_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
# The paper's Figure 1 ladders: content from one layer each, style from cumulative layer sets.
CONTENT_LADDER = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
STYLE_LADDER = PAPER_STYLE_LAYERS

# L-BFGS keeps at most this many (step, gradient-change) pairs; the memory plan counts them (24 B per pixel
# each). 20 ends the default run where 100 does (python -m nst_core.bench.history) at a fifth of the memory.
LBFGS_PAIRS = 20

MAX_WEIGHT = 1e15
# The paper weighting's β of the default layers, tuned on the cat + Starry Night at 512 px (under "paper"
# the content loss grows with the pixel count, so one β paints one size or pair and barely tints another).
PAPER_STYLE_WEIGHT = 5e6
# The style strength (weightings "relative" and "normalized"): clearly painted, the photo's structure kept
# on the evaluation pairs (python -m nst_core.bench.evaluate; README "Style strength").
NORMALIZED_STYLE_WEIGHT = 5.0
# A style strength above this is a paper β (resolve_weighting): far above any useful strength, below any
# β the templates and tests use.
MAX_STRENGTH = 1000.0
MAX_STEPS = 10_000
MAX_SEED = 0xFFFF_FFFF
MAX_SIDE = 8192
MAX_MEMORY_GB = 4096.0


class OptionError(NSTError):
    """An option's value is refused; `option` is the engine's name of it (steps, style_weight, ...)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.detail = message


@dataclass(frozen=True)
class Option:
    """One engine option. `kind` is int, float, bool or str; str options have `choices`."""

    name: str
    default: Any
    kind: type
    help: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    allow_none: bool = False          # None = "the engine picks" (e.g. lr: per optimizer)

    def check(self, value):
        """`value` converted to `kind` and checked; raises OptionError naming this option."""
        if value is None:
            if self.allow_none:
                return None
            raise OptionError(self.name, "a value is required")
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            raise OptionError(self.name, f"expected true or false, got {value!r}")
        if self.choices is not None:
            if value not in self.choices:
                raise OptionError(self.name, f"{value!r} is not one of {', '.join(map(str, self.choices))}")
            return value
        if self.kind in (int, float):
            number = _number(self.name, value, whole=self.kind is int)
            if self.min is not None and number < self.min:
                raise OptionError(self.name, f"{_fmt(number)} is below the minimum {_fmt(self.min)}")
            if self.max is not None and number > self.max:
                raise OptionError(self.name, f"{_fmt(number)} is above the maximum {_fmt(self.max)}")
            return number
        if not isinstance(value, str):
            raise OptionError(self.name, f"expected text, got {type(value).__name__}")
        return value

    def describe_range(self) -> str:
        if self.choices is not None:
            return ", ".join(map(str, self.choices))
        if self.min is not None and self.max is not None:
            return f"{_fmt(self.min)} .. {_fmt(self.max)}"
        return ""


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(name: str, value, whole: bool):
    """A number from an int, float or text such as '5e-4'; finite; whole when `whole`."""
    if isinstance(value, bool):
        raise OptionError(name, f"expected a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            value = int(text) if whole and text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise OptionError(name, f"expected a number such as 5, 0.5 or 5e-4, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise OptionError(name, f"expected a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(name, f"expected a finite number, got {value!r}")
    if whole:
        if isinstance(value, float):
            if not value.is_integer():
                raise OptionError(name, f"expected a whole number, got {value!r}")
            value = int(value)
        return int(value)
    return float(value)


def _weight(name: str, default: float, help: str) -> Option:
    return Option(name, default, float, help, min=0.0, max=MAX_WEIGHT)


OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("steps", 300, int, "optimizer steps in all; with coarse-to-fine they are shared out over the "
                              "sizes and still add up to this number", min=1, max=MAX_STEPS),
    _weight("content_weight", 1.0, "content weight α"),
    _weight("style_weight", NORMALIZED_STYLE_WEIGHT,
            f"style strength: with weighting relative (default) or normalized a dimensionless strength, the "
            f"same look at every size ({NORMALIZED_STYLE_WEIGHT:g} = clearly painted, the photo's structure "
            f"kept; 2x = stronger, 0.5x = weaker; at most {MAX_STRENGTH:g}); with weighting paper Gatys et "
            f"al.'s raw β instead, which grows with the pixel count ({PAPER_STYLE_WEIGHT:g} at 512 px)"),
    _weight("tv_weight", 0.0, "total-variation weight (smoothness); 0 = off"),
    Option("weighting", "relative", str,
           "relative: as normalized, with each style layer's term in units of the photo's own distance to "
           "the painting at that layer, so one style weight gives the same look for every pair too; "
           "normalized: each layer's loss relative to its target's energy (content ‖F−P‖²/‖P‖², style "
           "‖G−A‖²/‖A‖²), so one style weight gives the same look at every size (both: no finer grain than "
           "the painting has, nst_core.grain); paper: Gatys et al.'s "
           f"α·½Σ(F−P)² + β·Σ w_l E_l, whose β must grow with the pixel count and differs per pair (normalized "
           f"3 = paper {PAPER_STYLE_WEIGHT:g} for the cat + Starry Night at 512 px, 1.9e6 at 256 px). A style "
           f"weight above {MAX_STRENGTH:g} under relative or normalized is a paper β from an older workflow: "
           f"it runs with paper, with a warning; one of at most {MAX_STRENGTH:g} (times the content weight) "
           "under paper is refused, as it would leave the photo unchanged",
           choices=WEIGHTINGS),
    Option("optimizer", "lbfgs", str, "lbfgs (the paper), adam or sgd", choices=OPTIMIZERS),
    Option("init", "content", str, "start from the content, white noise (the paper), the style, or an image",
           choices=INITS),
    Option("lr", None, float, "learning rate; none = the optimizer's default ("
                              + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")",
           min=1e-8, max=100.0, allow_none=True),
    Option("seed", 0, int, "seed of the noise start and of anything random", min=0, max=MAX_SEED),
    # 256: the default run takes about a minute on a 2-core CPU (512 px, the bundled photo's 451 px: 3.6x
    # the CPU time), and the look is set at this size (look_size) whatever the output size
    Option("max_size", 256, int, "long side of the output in px (the content is shrunk, never enlarged)",
           min=16, max=MAX_SIDE),
    Option("style_scale", 1.0, float, "the style image is resized to the output's pixel count times this: "
                                      "< 1 bigger brush strokes, > 1 finer ones", min=0.05, max=8.0),
    Option("preserve_color", "none", str, "keep the content's colours: luminance-only transfer, or the "
                                          "style recoloured to the content's colour statistics",
           choices=COLOR_MODES),
    Option("coarse_to_fine", True, bool, "run part of the steps at smaller sizes first (images of 256 px "
                                         "and more, 100 steps and more); reaches the loss of plain full-size "
                                         "steps several times sooner"),
    Option("reconstruction_steps", 200, int, "optimizer steps per reconstructed layer", min=1, max=MAX_STEPS),
    Option("reconstruction_max_size", 128, int, "long side of reconstructions in px (a 5-layer ladder of 200 "
                                                "steps takes ~3 min at 128 px on a 2-core CPU)",
           min=16, max=MAX_SIDE),
    Option("style_loss", "wasserstein2", str, "the style statistics matched: wasserstein2 (feature means "
                                              "and covariances, the default look), gram (Gatys et al., the "
                                              "paper) or sliced_wasserstein (whole feature distributions "
                                              "along random directions); scaled so one style weight means "
                                              "about the same for each",
           choices=STYLE_LOSSES),
    Option("pooling", "max", str, "max (the trained network) or avg (Gatys et al.: smoother results); "
                                  f"with max, levels of {HIGH_RES_POOLING_SIDE} px and more pool by avg "
                                  "(high_res_pooling)",
           choices=POOLINGS),
    Option("high_res_pooling", "avg", str, f"pooling of the plan's levels of {HIGH_RES_POOLING_SIDE} px and "
                                           "more when the network pools by max: avg (removes the 4 px grid "
                                           "max pooling leaves on large images) or same (max everywhere)",
           choices=HIGH_RES_POOLINGS),
    Option("coarse_precision", "auto", str, "precision of the convs at the coarse-to-fine plan's smaller "
                                            "levels: auto = bfloat16 on a CPU with native bfloat16 (AMX or "
                                            "AVX-512 BF16: ~2.8x faster steps), else float32; float32 = "
                                            "float32 on every machine. The final size is always float32",
           choices=COARSE_PRECISIONS),
    Option("look_size", 256, int, "long side in px at which the look is set: plan levels larger than this "
                                  "also match the photo and the painting seen at this size (the image "
                                  "downscaled to it), so a large result, seen small, looks like the run of "
                                  "this size; 0 = off (each level for its own size only). Weightings "
                                  "relative and normalized only", min=0, max=MAX_SIDE),
    Option("architecture", "auto", str, "auto = detected from the weights file", choices=ARCHITECTURE_CHOICES),
    Option("convention", "auto", str, "input convention of the weights: caffe = BGR 0..255 minus the mean; "
                                      "torchvision = ImageNet mean/std; auto = detected",
           choices=CONVENTION_CHOICES),
    Option("normalized", True, bool, "rescale the filters so each has mean activation 1 (Gatys' normalized "
                                     "VGG), which keeps loss weights comparable across layers"),
    Option("max_memory_gb", 0.0, float, "memory cap of a run in GiB; 0 = automatic (the device's free "
                                        "memory). Sizes that do not fit are computed tile by tile (exactly) "
                                        "and L-BFGS keeps fewer pairs", min=0.0, max=MAX_MEMORY_GB),
    Option("tile_size", 0, int, "for experts: tile side in px for the tiled objective; 0 = automatic "
                                "(untiled when it fits, else the largest tiles that fit the memory cap)",
           min=0, max=MAX_SIDE),
)}

DEFAULTS = {name: option.default for name, option in OPTIONS.items()}


def check(**values) -> dict:
    """Check several options at once: {name: checked value}. Unknown names are a programming error."""
    return {name: OPTIONS[name].check(value) for name, value in values.items()}


def resolve_weighting(weighting: str, style_weights, content_weight: float = 1.0) -> tuple[str, str | None]:
    """The weighting a run uses, and a warning when it differs from the one asked for: the one place that
    decides what the style weight means (the plan, nodes and CLIs call it).

    Workflows and scripts saved before `weighting` existed give a paper β (1e4 .. 1e7) and no weighting,
    which arrives as the default "relative". A relative or normalized style weight above MAX_STRENGTH is
    such a β: the run uses "paper", so old files mean what they meant, and says so. The other way round,
    a strength (β/α at most MAX_STRENGTH) under "paper" next to a content term would leave the photo
    almost unchanged: refused, with what to type (OptionError naming style_weight)."""
    weighting = OPTIONS["weighting"].check(weighting)
    weights = [float(w) for w in style_weights]
    alpha = float(content_weight)
    if weighting == "paper" and alpha > 0 and weights and 0 < max(weights) <= MAX_STRENGTH * alpha:
        raise OptionError("style_weight", f"{max(weights):g} is a strength, not a paper β: under weighting "
                          f"paper the style weight is Gatys et al.'s β (about {PAPER_STYLE_WEIGHT:g} at 512 px "
                          "with content weight 1) and this one would leave the photo unchanged; set "
                          f"weighting=relative to keep {max(weights):g} as a strength, or give a paper β such "
                          f"as style_weight={PAPER_STYLE_WEIGHT:g}")
    legacy = [w for w in weights if w > MAX_STRENGTH]
    if weighting not in SIZE_FREE_WEIGHTINGS or not legacy:
        return weighting, None
    return "paper", (f"style weight {max(legacy):g} is a paper-weighting β from an older workflow: ran with "
                     f"weighting=paper; to use the size-free weighting set weighting=relative and a style "
                     f"weight of at most {MAX_STRENGTH:g} (default {NORMALIZED_STYLE_WEIGHT:g}), or set "
                     f"weighting=paper to keep this β without this message")


def check_layer_weights(weights, count: int, default: float, option: str = "style_layer_weights") -> list[float]:
    """Per-layer weights from a sequence or comma-separated text; None/''/'auto'/'equal' = `default` each."""
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("", "auto", "equal")):
        return [default] * count
    if isinstance(weights, str):
        weights = [part for part in weights.replace(";", ",").split(",") if part.strip()]
    values = [_number(option, w, whole=False) for w in weights]
    if len(values) != count:
        raise OptionError(option, f"{len(values)} weight(s) given for {count} layer(s); give one per layer "
                                  "or leave it empty")
    if any(v < 0 or v > MAX_WEIGHT for v in values):
        raise OptionError(option, f"layer weights must lie in 0 .. {MAX_WEIGHT:g}, got {values}")
    return values


def check_blend(blend, count: int) -> list[float]:
    """Blend weights of `count` style images, normalized to sum 1 (None = equal)."""
    if blend is None:
        return [1.0 / count] * count
    values = [_number("style_blend", b, whole=False) for b in blend]
    if len(values) != count:
        raise OptionError("style_blend", f"{len(values)} blend weights given for {count} style images")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise OptionError("style_blend", f"blend weights must be >= 0 and not all zero, got {values}")
    total = sum(values)
    return [v / total for v in values]


def markdown_table() -> str:
    """The options as the README's table (a test keeps the README's copy equal to this)."""
    rows = ["| option | default | values | what it does |", "| --- | --- | --- | --- |"]
    for option in OPTIONS.values():
        default = "none" if option.default is None else (f"{option.default:g}" if isinstance(option.default, float)
                                                          else str(option.default))
        rows.append(f"| `{option.name}` | {default} | {option.describe_range() or 'true / false'} | {option.help} |")
    return "\n".join(rows)
