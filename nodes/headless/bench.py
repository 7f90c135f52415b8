"""How much fan-out buys on this machine: one sweep run three ways by nst-run, timed and compared.

    python -m comfyui_nst.nodes.headless.bench WORKFLOW --sweep NODE.INPUT=V1,V2 [--sweep ...] [--set ...]

Each way is its own `nst-run` process (start-up and model loading included, as a user waits for them):
  1. serial, 1 torch thread      (--threads 1)            the reference
  2. serial, N torch threads     (--threads N, N = --workers)
  3. --workers N local processes (1 torch thread each)
and the images they wrote are compared byte for byte with the reference's: the workers must match it
(same code, same thread count per run); the N-thread serial run may differ in the last bits (a sum over
N threads adds in another order). Reports, the manifest and other text are not compared (they hold times).
It only runs nst-run on the workflow it is given: it knows nothing of what the workflow computes.
Exit code 0 when every run succeeded and the workers' images equal the reference's, else 1 (2: bad usage).
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

__all__ = ["Mode", "ModeTiming", "BenchReport", "modes", "run_bench", "main"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
RUNNER = [sys.executable, "-m", "comfyui_nst.nodes.headless.cli"]      # nst-run, with this Python


@dataclass(frozen=True)
class Mode:
    name: str          # "serial-1-thread", "serial-N-threads", "workers-N"
    label: str         # what the table shows
    options: tuple     # nst-run options that make this mode


@dataclass
class ModeTiming:
    name: str
    label: str
    seconds: float
    exit_code: int
    images: int                          # image files written
    identical: Optional[bool]            # images byte-identical to the reference's (None: the reference)
    speedup: float = 0.0                 # reference seconds / these seconds
    differing: list = field(default_factory=list)


@dataclass
class BenchReport:
    workflow: str
    sweeps: list
    runs: int                            # runs of the sweep (images per mode may be more)
    workers: int
    modes: list                          # [ModeTiming], the reference first
    workers_over_threads: float          # speed-up of --workers N over the N-thread serial run

    @property
    def ok(self) -> bool:
        workers = self.modes[-1]
        return all(m.exit_code == 0 for m in self.modes) and bool(workers.identical) and workers.images > 0

    def table(self) -> str:
        lines = [f"bench: {self.runs} run(s) of {self.workflow} ({' '.join(self.sweeps)}), each way a fresh nst-run",
                 f"{'mode':<28}{'seconds':>9}{'speed-up':>10}  images identical to serial 1-thread"]
        for m in self.modes:
            same = "(reference)" if m.identical is None else ("yes" if m.identical else
                                                             f"NO ({len(m.differing)} differ)")
            failed = "" if m.exit_code == 0 else f"  nst-run exit {m.exit_code}"
            lines.append(f"{m.label:<28}{m.seconds:>9.1f}{m.speedup:>9.2f}x  {same} [{m.images} images]{failed}")
        lines.append(f"--workers {self.workers} over {self.workers}-thread serial: {self.workers_over_threads:.2f}x")
        return "\n".join(lines)


def modes(workers: int) -> list:
    """The three ways to run the sweep, the reference first."""
    return [Mode("serial-1-thread", "serial, 1 thread", ("--threads", "1")),
            Mode(f"serial-{workers}-threads", f"serial, {workers} threads", ("--threads", str(workers))),
            Mode(f"workers-{workers}", f"--workers {workers} (1 thread each)",
                 ("--workers", str(workers), "--threads", "1"))]


def _images(folder: pathlib.Path) -> dict:
    """{path relative to the folder: path} of the image files under it."""
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def _compare(reference: dict, images: dict) -> list:
    """The relative paths that differ (missing on either side, or other bytes)."""
    names = sorted(set(reference) | set(images))
    return [n for n in names if n not in reference or n not in images
            or not filecmp.cmp(reference[n], images[n], shallow=False)]


def run_bench(workflow: str, sweeps: list, overrides: list = (), workers: int = 2, input_dir: str = "input",
              work_dir: Optional[str] = None, runner: Optional[list] = None, log=None) -> BenchReport:
    """Run the sweep each way in `work_dir` (a new temporary folder, removed afterwards, when None) and
    compare. `runner`: the nst-run command (default: this Python's `-m ...headless.cli`)."""
    if not sweeps:
        raise ValueError("give the sweep to time: --sweep NODE.INPUT=V1,V2,...")
    runner = list(runner or RUNNER)
    temporary = work_dir is None
    root = pathlib.Path(tempfile.mkdtemp(prefix="nst-bench-") if temporary else work_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        common = [os.fspath(workflow), "--input-dir", input_dir, "-q"]
        for sweep in sweeps:
            common += ["--sweep", sweep]
        for override in overrides:
            common += ["--set", override]
        timings, reference, runs = [], None, 0
        for mode in modes(workers):
            out = root / mode.name
            if out.exists():
                raise ValueError(f"{out} exists: give an empty --keep folder")
            if log:
                log(f"bench: {mode.label} ...")
            started = time.perf_counter()
            done = subprocess.run(runner + common + ["--output-dir", os.fspath(out), *mode.options],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            seconds = time.perf_counter() - started
            if done.returncode != 0 and log:
                log(f"bench: {mode.label} failed (exit {done.returncode}):\n{done.stderr.strip()}")
            images = _images(out) if out.exists() else {}
            manifest = out / "manifest.json"
            if manifest.exists() and not runs:
                runs = len(json.loads(manifest.read_text()).get("runs", []))
            differing = [] if reference is None else _compare(reference, images)
            timings.append(ModeTiming(mode.name, mode.label, seconds, done.returncode, len(images),
                                      None if reference is None else not differing, differing=differing))
            if reference is None:
                reference = images
        for timing in timings:
            timing.speedup = timings[0].seconds / timing.seconds if timing.seconds else 0.0
        return BenchReport(os.fspath(workflow), list(sweeps), runs, workers, timings,
                           timings[1].seconds / timings[2].seconds if timings[2].seconds else 0.0)
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m comfyui_nst.nodes.headless.bench",
        description="Time one nst-run sweep three ways (serial 1 thread, serial N threads, --workers N) and "
                    "check that the workers' images are byte-identical to the serial run's.")
    p.add_argument("workflow", help="the workflow nst-run runs")
    p.add_argument("--sweep", dest="sweeps", action="append", default=[], metavar="NODE.INPUT=V1,V2,...",
                   help="as nst-run --sweep (repeatable); required")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="as nst-run --set (repeatable)")
    p.add_argument("--workers", type=int, default=2, help="worker processes, and the serial run's threads (default 2)")
    p.add_argument("--input-dir", default="input", help="as nst-run --input-dir")
    p.add_argument("--keep", metavar="DIR", help="keep the outputs in DIR/<mode>/ (default: a temporary folder, "
                                                 "removed)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    return p


def main(argv: Optional[list] = None) -> int:
    args = _parser().parse_args(argv)
    if args.workers < 2 or not args.sweeps:
        sys.stderr.write("bench: give --sweep NODE.INPUT=V1,V2,... and --workers 2 or more\n")
        return 2
    try:
        report = run_bench(args.workflow, args.sweeps, args.overrides, args.workers, args.input_dir, args.keep,
                           log=lambda text: sys.stderr.write(text + "\n"))
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps({**asdict(report), "ok": report.ok}, indent=2) + "\n")
    else:
        sys.stdout.write(report.table() + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
