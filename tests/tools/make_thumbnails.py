"""Run the templates in workflows/ at their real settings and write their thumbnails.

    python tests/tools/make_thumbnails.py [NAME ...] [--work DIR]

Each workflow runs through the headless executor exactly as saved (the VGG-16 comparison without its
VGG-16 branch when no VGG-16 file is installed); the images its SaveImage nodes write are laid out in
a labelled strip and saved as workflows/<name>.jpg (the name ComfyUI's template browser asks for).
Slow on a CPU (minutes per workflow): run it in the background, one workflow at a time.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time

from PIL import Image, ImageDraw, ImageFont

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
MAX_BYTES = 100_000
BG = (24, 24, 27)
FG = (235, 235, 235)


FONT_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"   # has Greek letters (α, β)


def _font(size=13):
    if os.path.isfile(FONT_FILE):
        return ImageFont.truetype(FONT_FILE, size)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def _fit_height(img: Image.Image, height: int) -> Image.Image:
    w = max(1, round(img.width * height / img.height))
    return img.resize((w, height), Image.Resampling.LANCZOS)


def _placeholder(width: int, height: int, text: str) -> Image.Image:
    img = Image.new("RGB", (width, height), (60, 60, 66))
    draw = ImageDraw.Draw(img)
    font = _font(10)
    lines = text.split("\n")
    y = (height - 16 * len(lines)) // 2
    for line in lines:
        w = draw.textlength(line, font=font)
        draw.text(((width - w) / 2, y), line, fill=FG, font=font)
        y += 16
    return img


def strip(rows: list, height: int | list, gap: int = 4, label_h: int = 18) -> Image.Image:
    """rows: [[(PIL image, label), ...], ...] -> one image; the tiles of row i are height[i] px high
    (one number: every row), labels below, each row centred."""
    heights = list(height) if isinstance(height, (list, tuple)) else [height] * len(rows)
    rows = [[(_fit_height(img, h), label) for img, label in row] for row, h in zip(rows, heights)]
    width = max(sum(img.width for img, _ in row) + gap * (len(row) + 1) for row in rows)
    total_h = gap + sum(h + label_h + gap for h in heights)
    canvas = Image.new("RGB", (width, total_h), BG)
    draw = ImageDraw.Draw(canvas)
    font = _font(13)
    y = gap
    for row, h in zip(rows, heights):
        x = gap + (width - (sum(img.width for img, _ in row) + gap * (len(row) + 1))) // 2
        for img, label in row:
            canvas.paste(img, (x, y))
            if label:
                tw = draw.textlength(label, font=font)
                draw.text((x + (img.width - tw) / 2, y + h + 2), label, fill=FG, font=font)
            x += img.width + gap
        y += h + label_h + gap
    return canvas


def save_jpeg(img: Image.Image, path: pathlib.Path) -> int:
    for quality in (88, 82, 75, 68, 60):
        img.save(path, "JPEG", quality=quality, optimize=True, progressive=True)
        if path.stat().st_size <= MAX_BYTES:
            break
    return path.stat().st_size


# --------------------------------------------------------------------------- per-workflow layouts

def _example(name: str) -> Image.Image:
    import nst_core
    return Image.open(nst_core.example_path(name)).convert("RGB")


def layout(name: str, saved: dict) -> Image.Image:
    """saved: SaveImage title -> list of PIL images (in batch order). Roughly square pictures: the
    template browser shows them in square cards."""
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    photo, starry = _example("content_chelsea.png"), _example("style_starry_night.jpg")
    if name == "nst_style_transfer":
        result = saved["Save Image"][0]
        return strip([[(result, "")], [(photo, "photo"), (starry, "style")]], [result.height, result.height // 2])
    if name == "nst_figure1_reconstructions":
        content = saved["Content ladder"]
        style = saved["Style ladder"]
        labels_c = ["conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"]
        labels_s = ["conv1_1", "+conv2_1", "+conv3_1", "+conv4_1", "+conv5_1"]
        return strip([list(zip(content, labels_c)), list(zip(style, labels_s))], content[0].height)
    if name == "nst_alpha_beta_tradeoff":
        from workflow_specs import ALPHA_BETA
        imgs = saved["α/β results"]
        tiles = [(img, f"α/β = 1e-{round(math.log10(float(b)))}") for img, b in zip(imgs, ALPHA_BETA)]
        return strip([tiles[:2], tiles[2:]], imgs[0].height)
    if name == "nst_optimizers_lbfgs_adam_sgd":
        imgs, plots = saved["Results"], saved["Loss curves"]
        labels = ["L-BFGS", "Adam", "SGD"]
        return strip([list(zip(imgs, labels)), [(p, "") for p in plots]], imgs[0].height)
    if name == "nst_pooling_max_vs_avg":
        imgs = saved["max | avg"]
        h = imgs[0].height
        return strip([[(photo, "photo"), (starry, "style")], list(zip(imgs, ["max pooling", "average pooling"]))], h)
    if name == "nst_vgg16_vs_vgg19":
        v19 = saved["VGG-19 result"][0]
        if saved.get("VGG-16 result"):
            v16 = saved["VGG-16 result"][0]
        else:
            from workflow_specs import VGG16_FILE
            v16 = _placeholder(v19.width, v19.height, f"VGG-16 needs\n{VGG16_FILE}\nin models/vgg")
        return strip([[(photo, "photo"), (starry, "style")], [(v19, "VGG-19"), (v16, "VGG-16")]], v19.height)
    if name == "nst_color_preservation":
        imgs = saved["photo | none | luminance | histogram"]
        tiles = list(zip(imgs, ["photo", "plain transfer", "luminance only", "histogram match"]))
        return strip([tiles[:2], tiles[2:]], imgs[0].height)
    if name == "nst_blended_styles":
        result = saved["Blended result"][0]
        scream = _example("style_the_scream.jpg")
        return strip([[(photo, "photo"), (starry, "style 1")], [(scream, "style 2"), (result, "50 / 50 blend")]],
                     result.height)
    if name == "nst_two_styles_two_regions":
        result = saved["Two regions"][0]
        scream = _example("style_the_scream.jpg")
        return strip([[(result, "left: Starry Night | right: The Scream")],
                      [(photo, "photo"), (starry, "left style"), (scream, "right style")]],
                     [result.height * 2, result.height])
    if name == "nst_keep_the_face":
        import numpy as np
        from nst_core.masks_shapes import shape_mask
        from workflow_specs import FACE, FACE_OUTSIDE
        photo_a, plain, kept = saved["photo | plain | face kept"]
        face = dict(FACE, extent=FACE["size"])
        del face["size"]
        mask = shape_mask((photo_a.height, photo_a.width), "ellipse", outside=FACE_OUTSIDE, **face).numpy()
        shaded = (np.asarray(photo_a, dtype=np.float32) * (0.35 + 0.65 * mask[..., None])).astype(np.uint8)
        style = _example("style_composition_vii.jpg")
        return strip([[(plain, "plain transfer"), (kept, "face kept")],
                      [(Image.fromarray(shaded), "the face mask"), (style, "style")]],
                     [plain.height, plain.height // 2 + 20])
    if name == "nst_style_losses_gram_w2_sliced":
        imgs = saved["gram | W2 | sliced W"]
        tiles = list(zip(imgs, ["Gram", "Wasserstein-2", "sliced Wasserstein"]))
        return strip([[(photo, "photo"), (starry, "style"), tiles[0]], tiles[1:]], imgs[0].height)
    if name == "nst_what_each_layer_sees":
        from workflow_specs import BLOCK_LAYERS
        fields = saved["Receptive fields"]
        visuals = saved["Channel visualizations"]
        per = len(visuals) // len(BLOCK_LAYERS)
        maps = [saved[f"{layer} maps"][0] for layer in BLOCK_LAYERS]
        return strip([list(zip(fields, [f"{layer} field" for layer in BLOCK_LAYERS])),
                      [(visuals[i * per], layer) for i, layer in enumerate(BLOCK_LAYERS)],
                      [(maps[0], "conv1_1 maps"), (maps[2], "conv3_1 maps")],
                      [(maps[4], "conv5_1 maps")]],
                     [fields[0].height * 3 // 4, 96, 150, 150])
    if name == "nst_style_layer_study":
        from workflow_specs import STUDY_LAYERS, STUDY_MORE, STUDY_STEPS
        rows = []
        for kind in ("single", "cumulative"):
            for steps in (STUDY_STEPS, STUDY_STEPS + STUDY_MORE):
                imgs = saved[f"{kind} layers, {steps} steps"]
                labels = [("+" if kind == "cumulative" and i else "") + layer.replace("relu", "")
                          + f" ({steps})" for i, layer in enumerate(STUDY_LAYERS)]
                rows.append(list(zip(imgs, labels)))
        return strip(rows, rows[0][0][0].height * 2)
    if name == "nst_stylize_a_short_clip":
        rows = [list(zip(saved[title][::2], [f"{label} {i * 2 + 1}" for i in range(3)]))
                for title, label in (("Clip", "frame"), ("Independent frames", "independent"),
                                     ("Temporally consistent", "temporal"))]
        return strip(rows, rows[0][0][0].height)
    raise KeyError(name)


# --------------------------------------------------------------------------- running

def run(name: str, work: pathlib.Path) -> tuple:
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from comfyui_nst.nodes.headless.cli import build_registry
    from comfyui_nst.nodes.headless.executor import Executor
    from comfyui_nst.nodes.headless.progress import NodeProgress
    from comfyui_nst.nodes import host

    classes, names = build_registry()
    out = work / name
    ex = Executor(classes, output_dir=str(out), temp_dir=str(work / (name + "_temp")), input_dir=str(work),
                  display_names=names, progress=NodeProgress(sys.stderr, tty=False))
    wf = ex.load(str(WORKFLOWS / f"{name}.json"))
    prompt = wf.prompt
    skipped = []
    for nid, node in list(prompt.items()):
        if node["class_type"] == "NST_LoadVGG" and node["inputs"].get("weights") not in ("default",) + tuple(
                host.list_vgg_files()):
            # no such weights file here: leave out the outputs that need it (ComfyUI runs the others too)
            for oid, onode in list(prompt.items()):
                if onode["class_type"] == "SaveImage" and "VGG-16" in onode["_meta"]["title"]:
                    del prompt[oid]
                    skipped.append(onode["_meta"]["title"])
    t0 = time.perf_counter()
    result = ex.run(wf)
    seconds = time.perf_counter() - t0
    saved = {}
    for nid, ui in result.outputs.items():
        node = result.prompt[nid]
        if node["class_type"] != "SaveImage":
            continue
        files = [out / (i.get("subfolder") or "") / i["filename"] for i in ui["images"]]
        saved[node["_meta"]["title"]] = [str(f) for f in files]
    (out / "manifest.json").write_text(json.dumps(saved, indent=1))
    return _open(saved), seconds, skipped


def _open(saved: dict) -> dict:
    return {title: [Image.open(f).convert("RGB") for f in files] for title, files in saved.items()}


def collect(name: str, work: pathlib.Path) -> dict:
    """The images of an earlier run of `name` in `work` (for --compose-only)."""
    manifest = work / name / "manifest.json"
    if manifest.is_file():
        return _open(json.loads(manifest.read_text()))
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    saved = {}
    for node in ui["nodes"]:
        if node["type"] == "SaveImage":
            prefix = node["widgets_values"][0]
            files = sorted((work / name).glob(prefix + "_[0-9][0-9][0-9][0-9][0-9]_.png"))
            if files:
                saved[node.get("title") or "Save Image"] = [str(f) for f in files]
    return _open(saved)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="workflow names (default: every workflows/*.json)")
    parser.add_argument("--work", default="/tmp/nst_thumbnails", help="folder for the runs' outputs")
    parser.add_argument("--compose-only", action="store_true", help="only lay out the images of earlier runs")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for p in WORKFLOWS.glob("*.json"))
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for name in names:
        if args.compose_only:
            thumb = layout(name, collect(name, work))
            print(name, thumb.size, save_jpeg(thumb, WORKFLOWS / f"{name}.jpg"), "bytes")
            continue
        saved, seconds, skipped = run(name, work)
        thumb = layout(name, saved)
        size = save_jpeg(thumb, WORKFLOWS / f"{name}.jpg")
        line = {"workflow": name, "seconds": round(seconds, 1), "thumbnail": f"workflows/{name}.jpg",
                "size": list(thumb.size), "bytes": size, "skipped": skipped}
        print(json.dumps(line), flush=True)
        with open(work / "timings.jsonl", "a") as fh:
            fh.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
