"""The GPU figures: 500 L-BFGS steps at 512 px, and a default stylize to 4096 px (time, memory, device).

    python -m nst_core.bench.gpu                    # on the default device (cuda when there is one)
    python -m nst_core.bench.gpu --json gpu.json --images out/   # also the 4096 px result, downscaled + a crop

1. 500 steps at `--size` (512): the benchmark's objective (nst_core.bench: the cat photo at 512x512, The
   Starry Night, paper weights, from the content, one level), timed around `nst_core.optimize` with the
   targets already built, once with CUDA graphs (nst_core.cuda_graph) and once without; the returned
   image is judged in float32 (on the CPU the reference's 500 steps deliver 1.701e6).
2. `nst_core.stylize` of the cat photo upscaled to `--big` (4096) px with The Starry Night, every option at
   its default (300 steps, coarse-to-fine): seconds in all, seconds before the first step (targets),
   seconds per step at the top level, peak memory (CUDA: torch.cuda.max_memory_allocated; CPU: peak RSS).

Measured on an NVIDIA H200 (torch 2.11, CUDA 13): see README "On a GPU". On the CPU the same command
runs at small sizes in tests (it would take hours at these sizes on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from . import _rss_kib, _sync, judge, setup
from .flags import add_device, add_json, device as bench_device, write_json


def steps_at(vgg, size: int, steps: int, graphs: bool) -> dict:
    """`steps` L-BFGS steps of the benchmark's objective at size x size: seconds and losses."""
    import nst_core
    from . import WEIGHTING
    _, _, ct, st = setup(vgg, size)
    run = dict(weighting=WEIGHTING, cuda_graphs=graphs)                # one level, as optimize runs by default
    nst_core.optimize(vgg, ct, st, steps=3, **run)                     # warm-up: cuDNN's choices
    _sync(vgg.device)
    start = time.perf_counter()
    result = nst_core.optimize(vgg, ct, st, steps=steps, **run)
    _sync(vgg.device)
    seconds = time.perf_counter() - start
    return {"size": size, "steps": steps, "graphs": graphs, "seconds": seconds, "ms_per_step": 1e3 * seconds / steps,
            "last_running_loss": result.history[-1]["total"],
            "judged_loss": judge(vgg, ct, st, result.image.permute(0, 3, 1, 2), size),
            "warnings": result.warnings}


def big_stylize(vgg, size: int, steps: int | None = None, images: str | None = None) -> dict:
    """The default stylize of the bundled photo upscaled to `size` px (long side)."""
    from PIL import Image
    import nst_core
    photo = Image.open(nst_core.example_path(nst_core.DEFAULT_CONTENT)).convert("RGB")
    photo = photo.resize((size, round(size * photo.height / photo.width)), Image.LANCZOS)
    painting = nst_core.load_image(nst_core.example_path(nst_core.DEFAULT_STYLE))
    stamps: dict[int, list[float]] = {}

    def callback(progress):
        _sync(vgg.device)
        stamps.setdefault(progress.level.index, []).append(time.perf_counter())

    cuda = vgg.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    options = {} if steps is None else {"steps": steps}
    start = time.perf_counter()
    result = nst_core.stylize(nst_core.from_pil(photo), painting, vgg=vgg, max_size=size, callback=callback,
                              **options)
    _sync(vgg.device)
    seconds = time.perf_counter() - start
    top = stamps[max(stamps)]
    report = {"size": size, "plan": result.plan.describe(), "seconds": seconds,
              "before_first_step_s": min(times[0] for times in stamps.values()) - start,
              "top_level_s_per_step": (top[-1] - top[0]) / max(1, len(top) - 1),
              "top_level_tiles": result.plan.levels[-1].tiles, "top_level_pairs": result.plan.levels[-1].lbfgs_pairs,
              "peak_gib": (torch.cuda.max_memory_allocated() if cuda else _rss_kib("VmHWM") * 1024) / 2**30,
              "peak_of": "torch.cuda.max_memory_allocated" if cuda else "process peak RSS",
              "final_losses": result.history[-1], "warnings": result.warnings}
    if images:
        os.makedirs(images, exist_ok=True)
        picture = nst_core.to_pil(result.image[0])
        width, height = picture.size
        picture.resize((1024, round(1024 * height / width)), Image.LANCZOS).save(
            os.path.join(images, f"stylized_{size}_small.png"))
        half = min(384, width // 2, height // 2)
        picture.crop((width // 2 - half, height // 2 - half, width // 2 + half, height // 2 + half)).save(
            os.path.join(images, f"stylized_{size}_crop.png"))
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nst_core.bench.gpu", description=__doc__.split("\n\n")[0])
    add_device(parser)
    parser.add_argument("--size", type=int, default=512, help="side of the timed run (default: 512)")
    parser.add_argument("--steps", type=int, default=500, help="steps of the timed run (default: 500)")
    parser.add_argument("--big", type=int, default=4096, help="long side of the default stylize (default: 4096)")
    parser.add_argument("--big-steps", type=int, default=None, help="its steps (default: stylize's)")
    parser.add_argument("--images", default=None,
                        help="folder for the big result, downscaled and a 1:1 crop (default: none)")
    add_json(parser, "the figures")
    return parser


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    import nst_core
    device = bench_device(args)
    vgg = nst_core.load_vgg(device=device)
    report: dict = {"device": str(device), "torch": torch.__version__,
                    "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    print(f"device {device} ({report['name']}), torch {torch.__version__}", flush=True)
    report["steps"] = []
    for graphs in ((True, False) if device.type == "cuda" else (False,)):
        run = steps_at(vgg, args.size, args.steps, graphs)
        report["steps"].append(run)
        print(f"{args.steps} steps at {args.size} px{' with CUDA graphs' if graphs else ''}: {run['seconds']:.2f} s "
              f"({run['ms_per_step']:.1f} ms/step), delivered loss {run['judged_loss']:.6g}", flush=True)
    big = big_stylize(vgg, args.big, args.big_steps, args.images)
    report["big"] = big
    print(f"stylize to {args.big} px with the defaults ({big['plan']}): {big['seconds']:.1f} s in all, "
          f"{big['before_first_step_s']:.1f} s before the first step, {big['top_level_s_per_step']:.3f} s per "
          f"step at the top level; peak {big['peak_gib']:.1f} GiB ({big['peak_of']})", flush=True)
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
