"""Several contents with one style: a batch gives the images of single runs with the derived seeds."""

import pytest
import torch

import nst_core
from conftest import example

BETA = 3e4       # paper-weighting β at 48 px (the paper's 5e6 is tuned for 512 px)


@pytest.fixture(scope="module")
def pair():
    cat = example("content_chelsea.png", 48)
    coffee = nst_core.image.fit_image(example("content_coffee.png", 48), 48)[:, :32, :48]
    return cat, coffee


def test_a_batch_equals_single_runs_with_derived_seeds(vgg, pair, starry64):
    cat, _ = pair
    other = torch.flip(cat, dims=[2])                     # a second photo of the same size
    batch = torch.cat([cat, other])
    seen = []
    options = dict(vgg=vgg, steps=4, init="noise", seed=7, style_weight=BETA, weighting="paper", max_size=None)
    together = nst_core.stylize(batch, starry64, callback=lambda p: seen.append((p.step, p.total, p.stage)),
                                **options)
    assert together.image.shape == (2, 32, 48, 3)
    assert [s for s in seen] == [(i, 8, 0) for i in range(1, 5)] + [(i, 8, 1) for i in range(5, 9)]
    for index, photo in enumerate((cat, other)):
        single = nst_core.stylize(photo, starry64, **{**options, "seed": nst_core.item_seed(7, index)})
        assert torch.equal(together.image[index], single.image[0]), index
    assert not torch.equal(together.image[0], together.image[1])
    assert [h["stage"] for h in together.history] == [0] * 4 + [1] * 4


def test_a_list_of_differently_sized_photos_gives_a_list(vgg, pair, starry64):
    cat, coffee = pair
    tall = cat[:, :, :24]                                   # 32x24: another size
    results = nst_core.stylize([cat, tall], starry64, vgg=vgg, steps=3, style_weight=BETA, weighting="paper", max_size=None)
    assert [tuple(r.image.shape) for r in results] == [(1, 32, 48, 3), (1, 32, 24, 3)]
    assert all(len(r.history) == 3 for r in results)


def test_item_seeds_are_derived_from_the_seed():
    assert nst_core.item_seed(7, 0) == 7 and nst_core.item_seed(7, 3) == 10
    assert nst_core.item_seed(nst_core.OPTIONS["seed"].max, 1) == 0
