"""`python -m nst_core.video`: stylize a clip's frames from the command line, its chunks fanned out over
local worker processes.

    python -m nst_core.video FRAMES_DIR --style style.jpg --output out/ --steps 100 --workers 2

FRAMES_DIR holds the frames as images, in name order (or give the files). Writes out/frame_00000.png, ...
(the folder must hold no frame_*.png yet: nothing is overwritten; each file is written whole, then renamed).
The options are nst-stylize's, with its defaults (nst_core.cli_options), --steps counting per frame; several
--style images are blended. --workers N > 1 cuts the clip into chunks (--chunk-frames, by default N
chunks), runs them in N processes and joins them, each aligned to the one before where they meet
(nst_core.video.chunks). Exit codes as nst-stylize's: 0 written, 1 the run failed, 2 a usage or input
problem found before any work, 130 interrupted (nothing written).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from pathlib import Path

from .. import memory
from ..api import fit
from ..cli import (Usage, _device, add_common_flags, add_style_flags, load_network, run_options, save_image,
                   style_inputs)
from ..cli_options import add_option, add_option_flags, flag_message, transfer_options
from ..errors import NSTError
from ..image import load_image
from ..progress import ConsoleProgress
from ..settings import OptionError
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Stylize the frames of a clip with temporal consistency "
                                "(Ruder et al. 2016), optionally in chunks over worker processes. --steps is "
                                "per frame; the other options are nst-stylize's.")
    io = p.add_argument_group("frames and files")
    io.add_argument("frames", nargs="+", help="a folder of frames (in name order) or the frame files, in order")
    add_style_flags(io)
    io.add_argument("--output", "-o", required=True, help="the folder for frame_00000.png, ...")
    clip = p.add_argument_group("the clip")
    add_option(clip, TEMPORAL_WEIGHT)
    add_option(clip, CHUNK_FRAMES, help=CHUNK_FRAMES.help + "; with --workers N and no --chunk-frames: N chunks")
    clip.add_argument("--workers", type=int, default=1, help="worker processes for the chunks (default: 1, here)")
    clip.add_argument("--threads", type=int, help="torch threads per worker (default: the cores shared out)")
    add_common_flags(p, add_option_flags(p, transfer_options()))
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
    options = run_options(args)
    files = frame_files(args.frames)
    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise Usage("--workers and --threads must be 1 or more")
    chunk_frames = args.chunk_frames if args.chunk_frames else chunks_for_workers(len(files), args.workers)
    device = _device(args.device)
    folder = output_folder(args.output)
    frames = [load_image(path) for path in files]
    styles, blend, init_image = style_inputs(args)
    vgg = load_network(args, options, device)
    clip = dict(options=options, vgg=vgg, temporal_weight=args.temporal_weight, content_layers=args.content_layers,
                style_layers=args.style_layers, style_layer_weights=args.style_layer_weights, style_blend=blend,
                init_image=init_image, chunk_frames=chunk_frames)
    started = time.perf_counter()
    if args.workers > 1 and chunk_frames:
        with chunk_processes(args.workers, args.threads) as chunk_map:       # no progress from other processes
            result = stylize_frames(frames, styles, chunk_map=chunk_map, **clip)
    else:
        bar = ConsoleProgress(every=10, disable=args.quiet)
        try:
            result = stylize_frames(frames, styles, callback=bar, **clip)
        finally:
            bar.close()
    seconds = time.perf_counter() - started
    for t in range(result.image.shape[0]):
        save_image(result.image[t:t + 1], folder / FRAME_NAME.format(t), overwrite=False)
    chunks = ", ".join(f"{c.start}-{c.stop - 1}" for c in result.chunks) or "one"
    sys.stderr.write(f"{result.image.shape[0]} frames written to {folder} in {seconds:.1f}s "
                     f"(chunks: {chunks}; workers: {args.workers})\n")
    for message in result.warnings:
        sys.stderr.write(f"warning: {message}\n")
    if available() and result.image.shape[0] > 1 and args.temporal_weight > 0:
        contents = as_frames([fit(frame, options.max_size) for frame in frames])[:result.image.shape[0]]
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
    except SystemExit as exc:           # --help (0) or a usage error (2), already printed by argparse
        return EXIT_USAGE if exc.code else EXIT_OK
    if args.max_memory_gb:              # a cap is honoured in RSS only if freed blocks go back (memory.py)
        memory.tune_process_allocator()

    def fail(code: int, message: str) -> int:
        if args.verbose:
            traceback.print_exc()
        sys.stderr.write(f"{PROG}: {message}\n")
        return code

    try:
        return run(args)
    except Usage as exc:
        return fail(EXIT_USAGE, str(exc))
    except OptionError as exc:
        return fail(EXIT_USAGE, flag_message(exc))
    except NSTError as exc:
        return fail(EXIT_USAGE, str(exc))
    except KeyboardInterrupt:
        return fail(EXIT_INTERRUPTED, "interrupted")
    except (OSError, RuntimeError) as exc:
        return fail(EXIT_FAILED, f"the run failed: {exc}")


__all__ = ["build_parser", "chunks_for_workers", "frame_files", "flicker_summary", "main"]
