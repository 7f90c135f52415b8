"""Coarse-to-fine optimization (nst_core.pyramid): sizes, levels, history, callbacks, losses."""

import copy

import pytest
import torch

import nst_core
from nst_core.pyramid import coarse_to_fine_schedule, optimize_pyramid, pyramid_sizes, schedule_cost


def test_pyramid_sizes_halve_down_to_min_side():
    assert pyramid_sizes(512) == [(128, 128), (256, 256), (512, 512)]
    assert pyramid_sizes((300, 451), min_side=64) == [(75, 113), (150, 226), (300, 451)]
    assert pyramid_sizes(64, levels=2) == [(32, 32), (64, 64)]
    assert pyramid_sizes(100) == [(100, 100)]                # already below the min side: one level
    with pytest.raises(ValueError):
        pyramid_sizes(64, levels=0)


def test_default_schedule_scales_with_steps_and_size():
    assert coarse_to_fine_schedule(512, 300) == ([(128, 128), (256, 256), (512, 512)], [150, 100, 120])
    assert coarse_to_fine_schedule((300, 451), 200) == ([(150, 226), (300, 451)], [100, 80])
    assert coarse_to_fine_schedule(1024, 300)[1] == [150, 100, 100, 120]   # the last coarse share repeats
    assert coarse_to_fine_schedule((200, 255), 300) == ([(200, 255)], [300])   # below 256 px: one level
    assert coarse_to_fine_schedule(512, 99) == ([(512, 512)], [99])            # too few steps: one level
    assert coarse_to_fine_schedule(512, 100) == ([(128, 128), (256, 256), (512, 512)], [50, 33, 40])
    with pytest.raises(ValueError):
        coarse_to_fine_schedule(512, 0)


def test_optimize_coarse_to_fine_runs_the_default_schedule(vgg, targets, monkeypatch):
    content, style = targets
    monkeypatch.setattr(nst_core.pyramid, "COARSEST_LONG_SIDE", 32)       # two levels at 48x64
    monkeypatch.setattr(nst_core.pyramid, "MIN_PYRAMID_STEPS", 1)          # even for 4 steps
    result = nst_core.optimize(vgg, content, style, steps=4, coarse_to_fine=True)
    assert [h["size"] for h in result.history] == [(24, 32)] * 2 + [(48, 64)] * 2
    assert result.image.shape == (1, 48, 64, 3)
    plain = nst_core.optimize(vgg, content, style, steps=4)
    assert len(plain.history) == 4 and "size" not in plain.history[0]


def test_schedule_cost_counts_final_size_steps():
    assert schedule_cost([128, 256, 512], [160, 80, 10]) == pytest.approx(10 + 20 + 10)


@pytest.fixture(scope="module")
def targets(vgg):
    cat = nst_core.image.to_nchw(nst_core.load_image(nst_core.example_path("content_chelsea.png")))
    cat = nst_core.image.resize(cat, (48, 64)).permute(0, 2, 3, 1)
    content = nst_core.ContentTarget(vgg, cat)
    style = nst_core.StyleTarget(vgg, nst_core.load_image(nst_core.example_path("style_starry_night.jpg")),
                                 weight=3e4)
    return content, style


def test_optimize_pyramid_spans_levels_with_progress(vgg, targets):
    content, style = targets
    seen = []
    sizes = pyramid_sizes(content.size, levels=2)
    result = optimize_pyramid(vgg, content, style, sizes, [3, 2], callback=seen.append)
    assert sizes == [(24, 32), (48, 64)]
    assert result.image.shape == (1, 48, 64, 3)
    assert result.stopped is None
    assert [(h["stage"], h["size"]) for h in result.history] == [(0, (24, 32))] * 3 + [(1, (48, 64))] * 2
    assert [h["step"] for h in result.history] == [1, 2, 3, 4, 5]
    assert [(p.stage, p.stages, p.step, p.total, p.overall_step, p.overall_total) for p in seen] == [
        (0, 2, 1, 3, 1, 5), (0, 2, 2, 3, 2, 5), (0, 2, 3, 3, 3, 5), (1, 2, 1, 2, 4, 5), (1, 2, 2, 2, 5, 5)]
    assert all(torch.isfinite(torch.tensor(h["total"])) for h in result.history)


def test_optimize_pyramid_last_level_is_the_plain_objective(vgg, targets):
    """The final level starts from the upsampled coarse result and records the plain objective's loss
    there (the coarse level's content-weight scaling does not leak into it)."""
    content, style = targets
    content_x4 = copy.copy(content)                           # what the coarse level (1/4 area) optimizes
    content_x4.weight = 4 * content.weight
    coarse = optimize_pyramid(vgg, content_x4, style, [(24, 32)], [2])
    both = optimize_pyramid(vgg, content, style, [(24, 32), (48, 64)], [2, 1])
    resize = nst_core.image.resize
    start = resize(nst_core.image.to_nchw(coarse.image), (48, 64))
    # plus the content's detail band that the coarse level could not hold (content_detail=True)
    start = (start + content.image_at((48, 64)) - resize(content.image_at((24, 32)), (48, 64))).clamp(0, 1)
    expected = float(nst_core.Objective(vgg, content, style, 0.0, (48, 64))(start)[0])
    assert content.weight == 1.0
    assert both.history[-1]["total"] == pytest.approx(expected, rel=1e-4)
    first = both.history[0]                                   # the coarse level: content weight x4
    assert first["total"] == pytest.approx(4 * first["content"] + style.weight * first["style"], rel=1e-4)


def test_optimize_pyramid_stop_returns_final_size(vgg, targets):
    content, style = targets

    def stop_early(p):
        if p.overall_step == 2:
            p.stop()

    result = optimize_pyramid(vgg, content, style, [(24, 32), (48, 64)], [4, 4], callback=stop_early)
    assert result.stopped == "callback"
    assert len(result.history) == 2
    assert result.image.shape == (1, 48, 64, 3)


def test_optimize_pyramid_bad_steps(vgg, targets):
    content, style = targets
    with pytest.raises(ValueError):
        optimize_pyramid(vgg, content, style, [(24, 32), (48, 64)], [3])
    with pytest.raises(ValueError):
        optimize_pyramid(vgg, content, style, [(24, 32), (48, 64)], [3, 0])
