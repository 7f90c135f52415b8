"""Large levels pool by average when the network pools by max (settings.HIGH_RES_POOLINGS says why: the
4 px grid max pooling's gradient grows on large images). Tested with the threshold lowered to test sizes:
a level at or above it runs exactly as the average-pooling network would, targets included."""

from __future__ import annotations

import pytest
import torch

import nst_core
from nst_core import plan
from nst_core.bench import setup
from nst_core.plan import level_network, make_plan
from nst_core.settings import HIGH_RES_POOLING_SIDE


def test_the_rule(vgg):
    small, large = make_plan([(340, 512), (681, 1024)], [5, 5]).levels
    assert HIGH_RES_POOLING_SIDE == 768
    assert level_network(vgg, small) is vgg
    twin = level_network(vgg, large)
    assert twin.pooling == "avg" and vgg.pooling == "max"
    assert level_network(vgg, large, "same") is vgg
    assert level_network(twin, large) is twin                   # an average-pooling network stays
    assert vgg.with_pooling("avg") is twin and twin.with_pooling("avg") is twin      # made once
    assert all(a is b for a, b in zip(twin.convs.parameters(), vgg.convs.parameters()))   # weights shared


def test_the_twin_is_the_average_pooling_network(vgg):
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    layers = ["relu3_1", "relu4_2"]
    reference = nst_core.load_vgg(device="cpu", pooling="avg")
    with torch.no_grad():
        ours, theirs = vgg.with_pooling("avg").features(x, layers), reference.features(x, layers)
        plain = vgg.features(x, layers)
    for name in layers:
        assert torch.equal(ours[name], theirs[name])
        assert not torch.allclose(plain[name], ours[name])          # it is another network


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(plan, "HIGH_RES_POOLING_SIDE", 48)


def test_a_large_level_runs_as_the_average_pooling_network(vgg, low_threshold):
    _, _, ct, st = setup(vgg, 48)
    avg = nst_core.load_vgg(device="cpu", pooling="avg")
    _, _, ct_avg, st_avg = setup(avg, 48)
    pooled = nst_core.optimize(vgg, ct, st, steps=4)                  # default "avg": the level is 48 px
    reference = nst_core.optimize(avg, ct_avg, st_avg, steps=4)
    plain = nst_core.optimize(vgg, ct, st, steps=4, high_res_pooling="same")
    assert [h["total"] for h in pooled.history] == [h["total"] for h in reference.history]
    assert torch.equal(pooled.image, reference.image)
    assert not torch.equal(pooled.image, plain.image)
    # a pyramid switches only its large levels: the 24 px level is the max network's
    both = nst_core.optimize(vgg, ct, st, plan=make_plan([(24, 24), (48, 48)], [3, 3]))
    same = nst_core.optimize(vgg, ct, st, plan=make_plan([(24, 24), (48, 48)], [3, 3]), high_res_pooling="same")
    assert [h["total"] for h in both.history][:3] == [h["total"] for h in same.history][:3]
    assert [h["total"] for h in both.history][3:] != [h["total"] for h in same.history][3:]


def test_bad_value_names_the_option(vgg):
    _, _, ct, st = setup(vgg, 48)
    with pytest.raises(nst_core.OptionError, match="high_res_pooling"):
        nst_core.optimize(vgg, ct, st, steps=1, high_res_pooling="min")


def test_runs_sharing_a_target_read_it_once_on_the_twin(vgg, low_threshold):
    """A batch or a video shares its style target: its statistics on the average-pooling network are
    computed once per size, not once per run."""
    _, _, ct, st = setup(vgg, 48)
    twin = vgg.with_pooling("avg")
    assert st.on(twin) is st.on(twin) and ct.on(twin) is ct.on(twin) and st.on(vgg) is st
    nst_core.optimize(vgg, ct, st, steps=1)
    cached = st.on(twin).targets_at((48, 48))
    nst_core.optimize(vgg, ct, st, steps=1)
    assert st.on(twin).targets_at((48, 48)) is cached
