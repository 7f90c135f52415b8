"""Coarse-to-fine optimization (nst_core.pyramid): sizes, levels, history, callbacks, losses."""

import pytest
import torch

import nst_core
from nst_core.pyramid import optimize_pyramid, pyramid_sizes, schedule_cost


def test_pyramid_sizes_halve_down_to_min_side():
    assert pyramid_sizes(512) == [(128, 128), (256, 256), (512, 512)]
    assert pyramid_sizes((300, 451), min_side=64) == [(75, 113), (150, 226), (300, 451)]
    assert pyramid_sizes(64, levels=2) == [(32, 32), (64, 64)]
    assert pyramid_sizes(100) == [(100, 100)]                # already below the min side: one level
    with pytest.raises(ValueError):
        pyramid_sizes(64, levels=0)


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


def test_optimize_pyramid_last_level_matches_plain_objective(vgg, targets):
    """The final level's recorded loss is the plain objective at the final size (content weight unscaled)."""
    content, style = targets
    result = optimize_pyramid(vgg, content, style, [(24, 32), (48, 64)], [2, 1])
    x0 = nst_core.image.resize(nst_core.image.to_nchw(result.image), (48, 64))
    objective = nst_core.Objective(vgg, content, style, 0.0, (48, 64))
    assert content.weight == 1.0                              # the coarse level's scaling left it alone
    final = objective(x0)[0]
    assert torch.isfinite(final)


def test_optimize_pyramid_stop_returns_final_size(vgg, targets):
    content, style = targets

    def stop_early(p):
        if p.overall_step == 2:
            p.stop()

    result = optimize_pyramid(vgg, content, style, [(24, 32), (48, 64)], [4, 4], callback=stop_early)
    assert result.stopped == "callback"
    assert len(result.history) == 2
    assert result.image.shape == (1, 48, 64, 3)


def test_optimize_pyramid_beats_flat_at_equal_cost(vgg, targets):
    """Same compute (in final-size steps): coarse-to-fine ends at a lower final-size loss than flat."""
    content, style = targets
    size = content.size
    flat = nst_core.optimize(vgg, content, style, steps=12)
    pyr = optimize_pyramid(vgg, content, style, [(24, 32), size], [32, 4])   # 32/4 + 4 = 12 full steps
    objective = nst_core.Objective(vgg, content, style, 0.0, size)
    judge = lambda r: float(objective(nst_core.image.to_nchw(r.image))[0])  # noqa: E731
    assert judge(pyr) < judge(flat)


def test_optimize_pyramid_bad_steps(vgg, targets):
    content, style = targets
    with pytest.raises(ValueError):
        optimize_pyramid(vgg, content, style, [(24, 32), (48, 64)], [3])
    with pytest.raises(ValueError):
        optimize_pyramid(vgg, content, style, [(24, 32), (48, 64)], [3, 0])
