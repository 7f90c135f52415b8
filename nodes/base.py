"""What every NST node shares: widgets made from the engine's options, one error format, one error mapping.

Nodes only translate: a widget is built from the engine's `Option` (default, range, choices, help), its
value is checked by that same `Option.check` (in the engine call, or here for node-only widgets), and
every engine error is turned into "[Node] input 'name': message" in one place, `NSTNode.call_engine`.
"""

from __future__ import annotations

import torch

import nst_core
from nst_core.settings import MAX_WEIGHT, OPTIONS, Option, OptionError

from .headless.node_spec import Input, NodeSpec, Output

CATEGORY = "style_transfer"
WEIGHT_HELP = "Type a number; exponents are fine: 5, 0.5, 5e-4. Must be >= 0."
AUTO = "auto"

# node-only widgets, checked by the same Option.check as the engine's options
PREVIEW_EVERY = Option("preview_every", 5, int, "Show the current image in the node every N steps "
                                                "(0 = no preview).", min=0, max=1000)
LEARNING_RATE = Option("learning_rate", 0.0, float, "0 = the optimizer's default ("
                       + ", ".join(f"{k} {v:g}" for k, v in nst_core.DEFAULT_LR.items()) + ").",
                       min=0.0, max=100.0)


def outputs(types: tuple, names: tuple, tooltips: tuple) -> tuple[Output, ...]:
    """A node's outputs from its parallel (types, names, tooltips)."""
    return tuple(Output(name, kind, tip) for kind, name, tip in zip(types, names, tooltips, strict=True))


class NodeInputError(ValueError):
    """A user-facing error that names the node and the input."""


def widget(option: Option, tooltip: str | None = None, **extra) -> tuple:
    """The ComfyUI widget of an engine option: a combo for choices, BOOLEAN, INT, a STRING holding a
    number for loss weights (the editor's FLOAT widget rounds to its step, so 1e-5 and 1e5 cannot share
    one), else FLOAT. `extra` adds widget keys (step, control_after_generate, ...)."""
    spec = {"default": option.default, "tooltip": tooltip or option.help}
    if option.choices is not None:
        return list(option.choices), spec
    if option.kind is bool:
        return "BOOLEAN", spec
    if option.kind is str:
        return "STRING", spec
    if option.kind is int:
        return "INT", {**spec, "min": option.min, "max": option.max, "step": 1, **extra}
    if option.max == MAX_WEIGHT:
        return "STRING", {**spec, "default": f"{option.default:g}", "tooltip": spec["tooltip"] + " " + WEIGHT_HELP}
    return "FLOAT", {**spec, "min": option.min, "max": option.max, **extra}


def engine_widget(name: str, tooltip: str | None = None, **extra) -> tuple:
    """The widget of engine option `name`; its tooltip is the engine's help as a sentence unless given."""
    option = OPTIONS[name]
    return widget(option, tooltip or _sentence(option.help), **extra)


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# The engine options no node input carries, and why (tests/nodes/test_option_reach_nodes.py holds every other
# option to a node input, through the input's name or a node's OPTION_INPUTS)
NOT_ON_NODES = {
    "reconstruction_max_size": "NST Reconstruct works at its image's size: NST Resize (max side) shrinks it first",
    "coarse_precision": "artists get auto (bfloat16 coarse levels where the CPU has it natively); the node "
                        "report names the bfloat16 levels",
}


class NSTNode:
    """Base of every node: its one definition (`spec`, read by ComfyUI's V3 adapter in comfy_v3.py and by
    the headless runner), the error format, the engine-error mapping and input helpers.

    A node sets NODE_ID (permanent: saved workflows store it), DISPLAY_NAME, SUMMARY (the tooltip), MENU
    (the add-node category), OUTPUTS, `inputs()` ({"required": {...}, "optional": {...}} of widget tuples,
    in widget order: FROZEN, new inputs go at the end) and the classmethod `execute`; optionally
    `validate_inputs` and `fingerprint_inputs` (the V3 hooks). Names differ from V3's class properties
    (CATEGORY, DESCRIPTION, ...) because ComfyUI's V3 class inherits this one.
    """

    NODE_ID = ""
    DISPLAY_NAME = ""
    SUMMARY = ""
    MENU = CATEGORY
    OUTPUTS: tuple[Output, ...] = ()
    IS_EXPERIMENTAL = False
    # Python modules the node needs beyond the pack's requirements: {module: what to install}
    REQUIRES: dict[str, str] = {}
    # this node's input -> the engine option it carries, where the names differ ("weight" -> "style_weight")
    OPTION_INPUTS: dict[str, str] = {}
    # the node-only widgets (Options defined in nodes/, not the engine's) this node has
    NODE_WIDGETS: tuple[Option, ...] = ()
    # where an engine error of each kind points when the node has no better input for it
    ERROR_INPUTS = {"weights": "vgg", "layers": "layers", "image": "image"}

    @classmethod
    def inputs(cls) -> dict:
        return {"required": {}}

    @classmethod
    def spec(cls) -> NodeSpec:
        widgets = cls.inputs()
        inputs = [Input(name, kind, dict(options[0]) if options else {}, optional=(group == "optional"))
                  for group in ("required", "optional")
                  for name, (kind, *options) in (widgets.get(group) or {}).items()]
        return NodeSpec(cls.NODE_ID, cls.DISPLAY_NAME, cls.MENU, cls.SUMMARY, tuple(inputs), tuple(cls.OUTPUTS),
                        experimental=cls.IS_EXPERIMENTAL, requires=dict(cls.REQUIRES))

    @classmethod
    def label(cls) -> str:
        return cls.NODE_ID.replace("_", " ", 1)

    @classmethod
    def error(cls, name: str | None, message: str) -> NodeInputError:
        if name is None:
            return NodeInputError(f"[{cls.label()}] {message}")
        return NodeInputError(f"[{cls.label()}] input '{name}': {message}")

    @classmethod
    def input_for(cls, option: str) -> str:
        """The node input that carries engine option `option`."""
        for name, engine_name in cls.OPTION_INPUTS.items():
            if engine_name == option:
                return name
        return option

    @classmethod
    def check(cls, option: Option, value):
        """A node-only widget's value checked by its Option, the error naming this node's input."""
        try:
            return option.check(value)
        except OptionError as exc:
            raise cls.error(option.name, exc.detail) from None

    @classmethod
    def call_engine(cls, fn, *args, **kwargs):
        """Call the engine; turn its input errors into messages naming this node and the input."""
        try:
            return fn(*args, **kwargs)
        except NodeInputError:
            raise
        except OptionError as exc:
            raise cls.error(cls.input_for(exc.option), exc.detail) from exc
        except nst_core.WeightsError as exc:
            raise cls.error(cls.ERROR_INPUTS["weights"], str(exc)) from exc
        except nst_core.LayerError as exc:
            raise cls.error(cls.ERROR_INPUTS["layers"], str(exc)) from exc
        except nst_core.ImageError as exc:
            raise cls.error(cls.ERROR_INPUTS["image"], str(exc)) from exc
        except ValueError as exc:
            raise cls.error(None, str(exc)) from exc

    @classmethod
    def validation_message(cls, fn) -> bool | str:
        """Run checks for validate_inputs: True, or the error text (shown by ComfyUI at queue time)."""
        try:
            cls.call_engine(fn)
        except NodeInputError as exc:
            return str(exc)
        return True

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
        try:
            return nst_core.image.as_bhwc(image)
        except nst_core.ImageError as exc:
            raise cls.error(name, str(exc)) from None

    @classmethod
    def single_image(cls, name: str, image) -> torch.Tensor:
        batch = cls.image_batch(name, image)
        if batch.shape[0] != 1:
            raise cls.error(name, f"expected one image, got a batch of {batch.shape[0]}; pick one (e.g. with "
                                  "ImageFromBatch)")
        return batch

    @classmethod
    def mask(cls, name: str, mask):
        """A MASK input ([H,W] / [1,H,W], 0..1, any size: resized by the engine) checked by the engine,
        errors naming the input (an all-zero mask is refused: it would select nothing)."""
        if mask is None:
            return None
        if isinstance(mask, torch.Tensor) and mask.ndim == 3 and mask.shape[0] > 1:
            raise cls.error(name, f"expected one mask, got a batch of {mask.shape[0]}")
        try:
            return nst_core.statistics.mask_tensor(mask, f"mask '{name}'")
        except nst_core.ImageError as exc:
            raise cls.error(name, str(exc)) from None

    @classmethod
    def check_vgg(cls, vgg, name: str = "vgg"):
        if not isinstance(vgg, nst_core.VGG):
            raise cls.error(name, f"expected an NST_VGG (from NST Load VGG), got {type(vgg).__name__}")
        return vgg

    @classmethod
    def check_target(cls, target, name: str, kind: type | None):
        if target is None:
            return None
        if isinstance(target, (list, tuple)):
            return [cls.check_target(item, name, kind) for item in target]
        if not isinstance(target, kind):
            what = "content" if kind is nst_core.ContentTarget else "style"
            got = getattr(target, "kind", type(target).__name__)
            raise cls.error(name, f"expected a {what} target (from NST {what.title()} Target), got {got}")
        return target

    @classmethod
    def layers(cls, name: str, text, vgg=None) -> list[str]:
        """Comma-separated layer names, checked by the engine against the network (any VGG when None)."""
        valid = vgg.layer_names if vgg is not None else tuple(dict.fromkeys(nst_core.VGG19_LAYERS
                                                                            + nst_core.VGG16_LAYERS))
        try:
            return nst_core.layers.parse_layers(text, valid)
        except nst_core.LayerError as exc:
            raise cls.error(name, f"{exc}; write e.g. conv4_2 or conv1_1, conv2_1") from None
