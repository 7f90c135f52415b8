"""The memory budget in the run plan: tiles and L-BFGS pairs decided per level, the loop running them
(the same image as untiled), tiled targets, progress carrying the tile, clear refusals, node and CLI inputs."""

from __future__ import annotations

import pytest
import torch

import nst_core
from nst_core import memory
from nst_core.plan import GIB, MIN_PAIRS, fit_memory, plan_run
from nst_core.settings import LBFGS_PAIRS
from nst_core.targets import ContentTarget, StyleTarget
from nst_core.tiled_features import extract_features, extract_targets, forward_tile
from nst_core.tiling import optimizer_bytes, tiling_cost, untiled_bytes

DEEP = ("relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SHALLOW_STYLE = ("relu1_1", "relu2_1", "relu3_1")


def picture(name: str, height: int, width: int) -> torch.Tensor:
    image = nst_core.load_image(nst_core.example_path(name)).permute(0, 3, 1, 2)
    return torch.nn.functional.interpolate(image, size=(height, width), mode="bilinear",
                                           align_corners=False).clamp(0, 1).permute(0, 2, 3, 1)


@pytest.fixture(scope="module")
def targets(vgg):
    content = ContentTarget(vgg, picture("content_chelsea.png", 72, 96), ("relu3_1",), weight=1.0)
    style = StyleTarget(vgg, picture("style_starry_night.jpg", 72, 96), SHALLOW_STYLE, weight=1e4)
    return content, style


def test_plan_tiles_under_a_tiny_budget_and_shrinks_the_history(vgg):
    size, layers = (96, 128), ("relu3_1",) + SHALLOW_STYLE
    roomy = fit_memory(plan_run(size, 10), vgg, layers, max_memory_gb=64)
    assert roomy.levels[0].tile is None and roomy.levels[0].lbfgs_pairs == LBFGS_PAIRS
    whole = untiled_bytes(vgg, size, layers) + optimizer_bytes(size)
    tight = fit_memory(plan_run(size, 10), vgg, layers, max_memory_gb=0.3 * whole / GIB)
    level = tight.levels[0]
    assert level.tile is not None and level.tiles > 1
    assert MIN_PAIRS <= level.lbfgs_pairs < LBFGS_PAIRS
    assert tight.budget_bytes == int(0.3 * whole)

    def decided(share):
        lv = fit_memory(plan_run(size, 10), vgg, layers, max_memory_gb=share * whole / GIB).levels[0]
        return lv.tiles, lv.lbfgs_pairs

    def cost(lv):           # of one evaluation, in untiled forwards (tiles up to a stem: nst_core.tiling)
        return tiling_cost(vgg.arch, size, layers, lv.tile, lv.stem)

    # first untiled with fewer and fewer pairs (a tiled step costs more than pairs are worth) ...
    untiled = [decided(share) for share in (0.99, 0.97, 0.95, 0.9)]
    assert [t for t, _ in untiled] == [1] * 4
    pairs = [h for _, h in untiled]
    assert pairs == sorted(pairs, reverse=True) and MIN_PAIRS <= pairs[-1] < pairs[0] < LBFGS_PAIRS
    # ... then tiled: smaller budgets, costlier tiles and fewer pairs, down to the floor
    levels = [fit_memory(plan_run(size, 10), vgg, layers, max_memory_gb=share * whole / GIB).levels[0]
              for share in (0.5, 0.4, 0.3, 0.2)]
    costs, pairs = [cost(lv) for lv in levels], [lv.lbfgs_pairs for lv in levels]
    assert costs == sorted(costs) and all(lv.tiles > 1 for lv in levels)
    assert pairs == sorted(pairs, reverse=True) and pairs[-1] == MIN_PAIRS
    with pytest.raises(nst_core.OptionError, match="max_memory_gb"):
        fit_memory(plan_run(size, 10), vgg, layers, max_memory_gb=0.05 * whole / GIB)
    assert "tiles" in tight.describe()
    # adam/sgd keep no history: the whole budget goes to the tiles
    adam = fit_memory(plan_run(size, 10), vgg, layers, max_memory_gb=0.3 * whole / GIB, optimizer="adam")
    assert adam.levels[0].lbfgs_pairs == 0 and cost(adam.levels[0]) <= cost(level)


def test_coarse_levels_stay_untiled_when_only_the_final_one_is_too_big(vgg):
    plan = fit_memory(plan_run(512, 300, True), vgg, DEEP,
                    max_memory_gb=(untiled_bytes(vgg, (350, 350), DEEP) + optimizer_bytes((350, 350))) / GIB)
    assert [lv.tile is None for lv in plan.levels] == [True, True, True, False]     # 128, 256, 362, 512 px
    assert [lv.lbfgs_pairs for lv in plan.levels[:2]] == [LBFGS_PAIRS] * 2
    # 362 px is above the budget's 350 px: it fits untiled by keeping fewer L-BFGS pairs
    assert MIN_PAIRS <= plan.levels[2].lbfgs_pairs < LBFGS_PAIRS


def test_a_budget_too_small_names_max_memory_gb(vgg, targets, monkeypatch):
    content, style = targets
    with pytest.raises(nst_core.OptionError, match="max_memory_gb") as info:
        nst_core.optimize(vgg, content, style, steps=2, max_memory_gb=0.001)
    assert info.value.option == "max_memory_gb" and "GiB" in str(info.value)
    with pytest.raises(nst_core.OptionError, match="max_memory_gb"):
        nst_core.optimize(vgg, content, style, steps=2, max_memory_gb=-1)
    with pytest.raises(nst_core.OptionError, match="tile_size"):
        nst_core.optimize(vgg, content, style, steps=2, tile_size=-5)
    # automatic: the free memory is the budget, and the message says so
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2 ** 20)
    with pytest.raises(nst_core.OptionError, match="max_memory_gb = 0: automatic") as info:
        nst_core.optimize(vgg, content, style, steps=2)
    assert info.value.option == "max_memory_gb"


def test_untileable_style_loss_is_refused_with_the_tile_size(vgg):
    style = StyleTarget(vgg, picture("style_starry_night.jpg", 64, 64), SHALLOW_STYLE,
                        style_loss="sliced_wasserstein")
    with pytest.raises(nst_core.OptionError, match="tile_size"):
        nst_core.optimize(vgg, None, style, size=(64, 64), steps=1, tile_size=32)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_tiled_run_gives_the_untiled_image(vgg, targets, optimizer):
    """A few steps under a forced small tile equal the untiled run (same history size) to float tolerance."""
    content, style = targets
    common = dict(steps=4, optimizer=optimizer, init="noise", seed=3, tv_weight=1e-3)
    plain = nst_core.optimize(vgg, content, style, max_memory_gb=64, **common)
    assert plain.plan.levels[0].tile is None
    seen = []
    tiled = nst_core.optimize(vgg, content, style, max_memory_gb=64, tile_size=40,
                              callback=lambda p: seen.append((p.tile, p.tiles, p.describe())), **common)
    level = tiled.plan.levels[0]
    assert level.tile == (40, 40) and level.tiles == 6 and level.lbfgs_pairs == plain.plan.levels[0].lbfgs_pairs
    assert level.stem == "pool1"           # the cheapest: tiles to pool1 (halo 2 px), relu2_1 .. whole
    assert seen[0] == ((40, 40), 6, "96x72 px, 6 tiles")
    assert len(tiled.history) == len(plain.history) == 4
    for a, b in zip(plain.history, tiled.history):
        assert b["total"] == pytest.approx(a["total"], rel=1e-4)
    error = float((tiled.image - plain.image).abs().max())
    assert error < 1e-3, error


def test_tiled_targets_equal_untiled_targets(vgg):
    x = picture("style_starry_night.jpg", 97, 131).permute(0, 3, 1, 2)
    layers = list(DEEP)
    whole = extract_features(vgg, x, layers)
    tiled = extract_features(vgg, x, layers, tile=(48, 64))
    for name in layers:
        assert tiled[name].shape == whole[name].shape
        assert torch.allclose(tiled[name], whole[name], rtol=1e-4, atol=1e-4 * float(whole[name].abs().max()))
    ramp = torch.linspace(0.1, 1, 131).view(1, 1, 1, -1).expand(1, 1, 97, 131)
    masks = nst_core.statistics.layer_masks(ramp, (97, 131), layers, vgg.layer_names, "mask")
    gram = nst_core.statistics.get_statistic("gram")
    grams = extract_targets(vgg, x, layers, gram, masks, tile=(40, 56))
    for name in layers:
        reference = gram.target(whole[name], masks[name])
        assert torch.allclose(grams[name], reference, rtol=1e-4, atol=1e-5 * float(reference.abs().max()))
    w2 = nst_core.statistics.get_statistic("wasserstein2")
    gaussians = extract_targets(vgg, x, layers, w2, masks, tile=(40, 56))
    for name in layers:
        reference = w2.target(whole[name], masks[name])
        for got, want in ((gaussians[name].mean, reference.mean), (gaussians[name].cov, reference.cov),
                          (gaussians[name].cov_sqrt, reference.cov_sqrt)):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize("style_loss", ["gram", "wasserstein2"])
def test_style_target_is_tiled_when_the_forward_does_not_fit(vgg, monkeypatch, style_loss):
    from nst_core import tiled_features
    image = picture("style_starry_night.jpg", 80, 112)
    plain = StyleTarget(vgg, image, SHALLOW_STYLE, style_loss=style_loss).targets_at((80, 112))
    monkeypatch.setattr(tiled_features, "FORWARD_BYTES",
                        tiled_features.forward_bytes(vgg.arch, (80, 112), SHALLOW_STYLE) // 3)
    assert forward_tile(vgg.arch, (80, 112), SHALLOW_STYLE, tiled_features.FORWARD_BYTES,
                        keep_full=False) != (80, 112)
    from nst_core import targets as targets_module
    calls = []
    # the statistic summed tile by tile, never a full-size map (values alone cannot tell: the whole-map
    # fallback assembles its maps from tiles too)
    monkeypatch.setattr(targets_module, "extract_targets",
                        lambda *a, **k: calls.append(a[3].name) or tiled_features.extract_targets(*a, **k))
    tiled = StyleTarget(vgg, image, SHALLOW_STYLE, style_loss=style_loss).targets_at((80, 112))
    assert calls == [style_loss]
    for name in SHALLOW_STYLE:
        got, want = ((tiled[name], plain[name]) if style_loss == "gram" else
                     (tiled[name].cov, plain[name].cov))                # W2: its mean, covariance and root
        assert not torch.equal(got, want)                               # computed another way ...
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
        if style_loss == "wasserstein2":
            assert torch.allclose(tiled[name].mean, plain[name].mean, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("style_loss", ["gram", "wasserstein2"])
def test_the_photos_distance_at_a_large_size_is_summed_over_tiles(vgg, monkeypatch, style_loss):
    """A large level's unit (nst_core.photo_distance at its own size) does not need the photo's whole
    forward: when it does not fit, each layer's distance is finished from the tiles' sums, as untiled."""
    from nst_core import photo_distance, tiled_features
    content = nst_core.ContentTarget(vgg, picture("content_chelsea.png", 80, 112))
    style = StyleTarget(vgg, picture("style_starry_night.jpg", 64, 80), style_loss=style_loss)
    whole = photo_distance.style_distance(vgg, content, style, (80, 112))
    layers = list(style.layers)
    monkeypatch.setattr(tiled_features, "FORWARD_BYTES", tiled_features.forward_bytes(vgg.arch, (80, 112), layers) // 3)
    cores = []
    forward = tiled_features._tiled_forward
    monkeypatch.setattr(tiled_features, "_tiled_forward", lambda *a: cores.append(a[3]) or forward(*a))
    tiled = photo_distance.style_distance(vgg, content, style, (80, 112))
    assert cores and cores[0] != (80, 112)                          # it went tile by tile
    assert tiled == pytest.approx(whole, rel=1e-4)
    assert max(whole) > 1.5 * min(whole)                            # layers that differ, compared each


def test_console_progress_names_level_and_tiles(vgg, targets):
    import io
    content, style = targets
    stream = io.StringIO()
    bar = nst_core.console_progress(file=stream, every=1)
    nst_core.optimize(vgg, content, style, steps=2, tile_size=40, max_memory_gb=64, callback=bar)
    assert "96x72 px, 6 tiles" in stream.getvalue()


class TileRecorder:
    """A callback that hears steps and tiles; stops at (step, pass, tile) when asked."""

    def __init__(self, stop_at=None):
        self.steps, self.tiles, self.stop_at = [], [], stop_at

    def __call__(self, p):
        self.steps.append(p.step)

    def tile(self, t):
        self.tiles.append((t.step, t.pass_number, t.tile_index, t.tiles))
        if (t.step, t.pass_number, t.tile_index) == self.stop_at:
            self.describe = t.describe()
            t.stop()


def test_a_tiled_step_reports_every_tile_of_both_passes(vgg, targets):
    """Progress inside a step: pass 1 over all 6 tiles (the last one's graph is kept), pass 2 over the
    other 5; nothing is reported for an untiled run."""
    content, style = targets
    heard = TileRecorder()
    nst_core.optimize(vgg, content, style, steps=2, tile_size=40, max_memory_gb=64, callback=heard)
    expected = [e for step in (1, 2) for e in
                [(step, 1, i, 6) for i in range(1, 7)] + [(step, 2, i, 6) for i in range(1, 6)]]
    assert heard.tiles == expected and heard.steps == [1, 2]
    untiled = TileRecorder()
    nst_core.optimize(vgg, content, style, steps=2, max_memory_gb=64, callback=untiled)
    assert untiled.tiles == [] and untiled.steps == [1, 2]


def test_stopping_inside_a_tiled_step_returns_the_last_finished_step(vgg, targets):
    """Cancel between tiles: the step being computed is dropped, the image is that of 2 finished steps."""
    content, style = targets
    common = dict(steps=4, init="noise", seed=3, tile_size=40, max_memory_gb=64)
    two = nst_core.optimize(vgg, content, style, **{**common, "steps": 2})
    heard = TileRecorder(stop_at=(3, 2, 4))
    stopped = nst_core.optimize(vgg, content, style, callback=heard, **common)
    assert stopped.stopped == "callback" and len(stopped.history) == 2 and heard.steps == [1, 2]
    assert heard.tiles[-1] == (3, 2, 4, 6)
    assert heard.describe == "96x72 px, 6 tiles: step 3/4, tile 4/6 of pass 2/2"
    assert torch.equal(stopped.image, two.image)


def test_console_progress_shows_the_tile_and_the_cli_hook_can_stop_there(vgg, targets):
    import io
    content, style = targets
    stream = io.StringIO()
    bar = nst_core.console_progress(file=stream, every=1,
                                    then=lambda p: p.stop() if getattr(p, "pass_number", 0) == 2 else None)
    result = nst_core.optimize(vgg, content, style, steps=3, tile_size=40, max_memory_gb=64, callback=bar)
    bar.close()
    assert "step 1/3: tile 1/6 of pass 2/2" in stream.getvalue()      # where it stopped
    assert result.stopped == "callback" and result.history == []


def test_batch_callbacks_hear_tiles_at_the_batch_step(vgg):
    content = picture("content_chelsea.png", 72, 96)
    heard = TileRecorder()
    nst_core.stylize([content, content], picture("style_starry_night.jpg", 72, 96), vgg=vgg, steps=1,
                     max_size=None, coarse_to_fine=False, tile_size=40, max_memory_gb=64, callback=heard)
    tiles = heard.tiles[0][3]
    assert heard.steps == [1, 2] and tiles > 1
    assert [t[0] for t in heard.tiles] == [1] * (2 * tiles - 1) + [2] * (2 * tiles - 1)   # item 2 is step 2


def test_node_reporter_hears_cancel_between_tiles(monkeypatch, vgg, targets):
    from comfyui_nst.nodes import host
    from comfyui_nst.nodes.nst_nodes import step_reporter
    content, style = targets
    checks, texts = [], []
    monkeypatch.setattr(host, "check_interrupted", lambda: checks.append(1))
    monkeypatch.setattr(host, "progress_text", texts.append)
    report = step_reporter(0)
    nst_core.optimize(vgg, content, style, steps=1, tile_size=40, max_memory_gb=64, callback=report)
    assert len(checks) == 1 + 11                      # once per step, once per tile
    assert any("tile 1/6 of pass 1/2" in text for text in texts)

    class Cancelled(Exception):
        pass

    def cancel():
        raise Cancelled()
    monkeypatch.setattr(host, "check_interrupted", cancel)
    with pytest.raises(Cancelled):
        nst_core.optimize(vgg, content, style, steps=1, tile_size=40, max_memory_gb=64, callback=step_reporter(0))


def test_targets_computed_tile_by_tile_report_their_tiles_and_hear_cancel(vgg, monkeypatch):
    """A photo whose forward does not fit is featurized tile by tile: each tile is reported (pass 0) before
    any step; the console prints it; the node's Content Target hears Cancel there; stop() interrupts."""
    import io
    from comfyui_nst.nodes import host
    from comfyui_nst.nodes.nst_nodes import NST_ContentTarget
    from nst_core import tiled_features
    photo, painting = picture("content_chelsea.png", 72, 96), picture("style_starry_night.jpg", 72, 96)
    monkeypatch.setattr(tiled_features, "FORWARD_BYTES",
                        tiled_features.forward_bytes(vgg.arch, (72, 96), ["relu3_1"]) // 3)
    small = dict(vgg=vgg, steps=1, max_size=None, coarse_to_fine=False, content_layers=("relu3_1",),
                 style_layers=SHALLOW_STYLE)
    heard = TileRecorder()
    events = []
    heard.tile = lambda t: events.append((t.pass_number, t.tile_index, t.tiles, t.describe()))
    nst_core.stylize(photo, painting, **small, callback=heard)
    targets = [e for e in events if e[0] == 0]
    assert targets and events[:len(targets)] == targets            # all before the first step's tiles
    assert targets[0][3] == f"targets at 96x72 px: tile 1/{targets[0][2]}" and targets[0][2] > 1
    stream = io.StringIO()
    nst_core.stylize(photo, painting, **small, callback=nst_core.console_progress(file=stream))
    assert "targets at 96x72 px: tile 1/" in stream.getvalue()
    with pytest.raises(KeyboardInterrupt):
        nst_core.stylize(photo, painting, **small,
                         callback=nst_core.console_progress(file=io.StringIO(), then=lambda p: p.stop()))
    checks, texts = [], []
    monkeypatch.setattr(host, "check_interrupted", lambda: checks.append(1))
    monkeypatch.setattr(host, "progress_text", texts.append)
    NST_ContentTarget.execute(vgg, photo, layers="relu3_1")
    assert len(checks) == targets[0][2] and texts[0].startswith("targets at 96x72 px: tile 1/")


def test_node_inputs_at_the_end_with_automatic_defaults_and_errors_naming_them(vgg, targets):
    from comfyui_nst.nodes.base import NodeInputError
    from comfyui_nst.nodes.nst_nodes import NST_Optimize
    spec = NST_Optimize.inputs()
    names = [*spec["required"], *spec["optional"]]
    assert names[-4:] == ["max_memory_gb", "tile_size", "look_size", "high_res_pooling"]
    assert spec["optional"]["max_memory_gb"][1]["default"] == 0 and spec["optional"]["tile_size"][1]["default"] == 0
    content, style = targets
    with pytest.raises(NodeInputError, match="input 'max_memory_gb'.*GiB"):
        NST_Optimize.execute(vgg, content, steps=1, style=style, max_memory_gb=0.001, preview_every=0)
    with pytest.raises(NodeInputError, match="input 'tile_size'"):
        NST_Optimize.execute(vgg, content, steps=1, style=style, tile_size=-1, preview_every=0)


def test_cli_flags_and_their_errors(tmp_path, capsys):
    from nst_core import cli
    assert cli.FLAGS["max_memory_gb"] == "--max-memory-gb" and cli.FLAGS["tile_size"] == "--tile-size"
    args = cli.build_parser().parse_args(["--max-memory-gb", "2.5", "--tile-size", "256"])
    assert (args.max_memory_gb, args.tile_size) == (2.5, 256)
    code = cli.main(["--size", "64", "--steps", "1", "--max-memory-gb", "0.001", "-q",
                     "--output", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and "--max-memory-gb" in err and not (tmp_path / "out.png").exists()


def test_node_preview_stays_small_and_progress_text_names_the_tiles(monkeypatch):
    from types import SimpleNamespace

    from comfyui_nst.nodes import host, nst_nodes
    from nst_core.plan import Level
    sent, texts = [], []
    monkeypatch.setattr(host.ProgressBar, "update", lambda self, value, total=None, preview=None: sent.append(preview))
    monkeypatch.setattr(host, "progress_text", texts.append)
    level = Level(2, (1366, 2048), 5, 10, tile=(688, 688), tiles=9, lbfgs_pairs=7)
    progress = nst_core.loop.Progress(11, 20, SimpleNamespace(levels=(None,) * 5), level, 1, 0, 1,
                                      lambda: {}, lambda: torch.rand(1, 1366, 2048, 3))
    nst_nodes.step_reporter(preview_every=1)(progress)
    assert texts == ["level 3/5: 2048x1366 px, 9 tiles"]
    assert max(sent[0].size) <= host.PREVIEW_MAX_SIZE and sent[0].size == (512, 342)


def test_the_loop_runs_the_tiles_and_pairs_a_tight_budget_decided(vgg, targets, monkeypatch):
    """The plan decides the memory (fit_memory, above) and the loop carries the decision out, not its
    defaults: under a tight max_memory_gb L-BFGS is made with the level's fewer pairs and every evaluation
    runs the level's tiles (as the tiles report them). The real optimizer and tiles, recorded, not stubbed.
    (The process's allocator is no longer the library's business: nst_core.memory.)"""
    from nst_core import loop
    content, style = targets
    size, layers = content.size, (*content.layers, *style.layers)
    whole = untiled_bytes(vgg, size, layers) + optimizer_bytes(size)
    pairs = []
    make = loop.make_optimizer
    monkeypatch.setattr(loop, "make_optimizer", lambda name, params, lr, history_size=LBFGS_PAIRS:
                        pairs.append(history_size) or make(name, params, lr, history_size))
    heard = TileRecorder()
    result = nst_core.optimize(vgg, content, style, steps=2, max_memory_gb=0.3 * whole / GIB, callback=heard)
    (level,) = result.plan.levels
    assert level.tile is not None and MIN_PAIRS <= level.lbfgs_pairs < LBFGS_PAIRS      # tight
    assert pairs == [level.lbfgs_pairs]
    per_pass = [(step, n) for step in (1, 2) for n in (1, 2)]
    assert sorted({(t[0], t[1]) for t in heard.tiles}) == per_pass and {t[3] for t in heard.tiles} == {level.tiles}
    assert len(heard.tiles) == 2 * (2 * level.tiles - 1)      # both passes: all tiles, then all but the last


def test_a_level_frees_its_optimizer_when_it_ends(vgg, targets, monkeypatch):
    """Each level's optimizer (its L-BFGS history: 0.55 GiB at 1024 px with 31 pairs) is freed when the
    level ends, by reference counting, not at the garbage collector's next run: a level's closure that
    named itself kept it alive into the next level. Checked with the collector off, after a warm-up run."""
    import gc
    import weakref

    from nst_core import loop
    made = []
    make = loop.make_optimizer
    monkeypatch.setattr(loop, "make_optimizer", lambda *a, **k: made.append(make(*a, **k)) or made[-1])
    content, style = targets
    nst_core.optimize(vgg, content, style, steps=2, coarse_to_fine=False)     # first-call imports
    made.clear()
    gc.collect()
    gc.disable()
    try:
        nst_core.optimize(vgg, content, style, steps=2, coarse_to_fine=False)
        refs = [weakref.ref(opt) for opt in made]
        made.clear()
        assert refs and all(ref() is None for ref in refs)
    finally:
        gc.enable()
