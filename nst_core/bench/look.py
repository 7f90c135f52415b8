"""How the look depends on size and pair: style ratio and content distance of default runs.

    python -m nst_core.bench.look                                  # 5 pairs x 128,256,384 px, both weightings
    python -m nst_core.bench.look --sizes 256,512 --pairs chelsea+starry_night,astronaut+the_scream
    python -m nst_core.bench.look --weightings normalized --save /tmp/look   # also writes the PNGs
    python -m nst_core.bench.look --weightings normalized --sizes 256,512,1024 --view 256   # seen at 256 px

For every weighting x pair x size it stylizes the bundled photo with the bundled painting with the
defaults (coarse-to-fine, L-BFGS, --steps steps; the style weight is the default for "normalized",
settings.PAPER_STYLE_WEIGHT for "paper") and prints:
  style ratio       Σ_l E_l(output) / Σ_l E_l(photo): the paper's Gram loss of the output against the
                    painting over that of the unchanged photo, at the output's size (1 = no style at all,
                    0 = the painting's Grams exactly); E_l = Σ(Ĝ−Â)²/(4N²) over the default style layers
  content distance  ‖F(output) − F(photo)‖ / ‖F(photo)‖ at relu4_2 (0 = the photo's structure exactly)
and then each measure's spread: max/min over the sizes for each pair, and over the pairs for each size.
Both measures use the paper's raw definitions whatever the weighting, so they judge both the same way.

Measured on a shared 2-core CPU (L-BFGS at one size; style ratio / content distance):
  cat + Starry Night, normalized 3, 100 steps:  96 px 0.047 / 0.64, 128 px 0.078 / 0.62, 192 px 0.139 / 0.68
  30 steps, normalized 3:  96 px 0.075 / 0.67, 128 px 0.227 / 0.68, 192 px 0.662 / 0.59 (not converged)
  30 steps, paper 5e6:     96 px 0.059 / 0.99, 128 px 0.114 / 1.02, 192 px 0.124 / 0.98 (the photo gone)
  5 pairs at 128 px, 30 steps, content distance: normalized 0.61-0.68 (1.13x), paper 0.67-1.02 (1.51x);
  style ratio: normalized 0.017-0.227, paper 0.014-0.114 (it follows how far the optimizer got).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ..cli_options import add_option
from .flags import add_device, add_json, add_sizes, add_threads, device as bench_device, set_threads, write_json

CONTENT_LAYER = "relu4_2"
# The five pairs the README's table measures (only one of them the cat + Starry Night).
DEFAULT_PAIRS = ("chelsea+starry_night", "astronaut+the_scream", "coffee+composition_vii",
                 "chelsea+shipwreck", "astronaut+composition_vii")
DEFAULT_SIZES = (128, 256, 384)
DEFAULT_STEPS = 200


def pair_images(pair: str) -> tuple[torch.Tensor, torch.Tensor]:
    """'chelsea+starry_night' -> (content_chelsea.png, style_starry_night.jpg) as [1,H,W,3]."""
    from .evaluate import pair_images as images
    return images(pair)


def look(vgg, photo: torch.Tensor, result_image: torch.Tensor, style) -> dict[str, float]:
    """{style_ratio, content_distance} of a result [1,H,W,3] against the photo (resized to it) and a
    StyleTarget of Gram statistics (its targets at the result's size), with the paper's raw definitions."""
    from nst_core.image import resize, to_nchw
    from nst_core.statistics import STATISTICS
    if style.style_loss != "gram":
        raise ValueError(f"look: the style ratio is the paper's Gram loss; got a {style.style_loss} target "
                         "(StyleTarget(..., style_loss='gram'))")
    style_layer_loss = STATISTICS["gram"].loss
    out = to_nchw(result_image).to(vgg.device)
    size = tuple(out.shape[-2:])
    ref = resize(to_nchw(photo), size).to(vgg.device)
    layers = list(dict.fromkeys([*style.layers, CONTENT_LAYER]))
    targets = style.targets_at(size)
    with torch.inference_mode(False), torch.no_grad():
        f_out, f_ref = vgg.features(out, layers), vgg.features(ref, layers)
        e_out = sum(float(style_layer_loss(f_out[n], targets[n])) for n in style.layers)
        e_ref = sum(float(style_layer_loss(f_ref[n], targets[n])) for n in style.layers)
        diff = float((f_out[CONTENT_LAYER] - f_ref[CONTENT_LAYER]).norm() / f_ref[CONTENT_LAYER].norm())
    return {"style_ratio": e_out / e_ref, "content_distance": diff}


def measure(vgg, pair: str, size: int, weighting: str, steps: int, style_weight: float | None = None,
            save: Path | None = None, view: int = 0, look_size: int | None = None) -> dict:
    """One default run of `pair` at a long side of `size` px under `weighting`, and its look (at its own
    size, or seen at `view` px when `view`); `look_size` None = the engine's default."""
    import nst_core
    from nst_core.image import fit_image
    from nst_core.settings import DEFAULTS, PAPER_STYLE_WEIGHT
    photo, painting = pair_images(pair)
    # the bundled photos are at most 512 px: a larger size runs on the photo upscaled to it (bicubic),
    # as the "High resolution" template does
    photo = fit_image(photo, size, upscale=True)
    if style_weight is None:
        style_weight = PAPER_STYLE_WEIGHT if weighting == "paper" else DEFAULTS["style_weight"]
    t0 = time.perf_counter()
    extra = {} if look_size is None else {"look_size": look_size}
    result = nst_core.stylize(photo, painting, vgg=vgg, max_size=size, steps=steps, style_weight=style_weight,
                              weighting=weighting, **extra)
    seconds = time.perf_counter() - t0
    style = nst_core.StyleTarget(vgg, painting, nst_core.DEFAULT_STYLE_LAYERS, None, style_weight, style_loss="gram")
    side = view or size
    row = {"weighting": weighting, "pair": pair, "size": size, "style_weight": style_weight, "steps": steps,
           **look(vgg, nst_core.fit(photo, side), nst_core.fit(result.image, side), style), "seconds": seconds}
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        nst_core.to_pil(result.image).save(save / f"{weighting}_{style_weight:g}_{pair}_{size}.png")
    return row


def spreads(rows: list[dict], key: str) -> dict[str, dict[str, float]]:
    """max/min of `key` over the sizes (per weighting and pair) and over the pairs (per weighting and size)."""
    out: dict[str, dict[str, float]] = {}
    for group, other in (("pair", "size"), ("size", "pair")):
        for row in rows:
            name = f"{row['weighting']} {group} {row[group]} (over {other}s)"
            values = [r[key] for r in rows if r["weighting"] == row["weighting"] and r[group] == row[group]]
            if len(values) > 1:
                out.setdefault(name, {})[key] = max(values) / min(values)
    return out


def table(rows: list[dict]) -> str:
    lines = [f"{'weighting':<11} {'pair':<26} {'size':>5} {'β':>8} {'style ratio':>12} {'content dist':>13} "
             f"{'s':>6}"]
    for r in rows:
        lines.append(f"{r['weighting']:<11} {r['pair']:<26} {r['size']:>5} {r['style_weight']:>8.3g} "
                     f"{r['style_ratio']:>12.3f} {r['content_distance']:>13.3f} {r['seconds']:>6.0f}")
    lines.append("")
    lines.append(f"{'spread (max/min)':<52} {'style ratio':>12} {'content dist':>13}")
    ratio, dist = spreads(rows, "style_ratio"), spreads(rows, "content_distance")
    for name in ratio:
        lines.append(f"{name:<52} {ratio[name]['style_ratio']:>11.2f}x {dist[name]['content_distance']:>12.2f}x")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from nst_core.settings import WEIGHTINGS
    parser = argparse.ArgumentParser(prog="python -m nst_core.bench.look", description=__doc__.split("\n\n")[0])
    add_sizes(parser, list(DEFAULT_SIZES), "long sides")
    parser.add_argument("--pairs", default=",".join(DEFAULT_PAIRS),
                        help=f"photo+painting, comma-separated (default: {','.join(DEFAULT_PAIRS)})")
    parser.add_argument("--weightings", default=",".join(WEIGHTINGS),
                        help=f"comma-separated (default: {','.join(WEIGHTINGS)})")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"L-BFGS steps per run (default: {DEFAULT_STEPS})")
    add_option(parser, "style_weight", help="style weight of the relative and normalized runs; the paper runs "
                                            "use settings.PAPER_STYLE_WEIGHT")
    parser.add_argument("--view", type=int, default=0, help="measure each result seen at this long side "
                                                             "(downscaled to it; default: 0, at its own size)")
    add_option(parser, "look_size")
    parser.add_argument("--save", type=Path, help="folder to write each result as a PNG (default: none)")
    add_json(parser, "the rows")
    add_device(parser)
    add_threads(parser)
    return parser


def main(argv=None) -> list[dict]:
    from nst_core.settings import WEIGHTINGS
    parser = build_parser()
    args = parser.parse_args(argv)
    import nst_core
    set_threads(args)
    vgg = nst_core.load_vgg(device=bench_device(args))
    rows = []
    for weighting in [w.strip() for w in args.weightings.split(",") if w.strip()]:
        if weighting not in WEIGHTINGS:
            parser.error(f"--weightings: {weighting!r} is not one of {', '.join(WEIGHTINGS)}")
        for pair in [p.strip() for p in args.pairs.split(",") if p.strip()]:
            for size in args.sizes:
                weight = args.style_weight if weighting != "paper" else None
                row = measure(vgg, pair, size, weighting, args.steps, weight, args.save, args.view,
                              args.look_size)
                print(f"{row['weighting']} {pair} {size}px: style ratio {row['style_ratio']:.3f}, content "
                      f"distance {row['content_distance']:.3f} ({row['seconds']:.0f} s)", flush=True)
                rows.append(row)
    print(table(rows))
    write_json(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
