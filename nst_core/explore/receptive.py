"""Receptive fields of VGG units, read from the layer table (nst_core.layers).

A unit at index i of a layer sees the input pixels centred on `offset + i * stride`, `size` pixels wide
(pixel centres at integer coordinates). Near the border part of that window is zero padding, so a box
is clipped to the image. Pooling type does not change the field: both max and avg pool 2x2 windows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..layers import layer_names, layer_table, parse_layers

DEFAULT_ARCH = "vgg19"


@dataclass(frozen=True)
class ReceptiveField:
    """size: pixels seen per side; stride: pixels between neighbouring units (the jump); offset: the
    centre of unit 0 in input pixel coordinates (may be fractional, e.g. 0.5 after pool1)."""
    layer: str
    size: int
    stride: int
    offset: float

    def center(self, index: int) -> float:
        return self.offset + index * self.stride

    def span(self, index: int) -> tuple[int, int]:
        """First and last input pixel (inclusive, unclipped) seen by unit `index` along one axis."""
        start = self.center(index) - (self.size - 1) / 2
        return int(round(start)), int(round(start)) + self.size - 1

    def box(self, row: int, col: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), x1/y1 exclusive, of unit (row, col) clipped to a height x width image."""
        ys, ye = self.span(row)
        xs, xe = self.span(col)
        return max(xs, 0), max(ys, 0), min(xe + 1, width), min(ye + 1, height)

    def describe(self) -> str:
        return f"{self.layer}: receptive field {self.size} px, stride {self.stride} px, offset {self.offset:g} px"


def receptive_field(layer: str, arch: str = DEFAULT_ARCH) -> ReceptiveField:
    """The receptive field of `layer` ('conv4_2', 'relu3_1', 'pool2', ...) of VGG `arch`."""
    names = layer_names(arch)                 # raises LayerError for an unknown arch
    (layer,) = parse_layers([layer], names)
    row = layer_table(arch)[layer]
    return ReceptiveField(layer, row.field, row.stride, row.offset)


def receptive_fields(arch: str = DEFAULT_ARCH) -> dict[str, ReceptiveField]:
    """Every layer's receptive field, in forward order."""
    return {name: receptive_field(name, arch) for name in layer_names(arch)}
