"""The benchmarks' shared flags: one spelling and one meaning of --sizes, --json, --device and --threads in
every `python -m nst_core.bench...` command. Engine options keep nst-stylize's flags (nst_core.cli_options)."""

from __future__ import annotations

import argparse
import json

from ..settings import OPTIONS, OptionError


def _sizes(text: str) -> list[int]:
    """'256,512' or '256' -> sizes in px, each checked as an output size (settings max_size's range)."""
    try:
        return [OPTIONS["max_size"].check(part) for part in text.split(",") if part.strip()]
    except OptionError as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


class _Flatten(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [size for group in values for size in group])


def add_sizes(parser, default: list[int], help: str = "sizes in px") -> None:
    """--sizes 256 512, or --sizes 256,512: the same list."""
    parser.add_argument("--sizes", nargs="+", type=_sizes, action=_Flatten, default=list(default), metavar="PX",
                        help=f"{help}, separated by spaces or commas (default: {' '.join(map(str, default))})")


def add_json(parser, what: str = "every number") -> None:
    parser.add_argument("--json", metavar="FILE", help=f"also write {what} to this JSON file (default: none)")


def add_device(parser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: the engine's: cuda when available, "
                                         "else cpu)")


def add_threads(parser) -> None:
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, all cores)")


def device(args):
    """The --device as a torch.device (the engine's default when not given)."""
    import torch
    import nst_core
    return torch.device(args.device) if args.device else nst_core.default_device()


def set_threads(args) -> None:
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)


def write_json(path: str | None, report) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1, default=str)


__all__ = ["add_device", "add_json", "add_sizes", "add_threads", "device", "set_threads", "write_json"]
