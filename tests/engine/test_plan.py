"""The run plan (nst_core.plan) and the loop that runs it: steps add up, progress reads the plan."""

import copy

import pytest

import nst_core
from nst_core.plan import level_sizes, make_plan, plan_run, share_steps


def test_level_sizes_halve_down_to_the_coarsest_long_side_and_step_up_last_by_root_two():
    assert level_sizes(512) == [(128, 128), (256, 256), (362, 362), (512, 512)]
    assert level_sizes((300, 451)) == [(150, 226), (212, 319), (300, 451)]      # the LONG side decides
    assert level_sizes((255, 200)) == [(255, 200)]                      # below 256 px: one level
    assert level_sizes(1024) == [(128, 128), (256, 256), (512, 512), (724, 724), (1024, 1024)]
    assert level_sizes((100, 1000)) == [(50, 500), (71, 707), (100, 1000)]      # the short side stays >= 32 px


@pytest.mark.parametrize("size", [64, 256, (300, 451), 512, (683, 1024), 1024, 2048])
@pytest.mark.parametrize("steps", [1, 40, 99, 100, 101, 300, 377, 1000])
@pytest.mark.parametrize("coarse_to_fine", [True, False])
def test_plan_steps_add_up_exactly(size, steps, coarse_to_fine):
    plan = plan_run(size, steps, coarse_to_fine)
    assert plan.steps == steps
    assert all(level.steps >= 1 for level in plan.levels)
    assert [level.first_step for level in plan.levels] == [sum(lv.steps for lv in plan.levels[:i])
                                                            for i in range(len(plan))]
    assert plan.size == ((size, size) if isinstance(size, int) else size)
    if not coarse_to_fine or steps < 100 or max(plan.size) < 256:
        assert len(plan) == 1


def test_plan_shares_follow_the_level_proportions():
    assert [lv.steps for lv in plan_run(512, 500, True).levels] == [300, 40, 40, 120]  # 1 : 2/15 : 2/15 : 0.4
    assert [lv.steps for lv in plan_run(512, 300, True).levels] == [180, 24, 24, 72]
    assert [lv.steps for lv in plan_run(256, 300, True).levels] == [196, 26, 78]      # 1 : 2/15 : 0.4
    assert share_steps(100, 4) == [60, 8, 8, 24]
    assert plan_run(512, 300, True).describe() == ("128x128 px x 180, 256x256 px x 24, 362x362 px x 24, "
                                                   "512x512 px x 72")
    assert plan_run((300, 451), 300).levels[0].label == "451x300 px"


def test_plan_refuses_bad_steps_and_sizes():
    with pytest.raises(nst_core.OptionError, match="steps"):
        plan_run(512, 0)
    with pytest.raises(nst_core.OptionError, match="steps"):
        plan_run(512, 1_000_000_000)
    with pytest.raises(ValueError):
        make_plan([(24, 32), (48, 64)], [3])
    with pytest.raises(ValueError):
        make_plan([(24, 32), (48, 64)], [3, 0])


@pytest.mark.parametrize("side", [1024, 2048, 4096])
def test_large_plans_spend_few_steps_at_the_top(side):
    """Levels above EXPENSIVE_SIDE get shares divided by side / 512: most steps where they are cheap."""
    plan = plan_run(side, 300, True)
    sides = [max(lv.size) for lv in plan.levels]
    assert sides[0] == 128 and sides[-1] == side and plan.steps == 300
    steps = [lv.steps for lv in plan.levels]
    cheap = sum(n for n, s in zip(steps, sides) if s <= 512)
    assert cheap >= 0.8 * 300 and steps[-1] <= 0.15 * 300
    between = steps[3:-1]                                   # the levels above 512 px below the final one
    assert between == sorted(between, reverse=True)
    assert plan.cost() < {1024: 70, 2048: 40, 4096: 20}[side]          # in final-size steps
    assert [lv.steps for lv in plan_run(4096, 300, True).levels] == [208, 28, 28, 14, 7, 5, 10]


def test_plan_cost_counts_final_size_steps():
    assert make_plan([(128, 128), (256, 256), (512, 512)], [160, 80, 10]).cost() == pytest.approx(10 + 20 + 10)


@pytest.fixture(scope="module")
def targets(vgg):
    cat = nst_core.image.to_nchw(nst_core.load_image(nst_core.example_path("content_chelsea.png")))
    cat = nst_core.image.resize(cat, (48, 64)).permute(0, 2, 3, 1)
    content = nst_core.ContentTarget(vgg, cat)
    style = nst_core.StyleTarget(vgg, nst_core.load_image(nst_core.example_path("style_starry_night.jpg")),
                                 weight=3e4)
    return content, style


def test_progress_reads_the_plan_from_the_first_callback(vgg, targets):
    """The callback's total is the steps asked for from the first step on; levels are announced."""
    content, style = targets
    plan = make_plan([(24, 32), (48, 64)], [3, 2])
    seen = []
    result = nst_core.optimize(vgg, content, style, plan=plan, callback=seen.append)
    # the same levels, fitted to the memory budget (both fit untiled with the full L-BFGS history)
    assert [(lv.size, lv.steps) for lv in result.plan.levels] == [(lv.size, lv.steps) for lv in plan.levels]
    assert result.plan.budget_bytes is not None and all(lv.tile is None for lv in result.plan.levels)
    assert result.image.shape == (1, 48, 64, 3)
    assert [(p.step, p.total, p.level.index, p.level_step, p.level_started) for p in seen] == [
        (1, 5, 0, 1, True), (2, 5, 0, 2, False), (3, 5, 0, 3, False), (4, 5, 1, 1, True), (5, 5, 1, 2, False)]
    assert [(h["step"], h["level"]) for h in result.history] == [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1)]
    assert seen[3].level.label == "64x48 px" and seen[0].levels == 2
    assert seen[3].describe() == "level 2/2: 64x48 px" and (seen[3].tile, seen[3].tiles) == (None, 1)


@pytest.mark.parametrize("coarse_to_fine", [True, False])
def test_stylize_runs_exactly_the_steps_asked_for(vgg, monkeypatch, coarse_to_fine):
    """`steps` means optimizer steps at every size and schedule (it used to run 370 of 300 at 512 px)."""
    monkeypatch.setattr(nst_core.plan, "COARSEST_LONG_SIDE", 16)      # levels at 32..128 px, cheaply
    monkeypatch.setattr(nst_core.plan, "MIN_PYRAMID_STEPS", 4)
    cat = nst_core.load_image(nst_core.example_path("content_chelsea.png"))
    starry = nst_core.load_image(nst_core.example_path("style_starry_night.jpg"))
    for max_size, steps in ((48, 7), (96, 9)):
        totals = []
        result = nst_core.stylize(cat, starry, vgg=vgg, max_size=max_size, steps=steps,
                                  coarse_to_fine=coarse_to_fine, callback=lambda p: totals.append(p.total))
        assert len(result.history) == steps and set(totals) == {steps} and len(totals) == steps
        assert len(result.plan) == (1 if not coarse_to_fine else len(level_sizes(result.image.shape[1:3])))
        assert len(result.plan) > 1 or not coarse_to_fine or max_size < 64


# the coarse level's α scaling (and so this test's x4) exists under the paper's raw terms only
PAPER = {"weighting": "paper"}


def test_last_level_is_the_plain_objective(vgg, targets):
    """The final level starts from the upsampled coarse result plus the content's detail band, and records
    the plain objective's loss there (the coarse level's content-weight scaling does not leak into it)."""
    content, style = targets
    coarse = nst_core.optimize(vgg, content, style, plan=make_plan([(24, 32)], [2]), size=(24, 32), **PAPER)
    # float32 at the coarse level too, so that the float32 rebuild below is the same computation
    both = nst_core.optimize(vgg, content, style, plan=make_plan([(24, 32), (48, 64)], [2, 1]),
                             coarse_precision="float32", **PAPER)
    resize = nst_core.image.resize
    assert coarse.history[0]["total"] == pytest.approx(
        coarse.history[0]["content"] + style.weight * coarse.history[0]["style"], rel=1e-4)
    first = both.history[0]                                   # the coarse level: content weight x4
    assert first["total"] == pytest.approx(4 * first["content"] + style.weight * first["style"], rel=1e-4)
    # rebuild the final level's start from a 4x-content coarse run, as the plan does
    content_x4 = copy.copy(content)                           # what the coarse level (1/4 area) optimizes
    content_x4.weight = 4 * content.weight
    coarse_x4 = nst_core.optimize(vgg, content_x4, style, plan=make_plan([(24, 32)], [2]), **PAPER)
    start = resize(nst_core.image.to_nchw(coarse_x4.image), (48, 64))
    start = (start + content.image_at((48, 64)) - resize(content.image_at((24, 32)), (48, 64))).clamp(0, 1)
    expected = float(nst_core.Objective(vgg, content, style, 0.0, (48, 64), **PAPER)(start)[0])
    assert both.history[-1]["total"] == pytest.approx(expected, rel=1e-4)


def test_stop_returns_the_final_size(vgg, targets):
    content, style = targets

    def stop_early(p):
        if p.step == 2:
            p.stop()

    result = nst_core.optimize(vgg, content, style, plan=make_plan([(24, 32), (48, 64)], [4, 4]),
                               callback=stop_early)
    assert result.stopped == "callback" and len(result.history) == 2
    assert result.image.shape == (1, 48, 64, 3)
