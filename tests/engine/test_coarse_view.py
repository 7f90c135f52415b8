"""The look held at one size (nst_core.look): levels larger than look_size also match their targets
seen at that size, so results of several sizes, seen at that size, measure alike (issue 11: "size-free
look"). Small sizes here (look_size 64 px); the defaults' 256 / 512 / 1024 px are measured by
`python -m nst_core.bench.look --view 256` (README, "High resolution")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nst_core
from nst_core.bench import setup
from nst_core.bench.look import look, pair_images
from nst_core.look import LookTerm, downscale
from nst_core.objective import Objective
from nst_core.plan import fit_memory, make_plan, plan_run, level_look, with_looks
from nst_core.settings import DEFAULTS, LBFGS_PAIRS, OptionError
from nst_core.tiling import TiledObjective, optimizer_bytes, untiled_bytes

LOOK = 64
STEPS = 100
_RUNS: dict = {}


def _run(vgg, size: int, look_size: int):
    """cat + Starry Night with the defaults at `size` px, look_size `look_size` (cached), and its look seen
    at LOOK px."""
    if (size, look_size) not in _RUNS:
        photo, painting = pair_images("chelsea+starry_night")
        result = nst_core.stylize(photo, painting, vgg=vgg, max_size=size, steps=STEPS, look_size=look_size)
        assert not result.warnings, result.warnings
        measured = look(vgg, nst_core.fit(photo, LOOK), nst_core.fit(result.image, LOOK),
                        nst_core.StyleTarget(vgg, painting, style_loss="gram"))
        _RUNS[size, look_size] = result, measured
    return _RUNS[size, look_size]


def _spread(values) -> float:
    return max(values) / min(values)


def test_level_look():
    assert level_look((341, 512), 256) == (170, 256)
    assert level_look((170, 256), 256) is None            # not larger than the look size: no look term
    assert level_look((341, 512), 0) is None              # 0 = off
    assert level_look((64, 1024), 256) is None            # a banner: a 16 px high look size has no relu5_1 rows
    plan = with_looks(make_plan([(32, 48), (64, 96), (128, 192)], [3, 3, 3]), 64)
    assert [level.look for level in plan.levels] == [None, (43, 64), (43, 64)]
    assert plan.describe().endswith("192x128 px (look 64x43) x 3")


@pytest.mark.slow
def test_three_sizes_seen_at_the_look_size_measure_alike(vgg):
    """64, 96 and 128 px with look_size 64, each seen at 64 px: style ratio and content distance within
    1.5x (measured 0.091 / 0.097 / 0.092 and 0.62 / 0.63 / 0.66). Without the look term the 128 px result is
    another picture there (style ratio 0.45: 4.9x the 64 px run's), so this test fails without it."""
    looks = [_run(vgg, size, LOOK)[1] for size in (64, 96, 128)]
    assert _spread([m["style_ratio"] for m in looks]) < 1.5, looks
    assert _spread([m["content_distance"] for m in looks]) < 1.5, looks
    without = _run(vgg, 128, 0)[1]
    assert without["style_ratio"] > 1.5 * looks[0]["style_ratio"], (without, looks)


@pytest.mark.slow
def test_only_levels_above_the_look_size_get_a_look_term(vgg):
    result, _ = _run(vgg, 128, LOOK)
    assert [level.look for level in result.plan.levels] == [(42, 64)]          # 85x128 px
    assert "look" in result.history[-1] and result.history[-1]["look"] > 0
    small, _ = _run(vgg, 64, LOOK)
    assert all(level.look is None for level in small.plan.levels) and "look" not in small.history[-1]


def test_a_level_larger_than_the_look_size_is_in_units_of_its_own_size(vgg, monkeypatch):
    """Under "relative" the look term and every level up to the look size are weighed in units of the photo's
    distance at the look size; a larger level's own term in units of the photo's distance at its size (the
    painting's finer statistics there are nearer to some photos than others: bench README, "512 px at its
    own size")."""
    from nst_core import api
    from nst_core.photo_distance import style_units
    photo, painting = pair_images("tubingen+kiss")
    seen = []
    objective = api.Objective
    monkeypatch.setattr(api, "Objective", lambda *a, **k: seen.append((a[4], k["style_units"])) or objective(*a, **k))
    result = nst_core.stylize(photo, painting, vgg=vgg, max_size=128, steps=2, look_size=64)
    content = nst_core.ContentTarget(vgg, nst_core.fit(photo, 128))
    style = nst_core.StyleTarget(vgg, painting)
    level = result.plan.levels[-1]
    at_look = style_units(vgg, content, style, 64)[0]
    own = style_units(vgg, content, style, size=level.size)[0]
    assert level.look == (48, 64) and result.style_units[0] == pytest.approx(at_look, rel=1e-5)
    assert [(size, units[0]) for size, units in seen] == [(level.look, pytest.approx(at_look, rel=1e-5)),
                                                          (level.size, pytest.approx(own, rel=1e-5))]
    assert max(max(a / b, b / a) for a, b in zip(own, at_look)) > 1.2              # the two units differ
    small = nst_core.plan.decide(nst_core.RunOptions(look_size=64), vgg, content, style, size=(48, 64))
    assert small.levels[-1].look is None
    assert small.units.at((48, 64)) == small.style_units and not small.units.levels


def test_a_texture_with_given_units_measures_no_own_size_units(vgg):
    """Without a photo there is nothing to measure a larger level's units from: the given units serve."""
    style = nst_core.StyleTarget(vgg, torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0)))
    options = nst_core.RunOptions(look_size=32, steps=2, init="noise")
    plan = nst_core.plan.decide(options, vgg, None, style, size=(64, 64), style_units=[(1.0,) * 5])
    assert plan.levels[-1].look == (32, 32) and plan.units.levels == ()
    assert plan.units.at((64, 64)) == ((1.0,) * 5,)


def test_the_look_term_is_the_objective_at_the_look_size(vgg):
    """The term equals an Objective of the look size evaluated on the downscaled pixels, and its gradient
    reaches every pixel of the large image."""
    _, _, content, style = setup(vgg, 96)
    small = Objective(vgg, content, style, 0.0, (48, 48))
    term = LookTerm(small)
    x = torch.rand(1, 3, 96, 96, requires_grad=True)
    value = term.loss(x)
    assert torch.allclose(value, small(downscale(x.detach(), (48, 48)))[0])
    value.backward()
    assert x.grad is not None and bool((x.grad.abs().sum(1) > 0).float().mean() > 0.99)


def test_tiled_level_with_a_look_term_equals_untiled(vgg):
    """The look term is evaluated on the whole image beside the tiles: loss and gradient are the untiled ones."""
    _, _, content, style = setup(vgg, 96)
    look = LookTerm(Objective(vgg, content, style, 0.0, (48, 48)))
    objective = Objective(vgg, content, style, 0.0, (96, 96), pixel_terms=[look])
    x = torch.rand(1, 3, 96, 96)
    grads = []
    for evaluate in (objective, TiledObjective(objective, tile=48)):
        leaf = x.clone().requires_grad_(True)
        total, parts = evaluate(leaf)
        total.backward()
        grads.append((float(total.detach()), float(parts["look"].detach()), leaf.grad))
    assert grads[0][1] > 0 and abs(grads[0][1] - grads[1][1]) < 1e-6 * grads[0][1]
    assert abs(grads[0][0] - grads[1][0]) < 1e-5 * grads[0][0]
    assert float((grads[0][2] - grads[1][2]).norm() / grads[0][2].norm()) < 1e-4


def test_paper_weighting_and_zero_have_no_look_term(vgg):
    photo, painting = pair_images("chelsea+starry_night")
    for options in ({"weighting": "paper", "style_weight": 5e6}, {"look_size": 0}):
        result = nst_core.stylize(photo, painting, vgg=vgg, max_size=96, steps=2, **{"look_size": 48, **options})
        assert all(level.look is None for level in result.plan.levels), options
    result = nst_core.stylize(photo, painting, vgg=vgg, max_size=96, steps=2, look_size=48)
    assert result.plan.levels[-1].look == (32, 48)


def test_a_look_term_takes_its_memory_off_the_levels_budget(vgg):
    """A budget that holds the level untiled with all its pairs, but not with the look term beside it, keeps fewer
    pairs (or tiles) once the level has a look term."""
    layers = list(nst_core.DEFAULT_STYLE_LAYERS)
    plan = plan_run((256, 256), 10)
    need = untiled_bytes(vgg.arch, (256, 256), layers) + optimizer_bytes((256, 256))
    budget = need + 2 ** 20
    plain = fit_memory(plan, vgg, layers, budget=budget)
    looked = fit_memory(with_looks(plan, 128), vgg, layers, budget=budget)
    assert plain.levels[0].lbfgs_pairs == LBFGS_PAIRS and plain.levels[0].tile is None
    assert looked.levels[0].lbfgs_pairs < LBFGS_PAIRS or looked.levels[0].tile is not None
    assert looked.budget_bytes == plain.budget_bytes == budget


def test_bad_look_size_names_the_option(vgg):
    photo, painting = pair_images("chelsea+starry_night")
    with pytest.raises(OptionError) as caught:
        nst_core.stylize(photo, painting, vgg=vgg, max_size=64, steps=2, look_size=-5)
    assert caught.value.option == "look_size"


def test_node_and_cli_name_a_bad_look_size(vgg, tmp_path, capsys):
    from comfyui_nst.nodes.base import NodeInputError
    from comfyui_nst.nodes.nst_nodes import NST_Optimize
    from nst_core import cli
    photo, painting = pair_images("chelsea+starry_night")
    content, style = nst_core.ContentTarget(vgg, nst_core.fit(photo, 48)), nst_core.StyleTarget(vgg, painting)
    assert NST_Optimize.inputs()["optional"]["look_size"][1]["default"] == 256
    with pytest.raises(NodeInputError, match="input 'look_size'"):
        NST_Optimize.execute(vgg, content, steps=1, style=style, look_size=-1, preview_every=0)
    code = cli.main(["--size", "48", "--steps", "1", "--look-size", "-1", "-q", "--output", str(tmp_path / "o.png")])
    assert code == cli.EXIT_USAGE and "--look-size" in capsys.readouterr().err and not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_report_and_plot_show_the_look_term(vgg):
    """The total of a level with a look term is content + β·style + look: the report lists all three."""
    from comfyui_nst.nodes.plotting import _series, format_report, plot_losses
    result, _ = _run(vgg, 128, LOOK)
    last = result.history[-1]
    expected = last["content"] + DEFAULTS["style_weight"] * last["style"] + last["look"]
    assert abs(last["total"] - expected) < 1e-3 * last["total"]
    assert "| look " in format_report(result.history)
    assert "look" in [label for label, *_ in _series(result.history, None)]
    # the look term's curve is drawn (its dash pattern is a tuple, not a format string)
    without = [{k: v for k, v in h.items() if k != "look"} for h in result.history]
    drawn, plain = (np.asarray(plot_losses(h), dtype=np.int16) for h in (result.history, without))
    assert drawn.shape == plain.shape and int((drawn != plain).any(-1).sum()) > 500
