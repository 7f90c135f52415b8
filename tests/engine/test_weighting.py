"""The style strength (issue 11, part 1): weighting "normalized" (each term relative to its target's energy,
the same look at every size), "relative" (normalized, each style term in units of the photo's own
distance to the painting: the same look for every pair) and "paper" (Gatys et al.'s raw terms), the rule that
reads an older workflow's paper β, and the size-free look itself (small sizes, few steps)."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

import nst_core
from nst_core.api import _level_content_weight
from nst_core.bench.evaluate import scores as evaluator_scores
from nst_core.bench.look import look, pair_images
from nst_core.objective import Objective
from nst_core.plan import Level
from nst_core.settings import (DEFAULTS, MAX_STRENGTH, NORMALIZED_STYLE_WEIGHT, OPTIONS, PAPER_STYLE_WEIGHT,
                               SIZE_FREE_WEIGHTINGS, OptionError, resolve_weighting)
from nst_core.statistics import STATISTICS
from nst_core.targets import ContentTarget, StyleTarget
from nst_core.tiling import TiledObjective

ROOT = pathlib.Path(__file__).resolve().parents[2]
LEGACY_WORKFLOW = ROOT / "tests" / "fixtures" / "legacy_workflows" / "nst_style_transfer_before_weighting.json"
LEGACY_NOTE = "is a paper-weighting β from an older workflow: ran with weighting=paper"
# the look tests: the default strength, L-BFGS at one size (no coarse-to-fine below 256 px). At 30 steps
# 192 px is still far from converged (style ratio 0.66 against 0.07 at 96 px), at 100 steps all three are
# painted (nst_core.bench.look's measures, cat + Starry Night: ratio 0.047 / 0.078 / 0.139, content
# distance 0.64 / 0.62 / 0.68 at 96 / 128 / 192 px)
SIZE_STEPS = 100
PAIR_STEPS = 30


def _features(vgg, x, layers):
    with torch.no_grad():
        return vgg.features(x, list(layers))


def _gram(f):
    flat = f.reshape(f.shape[1], -1).double()
    return flat @ flat.T / flat.shape[1]


def _nchw(image):
    return image.permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def pieces(vgg, cat64, starry64):
    """Targets and a stylized-looking x (the photo plus noise) at the cat's 64x42 px."""
    content = ContentTarget(vgg, cat64, ("relu4_2",), 1.0)
    style = StyleTarget(vgg, starry64, nst_core.DEFAULT_STYLE_LAYERS, None, 7.0, style_loss="gram")
    x = (_nchw(cat64) + 0.1 * torch.randn(1, 3, *cat64.shape[1:3], generator=torch.Generator().manual_seed(0)))
    return content, style, x.clamp(0, 1)


# ---------------------------------------------------------------------------------------------- the formulas

def test_option_and_defaults(vgg, pieces):
    assert OPTIONS["weighting"].choices == ("relative", "normalized", "paper")
    assert DEFAULTS["weighting"] == "relative"
    assert DEFAULTS["style_weight"] == NORMALIZED_STYLE_WEIGHT < MAX_STRENGTH < 1e4 <= PAPER_STYLE_WEIGHT
    assert f"{PAPER_STYLE_WEIGHT:g}" in OPTIONS["weighting"].help and f"{PAPER_STYLE_WEIGHT:g}" in \
        OPTIONS["style_weight"].help
    with pytest.raises(OptionError) as err:
        Objective(vgg, pieces[0], None, weighting="raw")
    assert err.value.option == "weighting"


def test_paper_weighting_is_the_papers_formulas(vgg, pieces):
    """weighting='paper': α·½Σ(F−P)² + β·Σ w_l Σ(Ĝ−Â)²/(4N²), the engine's terms before weighting existed."""
    content, style, x = pieces
    objective = Objective(vgg, content, style, 0.0, content.size, weighting="paper")
    with torch.no_grad():
        total, parts = objective(x)
    out = _features(vgg, x, ["relu4_2", *style.layers])
    p = content.features_at(content.size)["relu4_2"]
    expected_content = 0.5 * float((out["relu4_2"].double() - p.double()).pow(2).sum())
    targets = style.targets_at(content.size)
    expected_style = sum(0.2 * float((_gram(out[n]) - targets[n][0].double()).pow(2).sum())
                         / (4 * out[n].shape[1] ** 2) for n in style.layers)
    assert float(parts["content"]) == pytest.approx(expected_content, rel=1e-5)
    assert float(parts["style"]) == pytest.approx(expected_style, rel=1e-5)
    assert float(total) == pytest.approx(expected_content + 7.0 * expected_style, rel=1e-5)


def test_normalized_weighting_is_relative_to_the_targets(vgg, pieces):
    """weighting='normalized': ‖F−P‖²/‖P‖² + β·Σ w_l ‖Ĝ−Â‖²/‖Â‖²."""
    content, style, x = pieces
    objective = Objective(vgg, content, style, 0.0, content.size, weighting="normalized")
    with torch.no_grad():
        total, parts = objective(x)
    out = _features(vgg, x, ["relu4_2", *style.layers])
    p = content.features_at(content.size)["relu4_2"].double()
    expected_content = float((out["relu4_2"].double() - p).pow(2).sum() / p.pow(2).sum())
    targets = style.targets_at(content.size)
    expected_style = sum(0.2 * float((_gram(out[n]) - targets[n][0].double()).pow(2).sum()
                                     / targets[n][0].double().pow(2).sum()) for n in style.layers)
    assert float(parts["content"]) == pytest.approx(expected_content, rel=1e-5)
    assert float(parts["style"]) == pytest.approx(expected_style, rel=1e-5)
    assert float(total) == pytest.approx(expected_content + 7.0 * expected_style, rel=1e-5)


def test_relative_weighting_is_in_units_of_the_photos_distance_per_layer(vgg, pieces):
    """weighting='relative': normalized with each style layer's term divided by d_l = ‖Ĝ−Â‖²/‖Â‖² of the
    photo at that layer where the look is set (the look size: here 64 px, the photo's own size), so the
    unchanged photo's style term is w_l at every layer whatever the pair."""
    from nst_core.photo_distance import style_distance, style_units
    content, style, x = pieces
    normalized = Objective(vgg, content, style, 0.0, content.size, weighting="normalized")
    units = style_units(vgg, content, style, look_size=max(content.size))
    relative = Objective(vgg, content, style, 0.0, content.size, weighting="relative", style_units=units)
    size = content.size
    photo = content.image_at(size)
    out, targets = _features(vgg, photo, style.layers), style.targets_at(size)
    d = [float((_gram(out[n]) - targets[n][0].double()).pow(2).sum() / targets[n][0].double().pow(2).sum())
         for n in style.layers]
    assert relative.style_units == (pytest.approx(tuple(1 / v for v in d), rel=1e-4),)
    x_out = _features(vgg, x, style.layers)
    expected = sum(0.2 * float((_gram(x_out[n]) - targets[n][0].double()).pow(2).sum()
                               / targets[n][0].double().pow(2).sum()) / v for n, v in zip(style.layers, d))
    with torch.no_grad():
        _, n_parts = normalized(x)
        total, parts = relative(x)
    assert float(parts["content"]) == pytest.approx(float(n_parts["content"]), rel=1e-6)
    assert float(parts["style"]) == pytest.approx(expected, rel=1e-4)
    assert float(total) == pytest.approx(float(parts["content"]) + 7.0 * float(parts["style"]), rel=1e-5)
    with torch.no_grad():
        assert float(relative(photo)[1]["style"]) == pytest.approx(1.0, rel=1e-4)     # Σ w_l = 1
        # every layer starts from its own share w_l: no layer's distance sets the others' unit
        photo_features = vgg.features(photo, style.layers)
        starts = [float(loss) for n in style.layers for _, loss in relative.layer_losses(n, photo_features[n])]
    assert starts == pytest.approx([0.2] * len(style.layers), rel=1e-4)
    assert max(d) > 2 * min(d)                  # the layers' distances differ: one d would not do this
    # by default d_l is measured at the default look size whatever the output's size (this photo: 64 px)
    at_look = nst_core.image.fit_max_side(*content.size, DEFAULTS["look_size"], upscale=True)
    assert style_units(vgg, content, style) == \
        (pytest.approx(tuple(1 / v for v in style_distance(vgg, content, style, max(at_look))), rel=1e-6),)
    # and a run's plan takes them so: a 64 px run is weighted as its 256 px run would be
    options = nst_core.RunOptions.of(None, weighting="relative")
    assert nst_core.plan.decide(options, vgg, content, style).style_units == \
        (pytest.approx(tuple(1 / v for v in style_distance(vgg, content, style, max(at_look))), rel=1e-6),)
    # no photo (a texture): nothing to measure from; without units the terms are the normalized ones
    assert style_units(vgg, None, style) == ()
    with torch.no_grad():
        unscaled = Objective(vgg, content, style, 0.0, content.size, weighting="relative")(x)[1]
    assert float(unscaled["style"]) == pytest.approx(float(n_parts["style"]), rel=1e-6)
    with pytest.raises(ValueError):
        Objective(vgg, content, style, 0.0, content.size, weighting="paper", style_units=((1.0,) * 5,))


def test_a_content_mask_counts_only_its_regions_energy(vgg, cat64, pieces):
    _, _, x = pieces
    mask = torch.zeros(cat64.shape[1:3])
    mask[:, : cat64.shape[2] // 2] = 1.0
    content = ContentTarget(vgg, cat64, ("relu4_2",), 1.0, mask=mask)
    with torch.no_grad():
        _, parts = Objective(vgg, content, None, 0.0, content.size, weighting="normalized")(x)
    m = content.masks_at(content.size)["relu4_2"].double()
    p = content.features_at(content.size)["relu4_2"].double()
    f = _features(vgg, x, ["relu4_2"])["relu4_2"].double()
    expected = float((m * (f - p).pow(2)).sum() / (m * p.pow(2)).sum())
    assert float(parts["content"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["gram", "wasserstein2", "sliced_wasserstein"])
def test_energy_is_the_loss_of_an_all_zero_output(vgg, starry64, name):
    """A statistic's energy (what 'normalized' divides by) is its loss against all-zero features; sliced
    W draws random directions, so there it holds on average over many draws."""
    stat = STATISTICS[name]
    features = _features(vgg, _nchw(starry64), ["relu3_1"])["relu3_1"]
    target = stat.target(features)
    zero = torch.zeros_like(features)
    generator = torch.Generator().manual_seed(3)
    draws = 40 if name == "sliced_wasserstein" else 1
    value = sum(float(stat.loss(zero, target, None, generator, "relu3_1")) for _ in range(draws)) / draws
    assert stat.energy(target, "relu3_1") == pytest.approx(value, rel=0.03 if draws > 1 else 1e-4)


@pytest.mark.parametrize("name", ["gram", "wasserstein2"])
def test_relative_weighting_scales_each_statistic_by_its_strength(vgg, cat64, starry64, name):
    """Under relative weighting the unchanged photo's style term is Σ_l w_l times the statistic's relative
    strength at l (statistics.normalization: W2 pulls further than the Gram at one strength and weighs its
    first two blocks 4x and 2x; the Gram's layers stay equal, as the paper's)."""
    from nst_core.photo_distance import style_units
    from nst_core.statistics.normalization import RELATIVE_STRENGTHS
    content = ContentTarget(vgg, cat64, ("relu4_2",), 1.0)
    style = StyleTarget(vgg, starry64, nst_core.DEFAULT_STYLE_LAYERS, None, 1.0, style_loss=name)
    units = style_units(vgg, content, style, look_size=max(content.size))
    relative = Objective(vgg, content, style, 0.0, content.size, weighting="relative", style_units=units)
    with torch.no_grad():
        start = float(relative(content.image_at(content.size))[1]["style"])
    emphasis = (4 + 2 + 1 + 1 + 1) / 5 if name == "wasserstein2" else 1.0
    assert start == pytest.approx(RELATIVE_STRENGTHS[name] * emphasis, rel=1e-4)
    assert RELATIVE_STRENGTHS["gram"] == 1.0 and RELATIVE_STRENGTHS["wasserstein2"] < 1.0


def test_a_dark_photo_takes_the_paintings_brightness(vgg):
    """W2's first two blocks weigh 4x and 2x the deeper ones (statistics.normalization.BLOCK_EMPHASIS): with
    equal layers the relative terms let the Hubble deep field keep its black (64 px, 60 steps: mean 0.18-0.20
    against the painting's 0.52, relu1_1 Gram ratio 0.36); with the emphasis it takes the painting's
    brightness and palette (mean 0.44, ratio 0.02), its structure still there (content distance 0.81)."""
    photo, painting = pair_images("hubble+woman_with_hat")
    photo = nst_core.fit(photo, 64)
    result = nst_core.stylize(photo, painting, vgg=vgg, max_size=64, steps=60)
    dark, bright = float(photo.mean()), float(painting.mean())
    assert float(result.image.mean()) > dark + 0.6 * (bright - dark)
    figures = evaluator_scores(vgg, photo, result.image, painting)
    assert figures["per_layer_gram"][0] < 0.1 and figures["content_distance"] < 0.9, figures


def test_each_statistic_weighs_about_the_same_under_normalized(vgg, cat64, starry64):
    """Switching style_loss needs no retuning: the photo's normalized style term against the painting is
    within the calibration's spread (statistics.normalization.RELATIVE_LOSS_SCALES) of the Gram's."""
    values = {}
    for name in STATISTICS:
        style = StyleTarget(vgg, starry64, style_loss=name, weight=1.0)
        objective = Objective(vgg, None, style, 0.0, tuple(cat64.shape[1:3]), weighting="normalized")
        with torch.no_grad():
            values[name] = float(objective(_nchw(cat64))[1]["style"])
    for name in ("wasserstein2", "sliced_wasserstein"):
        assert 1 / 3 < values[name] / values["gram"] < 3, values


def test_normalized_terms_do_not_grow_with_the_pixel_count(vgg):
    """The same photo + painting (and the same, size-free, perturbation: a lower contrast) at 64 and 128 px:
    under 'paper' the content term grows with the pixel count (~4x), under 'normalized' neither term moves
    much."""
    photo, painting = pair_images("astronaut+the_scream")
    values = {}
    for size in (64, 128):
        image = nst_core.fit(photo, size)
        content = ContentTarget(vgg, image, ("relu4_2",), 1.0)
        style = StyleTarget(vgg, painting, weight=1.0)
        x = 0.6 * _nchw(image) + 0.2
        for weighting in ("paper", "normalized"):
            with torch.no_grad():
                _, parts = Objective(vgg, content, style, 0.0, content.size, weighting=weighting)(x)
            values[weighting, size] = (float(parts["content"]), float(parts["style"]))
    paper_growth = values["paper", 128][0] / values["paper", 64][0]
    assert paper_growth > 2.5, values
    for term in (0, 1):
        ratio = values["normalized", 128][term] / values["normalized", 64][term]
        assert 1 / 1.5 < ratio < 1.5, values


def test_coarse_levels_scale_alpha_only_under_paper(vgg, cat64):
    content = ContentTarget(vgg, cat64, ("relu4_2",), 2.0)
    level = Level(0, (21, 32), 10, 0)
    assert _level_content_weight(content, level, 4 * 21 * 32, "paper") == pytest.approx(8.0)
    assert _level_content_weight(content, level, 4 * 21 * 32, "normalized") is None


def test_tiled_equals_untiled_under_normalized(vgg):
    """The normalization is folded into the terms' weights, so the exact tiled objective needs nothing new."""
    photo, painting = pair_images("coffee+composition_vii")
    image = torch.nn.functional.interpolate(_nchw(photo), size=(72, 88), mode="bilinear").clamp(0, 1)
    content = ContentTarget(vgg, image.permute(0, 2, 3, 1), ("relu4_2",), 1.0)
    style = StyleTarget(vgg, painting, weight=NORMALIZED_STYLE_WEIGHT)
    objective = Objective(vgg, content, style, 0.5, (72, 88), weighting="normalized")
    tiled = TiledObjective(objective, tile=32)
    assert len(tiled.tiles) > 1
    x0 = (image + 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    results = []
    for fn in (objective, tiled):
        x = x0.clone().requires_grad_(True)
        total, parts = fn(x)
        total.backward()
        results.append((float(total.detach()), float(parts["style"].detach()), x.grad))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-4)
    assert results[1][1] == pytest.approx(results[0][1], rel=1e-4)
    assert float((results[1][2] - results[0][2]).norm() / results[0][2].norm()) < 1e-4


# ------------------------------------------------------------------------------------------ older workflows

def test_resolve_weighting():
    assert resolve_weighting("normalized", [NORMALIZED_STYLE_WEIGHT]) == ("normalized", None)
    assert resolve_weighting("normalized", [MAX_STRENGTH]) == ("normalized", None)
    assert resolve_weighting("paper", [5e6]) == ("paper", None)
    assert resolve_weighting("normalized", []) == ("normalized", None)
    weighting, note = resolve_weighting("normalized", [2.0, 5e6])
    assert weighting == "paper" and note.startswith("style weight 5e+06 " + LEGACY_NOTE)
    with pytest.raises(OptionError):
        resolve_weighting("energy", [1.0])


def test_a_paper_beta_runs_with_paper_weighting_and_says_so(vgg, cat64, starry64):
    options = dict(vgg=vgg, steps=3, max_size=48, style_weight=5e6)
    legacy = nst_core.stylize(cat64, starry64, **options)
    paper = nst_core.stylize(cat64, starry64, weighting="paper", **options)
    assert any(LEGACY_NOTE in w for w in legacy.warnings)
    assert not any(LEGACY_NOTE in w for w in paper.warnings)
    assert torch.equal(legacy.image, paper.image)
    assert legacy.history[-1]["total"] == paper.history[-1]["total"]


def test_an_old_workflow_runs_headless_with_paper_weighting(tmp_path):
    """workflows/nst_style_transfer.json as saved before `weighting` existed (β = 3e6 and no weighting
    widget): it runs, its report says it ran with paper, and its image is the explicit paper run's."""
    from comfyui_nst.nodes.headless import cli
    from comfyui_nst.nodes.headless.executor import Executor
    saved = json.loads(LEGACY_WORKFLOW.read_text(encoding="utf-8"))
    optimize = next(n for n in saved["nodes"] if n["type"] == "NST_Optimize")
    style = next(n for n in saved["nodes"] if n["type"] == "NST_StyleTarget")
    assert len(optimize["widgets_values"]) == 10 and float(style["widgets_values"][2]) > MAX_STRENGTH
    classes, display = cli.build_registry()
    runs = {}
    for name, weighting in (("old", None), ("paper", "paper")):
        ex = Executor(classes, output_dir=str(tmp_path / name), temp_dir=str(tmp_path / f"t{name}"),
                      display_names=display)
        wf = ex.load(str(LEGACY_WORKFLOW))
        for node in wf.prompt.values():
            if node["class_type"] == "NST_ExampleImage":
                node["inputs"]["max_size"] = 48
            elif node["class_type"] == "NST_Optimize":
                node["inputs"]["steps"] = 3
                if weighting is not None:
                    node["inputs"]["weighting"] = weighting
                else:
                    assert node["inputs"].get("weighting", DEFAULTS["weighting"]) in SIZE_FREE_WEIGHTINGS
        result = ex.run(wf)
        (report,) = {ui["text"][0] for ui in result.outputs.values() if "text" in ui}    # node and preview
        (image,) = [nst_core.load_image(p) for p in result.files if p.endswith(".png") and "/temp" not in p
                    and pathlib.Path(p).parent.parent == tmp_path / name]
        runs[name] = report, image
    old_report, old_image = runs["old"]
    assert "style weight 3e+06 " + LEGACY_NOTE in old_report and "weighting paper" in old_report
    assert LEGACY_NOTE not in runs["paper"][0] and "weighting paper" in runs["paper"][0]
    assert torch.equal(old_image, runs["paper"][1])


# ---------------------------------------------------------------------------------------- the size-free look

_LOOKS: dict = {}


def _look(vgg, pair: str, size: int, steps: int, **options) -> dict:
    """Gram style ratio and content distance of `pair` stylized with the defaults (and `options`) at
    `size` px (cached)."""
    key = (pair, size, steps, tuple(sorted(options.items())))
    if key not in _LOOKS:
        photo, painting = pair_images(pair)
        result = nst_core.stylize(photo, painting, vgg=vgg, max_size=size, steps=steps, **options)
        assert not result.warnings, result.warnings
        _LOOKS[key] = look(vgg, nst_core.fit(photo, size), result.image,
                           StyleTarget(vgg, painting, style_loss="gram"))
    return _LOOKS[key]


def _spread(values) -> float:
    return max(values) / min(values)


@pytest.mark.slow
def test_the_look_does_not_depend_on_the_size(vgg):
    """The content distance is the same at 96, 128 and 192 px (under paper the issue measured 1.06 / 0.59 /
    0.29 at 128 / 256 / 384 px). The style ratio is not held to 1.5x here: at a fixed number of single-size
    steps the larger image is less converged (it falls with the steps: 0.66 -> 0.14 at 192 px from 30 to
    100 steps); every size is clearly painted."""
    looks = [_look(vgg, "chelsea+starry_night", size, SIZE_STEPS) for size in (96, 128, 192)]
    assert _spread([m["content_distance"] for m in looks]) < 1.5, looks
    # clearly stylized, the photo's structure kept (paper β 5e6 at these sizes: distance ~1.0, the photo gone)
    assert all(m["style_ratio"] < 0.3 and 0.3 < m["content_distance"] < 0.9 for m in looks), looks


@pytest.mark.slow
def test_the_look_hardly_depends_on_the_pair(vgg):
    """The relative unit: the same strength moves a photo statistically close to its painting (the cat and
    The Starry Night, d = 1.2 at 128 px) and a far one (the astronaut and Composition VII, d = 4.9) about
    equally far towards it. Measured at 128 px, 30 steps: style ratio 0.163 / 0.034 (4.8x apart) with
    the unit, 0.150 / 0.014 (10.7x) without it (weighting "normalized"); content distance 0.75 / 0.48.
    Under the Gram statistic: with the default W2 these two pairs spread alike with and without the unit
    (W2 ratio beyond colour 1.44x / 1.43x, content 1.09x / 1.06x), so it could not fail there."""
    looks = [_look(vgg, pair, 128, PAIR_STEPS, style_loss="gram")
             for pair in ("chelsea+starry_night", "astronaut+composition_vii")]
    assert _spread([m["style_ratio"] for m in looks]) < 7.0, looks
    assert _spread([m["content_distance"] for m in looks]) < 2.0, looks
    assert all(m["style_ratio"] < 0.5 for m in looks), looks
