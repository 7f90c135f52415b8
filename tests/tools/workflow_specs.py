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

from nst_core.settings import DEFAULTS, NORMALIZED_STYLE_WEIGHT

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


def content_target(spec: Spec, pos, vgg_id: int, image_id: int, title=None, weight="1", mask=None,
                   layers="relu4_2") -> int:
    node = spec.add("NST_ContentTarget", pos, title, {"layers": layers, "weight": weight})
    spec.link(vgg_id, 0, node, "vgg")
    spec.link(image_id, 0, node, "image")
    if mask is not None:
        spec.link(mask[0], mask[1], node, "mask")
    return node


def style_target(spec: Spec, pos, vgg_id: int, image_id: int, weight: str, title=None, image2=None,
                 blend=0.5, layers=VGG_LAYERS_STYLE, style_loss="gram", mask=None) -> int:
    """mask: (node, output) of a MASK for the style's region. style_loss: the paper's Gram for the
    templates that reproduce or study the paper; the others pass the engine's default (DEFAULTS)."""
    widgets = {"layers": layers, "layer_weights": "", "weight": weight, "scale": 1.0}
    if image2 is not None:
        widgets["blend"] = blend
    if style_loss is not None:
        widgets["style_loss"] = style_loss
    node = spec.add("NST_StyleTarget", pos, title, widgets)
    spec.link(vgg_id, 0, node, "vgg")
    spec.link(image_id, 0, node, "image")
    if image2 is not None:
        spec.link(image2, 0, node, "image2")
    if mask is not None:
        spec.link(mask[0], mask[1], node, "mask")
    return node


def shape_mask(spec: Spec, pos, image_id: int, shape: str, title=None, x=0.5, y=0.5, size=0.5, aspect=1.0,
               feather=0.05, outside=0.0) -> int:
    node = spec.add("NST_ShapeMask", pos, title, {"shape": shape, "x": x, "y": y, "size": size, "aspect": aspect,
                                                   "feather": feather, "outside": outside})
    spec.link(image_id, 0, node, "image")
    return node


def optimize(spec: Spec, pos, vgg_id: int, content_id: int, style_id: int | None, steps: int, title=None,
             optimizer="lbfgs", init="content", preserve_color="none", preview_every=5, coarse_to_fine=True,
             init_image=None, weighting="relative") -> int:
    node = spec.add("NST_Optimize", pos, title, {
        "init": init, "optimizer": optimizer, "steps": steps, "learning_rate": 0.0, "tv_weight": "0",
        "seed": 0, "control_after_generate": "fixed", "preserve_color": preserve_color,
        "preview_every": preview_every, "coarse_to_fine": coarse_to_fine, "weighting": weighting,
        "max_memory_gb": 0.0, "tile_size": 0})
    spec.link(vgg_id, 0, node, "vgg")
    spec.link(content_id, 0, node, "content")
    if style_id is not None:
        spec.link(style_id, 0, node, "style")
    if init_image is not None:
        spec.link(init_image, 0, node, "init_image")
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

# style strengths (weighting "relative": the same look at every size and for every pair; nst_core.settings)
STRENGTH = f"{NORMALIZED_STYLE_WEIGHT:g}"          # the engine's default
STRENGTH_STRONG = "10"                              # where a comparison needs the style to dominate
STEPS_COMPARE = 60


def style_transfer() -> Spec:
    s = Spec("nst_style_transfer", (
        "## Neural style transfer (Gatys et al.)\n\n"
        "The example photo painted in the style of *The Starry Night*: L-BFGS on the pixels, "
        "content = relu4_2 features (α), style = the feature means and covariances of relu1_1 … "
        "relu5_1 (β; `style_loss` gram: the paper's Gram matrices).\n\n"
        "256 px, 200 steps: a few minutes on a CPU, seconds on a GPU. More style: raise the style "
        "weight β (a strength: " + STRENGTH + " is the default, 10 is strong; it means the same at every "
        "size and for every pair, so raising max_size or changing a picture keeps the look). Swap the "
        "example nodes for Load Image to use your own "
        "pictures."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 256, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    ct = content_target(s, at(1, 1.8), v, c)
    stt = style_target(s, at(1, 2.8), v, st, STRENGTH, style_loss=DEFAULTS["style_loss"])
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
        "layout. The results are saved as one batch, left to right by increasing β. These are the paper's "
        "raw weights: NST Optimize's `weighting` is set to **paper** here (the default, relative, makes "
        "β a strength that means the same at every size and for every pair instead).\n\n"
        "128 px, " + str(STEPS_COMPARE) + " L-BFGS steps per image."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    ct = content_target(s, at(1, 0.3), v, c)
    results = []
    for i, beta in enumerate(ALPHA_BETA):
        stt = style_target(s, at(1, 1.5 + i * 1.4), v, st, beta, title=f"Style β = {beta}")
        o = optimize(s, at(2, i * 2.2), v, ct, stt, STEPS_COMPARE, title=f"Optimize β = {beta}", preview_every=10,
                     weighting="paper")
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
    stt = style_target(s, at(1, 2.5), v, st, STRENGTH)
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
        stt = style_target(s, at(2, i * 3 + 1), v, st, STRENGTH)
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
        stt = style_target(s, at(2, i * 3 + 1), v, st, STRENGTH)
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
    stt = style_target(s, at(1, 2.5), v, st, STRENGTH_STRONG)   # strong style: the colour treatments stand out
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
        "A style target with a second image (`image2`) mixes the two paintings' style statistics: "
        "`blend` is the share of the second style (0 = only *The Starry Night*, 1 = only *The Scream*). "
        "Here half and half.\n\n128 px, " + str(STEPS_COMPARE) + " L-BFGS steps."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st1 = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style 1")
    st2 = example(s, at(0, 5), "style_the_scream.jpg", 512, "Style 2")
    ct = content_target(s, at(1, 1.5), v, c)
    stt = style_target(s, at(1, 2.5), v, st1, STRENGTH, title="Blended style", image2=st2, blend=0.5,
                       style_loss=DEFAULTS["style_loss"])
    o = optimize(s, at(2, 0.5), v, ct, stt, STEPS_COMPARE, title="Style transfer", preview_every=10)
    save(s, at(3, 0), o, "NST/blended_styles", title="Blended result")
    return s


def two_regions() -> Spec:
    s = Spec("nst_two_styles_two_regions", (
        "## Two styles, two regions (Gatys et al. 2017)\n\n"
        "NST Shape Mask splits the photo down the middle: its `mask` (the left half) goes to the style "
        "target of *The Starry Night*, its `inverted` output (the right half) to the one of *The Scream*. "
        "NST Combine Styles hands both to NST Optimize, which paints each half in its own style; the soft "
        "edge (`feather`) blends them where they meet. Move `x` to move the border, or pick `top`/`bottom`/"
        "`ellipse`.\n\n128 px, " + str(STEPS_COMPARE) + " L-BFGS steps."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st1 = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style, left half")
    st2 = example(s, at(0, 5), "style_the_scream.jpg", 512, "Style, right half")
    m = shape_mask(s, at(1, 0), c, "left", title="Left | right", feather=0.1)
    ct = content_target(s, at(1, 1.6), v, c)
    left = style_target(s, at(1, 2.6), v, st1, STRENGTH, title="Style left (Starry Night)", mask=(m, 0),
                        style_loss=DEFAULTS["style_loss"])
    right = style_target(s, at(1, 4.4), v, st2, STRENGTH, title="Style right (The Scream)", mask=(m, 1),
                         style_loss=DEFAULTS["style_loss"])
    both = s.add("NST_CombineStyles", at(2, 0), "Both styles")
    s.link(left, 0, both, "style_a")
    s.link(right, 0, both, "style_b")
    o = optimize(s, at(2, 1), v, ct, both, STEPS_COMPARE, title="Style transfer", preview_every=10)
    save(s, at(3, 0), o, "NST/two_regions", title="Two regions")
    preview(s, at(3, 2.4), o, 1, title="Loss curves")
    return s


FACE = {"x": 0.44, "y": 0.23, "size": 0.27, "aspect": 1.35, "feather": 0.06}   # the astronaut's face
FACE_OUTSIDE, FACE_WEIGHT = 0.05, "20"       # 20 x 0.05 = 1: the rest keeps the plain transfer's α
FACE_LAYERS = "relu2_2,relu4_2"   # relu2_2 holds the fine detail of a face (relu4_2 alone: face 8% nearer)
# strong: the plain transfer reshapes the face (two content layers, each a relative term, and a painting far from
# the photo: under weighting normalized 10 hardly touched the face when looked at, 30 repainted it while the
# masked run kept it; relative divides by this pair's distance, d = 4.88 at 128 px (nst_core.photo_distance):
# 150 = that 30)
STYLE_WEIGHT_FACE = "150"


def keep_the_face() -> Spec:
    s = Spec("nst_keep_the_face", (
        "## Keep the face\n\n"
        "A strong style distorts faces first. Here an ellipse from NST Shape Mask over the face goes into "
        "NST Content Target's `mask` with α = " + FACE_WEIGHT + ": the mask is 1 on the face and "
        + str(FACE_OUTSIDE) + " (`outside`) elsewhere, so the face keeps the photo 20x more than the rest, "
        "which still has α = 1 (the layout stays). Both content targets use relu2_2 + relu4_2: relu4_2 "
        "alone keeps the layout but not the features of a small face. Left to right: the photo, the plain "
        "transfer (α = 1 everywhere), the transfer with the face kept.\n\n128 px, " + str(STEPS_COMPARE)
        + " L-BFGS steps each."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_astronaut.png", 128, "Content image")
    st = example(s, at(0, 4), "style_composition_vii.jpg", 512, "Style image")
    m = shape_mask(s, at(1, 0), c, "ellipse", title="Face", outside=FACE_OUTSIDE, **FACE)
    plain = content_target(s, at(1, 2), v, c, title="Content (plain)", layers=FACE_LAYERS)
    face = content_target(s, at(1, 3), v, c, title="Content (face kept)", weight=FACE_WEIGHT, mask=(m, 0),
                          layers=FACE_LAYERS)
    stt = style_target(s, at(1, 4), v, st, STYLE_WEIGHT_FACE, style_loss=DEFAULTS["style_loss"])
    o1 = optimize(s, at(2, 0), v, plain, stt, STEPS_COMPARE, title="Plain transfer", preview_every=10)
    o2 = optimize(s, at(2, 2.2), v, face, stt, STEPS_COMPARE, title="Face kept", preview_every=10)
    save(s, at(3, 0), batch(s, at(3, 2.4), [(c, 0), (o1, 0), (o2, 0)]), "NST/keep_the_face",
         title="photo | plain | face kept")
    return s


STYLE_LOSS_NAMES = ("gram", "wasserstein2", "sliced_wasserstein")


def style_losses() -> Spec:
    s = Spec("nst_style_losses_gram_w2_sliced", (
        "## Gram vs W2 vs sliced Wasserstein\n\n"
        "The same transfer with the three style statistics of NST Style Target's `style_loss`: **gram** "
        "(Gatys et al.: feature correlations), **wasserstein2** (the Gaussian fit of the features: means and "
        "covariances, Bures distance) and **sliced_wasserstein** (the whole feature distributions compared "
        "along random directions). They are scaled so one style strength means about the same for each.\n\n128 px, "
        + str(STEPS_COMPARE) + " L-BFGS steps each."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 512, "Style image")
    ct = content_target(s, at(1, 0.3), v, c)
    results = []
    for i, loss in enumerate(STYLE_LOSS_NAMES):
        stt = style_target(s, at(1, 1.5 + i * 1.5), v, st, STRENGTH, title=f"Style ({loss})",
                           style_loss=loss)
        o = optimize(s, at(2, i * 2.2), v, ct, stt, STEPS_COMPARE, title=f"Optimize ({loss})", preview_every=10)
        results.append((o, 0))
    save(s, at(3, 0), batch(s, at(3, 2.4), results), "NST/style_losses", title="gram | W2 | sliced W")
    return s


BLOCK_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
VIS_CHANNELS, VIS_SIZE, VIS_STEPS, MAPS_TOP = "0, 10, 20", 96, 128, 8


def layer_explorer() -> Spec:
    s = Spec("nst_what_each_layer_sees", (
        "## What each layer sees\n\n"
        "For the first layer of each VGG-19 block (conv1_1 … conv5_1): **feature maps** of the photo (the "
        + str(MAPS_TOP) + " channels with the most energy, each map normalized on its own, labelled with its "
        "channel), the **receptive field** of one unit in the middle (red; its neighbour one stride away in "
        "blue): from 3 px at conv1_1 to 156 px at conv5_1; and **channel visualizations** (channels "
        + VIS_CHANNELS + " of each layer: the image each responds to most). Shallow layers see colours and "
        "edges, deep ones parts of objects.\n\nPhoto 128 px; visualizations " + str(VIS_SIZE) + " px, "
        + str(VIS_STEPS) + " steps."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 128, "Photo")
    fields, visuals = [], []
    for i, layer in enumerate(BLOCK_LAYERS):
        fm = s.add("NST_FeatureMaps", at(1, i * 2.4), f"Feature maps {layer}",
                   {"layer": layer, "channels": "", "top": MAPS_TOP})
        s.link(v, 0, fm, "vgg")
        s.link(c, 0, fm, "image")
        save(s, at(4 + (i % 2), (i // 2) * 2.4), fm, f"NST/maps_{layer}", title=f"{layer} maps")
        rf = s.add("NST_ReceptiveField", at(2, i * 1.2), f"Receptive field {layer}",
                   {"layer": layer, "architecture": "vgg19", "position": 0.5})
        s.link(c, 0, rf, "image")
        fields.append((rf, 0))
        vc = s.add("NST_VisualizeChannel", at(3, i * 1.6), f"Channels {layer}",
                   {"layer": layer, "channels": VIS_CHANNELS, "size": VIS_SIZE, "steps": VIS_STEPS, "seed": 0})
        s.link(v, 0, vc, "vgg")
        visuals.append((vc, 0))
    save(s, at(2, 6.2), batch(s, at(2, 9), fields), "NST/receptive_fields", title="Receptive fields")
    save(s, at(3, 8.2), batch(s, at(3, 10.6), visuals), "NST/channel_visualizations", title="Channel visualizations")
    return s


STUDY_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STUDY_SIZE, STUDY_STEPS, STUDY_MORE = 64, 20, 40


def style_layer_study() -> Spec:
    s = Spec("nst_style_layer_study", (
        "## Style layer study\n\n"
        "The same transfer with the style taken from one layer only (relu1_1, the ReLU of conv1_1, … "
        "relu5_1) and from cumulative sets (relu1_1; +relu2_1; … up to all five, the paper's choice). Rows: "
        "single layers after " + str(STUDY_STEPS) + " steps, single layers after "
        + str(STUDY_STEPS + STUDY_MORE) + " steps, cumulative sets after " + str(STUDY_STEPS)
        + ", cumulative sets after " + str(STUDY_STEPS + STUDY_MORE) + ". The longer runs continue the "
        "short ones (init = image) for " + str(STUDY_MORE) + " more steps. Each row is one IMAGE batch "
        "(Image Batch nodes), saved as one Save Image. Shallow layers give colour and fine grain, deep "
        "ones larger strokes; together they give the painting's texture at every scale. (ReLU outputs: "
        "the raw conv outputs' losses differ by orders of magnitude between layers.)\n\n"
        + str(STUDY_SIZE) + " px (tiny, so 18 runs fit on a CPU; the style strength means the same at larger sizes)."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", STUDY_SIZE, "Content image")
    st = example(s, at(0, 4), "style_starry_night.jpg", 256, "Style image")
    ct = content_target(s, at(0, 5), v, c)
    rows = {}
    for k, kind in enumerate(("single", "cumulative")):
        short, long = [], []
        for i, layer in enumerate(STUDY_LAYERS):
            layers = ",".join(STUDY_LAYERS[:i + 1]) if kind == "cumulative" else layer
            label = ("+" if kind == "cumulative" and i else "") + layer
            if kind == "cumulative" and i == 0:       # relu1_1 alone: the same run as the single row's
                short.append(rows["single"][0][0])
                long.append(rows["single"][1][0])
                continue
            col = 1 + k * 3
            stt = style_target(s, at(col, i * 2.4), v, st, STRENGTH, title=f"Style {label}", layers=layers)
            o1 = optimize(s, at(col + 1, i * 2.4), v, ct, stt, STUDY_STEPS, title=f"{label}, {STUDY_STEPS} steps",
                          preview_every=0, coarse_to_fine=False)
            o2 = optimize(s, at(col + 2, i * 2.4), v, ct, stt, STUDY_MORE,
                          title=f"{label}, {STUDY_STEPS + STUDY_MORE} steps", init="image", init_image=o1,
                          preview_every=0, coarse_to_fine=False)
            short.append((o1, 0))
            long.append((o2, 0))
        rows[kind] = (short, long)
    y = 0
    for kind in ("single", "cumulative"):
        for steps, row in zip((STUDY_STEPS, STUDY_STEPS + STUDY_MORE), rows[kind]):
            save(s, at(8, y), batch(s, at(7, y), row), f"NST/layer_study_{kind}_{steps}",
                 title=f"{kind} layers, {steps} steps")
            y += 4.6
    return s


CLIP = {"frame_count": 6, "pan_x": 4.0, "pan_y": 0.0, "zoom": 1.0}
CLIP_STEPS = 40
CLIP_PHOTO = 120          # 120x80 px (a multiple of the widget step 8): a 100x80 window fits 6 frames 4 px apart


def stylize_clip() -> Spec:
    s = Spec("nst_stylize_a_short_clip", (
        "## Stylize a short clip\n\n"
        "**The clip** is made inside the workflow: NST Pan Clip slides the largest window that fits "
        "(100x80 px) over the example photo (" + str(CLIP_PHOTO) + " px), " + f"{CLIP['pan_x']:g}"
        + " px to the right per frame, "
        + str(CLIP["frame_count"]) + " frames (set `zoom` above 1 to zoom in as well). Replace it with "
        "your own frames (an IMAGE batch, one size, in order).\n\n"
        "**NST Stylize Frames** paints frame by frame; with `temporal_weight` > 0 each frame also keeps the "
        "previous result moved along the optical flow (Ruder et al.), so the strokes travel with the "
        "picture. Beside it, the same frames stylized independently (`temporal_weight` 0): the strokes "
        "flicker from frame to frame.\n\n" + str(CLIP_STEPS) + " L-BFGS steps per frame."))
    v = vgg(s, at(0, 1.8))
    photo = example(s, at(0, 3), "content_chelsea.png", CLIP_PHOTO, "Photo")
    st = example(s, at(0, 4), "style_starry_night.jpg", 256, "Style image")
    clip = s.add("NST_PanClip", at(1, 0), "Pan clip", dict(CLIP))
    s.link(photo, 0, clip, "image")
    crop = clip
    stt = style_target(s, at(1, 2.6), v, st, STRENGTH, style_loss=DEFAULTS["style_loss"])
    outs = []
    for i, (title, weight) in enumerate((("Temporally consistent", "1000"), ("Independent frames", "0"))):
        node = s.add("NST_StylizeFrames", at(2, i * 3), title, {
            "temporal_weight": weight, "steps": CLIP_STEPS, "init": "content", "optimizer": "lbfgs",
            "learning_rate": 0.0, "content_weight": "1", "tv_weight": "0", "seed": 0,
            "control_after_generate": "fixed", "preview_every": 10})
        s.link(v, 0, node, "vgg")
        s.link(crop, 0, node, "frames")
        s.link(stt, 0, node, "style")
        outs.append(node)
    save(s, at(3, 0), crop, "NST/clip_frames", title="Clip")
    save(s, at(3, 2.4), outs[0], "NST/clip_temporal", title="Temporally consistent")
    save(s, at(4, 0), outs[1], "NST/clip_independent", title="Independent frames")
    report(s, at(4, 2.4), outs[0], output=1, title="Report")
    return s


HIGH_RES_SIDE, HIGH_RES_STEPS = 2048, 300


def high_resolution() -> Spec:
    s = Spec("nst_high_resolution", (
        "## High resolution (" + str(HIGH_RES_SIDE) + " px)\n\n"
        "The bundled photos are at most 512 px, so this one is **upscaled** to " + str(HIGH_RES_SIDE)
        + " px wide with Upscale Image (lanczos): the fine detail at that size comes from the painting, "
        "not the photo. Use your own large photo instead (Load Image) and drop the upscale.\n\n"
        "NST Optimize runs coarse-to-fine: most of the " + str(HIGH_RES_STEPS) + " steps at 128-512 px, "
        "few at " + str(HIGH_RES_SIDE) + " px, where one step costs ~16x a 512 px step. The style strength "
        "means the same at every size, so the look matches a small run's. Where the image does not fit "
        "the memory, the loss is computed tile by tile (exactly: no seams) and L-BFGS keeps fewer pairs; "
        "`max_memory_gb` caps the memory (0 = what is free), `tile_size` forces tiles. The progress text "
        "names the level and its tiles; the preview stays small.\n\n"
        "About 25 minutes on a 2-core CPU; a GPU takes seconds to a minute."))
    v = vgg(s, at(0, 1.8))
    c = example(s, at(0, 3), "content_chelsea.png", 512, "Photo (451x300 px)")
    up = s.add("ImageScale", at(1, 3.2), "Upscale to " + str(HIGH_RES_SIDE) + " px",
               {"upscale_method": "lanczos", "width": HIGH_RES_SIDE, "height": 0, "crop": "disabled"})
    s.link(c, 0, up, "image")
    st = example(s, at(0, 4.2), "style_starry_night.jpg", 512, "Style image")
    ct = content_target(s, at(1, 1.3), v, up)
    stt = style_target(s, at(1, 4.6), v, st, STRENGTH, style_loss=DEFAULTS["style_loss"])
    o = optimize(s, at(2, 0.5), v, ct, stt, HIGH_RES_STEPS, title="Style transfer at " + str(HIGH_RES_SIDE) + " px")
    save(s, at(3, 0), o, "NST/high_resolution")
    preview(s, at(3, 2.4), o, 1, title="Loss curves")
    report(s, at(2, 3.8), o, title="Report")
    return s


ALL = (style_transfer, reconstructions, alpha_beta, optimizers, pooling, vgg16_vs_vgg19, color_preservation,
       blended_styles, two_regions, keep_the_face, style_losses, layer_explorer, style_layer_study, stylize_clip,
       high_resolution)


def specs() -> list:
    return [make().as_dict() for make in ALL]


if __name__ == "__main__":
    data = json.dumps(specs(), indent=1, ensure_ascii=False)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            fh.write(data)
    else:
        print(data)
