"""Receptive fields: the analytic size, stride and offset equal the measured gradient support of units,
for every layer of VGG-16 and VGG-19, with max and with avg pooling.

The networks are built here with 2 channels per conv and positive weights (plus a large first bias), so
every ReLU is active and the gradient of a unit is non-zero on every pixel that can reach it. Max pooling
routes the gradient through one pixel per window, so the inputs are two linear ramps, one brightest at the
top left and one at the bottom right: a conv with positive weights keeps a ramp a ramp, so every max pool
picks the window's corner on the bright side, and the union of the two gradients spans the whole field.
"""

from __future__ import annotations

import pytest
import torch

import nst_core
from nst_core.layers import ARCHITECTURES, layer_names
from nst_core.explore.receptive import receptive_field

WIDTH = 2            # channels per conv: the field does not depend on them


def input_side(field) -> int:
    """The smallest multiple of 32 that holds the field of a middle unit and of its neighbour, with a margin."""
    need = field.size + 2 * field.stride + 8
    return 32 * -(-need // 32)


def positive_vgg(arch: str, pooling: str) -> nst_core.VGG:
    gen = torch.Generator().manual_seed(0)
    convs, channels = [], 3
    for item in ARCHITECTURES[arch]:
        if item == "M":
            continue
        weight = (0.5 + torch.rand(WIDTH, channels, 3, 3, generator=gen)) / (9 * channels)
        bias = torch.full((WIDTH,), 1000.0 if channels == 3 else 0.0)   # caffe input is ±150
        convs.append((weight, bias))
        channels = WIDTH
    return nst_core.VGG(arch, convs, pooling=pooling)


def ramps(side: int) -> torch.Tensor:
    """[2,3,side,side] in 0..1: brightest at the top left, and brightest at the bottom right."""
    coords = torch.arange(side, dtype=torch.float32)
    total = coords.view(-1, 1) + coords.view(1, -1)
    top_left = 1 - total / (2 * side)
    return torch.stack([top_left, 1 - top_left]).unsqueeze(1).expand(2, 3, side, side)


def support(grad: torch.Tensor) -> tuple[int, int, int, int]:
    """(first row, last row, first col, last col) where the gradient is non-zero."""
    mask = grad.ne(0)
    rows = mask.any(dim=1).nonzero().flatten()
    cols = mask.any(dim=0).nonzero().flatten()
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


@pytest.mark.parametrize("pooling", ["max", "avg"])
@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_analytic_field_equals_gradient_support(arch, pooling):
    vgg = positive_vgg(arch, pooling)
    batch = 2
    checked = 0
    for layer in layer_names(arch):
        field = receptive_field(layer, arch)
        side = input_side(field)
        x = ramps(side).repeat(2, 1, 1, 1).requires_grad_(True)
        feats = vgg.features(x, [layer])[layer]
        size = feats.shape[-1]
        row, col = size // 2, size // 2
        # first half of the batch: unit (row, col); second half: its right-hand neighbour (row, col + 1)
        (feats[:batch, 0, row, col].sum() + feats[batch:, 0, row, col + 1].sum()).backward()
        grad = x.grad.abs().sum(dim=1)
        here = support(grad[:batch].sum(0))
        right = support(grad[batch:].sum(0))
        assert here[0] > 0 and here[1] < side - 1, f"{layer}: the field touches the border"
        measured_size = here[1] - here[0] + 1
        assert measured_size == field.size, (arch, pooling, layer, measured_size, field.size)
        assert here[3] - here[2] + 1 == field.size
        assert right[2] - here[2] == field.stride, (arch, pooling, layer, right[2] - here[2], field.stride)
        assert (here[0] + here[1]) / 2 == field.center(row), (layer, here, field.offset)
        assert field.span(col) == (here[2], here[3])
        checked += 1
    assert checked == len(layer_names(arch))


def test_known_values_and_bad_names():
    # VGG-16's pool5 field is the often-quoted 212 px (conv5_3: 196 px); VGG-19's pool5 is 268 px
    assert receptive_field("pool5", "vgg16").size == 212
    assert receptive_field("conv5_3", "vgg16").size == 196
    assert receptive_field("pool5", "vgg19").size == 268
    assert receptive_field("relu4_2").stride == 8
    with pytest.raises(nst_core.LayerError, match="conv9_9"):
        receptive_field("conv9_9")
    with pytest.raises(nst_core.LayerError, match="vgg11"):
        receptive_field("conv1_1", "vgg11")
