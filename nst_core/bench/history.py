"""L-BFGS history size, side by side: the default run with 10, 20 and 100 curvature pairs.

    python -m nst_core.bench.history --sizes 256 512 --pairs 10 20 100 --json history.json

The bundled cat and The Starry Night with the defaults at each size (the photo resized to that long side,
upscaled where smaller: it is 451 px), once per pair count, in one process
(the runs of one size interleave nothing else). Prints, per size and pair count: the wall time, the final
total loss (equal steps), the loss at a quarter, half and three quarters of the run's steps, and the loss
each run had reached when the fastest of its size finished (equal time). The plan's memory fitting still
gives a level fewer pairs when its budget demands it; this sets the most a level may hold.
"""

from __future__ import annotations

import argparse
import time

from .flags import add_device, add_json, add_sizes, add_threads, device, set_threads, write_json


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nst_core.bench.history", description=__doc__.split("\n")[0])
    add_sizes(parser, [256, 512], help="output sizes in px")
    parser.add_argument("--pairs", nargs="+", type=int, default=[10, 20, 100],
                        help="L-BFGS pair counts to compare (default: 10 20 100)")
    parser.add_argument("--steps", type=int, help="steps in all (default: the engine's)")
    add_device(parser)
    add_threads(parser)
    add_json(parser)
    return parser


def run_one(vgg, content, style, size: int, pairs: int, steps: int | None) -> dict:
    """One default run at `size` with at most `pairs` L-BFGS pairs per level: its loss and time per step."""
    import nst_core
    from nst_core import plan as plan_module
    from nst_core.image import fit_image
    records = []
    start = time.perf_counter()

    def heard(progress):
        records.append((progress.step, time.perf_counter() - start, progress.losses.get("total")))

    keep = plan_module.LBFGS_PAIRS
    plan_module.LBFGS_PAIRS = pairs          # the most pairs fit_memory gives a level
    try:
        options = {} if steps is None else {"steps": steps}
        photo = fit_image(content, size, upscale=True)
        result = nst_core.stylize(photo, style, vgg=vgg, max_size=size, callback=heard, **options)
    finally:
        plan_module.LBFGS_PAIRS = keep
    return {"size": size, "pairs": pairs, "wall": time.perf_counter() - start, "plan": result.plan.describe(),
            "output": list(result.image.shape[1:3]),
            "levels_pairs": [level.lbfgs_pairs for level in result.plan.levels], "steps": records}


def _loss_at_time(run: dict, seconds: float) -> float:
    reached = [loss for _, t, loss in run["steps"] if t <= seconds]
    return reached[-1] if reached else float("nan")


def _loss_at_step(run: dict, fraction: float) -> float:
    steps = run["steps"]
    return steps[max(0, int(round(fraction * len(steps))) - 1)][2]


def table(runs: list[dict]) -> str:
    lines = ["| size | pairs | wall s | loss at 1/4 | 1/2 | 3/4 | final | at the fastest's end |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for size in dict.fromkeys(run["size"] for run in runs):
        same = [run for run in runs if run["size"] == size]
        fastest = min(run["wall"] for run in same)
        for run in same:
            quarters = " | ".join(f"{_loss_at_step(run, f):.4g}" for f in (0.25, 0.5, 0.75, 1.0))
            lines.append(f"| {size} | {run['pairs']} | {run['wall']:.1f} | {quarters} | "
                         f"{_loss_at_time(run, fastest):.4g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    set_threads(args)
    import nst_core
    vgg = nst_core.load_vgg(device=device(args))
    content = nst_core.load_image(nst_core.example_path("content_chelsea.png"))
    style = nst_core.load_image(nst_core.example_path("style_starry_night.jpg"))
    runs = []
    for size in args.sizes:
        for pairs in args.pairs:
            runs.append(run_one(vgg, content, style, size, pairs, args.steps))
            print(f"{size} px, {pairs} pairs: {runs[-1]['wall']:.1f} s, final loss {runs[-1]['steps'][-1][2]:.5g}",
                  flush=True)
    print(table(runs))
    write_json(args.json, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
