"""`nst-stylize` / `python -m nst_core`: style transfer from the command line.

With no arguments it stylizes the bundled cat photo with The Starry Night and writes stylized.png.
The options, their defaults, ranges and help come from nst_core.settings (the engine's one definition).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import memory
from .statistics.normalization import STYLE_LAYER_WEIGHTS_HELP
from .cli_options import FLAGS, NETWORK, add_option_flags, flag_message, transfer_options  # noqa: F401 (cli.FLAGS)
from .errors import NSTError
from .examples import DEFAULT_CONTENT, DEFAULT_STYLE, example_names, example_path
from .image import load_image, to_pil
from .options import RunOptions
from .progress import ConsoleProgress
from .settings import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, OptionError, check_blend, resolve_weighting

PROG = "nst-stylize"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_OUTPUT = "stylized.png"
# What --output may end in, and the PIL format each writes.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
           ".tiff": "TIFF"}

EPILOG = """\
output: --output ending in / or naming a folder writes stylized.png in it; no extension means PNG.
An existing file is never overwritten unless --overwrite: the result gets the next free name
(stylized_1.png, stylized_2.png, ...), claimed atomically so that parallel runs never collide. The image
is written to a temporary file in the same folder and then renamed, so no half-written file is left.

Ctrl-C stops after the current step: nothing is written (--keep-partial writes the image so far);
a second Ctrl-C stops at once.

exit codes: 0 written; 1 run failed (memory, writing, internal error); 2 usage or input problem (before
any work); 3 diverged or non-finite loss (best image written, warning printed); 130 interrupted.
--verbose shows Python tracebacks; otherwise errors are one message naming the option.
"""


class Usage(Exception):
    """A problem with the command line, found before the work starts; the message names the flag."""


# -------------------------------------------------------------------------------------------------- parser

def add_style_flags(io) -> None:
    """--style (one or several), --style-blend and --init-image: the images every style transfer takes."""
    io.add_argument("--style", nargs="+", default=[DEFAULT_STYLE], metavar="IMAGE",
                    help=f"style image(s), a path or a bundled example name; several are blended (default: "
                         f"{DEFAULT_STYLE})")
    io.add_argument("--style-blend", nargs="+", metavar="W",
                    help="blend weights of the styles, one per --style image (default: equal)")
    io.add_argument("--init-image", help="starting image of --init image, a path or an example name (default: "
                                        "none; --init image needs it)")


def add_common_flags(parser: argparse.ArgumentParser, groups: dict) -> None:
    """The flags every style-transfer command line has besides the engine options: layers, weights file,
    device, messages. `groups`: add_option_flags' argument groups."""
    loss = groups["the loss"]
    loss.add_argument("--content-layers", default=",".join(DEFAULT_CONTENT_LAYERS),
                      help=f"comma-separated VGG layers (default: {','.join(DEFAULT_CONTENT_LAYERS)})")
    loss.add_argument("--style-layers", default=",".join(DEFAULT_STYLE_LAYERS),
                      help=f"comma-separated VGG layers (default: {','.join(DEFAULT_STYLE_LAYERS)})")
    loss.add_argument("--style-layer-weights", metavar="W,W,...",
                      help=STYLE_LAYER_WEIGHTS_HELP)
    net = groups["the network"]
    net.add_argument("--weights", help="VGG weights file (default: the bundled Caffe VGG-19)")
    net.add_argument("--device", help="cpu, cuda, cuda:1, mps ... (default: cuda when available, else cpu)")
    out = parser.add_argument_group("messages")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar (default: a progress bar on stderr)")
    out.add_argument("--verbose", action="store_true",
                     help="show Python tracebacks of errors (default: one message naming the flag)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("images and files")
    io.add_argument("--content", default=DEFAULT_CONTENT,
                    help=f"content image: a path or a bundled example name (default: {DEFAULT_CONTENT})")
    add_style_flags(io)
    io.add_argument("--output", "-o", default=DEFAULT_OUTPUT,
                    help=f"image to write: {', '.join(FORMATS)}; a folder or a name without extension "
                         f"writes PNG (default: {DEFAULT_OUTPUT})")
    io.add_argument("--overwrite", action="store_true",
                    help="replace an existing --output file (default: write the next free name, name_1.png ...)")
    io.add_argument("--keep-partial", action="store_true",
                    help="when interrupted, write the image so far (default: write nothing)")
    add_common_flags(p, add_option_flags(p, transfer_options()))
    return p


# ----------------------------------------------------------------------------------------- the output file

def resolve_output(text: str, overwrite: bool) -> tuple[Path, list[str]]:
    """The file to write, checked before the work starts (folder writable, known format); with notes."""
    notes = []
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or path.is_dir():
        path = path / DEFAULT_OUTPUT
        notes.append(f"--output is a folder: writing {path}")
    elif not path.suffix:
        path = path.with_name(path.name + ".png")
        notes.append(f"--output has no extension: writing PNG to {path}")
    if path.suffix.lower() not in FORMATS:
        raise Usage(f"--output: unknown image extension {path.suffix!r}; use one of {', '.join(FORMATS)}")
    if FORMATS[path.suffix.lower()] == "WEBP":
        from PIL import features
        if not features.check("webp"):
            raise Usage("--output: this Pillow cannot write WebP; use .png or .jpg")
    if path.is_dir():
        raise Usage(f"--output: {path} is a folder")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".nst-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise Usage(f"--output: cannot write in the folder {folder} ({exc.strerror or exc})") from None
    if path.exists() and not overwrite:
        notes.append(f"{path} exists: the result gets the next free name ({_numbered(path, 1).name}, ...); "
                     "--overwrite replaces it")
    return path, notes


def _numbered(path: Path, n: int) -> Path:
    return path if n == 0 else path.with_name(f"{path.stem}_{n}{path.suffix}")


def save_image(image, path: Path, overwrite: bool) -> Path:
    """Write `image` ([1,H,W,3]) to `path`, or to the first free `name_N` when it exists and not
    `overwrite`. Written to a temporary file in the same folder first, then renamed (a killed run leaves
    no partial file); the free name is claimed atomically (a hard link fails if the name exists)."""
    fmt = FORMATS[path.suffix.lower()]
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(temp, 0o666 & ~_umask())        # mkstemp makes 0600; an image is as readable as any file
        with os.fdopen(handle, "wb") as stream:
            to_pil(image).save(stream, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(temp, path)
            return path
        for n in range(100_000):
            target = _numbered(path, n)
            try:
                os.link(temp, target)
            except FileExistsError:
                continue
            except OSError:                  # no hard links here (FAT, some network shares): claim, then replace
                try:
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                except FileExistsError:
                    continue
                os.replace(temp, target)
            return target
        raise OSError(f"no free name for {path} (tried {path.stem}_1 .. _99999)")
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------------- the run

def _load(flag: str, value: str):
    """An image from a path or a bundled example name; the error names the flag."""
    try:
        return load_image(example_path(value) if value in example_names() else value)
    except NSTError as exc:
        raise Usage(f"{flag}: {exc}") from None


def _device(text: str | None):
    if text is None:
        return None
    import torch
    try:
        device = torch.device(text)
    except RuntimeError:
        raise Usage(f"--device: unknown device {text!r}; use cpu, cuda, cuda:1, mps ...") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Usage(f"--device {text}: no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise Usage(f"--device {text}: there are {torch.cuda.device_count()} CUDA device(s)")
    return device


class Interrupts:
    """Ctrl-C / SIGTERM while running: the first asks the run to stop after its current step (the
    callback sees `requested`); before the run starts, or a second time, it raises KeyboardInterrupt."""

    def __init__(self):
        self.requested = False
        self.running = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:          # not the main thread: leave the signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.requested or not self.running:
            raise KeyboardInterrupt
        self.requested = True


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text \
        or "not enough memory" in text


def run_options(args) -> RunOptions:
    """The engine's options from the parsed flags, checked once; a style weight that means the wrong thing
    under the chosen weighting is refused here, before any work (settings.resolve_weighting)."""
    options = RunOptions.of(**{name: getattr(args, name) for name in transfer_options()})
    resolve_weighting(options.weighting, [options.style_weight], options.content_weight)
    return options


def style_inputs(args) -> tuple[list, list | None, object]:
    """The style images, their blend weights and the --init-image, loaded and checked (errors name the flag)."""
    styles = [_load("--style", s) for s in args.style]
    init_image = _load("--init-image", args.init_image) if args.init_image else None
    if args.init == "image" and init_image is None:
        raise Usage("--init image needs --init-image")
    blend = check_blend(args.style_blend, len(styles)) if args.style_blend else None
    return styles, blend, init_image


def load_network(args, options: RunOptions, device):
    """The VGG of --weights (default: the bundled one) with the network options; a bad file names --weights."""
    from .loader import load_vgg
    try:
        return load_vgg(args.weights, device=device, **{keyword: getattr(options, name)
                                                         for name, keyword in NETWORK.items()})
    except NSTError as exc:
        if args.weights is None or isinstance(exc, OptionError):
            raise
        raise Usage(f"--weights: {exc}") from None


def _run(args, interrupts: Interrupts) -> int:
    started = time.perf_counter()
    options = run_options(args)
    output, notes = resolve_output(args.output, args.overwrite)
    device = _device(args.device)
    content = _load("--content", args.content)
    styles, blend, init_image = style_inputs(args)
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)

    from . import api
    vgg = load_network(args, options, device)
    bar = ConsoleProgress(every=10, disable=args.quiet,
                          then=lambda p: p.stop() if interrupts.requested else None)
    interrupts.running = True
    try:
        result = api.stylize(
            content, styles, vgg=vgg, options=options, content_layers=args.content_layers,
            style_layers=args.style_layers, style_layer_weights=args.style_layer_weights, style_blend=blend,
            init_image=init_image, callback=bar)
    except KeyboardInterrupt:
        raise _Interrupted(bar.step, bar.total) from None
    finally:
        bar.close()
    # `interrupts.running` stays set: a Ctrl-C while the image is being written only raises the flag

    if interrupts.requested and result.stopped == "callback":
        done = f"interrupted at step {bar.step}/{bar.total}"
        if args.keep_partial:
            written = save_image(result.image, output, args.overwrite)
            print(f"{PROG}: {done}; wrote the image so far to {written}", file=sys.stderr)
        else:
            print(f"{PROG}: {done}; nothing written (--keep-partial writes the image so far)", file=sys.stderr)
        return EXIT_INTERRUPTED
    written = save_image(result.image, output, args.overwrite)
    for note in result.warnings:
        print(f"{PROG}: warning: {note}", file=sys.stderr)
    steps = len(result.history)
    print(f"wrote {written} ({result.image.shape[2]}x{result.image.shape[1]}, {steps} steps, "
          f"{time.perf_counter() - started:.1f} s)")
    if result.stopped in ("non-finite loss", "diverged"):
        what = "diverged" if result.stopped == "diverged" else "ended with a non-finite loss"
        print(f"{PROG}: warning: the run {what} after {steps} of {args.steps} steps; {written} is the best "
              f"image found (exit code {EXIT_DIVERGED})", file=sys.stderr)
        return EXIT_DIVERGED
    return EXIT_OK


class _Interrupted(Exception):
    def __init__(self, step: int, total: int):
        super().__init__(step, total)
        self.step, self.total = step, total


def main(argv=None) -> int:
    """Run nst-stylize; returns the exit code (EPILOG lists them)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:           # --help (0) or a usage error (2), already printed by argparse
        return int(exc.code or 0)
    if args.max_memory_gb:              # a cap is honoured in RSS only if freed blocks go back (memory.py)
        memory.tune_process_allocator()

    def fail(code: int, message: str) -> int:
        if args.verbose:
            traceback.print_exc()
        print(f"{PROG}: {message}", file=sys.stderr)
        return code

    with Interrupts() as interrupts:
        try:
            return _run(args, interrupts)
        except _Interrupted as stop:
            done = f" at step {stop.step}/{stop.total}; nothing written" if stop.step else ""
            return fail(EXIT_INTERRUPTED, f"interrupted{done}")
        except KeyboardInterrupt:
            return fail(EXIT_INTERRUPTED, "interrupted")
        except OptionError as exc:
            return fail(EXIT_USAGE, f"error: {flag_message(exc)}")
        except (Usage, NSTError) as exc:
            return fail(EXIT_USAGE, f"error: {exc}")
        except Exception as exc:
            if _out_of_memory(exc):
                detail = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                return fail(EXIT_FAILED, f"error: not enough memory for this run ({detail}); lower --size")
            if isinstance(exc, OSError):
                return fail(EXIT_FAILED, f"error: {exc}")
            return fail(EXIT_FAILED, f"internal error: {type(exc).__name__}: {exc} (--verbose shows the "
                                     f"traceback; please report it)")


if __name__ == "__main__":
    sys.exit(main())
