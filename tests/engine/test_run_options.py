"""A run's options as one value (nst_core.options.RunOptions), the plan as the whole decision
(nst_core.plan.decide), what the style weight means (settings.resolve_weighting) and several styles by
region through the one-call API. Small images, few steps."""

import ast
import dataclasses
import inspect

import pytest
import torch

import nst_core
from nst_core import loop, photo_distance, plan as plan_module
from nst_core.options import ENGINE_ONLY, NAMES, RunOptions
from nst_core.settings import OPTIONS, OptionError, resolve_weighting
from conftest import example

# ------------------------------------------------------------------------------------------ the value


def test_every_option_is_a_field_with_its_default_and_check():
    assert set(NAMES) == set(OPTIONS) | set(ENGINE_ONLY)
    defaults = RunOptions()
    for name, option in OPTIONS.items():
        assert getattr(defaults, name) == option.default, name
    with pytest.raises(OptionError) as refused:
        RunOptions(steps=0)
    assert refused.value.option == "steps"
    with pytest.raises(OptionError) as refused:
        RunOptions.of(None, weighting="energy")
    assert refused.value.option == "weighting"
    assert RunOptions(style_weight="5e6").style_weight == 5e6          # checked once: converted as OPTIONS does
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.steps = 3
    with pytest.raises(TypeError, match="stepz"):
        RunOptions.of(None, stepz=3)


def test_gpu_switches_default_from_the_environment_in_one_place(monkeypatch):
    monkeypatch.delenv("NST_CUDA_GRAPHS", raising=False)
    monkeypatch.delenv("NST_CUDA_AUTOCAST", raising=False)
    assert RunOptions().cuda_graphs and not RunOptions().cuda_autocast
    monkeypatch.setenv("NST_CUDA_GRAPHS", "0")
    monkeypatch.setenv("NST_CUDA_AUTOCAST", "1")
    assert not RunOptions().cuda_graphs and RunOptions().cuda_autocast
    assert RunOptions(cuda_graphs=True).cuda_graphs                    # a caller's value wins


def test_no_engine_module_of_the_run_path_reads_the_environment():
    import nst_core.api, nst_core.cuda_graph, nst_core.objective, nst_core.precision, nst_core.video.frames
    for module in (nst_core.api, loop, plan_module, nst_core.cuda_graph, nst_core.objective, nst_core.precision,
                   nst_core.video.frames):
        assert "os.environ" not in inspect.getsource(module), module.__name__


def _names_used(module) -> set[str]:
    """Every name and attribute the module's code uses or imports (comments and docstrings aside)."""
    tree = ast.parse(inspect.getsource(module))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(alias.name.split(".")[-1] for alias in node.names)
            names.add(getattr(node, "module", None) or "")
    return names


def test_the_loop_executes_the_plan_only():
    """No memory fitting, weighting resolution, unit measurement or colour preparation in the loop."""
    used = _names_used(loop)
    for decision in ("fit_memory", "budget_bytes", "resolve_weighting", "style_distance", "measure_style_units",
                     "prepare", "track_live_memory", "decide", "os"):
        assert decision not in used, decision
    assert "graphable" in used and "TiledObjective" in used          # the check sees the loop's code


# ------------------------------------------------------------------------------------------ one decision

@pytest.fixture(scope="module")
def targets(vgg):
    content = nst_core.ContentTarget(vgg, example("content_chelsea.png", 48))
    style = nst_core.StyleTarget(vgg, example("style_starry_night.jpg", 48))
    return content, style


def test_options_value_and_keywords_run_the_same(vgg, targets):
    content, style = targets
    by_keywords = nst_core.optimize(vgg, content, style, steps=3, seed=2, init="noise")
    options = RunOptions(steps=3, seed=2, init="noise", coarse_to_fine=False)
    by_value = nst_core.optimize(vgg, content, style, options=options)
    assert [h["total"] for h in by_value.history] == [h["total"] for h in by_keywords.history]
    assert by_value.options == by_keywords.options == options


def test_a_run_is_decided_once(vgg, targets, monkeypatch):
    """One memory fit and one measurement of the photo's distance per run, all in the plan."""
    content, style = targets
    calls = {"fit": 0, "distance": 0}
    fit, distance = plan_module.fit_memory, photo_distance.style_distance

    def counted_fit(*args, **kwargs):
        calls["fit"] += 1
        return fit(*args, **kwargs)

    def counted_distance(*args, **kwargs):
        calls["distance"] += 1
        return distance(*args, **kwargs)

    monkeypatch.setattr(plan_module, "fit_memory", counted_fit)
    monkeypatch.setattr(photo_distance, "style_distance", counted_distance)
    result = nst_core.optimize(vgg, content, style, steps=2)
    assert calls == {"fit": 1, "distance": 1}
    assert result.plan.weighting == "relative" and len(result.plan.style_units) == 1
    assert result.plan.budget_bytes is not None
    assert result.style_units == result.plan.style_units


def test_result_describes_itself(vgg, targets):
    content, style = targets
    result = nst_core.optimize(vgg, content, style, steps=2)
    text = result.describe()
    assert "plan: 48x32 px x 2" in text and "weighting relative" in text and "d = " in text
    old = nst_core.StyleTarget(vgg, style.images[0].permute(0, 2, 3, 1), weight=1e5)
    legacy = nst_core.optimize(vgg, content, old, steps=2)
    assert legacy.plan.weighting == "paper" and "switched from relative" in legacy.describe()
    assert legacy.warnings[0].startswith("style weight 100000 is a paper-weighting β")


# ------------------------------------------------------------------------------------------ the style weight

def test_the_style_weight_cannot_silently_mean_the_wrong_thing():
    # a paper β under the size-free weightings: converted, with a warning
    weighting, note = resolve_weighting("relative", [1e5])
    assert weighting == "paper" and "set weighting=relative and a style weight of at most" in note
    # a strength under "paper" would leave the photo unchanged: refused with what to type
    with pytest.raises(OptionError) as refused:
        resolve_weighting("paper", [5.0], 1.0)
    assert refused.value.option == "style_weight"
    assert "weighting=relative" in str(refused.value) and "style_weight=5e+06" in str(refused.value)
    assert resolve_weighting("paper", [5e6], 1.0) == ("paper", None)
    assert resolve_weighting("paper", [1.0], 1e-4) == ("paper", None)   # the paper's α/β ratio, α small
    assert resolve_weighting("paper", [1.0], 0.0) == ("paper", None)    # a texture: no ratio to get wrong
    assert resolve_weighting("paper", [0.0], 1.0) == ("paper", None)    # no style wanted


def test_a_strength_under_paper_is_refused_before_any_step(vgg, cat64, starry64):
    steps = []
    with pytest.raises(OptionError) as refused:
        nst_core.stylize(cat64, starry64, vgg=vgg, steps=2, max_size=48, weighting="paper",
                         callback=lambda p: steps.append(p.step))
    assert refused.value.option == "style_weight" and steps == []


# ------------------------------------------------------------------------------------------ styles by region

def _flat(colour, size=48):
    """A texture of one hue: `colour` with a checker pattern of ±0.2, [1,H,W,3]."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pattern = (((yy // 4 + xx // 4) % 2).float() - 0.5) * 0.4
    return (torch.tensor(colour).view(1, 1, 1, 3) + pattern[None, :, :, None]).clamp(0, 1)


def test_several_styles_by_region_in_one_call(vgg):
    gray = torch.full((1, 48, 48, 3), 0.5)
    red, blue = _flat((0.8, 0.2, 0.2)), _flat((0.2, 0.2, 0.8))
    left = torch.zeros(48, 48)
    left[:, :24] = 1

    def redness(image):
        """(red - blue) of the left half minus that of the right half."""
        diff = image[0, :, :, 0] - image[0, :, :, 2]
        return float(diff[:, :20].mean() - diff[:, 28:].mean())

    # a flat photo is far from both textures (d ~ 2): a strong weight paints it within 15 steps
    common = dict(vgg=vgg, steps=15, max_size=48, style_loss="wasserstein2", style_weight=100)
    painted = nst_core.stylize(gray, [red, blue], style_masks=[left, 1 - left], **common)
    swapped = nst_core.stylize(gray, [red, blue], style_masks=[1 - left, left], **common)
    assert len(painted.plan.style_units) == 2
    assert redness(painted.image) > 0.05 and redness(swapped.image) < -0.05, \
        (redness(painted.image), redness(swapped.image))
    with pytest.raises(OptionError) as refused:
        nst_core.stylize(gray, [red, blue], style_masks=[left], **common)
    assert refused.value.option == "style_masks"
