"""The templates in workflows/: editor files that run headless unchanged, at tiny size, with real results.

Every workflow was built in the real ComfyUI editor (tests/tools/editor_workflows.cjs) and its API form as
the editor queues it is kept in tests/fixtures/workflows/. Here each one runs through the headless
executor with its images shrunk to 48 px and its steps cut to a few, and its outputs are checked for
content (not just existence). Bad workflows fail with clear messages, a non-zero exit code and no files.
"""
from __future__ import annotations

import json
import pathlib
import sys

import pytest
import torch
from PIL import Image

import nst_core
from comfyui_nst.nodes import NODES
from comfyui_nst.nodes.headless import cli
from comfyui_nst.nodes.headless.executor import Executor
from comfyui_nst.nodes.nst_nodes import NST_ExampleImage
from comfyui_nst.nodes.headless.format import load_workflow, ui_to_api
from comfyui_nst.nodes.headless.text_outputs import collect_texts

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "tools"))      # workflow_specs: the templates' own numbers
WORKFLOWS = ROOT / "workflows"
GOLDEN = ROOT / "tests" / "fixtures" / "workflows"
NAMES = ("nst_style_transfer", "nst_figure1_reconstructions", "nst_alpha_beta_tradeoff",
         "nst_optimizers_lbfgs_adam_sgd", "nst_pooling_max_vs_avg", "nst_vgg16_vs_vgg19",
         "nst_color_preservation", "nst_blended_styles", "nst_two_styles_two_regions", "nst_keep_the_face",
         "nst_style_losses_gram_w2_sliced", "nst_what_each_layer_sees", "nst_style_layer_study",
         "nst_stylize_a_short_clip", "nst_high_resolution")
VGG16_FILE = "vgg16-397923af.pth"
TINY, STEPS = 48, 3

CLASSES, DISPLAY = cli.build_registry()


def _ui(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))


def _tiny(prompt: dict, size: int = TINY, steps: int = STEPS) -> dict:
    """The CI settings: every example image at `size` px, every optimizer at `steps` steps, channel
    visualizations at their smallest size."""
    for node in prompt.values():
        if node["class_type"] == "NST_ExampleImage":
            node["inputs"]["max_size"] = size
        elif node["class_type"] in ("NST_Optimize", "NST_Reconstruct", "NST_StylizeFrames"):
            node["inputs"]["steps"] = steps
        elif node["class_type"] == "NST_VisualizeChannel":
            node["inputs"]["size"], node["inputs"]["steps"] = 32, steps
        elif node["class_type"] == "ImageScale":                 # the high-resolution upscale: 2x tiny
            node["inputs"]["width"] = 2 * size
    return prompt


def _run(name: str, tmp_path: pathlib.Path, **overrides):
    out = tmp_path / "output"
    ex = Executor(CLASSES, input_dir=str(tmp_path / "input"), output_dir=str(out), temp_dir=str(tmp_path / "temp"),
                  display_names=DISPLAY)
    wf = ex.load(str(WORKFLOWS / f"{name}.json"))
    _tiny(wf.prompt, **overrides)
    result = ex.run(wf)
    return result, _saved(result)


def _texts(result) -> dict:
    """class_type -> the texts its nodes showed (ui "text"), in run order."""
    texts: dict = {}
    for nid, ui in result.outputs.items():
        texts.setdefault(result.prompt[nid]["class_type"], []).extend(ui.get("text", []))
    return {kind: items for kind, items in texts.items() if items}


def _saved(result) -> dict:
    """SaveImage title -> list of (path, [1,H,W,3] tensor)."""
    saved = {}
    for nid, ui in result.outputs.items():
        node = result.prompt[nid]
        if node["class_type"] == "SaveImage":
            paths = [p for p in result.files if pathlib.Path(p).name in {i["filename"] for i in ui["images"]}]
            saved[node["_meta"]["title"]] = [(p, _tensor(p)) for p in sorted(paths)]
    return saved


def _tensor(path) -> torch.Tensor:
    return nst_core.load_image(path)


def _example(name: str, size: int = TINY) -> torch.Tensor:
    return NST_ExampleImage.execute(name, size)[0]


def _mad(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean().clamp_min(1e-10)))


_VGG = []


def _vgg():
    if not _VGG:
        _VGG.append(nst_core.load_vgg(device="cpu"))
    return _VGG[0]


def _style_loss(image: torch.Tensor, style: torch.Tensor, style_loss: str = "gram") -> float:
    """Style loss (Gram matrices unless told) of `image` against `style` on the default network and layers."""
    vgg = _vgg()
    target = nst_core.StyleTarget(vgg, style, weight=1.0, style_loss=style_loss)
    x = image.permute(0, 3, 1, 2).contiguous()
    objective = nst_core.Objective(vgg, None, target, 0.0, tuple(x.shape[-2:]), weighting="paper")
    with torch.no_grad():
        return float(objective(x)[1]["style"])


def _files(root: pathlib.Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------- the files

def test_the_templates_and_their_thumbnails():
    assert sorted(p.stem for p in WORKFLOWS.glob("*.json")) == sorted(NAMES)
    for name in NAMES:
        # ComfyUI's template browser (frontend 1.27) shows <name>.jpg next to <name>.json
        thumb = WORKFLOWS / f"{name}.jpg"
        assert thumb.is_file(), f"missing thumbnail {thumb.name}"
        assert thumb.stat().st_size < 100_000
        with Image.open(thumb) as img:
            assert img.format == "JPEG" and 200 <= img.width <= 1024 and img.height >= 80
    assert not [p.name for p in WORKFLOWS.iterdir() if p.suffix not in (".json", ".jpg")]


@pytest.mark.parametrize("name", NAMES)
def test_converter_gives_what_the_editor_queues(name):
    """UI -> API as the real frontend 1.27.10 did it (graphToPrompt) for the same file."""
    ui = _ui(name)
    assert ui["version"] == 0.4 and ui["nodes"] and ui["links"]
    warnings = []
    ours = ui_to_api(ui, CLASSES, DISPLAY, warnings)
    golden = json.loads((GOLDEN / f"{name}_api.json").read_text(encoding="utf-8"))
    assert warnings == []
    # The editor also sends PreviewAny's display-only widget ("preview"); ComfyUI ignores inputs a class
    # does not declare, so compare the declared inputs only.
    for node in golden.values():
        spec = CLASSES[node["class_type"]].INPUT_TYPES()
        declared = {**spec.get("required", {}), **spec.get("optional", {})}
        node["inputs"] = {k: v for k, v in node["inputs"].items() if k in declared}
    assert ours == golden


@pytest.mark.parametrize("name", [n for n in NAMES if n != "nst_vgg16_vs_vgg19"])
def test_every_template_validates_as_saved(name):
    prompt = Executor(CLASSES, display_names=DISPLAY).validate(str(WORKFLOWS / f"{name}.json"))
    seeds = [n["inputs"]["seed"] for n in prompt.values() if "seed" in n["inputs"]]
    assert seeds and all(s == 0 for s in seeds)
    # seeds are saved as "fixed", so a template gives the same picture every time
    for node in _ui(name)["nodes"]:
        if node["type"] in ("NST_Optimize", "NST_Reconstruct"):
            assert "fixed" in node["widgets_values"]


# ------------------------------------------------------------------------------------------- tiny runs

def test_style_transfer_through_the_cli(tmp_path, monkeypatch, capsys):
    """The README's main job, exactly as documented: nst-run with --set overrides by node title."""
    monkeypatch.chdir(tmp_path)
    code = cli.main([str(WORKFLOWS / "nst_style_transfer.json"), "--set", f"Content image.max_size={TINY}",
                     "--set", "Style image.max_size=64", "--set", "Style transfer.steps=5",
                     "--output-dir", "out", "-q"])
    out, err = capsys.readouterr()
    assert code == 0, err
    files = [line for line in out.splitlines() if line.endswith(".png")]
    assert len(files) == 1 and files[0].startswith("out/NST/style_transfer_00001_")
    assert "NST Optimize: 48x32 px, lbfgs, 5/5 steps" in out          # the Report node's text, printed
    saved = tmp_path / files[0]
    with Image.open(saved) as img:
        embedded = json.loads(img.info["workflow"])
        prompt = json.loads(img.info["prompt"])
    assert embedded == _ui("nst_style_transfer")              # drag the PNG into ComfyUI: same graph
    assert prompt["7"]["inputs"]["steps"] == 5                # the prompt that really ran
    result = _tensor(saved)
    content, style = _example("content_chelsea.png"), _example("style_starry_night.jpg", 64)
    assert result.shape == content.shape == (1, 32, 48, 3)
    assert _mad(result, content) > 0.01
    assert _style_loss(result, style) < 0.95 * _style_loss(content, style)   # the style loss fell
    # the result and the report's text beside it; previews went to a per-run temp folder, now removed
    assert _files(tmp_path) == sorted([files[0], "out/Report_00001_.txt"])


def test_style_transfer_report_and_loss_plot(tmp_path):
    result, saved = _run("nst_style_transfer", tmp_path)
    texts = _texts(result)
    (report,) = texts["NST_Optimize"]                  # shown on the node itself, no wiring needed
    assert texts["PreviewAny"] == [report]             # and what the template's Report node shows
    assert report.startswith("NST Optimize: 48x32 px, lbfgs, 3/3 steps") and "final:" in report
    (plot,) = [ui["images"] for nid, ui in result.outputs.items()
               if result.prompt[nid]["class_type"] == "PreviewImage"]
    assert plot[0]["type"] == "temp" and len(result.previews) == 1


def test_figure1_ladders(tmp_path):
    result, saved = _run("nst_figure1_reconstructions", tmp_path, steps=6)
    photo = _example("content_chelsea.png")
    content = [t for _, t in saved["Content ladder"]]
    style = [t for _, t in saved["Style ladder"]]
    assert len(content) == len(style) == 5
    assert all(t.shape == photo.shape for t in content)
    psnr = [_psnr(t, photo) for t in content]
    assert psnr[0] > psnr[-1] + 3, psnr                       # conv1_2 keeps the pixels, conv5_2 does not
    assert min(_mad(a, b) for a, b in zip(style, style[1:])) > 0.005
    reports = [ui["text"][0] for ui in result.outputs.values() if "text" in ui]
    assert any("-- conv5_2" in r for r in reports) and any("-- +conv5_1" in r for r in reports)


def test_alpha_beta_tradeoff(tmp_path):
    ui = _ui("nst_alpha_beta_tradeoff")
    betas = [float(n["widgets_values"][2]) for n in ui["nodes"] if n["type"] == "NST_StyleTarget"]
    assert betas == [1e4, 1e5, 1e6, 1e7]                      # four branches, one decade apart
    # At 48 px the content loss is ~7x smaller than at 128 px and only a few steps run, so the ratios are
    # shifted down ~10x to keep the trade-off visible: smallest beta stays at the photo, largest moves most
    # (a β of at most 1000 under paper is refused as a strength: settings.resolve_weighting).
    ex = Executor(CLASSES, output_dir=str(tmp_path / "out"), temp_dir=str(tmp_path / "temp"), display_names=DISPLAY)
    wf = ex.load(str(WORKFLOWS / "nst_alpha_beta_tradeoff.json"))
    _tiny(wf.prompt, steps=12)
    for node in wf.prompt.values():
        if node["class_type"] == "NST_StyleTarget":
            node["inputs"]["weight"] = f"{float(node['inputs']['weight']) / 9.9:g}"
        elif node["class_type"] == "NST_Optimize":
            node["inputs"]["weighting"] = "paper"          # the paper's α/β ratios, shifted (1e3 .. 1e6)
    saved = _saved(ex.run(wf))
    images = [t for _, t in saved["α/β results"]]
    photo = _example("content_chelsea.png")
    style = _example("style_starry_night.jpg")
    assert len(images) == 4
    dist = [_mad(t, photo) for t in images]
    assert dist[0] < 0.5 * dist[-1], dist                     # more β, further from the photo
    assert _style_loss(images[-1], style) < 0.9 * _style_loss(images[0], style)


def test_optimizers_compared(tmp_path):
    _, saved = _run("nst_optimizers_lbfgs_adam_sgd", tmp_path)
    images = [t for _, t in saved["Results"]]
    plots = [t for _, t in saved["Loss curves"]]
    assert len(images) == 3 and len(plots) == 3
    assert min(_mad(a, b) for i, a in enumerate(images) for b in images[i + 1:]) > 0.002
    assert plots[0].shape[1] > 100 and _mad(plots[0], plots[2]) > 0.001   # three different curves


def test_pooling_max_vs_avg(tmp_path):
    _, saved = _run("nst_pooling_max_vs_avg", tmp_path, steps=8)
    (a, ta), (b, tb) = saved["max | avg"]
    assert ta.shape == tb.shape and _mad(ta, tb) > 0.005


def test_color_preservation(tmp_path):
    _, saved = _run("nst_color_preservation", tmp_path, steps=8)
    photo, none, luminance, histogram = [t for _, t in saved["photo | none | luminance | histogram"]]
    assert _mad(photo, _example("content_chelsea.png")) < 0.01

    def chroma(t):  # the colour part (YUV's U, V) of an image
        r, g, b = t.unbind(-1)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return torch.stack([b - y, r - y], -1)

    # luminance-only transfer keeps the photo's colours; the plain transfer takes the painting's
    assert _mad(chroma(luminance), chroma(photo)) < 0.5 * _mad(chroma(none), chroma(photo))
    assert _mad(histogram, none) > 0.005 and _mad(luminance, none) > 0.005


def test_blended_styles(tmp_path):
    result, saved = _run("nst_blended_styles", tmp_path, steps=8)
    # no Preview Any in this template: the run's report is on NST Optimize itself, and nst-run prints it
    ((report,),) = _texts(result).values()
    assert report.startswith("NST Optimize:") and "β = 5 on" in report
    assert [t.text for t in collect_texts(result)] == [report]
    ((_, blended),) = saved["Blended result"]
    photo = _example("content_chelsea.png")
    assert blended.shape == photo.shape and _mad(blended, photo) > 0.01
    starry, scream = _example("style_starry_night.jpg"), _example("style_the_scream.jpg")
    # the blend is closer to each painting's Gram matrices than the photo is
    for style in (starry, scream):
        assert _style_loss(blended, style) < _style_loss(photo, style)


def test_two_styles_two_regions(tmp_path):
    _, saved = _run("nst_two_styles_two_regions", tmp_path, steps=8)
    ((_, result),) = saved["Two regions"]
    photo = _example("content_chelsea.png")
    assert result.shape == photo.shape and _mad(result, photo) > 0.01
    starry, scream = _example("style_starry_night.jpg"), _example("style_the_scream.jpg")
    w = result.shape[2]
    left, right = result[:, :, : w * 3 // 8], result[:, :, w - w * 3 // 8:]     # away from the soft border
    # each half is nearer (relative to the other painting) to its own painting than the other half is
    left_ratio = _style_loss(left, starry) / _style_loss(left, scream)
    right_ratio = _style_loss(right, starry) / _style_loss(right, scream)
    assert left_ratio < 0.8 * right_ratio, (left_ratio, right_ratio)
    # and each half's distance to its own painting, relative to where the photo's half started, fell more
    # than its distance to the other painting (raw distances are not comparable: The Scream is nearer to
    # every image in Gram terms)
    for half, own, other in ((slice(0, w * 3 // 8), starry, scream), (slice(w - w * 3 // 8, w), scream, starry)):
        out, start = result[:, :, half], photo[:, :, half]
        assert _style_loss(out, own) / _style_loss(start, own) < _style_loss(out, other) / _style_loss(start, other)


@pytest.mark.slow
def test_keep_the_face(tmp_path):
    from nst_core.masks_shapes import shape_mask
    import workflow_specs as specs

    _, saved = _run("nst_keep_the_face", tmp_path, size=96, steps=8)   # at 48 px the face is 13 px wide
    photo, plain, kept = [t for _, t in saved["photo | plain | face kept"]]
    assert _mad(photo, _example("content_astronaut.png", 96)) < 0.01
    face = shape_mask(photo.shape[1:3], "ellipse", specs.FACE["x"], specs.FACE["y"], specs.FACE["size"],
                      specs.FACE["aspect"], feather=0) > 0
    assert 0.03 < float(face.float().mean()) < 0.25                   # the face, not the whole picture

    def face_mad(t):
        return float((t[0] - photo[0]).abs().mean(-1)[face].mean())

    # the face stays nearer the photo with the mask; both results are stylized
    assert face_mad(kept) < 0.8 * face_mad(plain), (face_mad(kept), face_mad(plain))
    assert _mad(plain, photo) > 0.02 and _mad(kept, photo) > 0.02


@pytest.mark.slow
def test_style_losses_compared(tmp_path):
    import workflow_specs as specs

    _, saved = _run("nst_style_losses_gram_w2_sliced", tmp_path, steps=6)
    images = [t for _, t in saved["gram | W2 | sliced W"]]
    photo, style = _example("content_chelsea.png"), _example("style_starry_night.jpg")
    assert len(images) == 3 and all(t.shape == photo.shape for t in images)
    assert min(_mad(a, b) for i, a in enumerate(images) for b in images[i + 1:]) > 0.003
    # each run lowered its own statistic's distance to the painting
    for image, loss in zip(images, specs.STYLE_LOSS_NAMES):
        assert _style_loss(image, style, loss) < 0.9 * _style_loss(photo, style, loss), loss


def test_what_each_layer_sees(tmp_path):
    import workflow_specs as specs

    _, saved = _run("nst_what_each_layer_sees", tmp_path)
    photo = _example("content_chelsea.png")
    fields = [t for _, t in saved["Receptive fields"]]
    assert len(fields) == 5 and all(t.shape == photo.shape for t in fields)
    # the red box (the field of one unit) grows from conv1_1 to conv5_1
    red = [int(((t[0, ..., 0] > 0.9) & (t[0, ..., 1] < 0.3) & (t[0, ..., 2] < 0.3)).sum()) for t in fields]
    assert red[0] < red[2] < red[3], red
    maps = [saved[f"{layer} maps"][0][1] for layer in specs.BLOCK_LAYERS]
    assert all(m.shape[1] >= 96 and m.shape[2] >= 96 for m in maps)
    # each layer's maps are its own: compared at one size, no two grids are alike
    same = [torch.nn.functional.interpolate(m.permute(0, 3, 1, 2), size=(96, 192), mode="area") for m in maps]
    assert min(_mad(a, b) for i, a in enumerate(same) for b in same[i + 1:]) > 0.01
    visuals = [t for _, t in saved["Channel visualizations"]]
    per = len([c for c in specs.VIS_CHANNELS.split(",")])
    assert len(visuals) == 5 * per and all(t.shape == (1, 32, 32, 3) for t in visuals)
    # different channels and different layers give different pictures
    assert min(_mad(a, b) for i, a in enumerate(visuals) for b in visuals[i + 1:]) > 0.005


@pytest.mark.slow
def test_style_layer_study(tmp_path):
    import workflow_specs as specs

    ex = Executor(CLASSES, output_dir=str(tmp_path / "out"), temp_dir=str(tmp_path / "temp"), display_names=DISPLAY)
    wf = ex.load(str(WORKFLOWS / "nst_style_layer_study.json"))
    _tiny(wf.prompt, size=specs.STUDY_SIZE)          # the template's own size: at 48 px relu5_1 is 3x2
    for node in wf.prompt.values():       # the continued runs: longer, as in the template (20 + 40 steps)
        if node["class_type"] == "NST_Optimize" and node["inputs"]["init"] == "image":
            node["inputs"]["steps"] = 2 * STEPS
    saved = _saved(ex.run(wf))
    steps = (specs.STUDY_STEPS, specs.STUDY_STEPS + specs.STUDY_MORE)
    rows = {(kind, n): [t for _, t in saved[f"{kind} layers, {n} steps"]]
            for kind in ("single", "cumulative") for n in steps}
    photo = _example("content_chelsea.png", specs.STUDY_SIZE)
    style = _example("style_starry_night.jpg")
    assert all(len(row) == 5 and all(t.shape == photo.shape for t in row) for row in rows.values())
    # relu1_1 alone is the first of both kinds (one run)
    for n in steps:
        assert _mad(rows["single", n][0], rows["cumulative", n][0]) < 1e-3
    single = rows["single", steps[0]]
    assert min(_mad(a, b) for i, a in enumerate(single) for b in single[i + 1:]) > 0.002
    # the single deep layers take on the painting's statistics
    start = _style_loss(photo, style)
    assert sum(_style_loss(t, style) < start for t in single[1:]) >= 3
    # the longer runs continue the short ones and move further from the photo
    for kind in ("single", "cumulative"):
        short = [_mad(t, photo) for t in rows[kind, steps[0]]]
        long = [_mad(t, photo) for t in rows[kind, steps[1]]]
        assert sum(long) > 1.5 * sum(short), (kind, short, long)


@pytest.mark.slow
def test_stylize_a_short_clip(tmp_path):
    import workflow_specs as specs

    _, saved = _run("nst_stylize_a_short_clip", tmp_path, size=64, steps=10)   # 64x43 px: 44x43 frames
    clip = torch.cat([t for _, t in saved["Clip"]])
    temporal = torch.cat([t for _, t in saved["Temporally consistent"]])
    independent = torch.cat([t for _, t in saved["Independent frames"]])
    count, dx = specs.CLIP["frame_count"], int(specs.CLIP["pan_x"])
    assert clip.shape[0] == temporal.shape[0] == independent.shape[0] == count
    assert clip.shape[1:] == temporal.shape[1:] == (43, 64 - (count - 1) * dx, 3)
    # the clip is the photo panned by whole pixels: frame t+1 is frame t moved dx px to the left
    assert _mad(clip[1:, :, :-dx], clip[:-1, :, dx:]) < 0.01

    def flicker(frames):   # how much a point on the photo changes from one frame to the next
        return _mad(frames[1:, :, :-dx], frames[:-1, :, dx:])

    assert _mad(temporal, clip) > 0.01 and _mad(independent, clip) > 0.01       # both stylized
    assert flicker(temporal) < 0.8 * flicker(independent), (flicker(temporal), flicker(independent))


# ------------------------------------------------------------------------------------------- VGG-16

def test_vgg16_without_the_file_says_which_file_to_add(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NST_VGG_DIR", raising=False)
    code = cli.main([str(WORKFLOWS / "nst_vgg16_vs_vgg19.json"), "--output-dir", "out", "-q",
                     "--set", "2.max_size=48", "--set", "3.max_size=48", "--set", "7.steps=2",
                     "--set", "12.steps=2"])
    out, err = capsys.readouterr()
    # as in ComfyUI: the VGG-16 branch is skipped with a message naming the file to add, VGG-19's runs
    assert code == 3, err
    assert "node 9 (NST_LoadVGG 'VGG-16'), input 'weights'" in err and VGG16_FILE in err
    assert "skipped output node" in err and "the other outputs ran" in err
    written = _files(tmp_path)
    assert written and all(f.startswith("out/") for f in written), written
    assert any("vgg19" in f for f in written) and not any("vgg16" in f for f in written), written


def _fake_vgg16(folder: pathlib.Path) -> pathlib.Path:
    """A file with VGG-16's layout (torchvision keys, 13 convs) cut from the built-in VGG-19: enough to
    check that the workflow runs once such a file is in the vgg folder (it is not a trained VGG-16)."""
    weights = nst_core.load_weights(nst_core.default_weights_path())
    keep = [i for i in range(16) if i not in (7, 11, 15)]          # drop conv3_4, conv4_4, conv5_4
    index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]       # torchvision vgg16.features
    state = {}
    for i, k in zip(index, keep):
        w, b = weights.convs[k]
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = w.clone(), b.clone()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / VGG16_FILE
    torch.save(state, path)
    return path


def test_vgg16_runs_when_the_file_is_present(tmp_path, monkeypatch):
    _fake_vgg16(tmp_path / "vgg")
    monkeypatch.setenv("NST_VGG_DIR", str(tmp_path / "vgg"))
    ex = Executor(CLASSES, output_dir=str(tmp_path / "out"), temp_dir=str(tmp_path / "temp"), display_names=DISPLAY)
    wf = ex.load(str(WORKFLOWS / "nst_vgg16_vs_vgg19.json"))
    _tiny(wf.prompt)
    wf.prompt["9"]["inputs"]["normalized"] = False   # no activation statistics for the stand-in file
    saved = _saved(ex.run(wf))
    ((_, v19),), ((_, v16),) = saved["VGG-19 result"], saved["VGG-16 result"]
    assert v19.shape == v16.shape == (1, 32, 48, 3) and _mad(v19, v16) > 0.002


# ------------------------------------------------------------------------------------------- bad workflows

def _cli(tmp_path, capsys, *args):
    code = cli.main([str(a) for a in args] + ["--output-dir", str(tmp_path / "out"), "-q"])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_validation_error_is_listed_and_nothing_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(tmp_path, capsys, WORKFLOWS / "nst_style_transfer.json",
                          "--set", "Style transfer.steps=0", "--set", "Style transfer.optimizer=newton",
                          "--set", "5.layers=conv9_9", "--set", "6.weight=lots", "--set", "Content image.image=dog.png")
    assert code == 1 and out == ""
    assert "workflow validation failed (5 problems)" in err
    assert "node 7 (NST_Optimize 'Style transfer'), input 'steps': value 0 is smaller than the minimum 1" in err
    assert "input 'optimizer': value 'newton' is not one of ['lbfgs', 'adam', 'sgd']" in err
    # the nodes' own checks (VALIDATE_INPUTS) name the node and the input in their message
    assert "node 5 (NST_ContentTarget 'NST Content Target'): [NST ContentTarget] input 'layers': unknown layer " \
           "name(s) 'conv9_9'; valid names: conv1_1" in err
    assert "node 6 (NST_StyleTarget 'NST Style Target'): [NST StyleTarget] input 'weight': expected a number such " \
           "as 5, 0.5 or 5e-4, got 'lots'" in err
    assert "node 3 (NST_ExampleImage 'Content image'), input 'image': value 'dog.png' is not one of" in err
    assert "nothing was run" in err and _files(tmp_path) == []


def _with_load_image(tmp_path, image_name: str) -> pathlib.Path:
    """The main workflow with its content photo read by ComfyUI's Load Image from the input folder."""
    wf = load_workflow(str(WORKFLOWS / "nst_style_transfer.json"), CLASSES, DISPLAY)
    prompt = _tiny(wf.prompt)
    prompt["3"] = {"class_type": "LoadImage", "inputs": {"image": image_name}, "_meta": {"title": "Photo"}}
    path = tmp_path / "wf_api.json"
    path.write_text(json.dumps(prompt))
    return path


def test_missing_image_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "input").mkdir()
    code, out, err = _cli(tmp_path, capsys, _with_load_image(tmp_path, "my_cat.png"),
                          "--input-dir", tmp_path / "input")
    assert code == 1 and "node 3 (LoadImage 'Photo'), input 'image': Invalid image file: my_cat.png" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("override, message", [
    ("Save Image.filename_prefix=../../escaped", "points outside the output folder"),
    ("Save Image.filename_prefix=/tmp/escaped", "is an absolute path"),
    ("Photo.image=../../etc/passwd", "points outside the input folder"),
    ("Photo.image=/etc/passwd", "must be a file name relative to the input folder"),
])
def test_path_traversal_is_refused(tmp_path, capsys, monkeypatch, override, message):
    work = tmp_path / "work"
    (work / "input").mkdir(parents=True)
    monkeypatch.chdir(work)
    Image.new("RGB", (60, 40), (200, 120, 40)).save(work / "input" / "photo.png")
    wf = _with_load_image(work, "photo.png")
    before = _files(tmp_path)
    code, out, err = _cli(work, capsys, wf, "--input-dir", work / "input", "--set", override)
    assert message in err and not any(line.endswith(".png") for line in out.splitlines())
    written = sorted(set(_files(tmp_path)) - set(before))
    assert not any("escaped" in f or "passwd" in f for f in written), written
    if override.startswith("Photo"):
        # the photo feeds every output: nothing can run
        assert code == 1 and written == []
    else:
        # as in ComfyUI, only the Save Image output is skipped; the previews still run, in the temp folder
        assert code == 3 and "skipped output node" in err and "preview image(s) were not kept" in err, err
        assert written == ["work/out/Report_00001_.txt"], written


def test_broken_links_in_a_template_are_reported(tmp_path, capsys, monkeypatch):
    """A hand-edited UI file whose style link points at a node that is gone."""
    monkeypatch.chdir(tmp_path)
    ui = _ui("nst_style_transfer")
    ui["nodes"] = [n for n in ui["nodes"] if n["id"] != 6]            # delete the style target only
    (tmp_path / "broken.json").write_text(json.dumps(ui))
    code, out, err = _cli(tmp_path, capsys, tmp_path / "broken.json")
    assert code == 1 and "node 7 (NST_Optimize 'Style transfer'), input 'style': linked to node 6" in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- Preview Any

def test_preview_any_stand_in_shows_any_value_as_text(tmp_path):
    """ComfyUI 0.3.64's core "Preview Any" (comfy_extras/nodes_preview_any.py): its input accepts every
    type ("*") and the text lands in the ui outputs as {"text": [value]}."""
    g = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "loss 1.5"}},
         "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
         "3": {"class_type": "PrimitiveInt", "inputs": {"value": 7}},
         "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
         "5": {"class_type": "EmptyImage", "inputs": {"width": 2, "height": 2, "batch_size": 1, "color": 0}},
         "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}}}
    result = Executor(CLASSES, output_dir=str(tmp_path)).run(g)
    assert result.outputs["2"] == {"text": ["loss 1.5"]} and result.outputs["4"] == {"text": ["7"]}
    assert result.outputs["6"]["text"][0].startswith("tensor(")
    assert "PreviewAny" not in {node.NODE_ID for node in NODES}  # a stand-in: never shadow ComfyUI's own node


def test_high_resolution_template_tiles_exactly(tmp_path):
    """The 2048 px template at 96 px: untiled, and with the expert tile size forced to 32 px (the loss and
    gradient are computed tile by tile): the same picture, and the report names the tiles."""
    def run(tile, folder):
        out = tmp_path / folder
        ex = Executor(CLASSES, input_dir=str(tmp_path / "input"), output_dir=str(out),
                      temp_dir=str(tmp_path / "temp"), display_names=DISPLAY)
        wf = ex.load(str(WORKFLOWS / "nst_high_resolution.json"))
        _tiny(wf.prompt, steps=4)
        for node in wf.prompt.values():
            if node["class_type"] == "NST_Optimize":
                node["inputs"]["tile_size"] = tile
        result = ex.run(wf)
        (report,) = _texts(result)["PreviewAny"]
        return _saved(result)["Save Image"][0][1], report

    plain, plain_report = run(0, "plain")
    tiled, tiled_report = run(32, "tiled")
    photo = _example("content_chelsea.png")
    assert plain.shape == (1, 64, 96, 3)                           # upscaled 2x from the 48 px photo
    assert _mad(plain, torch.nn.functional.interpolate(photo.permute(0, 3, 1, 2), size=(64, 96)).permute(0, 2, 3, 1)) > 0.01
    assert "tiles" in tiled_report and "tiles" not in plain_report
    assert float((plain - tiled).abs().max()) < 2e-3               # exact up to float summation order
