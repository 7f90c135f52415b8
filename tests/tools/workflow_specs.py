"""What the templates in workflows/ contain: nodes, widget values by name, links, positions.

`python tests/tools/workflow_specs.py OUT.json` writes the specs; tests/tools/editor_workflows.cjs builds
each graph in the real ComfyUI editor (LiteGraph.createNode + connect, so sizes, widget order and the
seed's control_after_generate value are the editor's own) and saves `app.graph.serialize()` into
workflows/ and `app.graphToPrompt()` into tests/fixtures/workflows/ (the golden API form).

Real settings (the defaults in the files) are sized for a CPU: 256 px / 200 L-BFGS steps for the main
transfer, 128 px and fewer steps (STEPS_COMPARE) for the comparisons and ladders. The CI test shrinks them with overrides.
"""
from __future__ import annotations

import json
import sys

VGG_LAYERS_STYLE = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"
VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

COL = 360          # grid column width
ROW = 150          # grid row height


def at(col: float, row: float) -> list:
    return [40 + round(col * COL), 40 + round(row * ROW)]


class Spec:
    def __init__(self, name: str, note: str):
        self.name, self.nodes, self.links = name, [], []
        self.add("MarkdownNote", at(0, -0.1), title="About this workflow", widgets={"text": note},
                 size=[340, 260])

    def add(self, type_: str, pos, title: str | None = None, widgets: dict | None = None, size=None) -> int:
        node_id = len(self.nodes) + 1
        entry = {"id": node_id, "type": type_, "pos": list(pos), "widgets": dict(widgets or {})}
        if title:
            entry["title"] = title
        if size:
            entry["size"] = list(size)
        self.nodes.append(entry)
        return node_id

    def link(self, src: int, output: int, dst: int, input_name: str) -> None:
        self.links.append([src, output, dst, input_name])

    def as_dict(self) -> dict:
        return {"name": self.name, "nodes": self.nodes, "links": self.links}


# ------------------------------------------------------------------------------- building blocks

def vgg(spec: Spec, pos, pooling="max", weights="default", architecture="auto", title=None) -> int:
    return spec.add("NST_LoadVGG", pos, title, {"weights": weights, "architecture": architecture,
                                                 "pooling": pooling, "convention": "auto", "normalized": True})


def example(spec: Spec, pos, image: str, max_size: int, title: str) -> int:
    return spec.add("NST_ExampleImage", pos, title, {"image": image, "max_size": max_size})


def content_target(spec: Spec, pos, vgg_id: int, image_id: int, title=None) -> int:
    node = spec.add("NST_ContentTarget", pos, title, {"layers": "relu4_2", "weight": "1"})
    spec.link(vgg_id, 0, node, "vgg")
    spec.link(image_id, 0, node, "image")
    return node


def style_target(spec: Spec, pos, vgg_id: int, image_id: int, weight: str, title=None, image2=None,
                 blend=0.5) -> int:
    widgets = {"layers": VGG_LAYERS_STYLE, "layer_weights": "", "weight": weight, "scale": 1.0}
    if image2 is not None:
        widgets["blend"] = blend
    node = spec.add("NST_StyleTarget", pos, title, widgets)
    spec.link(vgg_id, 0, node, "vgg")
    spec.link(image_id, 0, node, "image")
    if image2 is not None:
        spec.link(image2, 0, node, "image2")
    return node


def optimize(spec: Spec, pos, vgg_id: int, content_id: int, style_id: int | None, steps: int, title=None,
             optimizer="lbfgs", init="content", preserve_color="none", preview_every=5, coarse_to_fine=True) -> int:
    node = spec.add("NST_Optimize", pos, title, {
        "init": init, "optimizer": optimizer, "steps": steps, "learning_rate": 0.0, "tv_weight": "0",
        "seed": 0, "control_after_generate": "fixed", "preserve_color": preserve_color,
        "preview_every": preview_every, "coarse_to_fine": coarse_to_fine})
    spec.link(vgg_id, 0, node, "vgg")
    spec.link(content_id, 0, node, "content")
    if style_id is not None:
        spec.link(style_id, 0, node, "style")
    return node


def batch(spec: Spec, pos, sources: list, title_prefix="Batch") -> int:
    """Chain ImageBatch nodes: [(node, output), ...] -> one IMAGE batch in that order."""
    src, out = sources[0]
    for i, (nxt, nxt_out) in enumerate(sources[1:]):
        node = spec.add("ImageBatch", [pos[0], pos[1] + i * 110])
        spec.link(src, out, node, "image1")
        spec.link(nxt, nxt_out, node, "image2")
        src, out = node, 0
    return src


def save(spec: Spec, pos, src: int, prefix: str, output: int = 0, title=None) -> int:
    node = spec.add("SaveImage", pos, title, {"filename_prefix": prefix}, size=[300, 330])
    spec.link(src, output, node, "images")
    return node


def preview(spec: Spec, pos, src: int, output: int, title=None) -> int:
    node = spec.add("PreviewImage", pos, title, size=[300, 260])
    spec.link(src, output, node, "images")
    return node


def report(spec: Spec, pos, src: int, output: int = 2, title=None) -> int:
    node = spec.add("PreviewAny", pos, title, size=[340, 260])
    spec.link(src, output, node, "source")
    return node


# ------------------------------------------------------------------------------- the workflows

STYLE_WEIGHT_256 = "3e6"
STYLE_WEIGHT_128 = "3e5"
STEPS_COMPARE = 60


def style_transfer() -> Spec:
    s = Spec("nst_style_transfer", (
        "## Neural style transfer (Gatys et al.)\n\n"
        "The example photo painted in the style of *The Starry Night*: L-BFGS on the pixels, "
        "content = relu4_2 features (α), style = Gram matrices of relu1_1 … relu5_1 (β).\n\n"
        "256 px, 200 steps: 5-15 minutes on a CPU, seconds on a GPU. More style: raise the style "
        "weight β; bigger images: raise max_size (and β, since the content loss grows with the pixel "
        "count). Swap the example nodes for Load Image to use your own pictures."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 256, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    ct = content_target(s, at(1, 1.8), v, c)
    stt = style_target(s, at(1, 2.8), v, st, STYLE_WEIGHT_256)
    o = optimize(s, at(2, 0.5), v, ct, stt, 200, title="Style transfer")
    save(s, at(3, 0), o, "NST/style_transfer")
    preview(s, at(3, 2.4), o, 1, title="Loss curves")
    report(s, at(2, 3.6), o, title="Report")
    return s


def reconstructions() -> Spec:
    s = Spec("nst_figure1_reconstructions", (
        "## Figure 1: what the VGG layers keep\n\n"
        "**Content reconstructions** (top): an image is rebuilt from white noise so that its features at "
        "one layer match the photo's: conv1_2, conv2_2, conv3_2, conv4_2, conv5_2. Shallow layers keep "
        "the pixels, deep layers only the arrangement of objects.\n\n"
        "**Style reconstructions** (bottom): matching only Gram matrices of conv1_1, then conv1_1+conv2_1, "
        "… up to conv5_1 gives textures of growing scale and complexity.\n\n"
        "128 px, 100 L-BFGS steps per image (10 images)."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Photo")
    st = example(s, at(0, 4), "style_starry_night.jpg", 128, "Painting")
    rc = s.add("NST_Reconstruct", at(1, 0.3), "Content reconstructions", {
        "mode": "content", "layers": "conv1_2,conv2_2,conv3_2,conv4_2,conv5_2", "steps": 100,
        "optimizer": "lbfgs", "seed": 0, "control_after_generate": "fixed", "cumulative": True,
        "learning_rate": 0.0, "preview_every": 5})
    s.link(v, 0, rc, "vgg")
    s.link(c, 0, rc, "image")
    rs = s.add("NST_Reconstruct", at(1, 3.3), "Style reconstructions", {
        "mode": "style", "layers": "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1", "steps": 100,
        "optimizer": "lbfgs", "seed": 0, "control_after_generate": "fixed", "cumulative": True,
        "learning_rate": 0.0, "preview_every": 5})
    s.link(v, 0, rs, "vgg")
    s.link(st, 0, rs, "image")
    save(s, at(2, 0), rc, "NST/content_ladder", title="Content ladder")
    save(s, at(2, 3), rs, "NST/style_ladder", title="Style ladder")
    preview(s, at(3, 0), rc, 1, title="Content loss curves")
    preview(s, at(3, 3), rs, 1, title="Style loss curves")
    report(s, at(4, 0), rc, title="Content report")
    report(s, at(4, 3), rs, title="Style report")
    return s


ALPHA_BETA = ("1e4", "1e5", "1e6", "1e7")


def alpha_beta() -> Spec:
    s = Spec("nst_alpha_beta_tradeoff", (
        "## Figure 3: the content/style trade-off α/β\n\n"
        "One content target (α = 1) and four style targets with β = " + ", ".join(ALPHA_BETA) + ". "
        "Small β keeps the photo, large β gives the painting's texture with little of the photo's "
        "layout. The results are saved as one batch, left to right by increasing β.\n\n"
        "128 px, " + str(STEPS_COMPARE) + " L-BFGS steps per image."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    ct = content_target(s, at(1, 0.3), v, c)
    results = []
    for i, beta in enumerate(ALPHA_BETA):
        stt = style_target(s, at(1, 1.5 + i * 1.4), v, st, beta, title=f"Style β = {beta}")
        o = optimize(s, at(2, i * 2.2), v, ct, stt, STEPS_COMPARE, title=f"Optimize β = {beta}", preview_every=10)
        results.append((o, 0))
    b = batch(s, at(3, 0.3), results)
    save(s, at(3, 2.6), b, "NST/alpha_beta", title="α/β results")
    return s


OPTIMIZERS = ("lbfgs", "adam", "sgd")


def optimizers() -> Spec:
    s = Spec("nst_optimizers_lbfgs_adam_sgd", (
        "## L-BFGS vs Adam vs SGD\n\n"
        "The same problem (same targets, same start: the content image) solved by three optimizers for "
        "the same number of steps, each with its default learning rate (learning_rate 0 = the engine's default). "
        "The loss curves (log scale) show how fast each one converges; L-BFGS, the paper's choice, "
        "gets lowest fastest.\n\n128 px, " + str(STEPS_COMPARE) + " steps each."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    ct = content_target(s, at(1, 1.5), v, c)
    stt = style_target(s, at(1, 2.5), v, st, STYLE_WEIGHT_128)
    images, plots = [], []
    for i, name in enumerate(OPTIMIZERS):
        o = optimize(s, at(2, i * 2.2), v, ct, stt, STEPS_COMPARE, title=f"Optimize {name}", optimizer=name,
                     preview_every=10)
        images.append((o, 0))
        plots.append((o, 1))
    save(s, at(3, 0), batch(s, at(3, 2.4), images), "NST/optimizers", title="Results")
    save(s, at(4, 0), batch(s, at(4, 2.4), plots), "NST/optimizers_loss", title="Loss curves")
    return s


def pooling() -> Spec:
    s = Spec("nst_pooling_max_vs_avg", (
        "## Max pooling vs average pooling\n\n"
        "Gatys et al. replaced VGG's max pooling with average pooling, which gives smoother, "
        "more appealing results. Two networks, the same problem: left max, right avg.\n\n"
        "128 px, " + str(STEPS_COMPARE) + " L-BFGS steps each."))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    results = []
    for i, mode in enumerate(("max", "avg")):
        v = vgg(s, at(1, i * 3), pooling=mode, title=f"VGG-19 ({mode} pooling)")
        ct = content_target(s, at(2, i * 3), v, c)
        stt = style_target(s, at(2, i * 3 + 1), v, st, STYLE_WEIGHT_128)
        o = optimize(s, at(3, i * 3), v, ct, stt, STEPS_COMPARE, title=f"Optimize ({mode} pooling)", preview_every=10)
        results.append((o, 0))
    save(s, at(4, 0.5), batch(s, at(4, 3), results), "NST/pooling", title="max | avg")
    return s


def vgg16_vs_vgg19() -> Spec:
    s = Spec("nst_vgg16_vs_vgg19", (
        "## VGG-16 vs VGG-19\n\n"
        "The same transfer with both networks. VGG-19 is built in; **VGG-16 needs a file**: put "
        f"torchvision's `{VGG16_FILE}` ({VGG16_URL}) into `ComfyUI/models/vgg/` "
        "(headless: a folder named by `NST_VGG_DIR`) and press R (refresh). Without it ComfyUI refuses "
        f"the VGG-16 branch when you run (*Value not in list: weights: '{VGG16_FILE}'*) and runs the "
        "VGG-19 branch alone; so does `nst-run` (exit code 3).\n\n128 px, "
        + str(STEPS_COMPARE) + " L-BFGS steps each."))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    for i, (arch, weights) in enumerate((("vgg19", "default"), ("vgg16", VGG16_FILE))):
        v = vgg(s, at(1, i * 3), weights=weights, architecture=arch, title=f"VGG-{arch[3:]}")
        ct = content_target(s, at(2, i * 3), v, c)
        stt = style_target(s, at(2, i * 3 + 1), v, st, STYLE_WEIGHT_128)
        o = optimize(s, at(3, i * 3), v, ct, stt, STEPS_COMPARE, title=f"Optimize (VGG-{arch[3:]})", preview_every=10)
        save(s, at(4, i * 3), o, f"NST/{arch}", title=f"VGG-{arch[3:]} result")
    return s


COLOR_MODES = ("none", "luminance", "histogram")


def color_preservation() -> Spec:
    s = Spec("nst_color_preservation", (
        "## Colour preservation (Gatys et al. 2017)\n\n"
        "Left to right: the photo, plain transfer, luminance-only transfer (the style's strokes, "
        "the photo's colours) and colour-histogram matching of the style to the photo before "
        "the transfer.\n\n128 px, " + str(STEPS_COMPARE) + " L-BFGS steps each."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    ct = content_target(s, at(1, 1.5), v, c)
    stt = style_target(s, at(1, 2.5), v, st, "1e6")   # strong style: the colour treatments stand out
    results = [(c, 0)]
    for i, mode in enumerate(COLOR_MODES):
        o = optimize(s, at(2, i * 2.2), v, ct, stt, STEPS_COMPARE, title=f"preserve_color = {mode}",
                     preserve_color=mode, preview_every=10)
        results.append((o, 0))
    save(s, at(3, 0), batch(s, at(3, 2.4), results), "NST/color_preservation", title="photo | none | luminance | histogram")
    return s


def blended_styles() -> Spec:
    s = Spec("nst_blended_styles", (
        "## Two styles blended\n\n"
        "A style target with a second image (`image2`) mixes the two paintings' Gram matrices: "
        "`blend` is the share of the second style (0 = only *The Starry Night*, 1 = only *The Scream*). "
        "Here half and half.\n\n128 px, " + str(STEPS_COMPARE) + " L-BFGS steps."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st1 = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style 1")
    st2 = example(s, at(0, 5), "style_the_scream.jpg", 512, "Style 2")
    ct = content_target(s, at(1, 1.5), v, c)
    stt = style_target(s, at(1, 2.5), v, st1, STYLE_WEIGHT_128, title="Blended style", image2=st2, blend=0.5)
    o = optimize(s, at(2, 0.5), v, ct, stt, STEPS_COMPARE, title="Style transfer", preview_every=10)
    save(s, at(3, 0), o, "NST/blended_styles", title="Blended result")
    return s


ALL = (style_transfer, reconstructions, alpha_beta, optimizers, pooling, vgg16_vs_vgg19, color_preservation,
       blended_styles)


def specs() -> list:
    return [make().as_dict() for make in ALL]


if __name__ == "__main__":
    data = json.dumps(specs(), indent=1, ensure_ascii=False)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            fh.write(data)
    else:
        print(data)
