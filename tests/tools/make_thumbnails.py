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


def _font(size=13):
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
    font = _font(12)
    lines = text.split("\n")
    y = (height - 16 * len(lines)) // 2
    for line in lines:
        w = draw.textlength(line, font=font)
        draw.text(((width - w) / 2, y), line, fill=FG, font=font)
        y += 16
    return img


def strip(rows: list, height: int, gap: int = 4, label_h: int = 18) -> Image.Image:
    """rows: [[(PIL image, label), ...], ...] -> one image, every tile `height` px high, labels below."""
    rows = [[(_fit_height(img, height), label) for img, label in row] for row in rows]
    width = max(sum(img.width for img, _ in row) + gap * (len(row) + 1) for row in rows)
    total_h = gap + sum(height + label_h + gap for _ in rows)
    canvas = Image.new("RGB", (width, total_h), BG)
    draw = ImageDraw.Draw(canvas)
    font = _font(13)
    y = gap
    for row in rows:
        x = gap + (width - (sum(img.width for img, _ in row) + gap * (len(row) + 1))) // 2
        for img, label in row:
            canvas.paste(img, (x, y))
            if label:
                tw = draw.textlength(label, font=font)
                draw.text((x + (img.width - tw) / 2, y + height + 2), label, fill=FG, font=font)
            x += img.width + gap
        y += height + label_h + gap
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
    """saved: SaveImage title -> list of PIL images (in batch order)."""
    if name == "nst_style_transfer":
        result = saved["Save Image"][0]
        h = result.height
        content, style = _example("content_chelsea.png"), _example("style_starry_night.jpg")
        return strip([[(content, "photo"), (style, "style"), (result, "result")]], h)
    if name == "nst_figure1_reconstructions":
        content = saved["Content ladder"]
        style = saved["Style ladder"]
        labels_c = ["conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"]
        labels_s = ["conv1_1", "+conv2_1", "+conv3_1", "+conv4_1", "+conv5_1"]
        return strip([list(zip(content, labels_c)), list(zip(style, labels_s))], content[0].height)
    if name == "nst_alpha_beta_tradeoff":
        from workflow_specs import ALPHA_BETA
        imgs = saved["α/β results"]
        return strip([[(img, f"α/β = 1/{b}") for img, b in zip(imgs, ALPHA_BETA)]], imgs[0].height)
    if name == "nst_optimizers_lbfgs_adam_sgd":
        imgs, plots = saved["Results"], saved["Loss curves"]
        labels = ["L-BFGS", "Adam", "SGD"]
        return strip([list(zip(imgs, labels)), [(p, "") for p in plots]], imgs[0].height + 40)
    if name == "nst_pooling_max_vs_avg":
        imgs = saved["max | avg"]
        return strip([list(zip(imgs, ["max pooling", "average pooling"]))], imgs[0].height)
    if name == "nst_vgg16_vs_vgg19":
        v19 = saved["VGG-19 result"][0]
        if "VGG-16 result" in saved:
            v16 = saved["VGG-16 result"][0]
        else:
            from workflow_specs import VGG16_FILE
            v16 = _placeholder(v19.width, v19.height, f"VGG-16: add\n{VGG16_FILE}\nto models/vgg")
        return strip([[(v19, "VGG-19"), (v16, "VGG-16")]], v19.height)
    if name == "nst_color_preservation":
        imgs = saved["photo | none | luminance | histogram"]
        return strip([list(zip(imgs, ["photo", "none", "luminance", "histogram"]))], imgs[0].height)
    if name == "nst_blended_styles":
        result = saved["Blended result"][0]
        s1, s2 = _example("style_starry_night.jpg"), _example("style_the_scream.jpg")
        return strip([[(s1, "style 1"), (s2, "style 2"), (result, "50 / 50 blend")]], result.height)
    raise KeyError(name)


# --------------------------------------------------------------------------- running

def run(name: str, work: pathlib.Path) -> tuple:
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from comfyui_nst.nodes.cli import ProgressPrinter, build_registry
    from comfyui_nst.nodes.executor import Executor
    from comfyui_nst.nodes import host

    classes, names = build_registry()
    out = work / name
    ex = Executor(classes, output_dir=str(out), temp_dir=str(work / (name + "_temp")), input_dir=str(work),
                  display_names=names, progress=ProgressPrinter(sys.stderr, tty=False))
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
        saved[node["_meta"]["title"]] = [Image.open(f).convert("RGB") for f in files]
    return saved, seconds, skipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="workflow names (default: every workflows/*.json)")
    parser.add_argument("--work", default="/tmp/nst_thumbnails", help="folder for the runs' outputs")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for p in WORKFLOWS.glob("*.json"))
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for name in names:
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
