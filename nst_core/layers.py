"""VGG architectures, their layer names (conv1_1, relu1_1, pool1, ...) and one table per architecture of
what each named layer is: channels, stride, reach (receptive field), position of the pools, conv cost.
Memory estimates, tiling, the explorer, the bench and the network itself read the table."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .errors import LayerError

# Output channels of each conv, "M" for a pooling layer (Simonyan & Zisserman 2014, configs D and E).
ARCHITECTURES: dict[str, list] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
CONV_KERNEL = 3          # every conv is 3x3, stride 1, padding 1; every pool 2x2, stride 2 (floor)


@dataclass(frozen=True)
class Layer:
    """One named layer. A unit at index i of its output depends on the input pixels
    [i·stride − before, i·stride + stride − 1 + after] (zero padding outside the image): its receptive
    field is `field` = before + stride + after pixels wide, centred on `offset` + i·stride."""
    name: str
    kind: str                # "conv", "relu" or "pool"
    position: int            # index in forward order
    conv: int | None         # index of the conv computing it (a conv and its ReLU), None for a pool
    in_channels: int         # channels of the conv's input (a relu or pool: its own)
    channels: int
    stride: int              # input pixels between neighbouring units: 2 ** (pools up to here)
    before: int
    after: int
    macs: int                # a conv's multiply-adds per output pixel (9·c_in·c_out), else 0

    @property
    def field(self) -> int:
        return self.before + self.stride + self.after

    @property
    def radius(self) -> int:
        return max(self.before, self.after)

    @property
    def offset(self) -> float:
        return (self.stride - 1 + self.after - self.before) / 2

    def shape(self, size) -> tuple[int, int, int]:
        """(height, width, channels) of the output for an input of `size` (H, W): each pool floors."""
        h, w = size
        return h // self.stride, w // self.stride, self.channels

    def elements(self, size) -> int:
        h, w, c = self.shape(size)
        return h * w * c


class LayerTable:
    """Every named layer of an architecture, in forward order; `table[name]` is its Layer."""

    def __init__(self, arch: str, layers: list[Layer]):
        self.arch = arch
        self.layers = tuple(layers)
        self.names = tuple(layer.name for layer in layers)
        self._by_name = {layer.name: layer for layer in layers}
        self.convs = tuple(layer for layer in layers if layer.kind == "conv")
        self.pools = tuple(layer for layer in layers if layer.kind == "pool")

    def __getitem__(self, name: str) -> Layer:
        try:
            return self._by_name[name]
        except KeyError:
            raise LayerError(f"unknown layer {name!r} for {self.arch}") from None

    def __iter__(self):
        return iter(self.layers)

    def deepest(self, layers) -> Layer:
        return max((self[name] for name in layers), key=lambda layer: layer.position)

    def span(self, layers, after: str | None = None) -> tuple[Layer, ...]:
        """The layers a forward pass to the deepest of `layers` runs (behind `after` only, when given)."""
        start = 0 if after is None else self[after].position + 1
        return self.layers[start:self.deepest(layers).position + 1]

    def macs(self, layers, after: str | None = None) -> float:
        """Conv multiply-adds per input pixel of a forward to the deepest of `layers` (behind `after`)."""
        return sum(layer.macs / layer.stride ** 2 for layer in self.span(layers, after))


def _build(arch: str) -> LayerTable:
    rows: list[Layer] = []
    stride, start, end = 1, 0, 0                # the window of unit 0: input pixels [start, end]
    channels, block, index = 3, 1, 1

    def add(name, kind, conv, in_channels, out_channels, macs):
        rows.append(Layer(name, kind, len(rows), conv, in_channels, out_channels, stride, -start,
                          end - (stride - 1), macs))

    for item in ARCHITECTURES[arch]:
        if item == "M":
            end += stride                       # a 2x2/2 pool widens the window by one unit on the far side
            stride *= 2
            add(f"pool{block}", "pool", None, channels, channels, 0)
            block, index = block + 1, 1
        else:
            start, end = start - stride, end + stride        # a 3x3 conv: one unit on each side
            conv = sum(1 for row in rows if row.kind == "conv")
            add(f"conv{block}_{index}", "conv", conv, channels, item, CONV_KERNEL ** 2 * channels * item)
            add(f"relu{block}_{index}", "relu", conv, item, item, 0)
            channels, index = item, index + 1
    return LayerTable(arch, rows)


@functools.cache
def layer_table(arch: str) -> LayerTable:
    """The table of `arch` ("vgg16", "vgg19"), built once."""
    if arch not in ARCHITECTURES:
        raise LayerError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    return _build(arch)


def layer_names(arch: str) -> tuple[str, ...]:
    """Every named layer (conv, relu, pool) of an architecture in forward order."""
    return layer_table(arch).names


def conv_names(arch: str) -> list[str]:
    """The conv layer names of an architecture in forward order."""
    return [layer.name for layer in layer_table(arch).convs]


def feature_shape(arch: str, size, layer: str) -> tuple[int, int, int]:
    """(height, width, channels) of `layer`'s output for an input of `size` (H, W)."""
    return layer_table(arch)[layer].shape(size)


def arch_for_conv_count(count: int) -> str | None:
    """vgg16 for 13 convs, vgg19 for 16, else None."""
    return next((arch for arch in ARCHITECTURES if len(layer_table(arch).convs) == count), None)


def block_of(layer: str) -> int:
    """The block number of a layer name (conv4_2 -> 4, pool3 -> 3)."""
    digits = layer[4:] if layer.startswith(("conv", "relu", "pool")) else ""
    return int(digits.split("_")[0])


def min_input_size(layer: str) -> int:
    """The smallest input side for which `layer` still has at least one pixel (2 ** the pools up to it)."""
    return 2 ** (block_of(layer) - (0 if layer.startswith("pool") else 1))


def parse_layers(layers, valid: tuple[str, ...]) -> list[str]:
    """Accept "conv1_1, conv2_1" or a sequence of names; check every name against `valid`."""
    if isinstance(layers, str):
        layers = [part.strip() for part in layers.replace(";", ",").split(",")]
    names = [str(name).strip() for name in layers if str(name).strip()]
    if not names:
        raise LayerError("no layer names given")
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise LayerError(
            f"unknown layer name(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(valid)}")
    return names


VGG19_LAYERS = layer_names("vgg19")
VGG16_LAYERS = layer_names("vgg16")
