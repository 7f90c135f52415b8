"""`nst-stylize` / `python -m nst_core`: style transfer from the command line.

With no arguments it stylizes the bundled cat photo with The Starry Night and writes stylized.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import api, color
from .errors import NSTError
from .examples import DEFAULT_CONTENT, DEFAULT_STYLE, example_names, example_path
from .image import load_image, to_pil
from .optimize import INITS, OPTIMIZERS


def _image_arg(value: str):
    """A file path, or the name of a bundled example image."""
    if value in example_names():
        return load_image(example_path(value))
    return load_image(value)


def build_parser() -> argparse.ArgumentParser:
    d = api.DEFAULTS
    p = argparse.ArgumentParser(prog="nst-stylize", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--content", default=DEFAULT_CONTENT, help="content image (path or bundled example name)")
    p.add_argument("--style", nargs="+", default=[DEFAULT_STYLE], help="style image(s); several are blended")
    p.add_argument("--style-blend", type=float, nargs="+", help="blend weights of the styles")
    p.add_argument("--output", "-o", default="stylized.png", help="PNG to write")
    p.add_argument("--size", type=int, default=256, help="long side of the output in px")
    p.add_argument("--steps", type=int, default=d["steps"],
                   help="optimizer steps; with coarse-to-fine they are shared out over the sizes")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d["optimizer"])
    p.add_argument("--lr", type=float, help="learning rate (default per optimizer: %s)" % d["lr"])
    p.add_argument("--init", choices=INITS, default=d["init"])
    p.add_argument("--init-image", help="starting image for --init image")
    p.add_argument("--content-weight", type=float, default=d["content_weight"], help="alpha")
    p.add_argument("--style-weight", type=float, default=d["style_weight"], help="beta")
    p.add_argument("--tv-weight", type=float, default=d["tv_weight"])
    p.add_argument("--content-layers", default=",".join(api.DEFAULT_CONTENT_LAYERS))
    p.add_argument("--style-layers", default=",".join(api.DEFAULT_STYLE_LAYERS))
    p.add_argument("--style-layer-weights", help="comma-separated w_l (default equal, 1/L)")
    p.add_argument("--style-scale", type=float, default=1.0)
    p.add_argument("--preserve-color", choices=color.MODES, default="none")
    p.add_argument("--weights", help="VGG weights file (default: the bundled Caffe VGG-19)")
    p.add_argument("--pooling", choices=("max", "avg"), default="max")
    p.add_argument("--no-normalize", action="store_true", help="use the raw, unnormalized network")
    p.add_argument("--no-coarse-to-fine", action="store_true",
                   help="every step at full size (default, for 256 px and 100 steps and more: half of --steps at a ~128 px "
                        "long side, a third at each size in between, 40%% at full size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--quiet", "-q", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .models import load_vgg
    started = time.perf_counter()
    try:
        vgg = load_vgg(args.weights, pooling=args.pooling, normalized=not args.no_normalize, device=args.device)
        content = _image_arg(args.content)
        styles = [_image_arg(s) for s in args.style]
        init_image = _image_arg(args.init_image) if args.init_image else None

        def report(p):
            if args.quiet or (p.overall_step % 10 and p.overall_step != p.overall_total):
                return
            elapsed = time.perf_counter() - started
            print(f"\rstep {p.overall_step}/{p.overall_total}  loss {p.losses['total']:.4g}  "
                  f"{elapsed:.0f}s", end="" if sys.stderr.isatty() else "\n", file=sys.stderr, flush=True)

        result = api.stylize(
            content, styles, vgg=vgg, content_layers=args.content_layers, style_layers=args.style_layers,
            style_layer_weights=args.style_layer_weights, content_weight=args.content_weight,
            style_weight=args.style_weight, style_blend=args.style_blend, style_scale=args.style_scale,
            max_size=args.size, steps=args.steps, optimizer=args.optimizer, lr=args.lr, init=args.init,
            init_image=init_image, tv_weight=args.tv_weight, seed=args.seed,
            preserve_color=args.preserve_color, coarse_to_fine=not args.no_coarse_to_fine, callback=report)
    except (NSTError, ValueError, OSError) as exc:
        print(f"nst-stylize: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    to_pil(result.image).save(out)
    for note in result.warnings:
        print(f"warning: {note}", file=sys.stderr)
    if not args.quiet:
        print(file=sys.stderr)
    print(f"wrote {out} ({result.image.shape[2]}x{result.image.shape[1]}, {len(result.history)} steps, "
          f"{time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
