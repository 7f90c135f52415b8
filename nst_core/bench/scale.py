"""Benchmark of large sizes: peak memory and seconds per step per megapixel, tiled and untiled.

    python -m nst_core.bench.scale                          # 512 / 1024 / 2048 px, then the 2048 px budget run
    python -m nst_core.bench.scale --sizes 512 --steps 3    # one size
    python -m nst_core.bench.scale --big 4096 --big-steps 2 # also a 4096 px run (minutes per step on a CPU)
    python -m nst_core.bench.scale --style-loss gram        # another style statistic than the default

Every measurement runs in a fresh subprocess (peak RSS is the process's high-water mark, VmHWM, with
glibc returning big blocks at once, as nst_core.bench does): the default transfer (relu4_2; relu1_1 ..
relu5_1) of the bundled cat photo resized to S x S with The Starry Night, plain L-BFGS steps from the
content (no coarse-to-fine), `--steps` steps; s/step is the median of the steps after the first.
  - untiled: the whole image in one forward (max_memory_gb large, where it fits);
  - tiled: the same run in 2 x 2 tiles (tile_size = S/2), to compare per-pixel cost side by side;
  - budget: the plan under --budget-gb (tiles and L-BFGS pairs chosen by nst_core.plan.fit_memory), with
    the L-BFGS history a full run would hold counted: the pairs the few steps did not fill are held as
    ballast (image-sized float32 vectors allocated before the run), so the peak is that of step 100.

Measured figures: nst_core/bench/README.md ("Measurements moved from code comments").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from nst_core.cli_options import add_option
from nst_core.settings import DEFAULTS

from . import _exact_rss, _rss_kib, _trim
from .flags import add_device, add_json, add_sizes, add_threads, device as bench_device, write_json

CONTENT = "content_chelsea.png"
STYLE = "style_starry_night.jpg"
ROOMY_GB = 1000.0               # "untiled": a budget nothing exceeds (the machine's memory is the limit)


def probe(mode: str, size: int, steps: int, budget_gb: float, tile_size: int, threads: int,
          device: str = "cpu", style_loss: str = DEFAULTS["style_loss"]) -> dict:
    """One measurement in this (fresh) process: {'s_per_step', 'peak_mib', 'base_mib', 'plan', ...}.
    Memory: on the CPU the process's peak RSS; on CUDA torch.cuda.max_memory_allocated (the tensors)."""
    cuda = torch.device(device).type == "cuda"
    if not cuda:
        _exact_rss()
    torch.set_num_threads(threads)
    import nst_core
    from nst_core.image import resize, to_nchw
    started = time.perf_counter()
    vgg = nst_core.load_vgg(device=device)
    content = resize(to_nchw(nst_core.load_image(nst_core.example_path(CONTENT))), (size, size))
    style = nst_core.load_image(nst_core.example_path(STYLE))
    ct = nst_core.ContentTarget(vgg, content.permute(0, 2, 3, 1))
    st = nst_core.StyleTarget(vgg, style, style_loss=style_loss)
    st.targets_at((size, size))
    setup_s = time.perf_counter() - started
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 1024
    else:
        base = _rss_kib("VmRSS")
    ballast = []
    plan = nst_core.plan.fit_memory(nst_core.plan_run((size, size), steps), vgg, list(ct.layers) + list(st.layers),
                                    max_memory_gb=budget_gb, tile_size=tile_size)
    level = plan.levels[-1]
    if mode == "budget":
        missing = 2 * max(0, level.lbfgs_pairs - steps)           # pairs a full run holds, not yet filled
        ballast = [torch.ones(1, 3, size, size, device=device) for _ in range(missing)]

    def stamp(_progress):
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    stamps = [time.perf_counter()]                     # the run's start: one step is timed from here
    # look_size 0: the level's own objective only (a look term is one untiled cost shared by both modes)
    nst_core.optimize(vgg, ct, st, steps=steps, coarse_to_fine=False, max_memory_gb=budget_gb,
                      tile_size=tile_size, callback=stamp, look_size=0)
    peak = torch.cuda.max_memory_allocated() / 1024 if cuda else _rss_kib("VmHWM")
    diffs = [b - a for a, b in zip(stamps, stamps[1:])]
    diffs = diffs[1:] or diffs                          # the first step also builds the objective
    del ballast
    _trim()
    seconds = statistics.median(diffs)
    return {"mode": mode, "size": size, "steps": steps, "s_per_step": seconds,
            "s_per_step_per_mp": seconds / (size * size / 1e6), "peak_mib": peak / 1024, "base_mib": base / 1024,
            "setup_s": setup_s, "style_loss": st.style_loss, "tiles": level.tiles, "tile": level.tile,
            "stem": level.stem,
            "history": level.lbfgs_pairs,
            "budget_gb": budget_gb, "plan": plan.describe(), "total_s": time.perf_counter() - started,
            "device": torch.cuda.get_device_name(device) if cuda else "cpu"}


def measure(mode: str, size: int, steps: int, budget_gb: float, tile_size: int, threads: int,
            device: str = "cpu", style_loss: str = DEFAULTS["style_loss"]) -> dict | None:
    cmd = [sys.executable, "-m", "nst_core.bench.scale", "--_probe", mode, str(size), str(steps), str(budget_gb),
           str(tile_size), "--threads", str(threads), "--device", device, "--style-loss", style_loss]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=6 * 3600)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.CalledProcessError as exc:
        print(f"  {mode} {size} px failed: {(exc.stderr or '').strip().splitlines()[-1:]}", file=sys.stderr)
    except (subprocess.SubprocessError, ValueError, IndexError, OSError) as exc:
        print(f"  {mode} {size} px failed: {exc}", file=sys.stderr)
    return None


def _line(r: dict) -> str:
    tiles = f"{r['tiles']} tiles of {r['tile'][1]}x{r['tile'][0]}" if r["tile"] else "untiled"
    if r.get("stem"):
        tiles += f" to {r['stem']}"
    return (f"{r['size']:>5} px  {r['mode']:<8} {tiles:<31} pairs {r['history']:>3}  "
            f"{r['s_per_step']:7.2f} s/step  {r['s_per_step_per_mp']:6.2f} s/step/MP  "
            f"peak {'RSS' if r.get('device', 'cpu') == 'cpu' else 'GPU'} {r['peak_mib'] / 1024:5.2f} GiB "
            f"(after setup {r['base_mib'] / 1024:4.2f})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nst_core.bench.scale", description=__doc__.split("\n\n")[0])
    add_sizes(p, [512, 1024, 2048], "square sizes")
    p.add_argument("--steps", type=int, default=3, help="steps per measurement (default: 3)")
    p.add_argument("--budget-gb", type=float, default=2.25,
                   help="max_memory_gb of the budget run at the largest size (default: 2.25: with the ~0.7 GiB "
                        "the process holds before the run, peak RSS stays under 3 GiB)")
    p.add_argument("--no-untiled", action="store_true", help="skip the untiled runs")
    p.add_argument("--untiled-max", type=int, default=1024, help="largest size run untiled (default: 1024)")
    p.add_argument("--big", type=int, default=0, help="also run this size under --big-budget-gb, e.g. 4096 "
                                                       "(default: 0, none)")
    p.add_argument("--big-steps", type=int, default=1, help="steps of the --big run (default: 1)")
    p.add_argument("--big-budget-gb", type=float, default=12.0, help="max_memory_gb of the --big run (default: 12)")
    p.add_argument("--budget-steps", type=int, default=0, help="steps of the budget run (default: --steps)")
    add_option(p, "style_loss")
    add_threads(p)
    add_device(p)
    add_json(p, "the results")
    p.add_argument("--_probe", nargs=5, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> list[dict]:
    p = build_parser()
    args = p.parse_args(argv)
    args.threads = args.threads or torch.get_num_threads()
    args.device = str(bench_device(args))          # the probes run in subprocesses: the same device there
    if args._probe:
        mode, size, steps, budget, tile = args._probe
        print(json.dumps(probe(mode, int(size), int(steps), float(budget), int(tile), args.threads,
                               args.device, args.style_loss)))
        return []
    results = []

    def run(*spec):
        r = measure(*spec, args.threads, args.device, args.style_loss)
        if r is not None:
            print(_line(r), flush=True)
            results.append(r)
        return r

    for size in args.sizes:
        plain = None
        if not args.no_untiled and size <= args.untiled_max:
            plain = run("untiled", size, args.steps, ROOMY_GB, 0)
        tiled = run("tiled", size, args.steps, ROOMY_GB, size // 2)
        if plain and tiled:
            print(f"{size:>5} px  tiling overhead per pixel {tiled['s_per_step'] / plain['s_per_step']:.2f}x "
                  f"(2x2 tiles), RSS {tiled['peak_mib'] / plain['peak_mib']:.2f}x", flush=True)
    largest = max(args.sizes)
    run("budget", largest, args.budget_steps or args.steps, args.budget_gb, 0)
    if args.big:
        run("budget", args.big, args.big_steps, args.big_budget_gb, 0)
    write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
