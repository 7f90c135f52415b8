"""Smoke tests of the benchmark command and its FLOP count; a run refuses a size that cannot fit."""

import json
import os

import pytest

import nst_core
from nst_core import bench, memory


@pytest.mark.slow
def test_bench_quick_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    report = bench.main(["--quick", "--threads", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "engine s/step" in printed and "time to quality" in printed
    saved = json.loads(out.read_text())
    row = saved["sizes"]["64"]
    assert row["engine_s_per_step"] > 0 and row["reference_s_per_step"] > 0
    assert row["gflop_per_step"] == pytest.approx(report["sizes"][64]["gflop_per_step"])
    assert saved["conv_gflops_per_s"] > 0
    ttq = saved["time_to_quality"]
    assert ttq["schedule"] == [[32, 8], [64, 8]] and ttq["ref_loss"] > 0
    # two targets: the reference's returned (clamped) image, and its last running loss
    assert set(ttq["targets"]) == {"delivered", "running"}
    assert ttq["targets"]["delivered"]["loss"] == ttq["ref_loss"]
    assert ttq["targets"]["running"]["loss"] == ttq["ref_last_recorded"]
    for hit in ttq["targets"].values():
        assert hit["reached"] == (hit["speedup"] is not None)
        if hit["reached"]:
            assert hit["engine_loss"] <= hit["loss"] and 1 <= hit["engine_final_steps"] <= 8


@pytest.mark.slow
def test_reference_run_saved_and_reused(tmp_path, capsys):
    """--save-ref keeps the reference run (losses and times per step); --ttq-ref-history reuses it."""
    ref = tmp_path / "ref.json"
    common = ["--sizes", "64", "--steps", "1", "--warmup", "0", "--repeats", "1", "--no-memory", "--threads", "1",
              "--ttq-size", "64", "--ttq-ref-steps", "6", "--ttq-schedule", "32:4,64:6"]
    first = bench.main(common + ["--save-ref", str(ref)])["time_to_quality"]
    saved = json.loads(ref.read_text())
    assert saved["steps"] == 6 and len(saved["history"]) == 6 and saved["judged_final"] == first["ref_loss"]
    again = bench.main(common + ["--ttq-ref-history", str(ref)])["time_to_quality"]
    assert again["ref_loss"] == first["ref_loss"] and again["ref_last_recorded"] == first["ref_last_recorded"]
    assert again["ref_seconds"] == saved["history"][-1]["time"] and "measured in the run saved" in again["ref_seconds_how"]
    with pytest.raises(SystemExit, match="judged loss after 6 steps only"):
        bench.main(common[:-4] + ["--ttq-ref-steps", "4", "--ttq-schedule", "32:4,64:6", "--ttq-ref-history", str(ref)])
    capsys.readouterr()


def test_time_to_quality_default_schedule_is_stylizes():
    assert bench.parse_schedule(None, 512, 500) == nst_core.plan_run(512, 500, coarse_to_fine=True)
    assert [lv.steps for lv in bench.parse_schedule(None, 512, 500).levels] == [300, 40, 40, 120]
    assert bench.parse_schedule("128:300,256:200,512:200", 512, 500) == nst_core.make_plan(
        [(128, 128), (256, 256), (512, 512)], [300, 200, 200])


def test_speedups_below_one_read_as_slower():
    assert bench._sooner(3.21) == "3.2x sooner" and bench._sooner(0.9) == "1.1x slower"


def test_step_flops_match_the_analytic_count(vgg):
    flops = bench.conv_flops(vgg, 256, bench.CONTENT_LAYERS + bench.STYLE_LAYERS)
    # VGG-19 to conv5_1 at 256 px: ~47 GFLOP forward, a step (forward + input gradient) ~95 GFLOP
    assert flops["forward"] / 1e9 == pytest.approx(47.3, rel=0.01)
    assert flops["step"] == 2 * flops["forward"] + flops["gram"]
    assert 90e9 < flops["step"] < 100e9


def test_a_run_refuses_a_size_that_cannot_fit(vgg, monkeypatch):
    # the run plan decides memory (nst_core.plan.fit_memory: tiles, L-BFGS pairs); 10 MiB holds no tile
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10 * 2**20)
    content = nst_core.ContentTarget(vgg, nst_core.load_image(nst_core.example_path("content_chelsea.png")))
    with pytest.raises(nst_core.OptionError, match="max_memory_gb"):
        nst_core.optimize(vgg, content, None, steps=1)


def test_gpu_figures_command_runs_small_on_the_cpu(tmp_path, capsys):
    """python -m nst_core.bench.gpu (its full sizes were measured on an H200) at tiny sizes."""
    from nst_core.bench import gpu
    report = gpu.main(["--device", "cpu", "--size", "48", "--steps", "4", "--big", "96", "--big-steps", "6",
                       "--images", str(tmp_path / "img"), "--json", str(tmp_path / "gpu.json")])
    printed = capsys.readouterr().out
    assert "4 steps at 48 px" in printed and "stylize to 96 px" in printed
    (run,) = report["steps"]
    assert run["seconds"] > 0 and run["judged_loss"] > 0 and not run["graphs"]
    big = report["big"]
    assert big["plan"].startswith("96x64 px") and big["peak_gib"] > 0 and big["top_level_tiles"] == 1
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == ["stylized_96_crop.png", "stylized_96_small.png"]
    assert json.loads((tmp_path / "gpu.json").read_text())["name"] == "cpu"


def test_gpu_figures_switch_graphs_by_option_not_environment(vgg, monkeypatch):
    """The graphs-on and graphs-off runs differ in their options (RunOptions.cuda_graphs), not in a
    process-wide environment variable flipped at run time."""
    from nst_core.bench import gpu
    seen = []
    real = nst_core.optimize

    def recording(*args, **kwargs):
        seen.append((kwargs.get("cuda_graphs"), os.environ.get("NST_CUDA_GRAPHS")))
        return real(*args, **kwargs)

    monkeypatch.setattr(nst_core, "optimize", recording)
    monkeypatch.delenv("NST_CUDA_GRAPHS", raising=False)
    before = dict(os.environ)
    for graphs in (True, False):
        gpu.steps_at(vgg, 32, 1, graphs)
    assert seen == [(True, None), (True, None), (False, None), (False, None)]
    assert dict(os.environ) == before


@pytest.mark.parametrize("name", ["nst_core.bench", "nst_core.bench.gpu", "nst_core.bench.look",
                                  "nst_core.bench.scale", "nst_core.bench.texture"])
def test_bench_flags_mean_the_same_in_every_module(name, capsys):
    """--json is a file, --sizes takes spaces or commas, --device / --threads one text; every flag says its
    default; a bad size is a usage error naming --sizes (exit 2)."""
    import importlib
    from nst_core.bench import flags
    module = importlib.import_module(name)
    parser = module.build_parser()
    actions = {s: a for a in parser._actions for s in a.option_strings}
    assert actions["--json"].metavar == "FILE" and actions["--json"].nargs is None
    assert parser.parse_args(["--json", "out.json"]).json == "out.json"
    for flag, add in (("--device", flags.add_device), ("--threads", flags.add_threads)):
        if flag in actions:
            reference = __import__("argparse").ArgumentParser()
            add(reference)
            assert actions[flag].help == reference._actions[-1].help and actions[flag].default is None
    if "--sizes" in actions:
        assert parser.parse_args(["--sizes", "256", "512"]).sizes == parser.parse_args(["--sizes", "256,512"]).sizes \
            == [256, 512]
        with pytest.raises(SystemExit) as info:
            parser.parse_args(["--sizes", "8"])
        assert info.value.code == 2 and "--sizes" in capsys.readouterr().err
    for action in parser._actions:
        if action.option_strings and action.help not in (None, "==SUPPRESS==") and action.dest != "help" \
                and action.nargs != 0:
            assert "default" in action.help, action.option_strings


def test_the_history_bench_runs_at_the_size_it_names_and_holds_the_pairs_it_names(vgg):
    """A size larger than the photo upscales it (the bundled cat is 451 px: a "1024 px" run that stayed at
    451 px compared nothing at 1024), and each level keeps at most the pair count under test."""
    from nst_core.bench import history
    photo = nst_core.image.fit_image(nst_core.load_image(nst_core.example_path("content_chelsea.png")), 40)
    style = nst_core.load_image(nst_core.example_path("style_starry_night.jpg"))
    run = history.run_one(vgg, photo, style, 64, 3, steps=6)
    assert max(run["output"]) == 64
    assert run["levels_pairs"] and max(run["levels_pairs"]) <= 3
    assert len(run["steps"]) == 6
