"""The precision of a plan's levels (nst_core.precision): coarse levels may run in bfloat16, the final one
never; the option reaches the objective, and "float32" gives float32 everywhere."""

import pytest
import torch

import nst_core
from nst_core import precision
from nst_core.plan import make_plan, with_precision
from nst_core.settings import OptionError


@pytest.fixture(scope="module")
def targets(vgg):
    cat = nst_core.load_image(nst_core.example_path("content_chelsea.png"))
    content = nst_core.ContentTarget(vgg, cat, ["relu4_2"], 1.0)
    style = nst_core.StyleTarget(vgg, nst_core.load_image(nst_core.example_path("style_starry_night.jpg")),
                                 weight=5.0)
    return content, style


PLAN = make_plan([(24, 32), (48, 64), (96, 128)], [2, 2, 2])


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bfloat16_below_the_final_level_where_the_cpu_has_it(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: native)
    coarse = "bfloat16" if native else "float32"
    assert [lv.precision for lv in with_precision(PLAN, "auto", "cpu").levels] == [coarse, coarse, "float32"]
    # a GPU's coarse steps wait on launches, not arithmetic: float32 (TF32) there
    assert [lv.precision for lv in with_precision(PLAN, "auto", "cuda").levels] == ["float32"] * 3
    assert [lv.precision for lv in with_precision(PLAN, "float32", "cpu").levels] == ["float32"] * 3
    forced = with_precision(PLAN, "bfloat16", "cpu")
    assert [lv.precision for lv in forced.levels] == ["bfloat16", "bfloat16", "float32"]
    assert forced.levels[0].tiled_label == "32x24 px, bfloat16" and forced.levels[2].tiled_label == "128x96 px"
    one = make_plan([(48, 64)], [3])                      # a one-level plan is all final level
    assert with_precision(one, "bfloat16", "cpu").levels[0].precision == "float32"


def test_a_bad_precision_is_refused_naming_the_option():
    with pytest.raises(OptionError, match="coarse_precision"):
        with_precision(PLAN, "float16", "cpu")
    with pytest.raises(ValueError, match="float16"):
        precision.autocast_dtype("float16")


def test_a_bfloat16_objective_runs_its_convs_in_bfloat16(vgg, targets):
    """The features the losses see are bfloat16 (autocast), the loss and its gradient float32 and close to
    float32's (a gradient within bfloat16's few % of the float32 one), yet not identical to it."""
    content, style = targets
    torch.manual_seed(0)
    x = (content.image_at((48, 64)) + 0.1 * torch.randn(1, 3, 48, 64)).clamp(0, 1)
    seen = {}
    results = {}
    for name in ("float32", "bfloat16"):
        objective = nst_core.Objective(vgg, content, style, 0.0, (48, 64), precision=name)
        original = objective.layer_losses

        def spy(layer, h, original=original, name=name):
            seen.setdefault(name, set()).add(h.dtype)
            return original(layer, h)
        objective.layer_losses = spy
        xg = x.clone().requires_grad_(True)
        with torch.enable_grad():
            loss = objective(xg)[0]
            loss.backward()
        results[name] = (loss.detach(), xg.grad)
    assert seen == {"float32": {torch.float32}, "bfloat16": {torch.bfloat16}}
    (loss32, grad32), (loss16, grad16) = results["float32"], results["bfloat16"]
    assert loss16.dtype == torch.float32 and grad16.dtype == torch.float32
    assert loss16 != loss32 and float((loss16 - loss32).abs() / loss32) < 0.02
    assert 0 < float((grad16 - grad32).norm() / grad32.norm()) < 0.15


def test_optimize_runs_the_coarse_levels_in_the_precision_asked_for(vgg, targets, monkeypatch):
    """The plan a run returns records each level's precision; under forced bfloat16 the coarse levels'
    features are bfloat16 and the final level's float32; "float32" is float32 everywhere."""
    content, style = targets
    dtypes = []                                  # (the level's width, the dtype a loss term was given)
    original = nst_core.Objective.layer_losses

    def spy(self, layer, h):
        dtypes.append((self.size[1], h.dtype))
        return original(self, layer, h)
    monkeypatch.setattr(nst_core.Objective, "layer_losses", spy)
    runs = {}
    for name in ("float32", "bfloat16"):
        dtypes.clear()
        runs[name] = nst_core.optimize(vgg, content, style, plan=PLAN, coarse_precision=name)
        runs[name].dtypes = set(dtypes)
    assert [lv.precision for lv in runs["bfloat16"].plan.levels] == ["bfloat16", "bfloat16", "float32"]
    assert runs["bfloat16"].dtypes == {(32, torch.bfloat16), (64, torch.bfloat16), (128, torch.float32)}
    assert [lv.precision for lv in runs["float32"].plan.levels] == ["float32"] * 3
    assert runs["float32"].dtypes == {(32, torch.float32), (64, torch.float32), (128, torch.float32)}
    first = [run.history[0]["total"] for run in runs.values()]
    assert first[0] != first[1] and first[1] == pytest.approx(first[0], rel=0.02)
    with pytest.raises(OptionError, match="coarse_precision"):
        nst_core.optimize(vgg, content, style, plan=PLAN, coarse_precision="half")


def test_the_cpu_probe_reads_the_cpus_flags(monkeypatch, tmp_path):
    """AMX or AVX-512 BF16 in the CPU's flags is native bfloat16; plain AVX-512 (where oneDNN emulates it,
    and torch.ops.mkldnn._is_mkldnn_bf16_supported() still says yes) is not."""
    import builtins
    real_open = builtins.open
    for flags, native in (("fpu avx2 avx512f avx512bw", False), ("fpu avx512f avx512_bf16", True),
                          ("fpu avx512f amx_bf16 amx_tile", True)):
        fake = tmp_path / "cpuinfo"
        fake.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open",
                            lambda path, *a, fake=fake, **k: real_open(fake if path == "/proc/cpuinfo" else path,
                                                                      *a, **k))
        precision.cpu_has_native_bfloat16.cache_clear()        # read once per process: read again
        assert precision.cpu_has_native_bfloat16() is native
    precision.cpu_has_native_bfloat16.cache_clear()

