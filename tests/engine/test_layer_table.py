"""The layer table (nst_core.layers.layer_table) against the networks themselves: every row's receptive
field and reach equal the measured gradient support of its units, shapes equal a real forward's at odd
sizes, conv multiply-adds equal PyTorch's FLOP count, and the pools sit where the architecture puts them.

The gradient-support networks have 2 channels per conv and positive weights (plus a large first bias), so
every ReLU is active and the gradient of a unit is non-zero on every pixel that can reach it. Max pooling
routes the gradient through one pixel per window, so the inputs are two linear ramps, one brightest at the
top left and one at the bottom right: a conv with positive weights keeps a ramp a ramp, so every max pool
picks the window's corner on the bright side, and the union of the two gradients spans the whole field.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import nst_core
from nst_core.layers import ARCHITECTURES, layer_table, min_input_size
from nst_core.vgg import expected_conv_shapes

WIDTH = 2            # channels per conv: the field does not depend on them


def positive_vgg(arch: str, pooling: str) -> nst_core.VGG:
    gen = torch.Generator().manual_seed(0)
    convs, channels = [], 3
    for _ in layer_table(arch).convs:
        weight = (0.5 + torch.rand(WIDTH, channels, 3, 3, generator=gen)) / (9 * channels)
        bias = torch.full((WIDTH,), 1000.0 if channels == 3 else 0.0)   # caffe input is ±150
        convs.append((weight, bias))
        channels = WIDTH
    return nst_core.VGG(arch, convs, pooling=pooling)


def random_vgg(arch: str) -> nst_core.VGG:
    gen = torch.Generator().manual_seed(1)
    return nst_core.VGG(arch, [(torch.randn(o, i, 3, 3, generator=gen) * 0.05, torch.zeros(o))
                               for o, i in expected_conv_shapes(arch)])


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


def test_known_values():
    vgg19, vgg16 = layer_table("vgg19"), layer_table("vgg16")
    # relu5_1: 1 + 2·(2·1 + 2·2 + 4·4 + 4·8 + 1·16) for the 3x3 convs + (1 + 2 + 4 + 8) for the pools
    assert (vgg19["relu5_1"].field, vgg19["relu5_1"].stride) == (156, 16)
    assert vgg16["conv5_3"].field == 196 and vgg16["pool5"].field == 212      # the published values
    assert vgg19["pool5"].field == 268 and vgg19["relu4_2"].stride == 8
    assert [pool.position for pool in vgg19.pools] == [4, 9, 18, 27, 36]
    assert [pool.position for pool in vgg16.pools] == [4, 9, 16, 23, 30]
    assert vgg19["conv3_1"].macs == 9 * 128 * 256 and vgg19["relu3_1"].macs == 0
    assert [row.channels for row in vgg19.convs] == [c for c in ARCHITECTURES["vgg19"] if c != "M"]
    assert len(vgg16.convs) == 13 and len(vgg19.convs) == 16
    for table in (vgg16, vgg19):
        assert all(min_input_size(row.name) == row.stride for row in table)
    with pytest.raises(nst_core.LayerError, match="conv5_4"):
        vgg16["conv5_4"]
    with pytest.raises(nst_core.LayerError, match="vgg11"):
        layer_table("vgg11")


@pytest.mark.parametrize("pooling", ["max", "avg"])
@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_reach_equals_gradient_support(arch, pooling):
    """Unit i of every layer depends on exactly the pixels [i·stride − before, i·stride + stride − 1 +
    after], measured for a middle unit and its right-hand neighbour."""
    vgg = positive_vgg(arch, pooling)
    for row in layer_table(arch):
        need = row.field + 2 * row.stride + 8
        side = 32 * -(-need // 32)
        x = ramps(side).repeat(2, 1, 1, 1).requires_grad_(True)
        feats = vgg.features(x, [row.name])[row.name]
        i = feats.shape[-1] // 2
        # first half of the batch: unit (i, i); second half: its right-hand neighbour (i, i + 1)
        (feats[:2, 0, i, i].sum() + feats[2:, 0, i, i + 1].sum()).backward()
        grad = x.grad.abs().sum(dim=1)
        here, right = support(grad[:2].sum(0)), support(grad[2:].sum(0))
        assert here[0] > 0 and here[1] < side - 1, f"{row.name}: the field touches the border"
        window = (i * row.stride - row.before, i * row.stride + row.stride - 1 + row.after)
        assert (here[0], here[1]) == window and (here[2], here[3]) == window, (arch, pooling, row.name)
        assert right[2] - here[2] == row.stride, (arch, pooling, row.name)
        assert (here[0] + here[1]) / 2 == row.offset + i * row.stride


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_shapes_equal_a_real_forward(arch):
    vgg, table = random_vgg(arch), layer_table(arch)
    for size in [(37, 50), (64, 45)]:
        feats = vgg.features(torch.rand(1, 3, *size), table.names)
        for row in table:
            h, w, channels = row.shape(size)
            assert tuple(feats[row.name].shape) == (1, channels, h, w), (row.name, size)
            assert row.elements(size) == feats[row.name].numel()


@pytest.mark.parametrize("layers, after", [(["relu5_1"], None), (["relu1_1", "relu3_1"], None),
                                           (["relu4_2"], "pool2")])
def test_conv_macs_equal_pytorchs_flop_count(layers, after):
    """table.macs(layers, after) is per input pixel: times the pixels, PyTorch's FLOPs / 2 of the same
    forward (a side divisible by the deepest stride, where pooling floors nothing)."""
    vgg, table, side = random_vgg("vgg19"), layer_table("vgg19"), 32
    x = torch.rand(1, 3, side, side)
    if after is not None:
        x = vgg.features(x, [after])[after]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        vgg.features(x, layers, after=after)
    assert counter.get_total_flops() / 2 == table.macs(layers, after) * side * side
