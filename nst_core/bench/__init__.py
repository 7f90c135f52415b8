"""Benchmark: the engine against a plain tutorial-style Gatys loop, side by side.

    python -m nst_core.bench                       # 256 and 512 px, per-step speed, memory, time to quality
    python -m nst_core.bench --quick               # seconds-long smoke run (CI)
    python -m nst_core.bench --sizes 256 --steps 8 --no-ttq --json out.json

Both sides use the same network (the engine's normalized VGG-19), layers (relu4_2; relu1_1..relu5_1),
weights (content 1, style 1e6, w_l = 1/5), loss definitions, init (the content) and L-BFGS settings, on
the bundled examples (content_chelsea.png resized to size x size, style_starry_night.jpg at the same
pixel count). The baseline is nst_core.reference (nn.Sequential + loss modules + torch.optim.LBFGS).

Printed: seconds per optimizer step (median over the steps of several runs after a warm-up) and the
engine/reference ratio; the step's floating-point operations counted from the conv shapes (forward +
input-gradient backward = 2x the forward convs, no weight gradients, plus the Gram matrices); the
machine's measured convolution throughput (a big 3x3 conv) and the fraction of it a step reaches; peak
memory of each side (CPU: peak RSS above the state after setup, measured in a fresh subprocess each;
CUDA: torch.cuda.max_memory_allocated); and time to quality: the reference runs --ttq-ref-steps steps
at --ttq-size, then the engine's coarse-to-fine schedule (stylize's default for as many steps, or
--ttq-schedule) runs until its loss at the final size (the same objective) is at or below the loss of
the image the reference delivers, and the stricter target, the last loss the reference recorded on its
unclamped pixels; the speed-up is the ratio of the two times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from nst_core.cli_options import add_option

from .flags import add_device, add_json, add_sizes, add_threads, device as bench_device, write_json

CONTENT = "content_chelsea.png"
STYLE = "style_starry_night.jpg"
CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_WEIGHT, STYLE_WEIGHT = 1.0, 1e6
# the reference loop computes the paper's raw terms, so the engine runs (and is judged) with the same
WEIGHTING = "paper"


# ----------------------------------------------------------------------------------------------- setup
def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def setup(vgg, size: int):
    """Content [1,3,S,S], style resized as StyleTarget does, and the engine's targets + judge objective."""
    import nst_core
    from nst_core.image import resize, to_nchw
    content = resize(to_nchw(nst_core.load_image(nst_core.example_path(CONTENT))), (size, size))
    style_full = to_nchw(nst_core.load_image(nst_core.example_path(STYLE)))
    ct = nst_core.ContentTarget(vgg, content.permute(0, 2, 3, 1), CONTENT_LAYERS, CONTENT_WEIGHT)
    # the Gram statistic: the reference loop's (and the paper's)
    st = nst_core.StyleTarget(vgg, style_full.permute(0, 2, 3, 1), STYLE_LAYERS, None, STYLE_WEIGHT,
                              style_loss="gram")
    style = resize(style_full, st.style_size(style_full, (size, size)))
    return content, style, ct, st


def judge(vgg, ct, st, image_nchw, size) -> float:
    """The engine's objective at `size` on an image: the one yardstick for both sides."""
    import nst_core
    objective = nst_core.Objective(vgg, ct, st, 0.0, (size, size), weighting=WEIGHTING)
    with torch.inference_mode(False), torch.no_grad():
        return float(objective(image_nchw.to(vgg.device).clamp(0, 1))[0])


# ----------------------------------------------------------------------------------------------- flops
def conv_flops(vgg, size, layers) -> dict:
    """Analytic FLOPs of one step: forward convs, input-gradient convs, Grams (forward + backward)."""
    fwd, gram = 0, 0
    for layer in vgg.table.span(layers):
        h, w, channels = layer.shape((size, size))
        fwd += 2 * layer.macs * h * w
        if layer.name in STYLE_LAYERS:
            gram += 2 * channels * channels * h * w * 2      # G = F Fᵀ and dL/dF = 2 dG F
    # the input-gradient pass of a conv costs what its forward costs (a transposed conv, same MACs)
    return {"forward": fwd, "backward": fwd, "gram": gram, "step": 2 * fwd + gram}


def conv_throughput(device, repeats: int = 12, quick: bool = False) -> float:
    """Measured FLOP/s of a big 3x3 conv (VGG conv3_2 at 256 px: 256->256 channels, 64x64, channels-last,
    forward): the best of `repeats` runs after two warm-ups, i.e. what the machine does when nothing else
    runs. Both layouts are tried and the faster counts."""
    side = 32 if quick else 64
    flops = 2 * 256 * 256 * 9 * side * side
    weight = torch.randn(256, 256, 3, 3, device=device) * 0.02
    bias = torch.zeros(256, device=device)
    best = float("inf")
    with torch.no_grad():
        for layout in (torch.channels_last, torch.contiguous_format):
            x = torch.randn(1, 256, side, side, device=device).contiguous(memory_format=layout)
            w = weight.contiguous(memory_format=layout)
            for i in range(repeats + 2):
                _sync(device)
                t = time.perf_counter()
                F.conv2d(x, w, bias, padding=1)
                _sync(device)
                if i >= 2:
                    best = min(best, time.perf_counter() - t)
    return flops / best


# -------------------------------------------------------------------------------------- per-step timing
def time_engine(vgg, ct, st, steps: int, warmup: int) -> list[float]:
    """Per-step seconds of nst_core.optimize (steps after the warm-up), from callback timestamps."""
    import nst_core
    stamps = []
    device = vgg.device

    def callback(p):
        _sync(device)
        stamps.append(time.perf_counter())

    _sync(device)
    start = time.perf_counter()
    nst_core.optimize(vgg, ct, st, steps=warmup + steps, callback=callback, weighting=WEIGHTING)
    stamps.insert(0, start)
    diffs = [b - a for a, b in zip(stamps, stamps[1:])]
    return diffs[warmup:]


def time_reference(vgg, content, style, steps: int, warmup: int) -> list[float]:
    from .reference import build_model, run_style_transfer
    model, cl, sl = build_model(vgg, content, style, CONTENT_LAYERS, STYLE_LAYERS)
    # closure i is evaluated at the start of step i+1: the time between evaluations is one step, so
    # `steps` timings need steps + 1 evaluations (the first counts as warm-up)
    _, history = run_style_transfer(model, cl, sl, content.to(vgg.device), max(warmup, 1) + steps,
                                    CONTENT_WEIGHT, STYLE_WEIGHT)
    stamps = [h["time"] for h in history]
    diffs = [b - a for a, b in zip(stamps, stamps[1:])]
    return diffs[-steps:]


# ---------------------------------------------------------------------------------------------- memory
def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _exact_rss() -> None:
    """Make RSS track live memory (nst_core.memory.tune_process_allocator)."""
    from nst_core.memory import tune_process_allocator
    tune_process_allocator()


def _trim() -> None:
    from nst_core.memory import release_freed_memory
    release_freed_memory()


def memory_probe(impl: str, size: int, steps: int, device: str) -> dict:
    """Peak memory of `steps` steps of one side, in this process (call it in a fresh one on CPU)."""
    import nst_core
    if torch.device(device).type == "cpu":
        _exact_rss()
    vgg = nst_core.load_vgg(device=device)
    content, style, ct, st = setup(vgg, size)
    if impl == "reference":
        from .reference import build_model, run_style_transfer
        model, cl, sl = build_model(vgg, content, style, CONTENT_LAYERS, STYLE_LAYERS)
        work = lambda: run_style_transfer(model, cl, sl, content.to(vgg.device), steps,  # noqa: E731
                                          CONTENT_WEIGHT, STYLE_WEIGHT)
    else:
        nst_core.Objective(vgg, ct, st, 0.0, (size, size), weighting=WEIGHTING)   # targets cached, like the reference's
        work = lambda: nst_core.optimize(vgg, ct, st, steps=steps, weighting=WEIGHTING)  # noqa: E731
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        work()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return {"base_mib": base / 2**20, "peak_mib": peak / 2**20, "delta_mib": (peak - base) / 2**20}
    import gc
    gc.collect()
    _trim()
    with open("/proc/self/clear_refs", "w") as handle:   # reset the RSS high-water mark
        handle.write("5")
    base = _rss_kib("VmRSS")
    work()
    peak = _rss_kib("VmHWM")
    return {"base_mib": base / 1024, "peak_mib": peak / 1024, "delta_mib": (peak - base) / 1024}


def measure_memory(impl: str, size: int, steps: int, device: str, threads: int) -> dict | None:
    if torch.device(device).type == "cuda":
        return memory_probe(impl, size, steps, device)
    cmd = [sys.executable, "-m", "nst_core.bench", "--_memprobe", impl, str(size), str(steps), device,
           "--threads", str(threads)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError) as exc:
        print(f"  memory probe failed: {exc}", file=sys.stderr)
        return None


# -------------------------------------------------------------------------------------- time to quality
def parse_schedule(text: str | None, size: int, steps: int):
    """"128:200,256:100,512:60" -> that RunPlan; None -> stylize's plan for a run of `steps` at `size`
    (nst_core.plan.plan_run with coarse-to-fine)."""
    from nst_core.plan import make_plan, plan_run
    if not text:
        return plan_run(size, steps, coarse_to_fine=True)
    sizes, counts = [], []
    for part in text.split(","):
        side, n = part.split(":")
        sizes.append((int(side), int(side)))
        counts.append(int(n))
    if sizes[-1] != (size, size):
        raise SystemExit(f"the schedule must end at the time-to-quality size {size}, got {sizes[-1][0]}")
    return make_plan(sizes, counts)


def time_to_quality(vgg, size: int, ref_steps: int, schedule: str | None, ref_history: str | None,
                    ref_step_time: float | None, save_ref: str | None = None,
                    coarse_precision: str = "auto") -> dict:
    """Reference for `ref_steps` steps at `size`, then the engine's pyramid until it reaches that loss.

    Two targets, both in the engine's objective at `size`. "delivered": the loss of the image the
    reference returns (its pixels clamped to 0..1), reached when the engine's own returned image (clamped)
    is judged at or below it; the judging forward passes are not counted in the engine's time.
    "running": the last loss the reference recorded while optimizing its unclamped pixels, reached when
    the engine's running loss (also on unclamped pixels) is at or below it: like for like, and the
    stricter target. The engine runs until it has reached both (or its schedule ends).
    `coarse_precision`: the engine's option (nst_core.precision) for the levels below `size`.
    """
    import nst_core
    from nst_core.image import to_nchw
    from .reference import reference_stylize
    content, style, ct, st = setup(vgg, size)
    out: dict = {"size": size, "ref_steps": ref_steps}
    if ref_history:
        with open(ref_history) as handle:
            recorded = json.load(handle)
        if recorded["size"] != size or recorded["steps"] < ref_steps:
            raise SystemExit(f"{ref_history} holds {recorded['steps']} steps at {recorded['size']} px")
        judged = recorded.get("judged", {})
        if str(ref_steps) in judged:
            target = judged[str(ref_steps)]
        elif recorded["steps"] == ref_steps:
            target = recorded["judged_final"]
        else:   # only the returned image was judged: a shorter run's image is not in the file
            raise SystemExit(f"{ref_history} holds the judged loss after {recorded['steps']} steps only; "
                             f"use --ttq-ref-steps {recorded['steps']}")
        last = recorded["history"][ref_steps - 1]
        if "time" in last:
            seconds, how = last["time"], f"measured in the run saved in {os.path.basename(ref_history)}"
        elif ref_step_time is not None:
            seconds, how = ref_steps * ref_step_time, f"{ref_steps} steps x the reference's s/step at {size} px"
        else:
            raise SystemExit("--ttq-ref-history without step times needs the per-step timing at that size "
                             "(add it to --sizes)")
        out.update(ref_source=ref_history, ref_loss=target, ref_seconds=seconds, ref_seconds_how=how,
                   ref_last_recorded=last["total"])
    else:
        _sync(vgg.device)
        start = time.perf_counter()
        image, history = reference_stylize(vgg, content, style, steps=ref_steps)
        _sync(vgg.device)
        out.update(ref_seconds=time.perf_counter() - start, ref_seconds_how="measured",
                   ref_loss=judge(vgg, ct, st, image, size), ref_last_recorded=history[-1]["total"])
        if save_ref:
            with open(save_ref, "w") as handle:
                json.dump({"size": size, "steps": ref_steps, "judged_final": out["ref_loss"],
                           "history": history}, handle)
    targets = {"delivered": out["ref_loss"], "running": out["ref_last_recorded"]}
    plan = parse_schedule(schedule, size, ref_steps)
    out["schedule"] = [[level.size[0], level.steps] for level in plan.levels]
    out["coarse_precision"] = coarse_precision
    final_level = len(plan.levels) - 1
    reached: dict = {}
    judging = {"seconds": 0.0}       # time spent judging, not the engine's

    def callback(p):
        if p.level.index != final_level:
            return
        loss = p.losses["total"]
        _sync(vgg.device)
        now = time.perf_counter()
        seconds = now - start - judging["seconds"]
        if "running" not in reached and loss <= targets["running"]:
            reached["running"] = {"seconds": seconds, "step": p.level_step, "loss": loss}
        if "delivered" not in reached and loss <= targets["delivered"]:
            delivered = judge(vgg, ct, st, to_nchw(p.image), size)
            judging["seconds"] += time.perf_counter() - now
            if delivered <= targets["delivered"]:
                reached["delivered"] = {"seconds": seconds, "step": p.level_step, "loss": delivered}
        if len(reached) == len(targets):
            p.stop()

    _sync(vgg.device)
    start = time.perf_counter()
    result = nst_core.optimize(vgg, ct, st, plan=plan, callback=callback, weighting=WEIGHTING,
                               coarse_precision=coarse_precision)
    _sync(vgg.device)
    out["precisions"] = [level.precision for level in result.plan.levels]
    elapsed = time.perf_counter() - start - judging["seconds"]
    final = [h["total"] for h in result.history if h["level"] == final_level]
    out["engine_final_level_losses"] = final
    out["targets"] = {}
    for name, value in targets.items():
        hit = reached.get(name)
        out["targets"][name] = {"loss": value, "reached": hit is not None,
                                "engine_loss": hit["loss"] if hit else None,
                                "engine_seconds": hit["seconds"] if hit else elapsed,
                                "engine_final_steps": hit["step"] if hit else len(final),
                                "speedup": out["ref_seconds"] / hit["seconds"] if hit else None}
    delivered = out["targets"]["delivered"]
    out.update(engine_seconds=delivered["engine_seconds"], engine_reached=delivered["reached"],
               engine_final_steps=delivered["engine_final_steps"], speedup=delivered["speedup"],
               engine_judged_loss=judge(vgg, ct, st, to_nchw(result.image), size),
               engine_steps_run=len(result.history), engine_seconds_total=elapsed)
    return out


# ------------------------------------------------------------------------------------------------ main
def _sooner(speedup: float) -> str:
    """'3.2x sooner' or, when the engine took longer, '1.1x slower' (never '0.9x sooner')."""
    return f"{speedup:.1f}x sooner" if speedup >= 1 else f"{1 / speedup:.1f}x slower"


def _median(values):
    return statistics.median(values) if values else float("nan")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nst_core.bench", description=__doc__.split("\n\n")[0])
    add_sizes(parser, [256, 512], "square sizes")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run (default: 6)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of each run (default: 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side and size, interleaved (default: 3)")
    add_device(parser)
    add_threads(parser)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and steps: a smoke run")
    add_json(parser)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument("--memory-steps", type=int, default=3, help="steps per memory probe (default: 3)")
    parser.add_argument("--no-ttq", action="store_true", help="skip time to quality")
    parser.add_argument("--ttq-size", type=int, default=512, help="size of time to quality (default: 512)")
    parser.add_argument("--ttq-ref-steps", type=int, default=500,
                        help="the reference's steps in time to quality (default: 500)")
    parser.add_argument("--ttq-schedule", default=None,
                        help='the engine\'s levels, e.g. "128:200,256:100,512:60" (default: stylize\'s plan)')
    add_option(parser, "coarse_precision")
    parser.add_argument("--ttq-ref-history", default=None,
                        help="JSON of an earlier reference run (written by --save-ref) instead of running it "
                             "(default: none, run it)")
    parser.add_argument("--save-ref", default=None, metavar="OUT",
                        help="write the reference's time-to-quality run (losses per step) to this JSON "
                             "(default: none)")
    parser.add_argument("--_memprobe", nargs=4, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    if args._memprobe:
        impl, size, steps, device = args._memprobe
        print(json.dumps(memory_probe(impl, int(size), int(steps), device)))
        return {}

    import nst_core
    if args.quick:
        args.sizes, args.steps, args.warmup, args.repeats = [64], 2, 1, 1
        args.ttq_ref_history = None
        args.no_memory = True
        args.ttq_size, args.ttq_ref_steps = 64, 8
        args.ttq_schedule = args.ttq_schedule or "32:8,64:8"
    device = bench_device(args)
    vgg = nst_core.load_vgg(device=device)
    layers = list(CONTENT_LAYERS + STYLE_LAYERS)
    report: dict = {
        "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()), "machine": platform.processor() or platform.machine(),
        "network": f"{vgg.arch} filters_normalized={vgg.filters_normalized} ({os.path.basename(vgg.source)})",
        "layers": {"content": CONTENT_LAYERS, "style": STYLE_LAYERS}, "sizes": {},
    }
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    print(f"device {device} ({report.get('gpu', report['machine'])}), torch {torch.__version__}, "
          f"{report['threads']} threads, mkldnn {report['mkldnn']}")
    print(f"network {report['network']}; content {CONTENT_LAYERS}, style {STYLE_LAYERS}")
    # measured before and after the timed steps (the best counts): a busy moment cannot pull it down
    peak = conv_throughput(device, quick=args.quick)
    sizes_rows = {}
    for size in args.sizes:
        content, style, ct, st = setup(vgg, size)
        engine, reference = [], []
        for _ in range(args.repeats):
            engine += time_engine(vgg, ct, st, args.steps, args.warmup)
            reference += time_reference(vgg, content, style, args.steps, args.warmup)
        sizes_rows[size] = (engine, reference)
    peak = max(peak, conv_throughput(device, quick=args.quick))
    report["conv_gflops_per_s"] = peak / 1e9
    print(f"measured conv throughput (best 3x3 conv 256->256 ch, forward): {peak / 1e9:.1f} GFLOP/s")
    print()
    print(f"{'size':>6} {'engine s/step':>14} {'reference s/step':>17} {'ratio':>6} {'GFLOP/step':>11} "
          f"{'eng GFLOP/s':>12} {'of conv peak':>13}  (medians; best-step fraction)")
    for size, (engine, reference) in sizes_rows.items():
        e, r = _median(engine), _median(reference)
        flops = conv_flops(vgg, size, layers)
        row = {"engine_s_per_step": e, "reference_s_per_step": r, "ratio_engine_over_reference": e / r,
               "engine_min": min(engine), "reference_min": min(reference), "samples": len(engine),
               "gflop_per_step": flops["step"] / 1e9, "gflop_forward": flops["forward"] / 1e9,
               "gflop_gram": flops["gram"] / 1e9, "engine_gflops_per_s": flops["step"] / e / 1e9,
               "fraction_of_conv_peak": flops["step"] / e / peak,
               "fraction_of_conv_peak_best_step": flops["step"] / min(engine) / peak}
        report["sizes"][size] = row
        print(f"{size:>6} {e:>14.3f} {r:>17.3f} {e / r:>6.2f} {row['gflop_per_step']:>11.1f} "
              f"{row['engine_gflops_per_s']:>12.1f} {row['fraction_of_conv_peak']:>12.0%}"
              f"  ({row['fraction_of_conv_peak_best_step']:.0%})")
    if not args.no_memory:
        print()
        print(f"{'size':>6} {'engine peak MiB':>16} {'reference peak MiB':>19}   (above the state after setup)")
        for size in args.sizes:
            mem_e = measure_memory("engine", size, args.memory_steps, str(device), threads)
            mem_r = measure_memory("reference", size, args.memory_steps, str(device), threads)
            report["sizes"][size]["memory"] = {"engine": mem_e, "reference": mem_r}
            fmt = lambda m: f"{m['delta_mib']:.0f} (total {m['peak_mib']:.0f})" if m else "n/a"  # noqa: E731
            print(f"{size:>6} {fmt(mem_e):>16} {fmt(mem_r):>19}")
    if not args.no_ttq:
        print()
        step_time = report["sizes"].get(args.ttq_size, {}).get("reference_s_per_step")
        ttq = time_to_quality(vgg, args.ttq_size, args.ttq_ref_steps, args.ttq_schedule,
                              args.ttq_ref_history, step_time, args.save_ref, args.coarse_precision)
        report["time_to_quality"] = ttq
        sched = " -> ".join(f"{s}px x{n}" + (" bf16" if p == "bfloat16" else "")
                            for (s, n), p in zip(ttq["schedule"], ttq["precisions"]))
        print(f"time to quality at {ttq['size']} px: reference {ttq['ref_steps']} L-BFGS steps -> loss "
              f"{ttq['ref_loss']:.6g} in {ttq['ref_seconds']:.1f} s ({ttq['ref_seconds_how']})")
        print(f"  (the loss of the image it returns, clamped; its last running loss, unclamped pixels: "
              f"{ttq['ref_last_recorded']:.6g})")
        for name, hit in ttq["targets"].items():
            what = f"{name} loss {hit['loss']:.6g}"
            if hit["reached"]:
                print(f"  engine pyramid {sched}: {what} reached after {hit['engine_final_steps']} steps at "
                      f"{ttq['size']} px ({hit['engine_loss']:.6g}), {hit['engine_seconds']:.1f} s -> "
                      f"{_sooner(hit['speedup'])}")
            else:
                print(f"  engine pyramid {sched}: {what} NOT reached in {hit['engine_seconds']:.1f} s")
        print(f"  engine result judged: {ttq['engine_judged_loss']:.6g} after {ttq['engine_steps_run']} steps")
    write_json(args.json, report)
    return report
