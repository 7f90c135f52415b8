"""Receptive fields as the layer explorer gives them: the layer table's rows (measured against the
networks' gradient support in test_layer_table.py) as size, stride, offset, spans and clipped boxes."""

from __future__ import annotations

import pytest

import nst_core
from nst_core.explore.receptive import receptive_field, receptive_fields
from nst_core.layers import layer_names, layer_table


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_spans_are_the_table_windows(arch):
    fields = receptive_fields(arch)
    assert list(fields) == list(layer_names(arch))
    for row in layer_table(arch):
        field = fields[row.name]
        assert (field.size, field.stride) == (row.field, row.stride)
        for i in (0, 1, 7):
            assert field.span(i) == (i * row.stride - row.before, i * row.stride + row.stride - 1 + row.after)


def test_boxes_are_clipped_to_the_image():
    field = receptive_field("relu3_1")                      # 24 px, stride 4
    x0, y0, x1, y1 = field.box(0, 0, 100, 80)
    assert (x0, y0) == (0, 0) and (x1, y1) == (field.span(0)[1] + 1,) * 2
    x0, y0, x1, y1 = field.box(24, 19, 100, 80)
    assert (x1, y1) == (80, 100) and x0 == field.span(19)[0] and y0 == field.span(24)[0]


def test_known_values_and_bad_names():
    # VGG-16's pool5 field is the often-quoted 212 px (conv5_3: 196 px); VGG-19's pool5 is 268 px
    assert receptive_field("pool5", "vgg16").size == 212
    assert receptive_field("conv5_3", "vgg16").size == 196
    assert receptive_field("pool5", "vgg19").size == 268
    assert receptive_field("relu4_2").stride == 8
    assert receptive_field("pool1").offset == 0.5
    with pytest.raises(nst_core.LayerError, match="conv9_9"):
        receptive_field("conv9_9")
    with pytest.raises(nst_core.LayerError, match="vgg11"):
        receptive_field("conv1_1", "vgg11")
