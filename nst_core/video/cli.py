"""`python -m nst_core.video`: stylize a clip's frames from the command line, its chunks fanned out over
local worker processes.

    python -m nst_core.video FRAMES_DIR --style style.jpg --output out/ --steps 100 --size 256 --workers 2

FRAMES_DIR holds the frames as images, in name order (or give the files). Writes out/frame_00000.png, ...
(the folder must hold no frame_*.png yet: nothing is overwritten; each file is written whole, then renamed).
--workers N > 1 cuts the clip into chunks (--chunk-frames, by default N chunks), runs them in N processes
and joins them, each aligned to the one before where they meet (nst_core.video.chunks). Exit codes as nst-stylize's: 0 written,
1 the run failed, 2 a usage or input problem found before any work, 130 interrupted (nothing written).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from ..api import fit
from ..cli import FLAGS, add_option, save_image
from ..errors import NSTError
from ..image import load_image
from ..loader import load_vgg
from ..settings import OPTIONS, OptionError
from .chunks import border_pairs
from .consistency import warped_differences
from .flow import available
from .frames import as_frames, stylize_frames
from .options import CHUNK_FRAMES, TEMPORAL_WEIGHT
from .parallel import chunk_processes

PROG = "python -m nst_core.video"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FRAME_NAME = "frame_{:05d}.png"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
LOSS_OPTIONS = ("content_weight", "style_weight", "weighting", "tv_weight", "preserve_color")
CLI_SIZE = 256            # as nst-stylize: the engine's 512 px takes minutes per frame on a CPU


class Usage(Exception):
    """A problem with the command line or its files, found before any work (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Stylize the frames of a clip with temporal consistency "
                                "(Ruder et al. 2016), optionally in chunks over worker processes.")
    p.add_argument("frames", nargs="+", help="a folder of frames (in name order) or the frame files, in order")
    p.add_argument("--style", required=True, help="the style image")
    p.add_argument("--output", "-o", required=True, help="the folder for frame_00000.png, ...")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps per frame (default 100)")
    p.add_argument("--size", type=int, default=CLI_SIZE, help=f"long side of the frames in px (default {CLI_SIZE})")
    p.add_argument("--temporal-weight", type=float, default=TEMPORAL_WEIGHT.default, help=TEMPORAL_WEIGHT.help)
    p.add_argument("--seed", type=int, default=OPTIONS["seed"].default, help=OPTIONS["seed"].help)
    p.add_argument("--workers", type=int, default=1, help="worker processes for the chunks (default 1: here)")
    p.add_argument("--threads", type=int, help="torch threads per worker (default: the cores shared out)")
    p.add_argument("--chunk-frames", type=int, help=CHUNK_FRAMES.help + " (default with --workers N: N chunks)")
    loss = p.add_argument_group("the loss (as nst-stylize's)")
    for name in LOSS_OPTIONS:
        add_option(loss, name)
    return p


def frame_files(items: list[str]) -> list[Path]:
    """The frame files: a folder's images in name order, or the files as given."""
    if len(items) == 1 and Path(items[0]).is_dir():
        files = sorted(p for p in Path(items[0]).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise Usage(f"frames: no images in {items[0]}")
        return files
    missing = [item for item in items if not Path(item).is_file()]
    if missing:
        raise Usage(f"frames: not a file: {missing[0]}")
    return [Path(item) for item in items]


def chunks_for_workers(count: int, workers: int) -> int:
    """chunk_frames that cuts `count` frames into `workers` chunks (0: one chunk)."""
    if workers <= 1 or count < 3:
        return 0
    return math.ceil((count - 1) / workers) + 1


def output_folder(text: str) -> Path:
    folder = Path(text).expanduser()
    if folder.exists() and not folder.is_dir():
        raise Usage(f"--output: {folder} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.glob("frame_*.png")):
        raise Usage(f"--output: {folder} already holds frames (frame_*.png); give a new folder")
    return folder


def run(args) -> int:
    files = frame_files(args.frames)
    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise Usage("--workers and --threads must be 1 or more")
    chunk_frames = args.chunk_frames if args.chunk_frames is not None else \
        chunks_for_workers(len(files), args.workers)
    folder = output_folder(args.output)
    frames = [load_image(path) for path in files]
    style = load_image(args.style)
    vgg = load_vgg()
    options = dict(vgg=vgg, steps=args.steps, max_size=args.size, temporal_weight=args.temporal_weight,
                   seed=args.seed, chunk_frames=chunk_frames, **{name: getattr(args, name) for name in LOSS_OPTIONS})
    started = time.perf_counter()
    if args.workers > 1 and chunk_frames:
        with chunk_processes(args.workers, args.threads) as chunk_map:
            result = stylize_frames(frames, style, chunk_map=chunk_map, **options)
    else:
        result = stylize_frames(frames, style, **options)
    seconds = time.perf_counter() - started
    for t in range(result.image.shape[0]):
        save_image(result.image[t:t + 1], folder / FRAME_NAME.format(t), overwrite=False)
    chunks = ", ".join(f"{c.start}-{c.stop - 1}" for c in result.chunks) or "one"
    sys.stderr.write(f"{result.image.shape[0]} frames written to {folder} in {seconds:.1f}s "
                     f"(chunks: {chunks}; workers: {args.workers})\n")
    for message in result.warnings:
        sys.stderr.write(f"warning: {message}\n")
    if available() and result.image.shape[0] > 1 and args.temporal_weight > 0:
        contents = as_frames([fit(frame, args.size) for frame in frames])[:result.image.shape[0]]
        sys.stderr.write(flicker_summary(result, contents) + "\n")
    return EXIT_OK


def flicker_summary(result, contents) -> str:
    """The mean warped-frame difference inside chunks and across their borders."""
    differences = warped_differences(result.image, contents)
    borders = set(border_pairs(result.chunks))
    inside = [d for t, d in enumerate(differences, 1) if t not in borders]
    across = [d for t, d in enumerate(differences, 1) if t in borders]
    text = f"flicker (mean warped-frame difference): inside chunks {sum(inside) / max(len(inside), 1):.4f}"
    if across:
        text += f", across chunk borders {sum(across) / len(across):.4f} (max {max(across):.4f})"
    return text


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        return run(args)
    except Usage as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_USAGE
    except OptionError as exc:
        flag = FLAGS.get(exc.option, "--" + exc.option.replace("_", "-"))
        sys.stderr.write(f"{PROG}: {flag}: {exc.detail}\n")
        return EXIT_USAGE
    except NSTError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"{PROG}: the run failed: {exc}\n")
        return EXIT_FAILED


__all__ = ["build_parser", "chunks_for_workers", "frame_files", "flicker_summary", "main"]
