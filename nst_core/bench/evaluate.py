"""The default look on many pairs: a calibration half and a held-out half, scored by one evaluator.

    python -m nst_core.bench.evaluate                          # held-out half, 256 px, the defaults
    python -m nst_core.bench.evaluate --set calibration --sizes 256,512 --save /tmp/eval
    python -m nst_core.bench.evaluate --sizes 128 --save /tmp/eval128      # with the grain figures
    python -m nst_core.bench.evaluate --score /tmp/peer256 --pairs camera+wave  # the peer's saved results
    python -m nst_core.bench.evaluate --score /tmp/eval --sizes 512 --view 256   # 512 px results seen at 256

Each pair is run with the engine's defaults (nst_core.stylize with nothing but max_size) and scored:
  style ratio (Gram)  Σ_l E_l(output) / Σ_l E_l(photo), E_l the paper's Gram loss against the painting at
                      the output's size over the default style layers (1 = the photo, 0 = the painting)
  style ratio (W2)    the same with the Wasserstein-2 distance of the layers' feature distributions
  beyond colour       each style ratio against the nearer of the photo and its colour transfer (the photo's
                      colours moved to the painting's mean and covariance, nst_core.color): what the run adds
                      beyond recolouring. A photo far from its painting in colour (a gray photo under a gold
                      screen) gets most of the way by recolouring alone, so its ratio against the photo
                      reads it as the most styled while it looks the least painted
  content distance    ‖F(output) − F(photo)‖ / ‖F(photo)‖ at relu4_2
  photo distance      d_l per style layer, the run's relative unit (nst_core.photo_distance): how far the
                      photo starts from the painting; the Gram ratio reads lower the larger it is
  grain (Y, Cb, Cr)   power above half the Nyquist frequency per pixel in each YCbCr channel of the output
                      over the painting's at the same pixel count, as the style statistics see it
                      (1 = as grainy as the painting; a painting file smaller than that is upsampled,
                      which leaves it little fine detail: the figure then reads high)
and the spread (max/min) of each over the pairs. The calibration half uses only the bundled images
(nst_core/examples); the held-out half uses paintings the defaults were never tuned on
(nst_core/bench/eval_images, SOURCES.md there).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from nst_core.cli_options import add_option
from nst_core.color import match_color_histogram
from nst_core.grain import high_frequency_power
from nst_core.image import fit_image, to_nchw

from .flags import add_device, add_json, add_sizes, add_threads, device as bench_device, set_threads, write_json

EVAL_DIR = Path(__file__).with_name("eval_images")
CONTENT_LAYER = "relu4_2"
SETS = {
    "calibration": ("chelsea+starry_night", "astronaut+the_scream", "coffee+composition_vii",
                    "chelsea+shipwreck", "astronaut+composition_vii", "coffee+the_scream",
                    "astronaut+starry_night", "coffee+shipwreck"),
    "held_out": ("camera+wave", "coins+water_lilies", "rocket+udnie", "tubingen+kiss",
                 "hubble+woman_with_hat", "astronaut+sakai_hoitsu", "chelsea+udnie", "coffee+woman_with_hat"),
}


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def image_path(kind: str, name: str) -> Path:
    """content_<name>.* / style_<name>.* from nst_core/examples or the evaluation images (exactly one)."""
    from nst_core.examples import EXAMPLES_DIR
    folders = (EXAMPLES_DIR, EVAL_DIR)
    found = [path for folder in folders for path in sorted(folder.glob(f"{kind}_{name}.*"))
             if path.suffix.lower() in IMAGE_SUFFIXES]
    if len(found) != 1:
        known = sorted({p.stem[len(kind) + 1:] for folder in folders for p in folder.glob(f"{kind}_*")
                        if p.suffix.lower() in IMAGE_SUFFIXES})
        raise SystemExit(f"--pairs: {kind} image {name!r}: " + (
            f"ambiguous ({', '.join(map(str, found))})" if found else
            f"none named {kind}_{name}.* in {EXAMPLES_DIR} or {EVAL_DIR}; known: {', '.join(known)}"))
    return found[0]


def pair_paths(pair: str) -> tuple[Path, Path]:
    """'camera+wave' -> (content_camera.*, style_wave.*)."""
    photo, plus, painting = pair.partition("+")
    if not (photo and plus and painting):
        raise SystemExit(f"--pairs: {pair!r} is not photo+painting (e.g. chelsea+starry_night)")
    return image_path("content", photo), image_path("style", painting)


def pair_images(pair: str) -> tuple[torch.Tensor, torch.Tensor]:
    """'camera+wave' -> (photo, painting) as [1,H,W,3]."""
    import nst_core
    photo, painting = pair_paths(pair)
    return nst_core.load_image(photo), nst_core.load_image(painting)


def scores(vgg, photo: torch.Tensor, result: torch.Tensor, painting: torch.Tensor,
           view: int = 0) -> dict[str, float]:
    """The evaluator's figures of `result` [1,H,W,3] against `photo` and `painting` (resized to it); with
    `view`, the style and content figures of the result seen at that long side (downscaled; nst_core.look
    sets the look there), the grain always at its own size."""
    import nst_core
    from nst_core.image import resize
    from nst_core.statistics import STATISTICS
    out = to_nchw(fit_image(result, view) if view else result).to(vgg.device)
    size = tuple(out.shape[-2:])
    ref = resize(to_nchw(photo), size).to(vgg.device)
    row: dict[str, float] = {}
    layers = list(nst_core.DEFAULT_STYLE_LAYERS)
    with torch.inference_mode(False), torch.no_grad():
        f_out = vgg.features(out, [*layers, CONTENT_LAYER])
        f_ref = vgg.features(ref, [*layers, CONTENT_LAYER])
        f_colour = vgg.features(match_color_histogram(ref, to_nchw(painting).to(vgg.device)), layers)
        for statistic, key in (("gram", "style_gram"), ("wasserstein2", "style_w2")):
            style = nst_core.StyleTarget(vgg, painting, layers, None, 1.0, style_loss=statistic)
            targets = style.targets_at(size)
            loss = STATISTICS[statistic].loss
            e_out = [float(loss(f_out[n], targets[n])) for n in layers]
            e_ref = [float(loss(f_ref[n], targets[n])) for n in layers]
            e_colour = [float(loss(f_colour[n], targets[n])) for n in layers]
            row[key] = sum(e_out) / sum(e_ref)
            row[f"{key}_beyond_colour"] = sum(e_out) / min(sum(e_ref), sum(e_colour))
            if statistic == "gram":
                row["per_layer_gram"] = [o / r for o, r in zip(e_out, e_ref)]
        row["content_distance"] = float((f_out[CONTENT_LAYER] - f_ref[CONTENT_LAYER]).norm()
                                        / f_ref[CONTENT_LAYER].norm())
    # the painting at the output's pixel count, as the style statistics see it (StyleTarget.style_size)
    h, w = result.shape[1:3]
    ratio = math.sqrt(h * w / (painting.shape[1] * painting.shape[2]))
    seen = resize(to_nchw(painting), (round(painting.shape[1] * ratio), round(painting.shape[2] * ratio)))
    ours, theirs = high_frequency_power(to_nchw(result))[0], high_frequency_power(seen)[0]
    row["grain"] = [float(o / t) for o, t in zip(ours, theirs)]
    return row


def run_pair(vgg, pair: str, size: int, save: Path | None = None, view: int = 0, **options) -> dict:
    """One default run of `pair` at a long side of `size` px and its scores."""
    import nst_core
    photo, painting = pair_images(pair)
    photo = fit_image(photo, size, upscale=True)
    t0 = time.perf_counter()
    result = nst_core.stylize(photo, painting, vgg=vgg, max_size=size, **options)
    seconds = time.perf_counter() - t0
    row = {"pair": pair, "size": size, "seconds": seconds, **scores(vgg, photo, result.image, painting, view)}
    if result.style_units:          # the run's unit: the photo's distance d_l per style layer (photo_distance)
        row["photo_distance"] = [1.0 / u for u in result.style_units[0]]
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        nst_core.to_pil(result.image).save(save / f"{pair}_{size}.png")
    return row


def score_saved(vgg, pair: str, size: int, folder: Path, view: int = 0) -> dict | None:
    """The scores of a result saved as `<pair>_<size>*.png` in `folder` (e.g. the peer's,
    nst_core.bench.peer --save), None when there is none; its wall time is not known here."""
    found = sorted(folder.glob(f"{pair}_{size}*.png"))
    if not found:
        return None
    import nst_core
    photo, painting = pair_images(pair)
    result = nst_core.load_image(found[-1])
    photo = fit_image(photo, max(result.shape[1:3]), upscale=True)
    return {"pair": pair, "size": size, "seconds": float("nan"), "file": str(found[-1]),
            **scores(vgg, photo, result, painting, view)}


def contact_sheet(pairs, folders, out: Path, cell: int = 192) -> None:
    """One PNG with a row per pair: photo, painting, then `pair_<size>.png` (or `<pair>*.png`) of each
    folder in `folders` (label: the folder's name), each fitted into a `cell`-px square."""
    from PIL import Image, ImageDraw
    import nst_core
    columns = ["photo", "painting", *[folder.name for folder in folders]]
    sheet = Image.new("RGB", (cell * len(columns), (cell + 14) * len(pairs) + 14), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns):
        draw.text((c * cell + 4, 0), name, fill="black")
    for r, pair in enumerate(pairs):
        photo, painting = pair_images(pair)
        images = [nst_core.to_pil(photo), nst_core.to_pil(painting)]
        for folder in folders:
            found = sorted(folder.glob(f"{pair}_*.png"))
            images.append(Image.open(found[-1]).convert("RGB") if found else None)
        y = 14 + r * (cell + 14)
        for c, image in enumerate(images):
            if image is not None:
                image.thumbnail((cell - 4, cell - 4))
                sheet.paste(image, (c * cell + 2, y))
        draw.text((4, y + cell - 2), pair, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def spread(values) -> float:
    values = list(values)
    return max(values) / min(values)


def table(rows: list[dict]) -> str:
    head = (f"{'pair':<26} {'size':>5} {'gram ratio':>10} {'W2 ratio':>9} {'beyond colour: gram':>20} "
            f"{'W2':>6} {'content':>8} {'grain Y':>8} {'Cb':>6} {'Cr':>6} {'s':>5}")
    lines = [head]
    for r in rows:
        y, cb, cr = r["grain"]
        lines.append(f"{r['pair']:<26} {r['size']:>5} {r['style_gram']:>10.3f} {r['style_w2']:>9.3f} "
                     f"{r['style_gram_beyond_colour']:>20.3f} {r['style_w2_beyond_colour']:>6.3f} "
                     f"{r['content_distance']:>8.3f} {y:>8.2f} {cb:>6.2f} {cr:>6.2f} {r['seconds']:>5.0f}")
    for size in sorted({r["size"] for r in rows}):
        at = [r for r in rows if r["size"] == size]
        if len(at) > 1:
            figures = [spread(r[key] for r in at) for key in
                       ("style_gram", "style_w2", "style_gram_beyond_colour", "style_w2_beyond_colour",
                        "content_distance")]
            widths = (9, 8, 19, 5, 7)
            lines.append(f"{'spread (max/min)':<26} {size:>5} " +
                         " ".join(f"{f:>{w}.2f}x" for f, w in zip(figures, widths)))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nst_core.bench.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=[*SETS, "all"], default="held_out",
                        help="which half of the pairs (default: held_out)")
    parser.add_argument("--pairs", default="", help="photo+painting, comma-separated, instead of --set")
    add_sizes(parser, [256], "long sides")
    parser.add_argument("--style-weight", type=float, metavar="W",
                        help="instead of the default strength (to compare with a peer at its content distance)")
    add_option(parser, "style_loss")
    parser.add_argument("--save", type=Path, help="folder to write each result as a PNG (default: none)")
    parser.add_argument("--sheet", type=Path, nargs="+", metavar="FOLDER",
                        help="no runs: write <first folder>/sheet.png, a row per pair (photo, painting, the "
                             "results saved in each FOLDER by --save)")
    parser.add_argument("--view", type=int, default=0, metavar="PX",
                        help="score each result seen at this long side (downscaled to it; default: 0, at its "
                             "own size)")
    parser.add_argument("--score", type=Path, metavar="FOLDER",
                        help="no runs: score the results saved in FOLDER as <pair>_<size>*.png (the peer's: "
                             "python -m nst_core.bench.peer --save FOLDER)")
    add_json(parser, "the rows")
    add_device(parser)
    add_threads(parser)
    return parser


def main(argv=None) -> list[dict]:
    args = build_parser().parse_args(argv)
    import nst_core
    set_threads(args)
    if args.pairs:
        pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    else:
        pairs = [p for name, half in SETS.items() if args.set in (name, "all") for p in half]
    if args.sheet:
        contact_sheet(pairs, args.sheet, args.sheet[0] / "sheet.png")
        print(f"wrote {args.sheet[0] / 'sheet.png'}")
        return []
    vgg = nst_core.load_vgg(device=bench_device(args))
    rows, strength = [], {} if args.style_weight is None else {"style_weight": args.style_weight}
    strength["style_loss"] = args.style_loss
    for size in args.sizes:
        for pair in pairs:
            if not args.score:
                print(f"{pair} {size} px: running the defaults ({len(rows) + 1} of {len(pairs) * len(args.sizes)})",
                      flush=True)
            row = (score_saved(vgg, pair, size, args.score, args.view) if args.score
                   else run_pair(vgg, pair, size, args.save, args.view, **strength))
            if row is None:
                print(f"{pair} {size} px: nothing saved in {args.score}", flush=True)
                continue
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else
                                  [round(x, 3) for x in v] if isinstance(v, list) else v)
                              for k, v in row.items()}), flush=True)
            rows.append(row)
    print(table(rows))
    write_json(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
