"""The command lines' option flags, made from the engine's option definitions (nst_core.settings).

nst-stylize, `python -m nst_core.video` and the benchmarks add their engine-option flags here: one flag
name per option, its default, choices, range and help from `settings.OPTIONS`, its value checked by
`Option.check` (a refused value is argparse's usage error naming the flag: exit 2, no traceback).
Every option has a flag here or is in ENGINE_ONLY with the reason; tests/engine/test_option_reach.py
holds both command lines to that.
"""

from __future__ import annotations

import argparse
import re

from .settings import OPTIONS, Option, OptionError

# Engine option -> flag. A boolean option's flag turns it from its default (store_false / store_true).
FLAGS = {
    "max_size": "--size", "steps": "--steps", "optimizer": "--optimizer", "lr": "--lr", "init": "--init",
    "seed": "--seed", "max_memory_gb": "--max-memory-gb", "tile_size": "--tile-size",
    "coarse_precision": "--coarse-precision", "coarse_to_fine": "--no-coarse-to-fine",
    "content_weight": "--content-weight", "style_weight": "--style-weight", "weighting": "--weighting",
    "tv_weight": "--tv-weight", "style_scale": "--style-scale", "look_size": "--look-size",
    "style_loss": "--style-loss", "preserve_color": "--preserve-color",
    "pooling": "--pooling", "high_res_pooling": "--high-res-pooling", "architecture": "--architecture",
    "convention": "--convention", "normalized": "--no-normalize",
    # the video options (nst_core.video.options)
    "temporal_weight": "--temporal-weight", "chunk_frames": "--chunk-frames",
    # CLI values that are not settings options (lists, paths): named here so errors name their flag
    "init_image": "--init-image", "style_blend": "--style-blend", "style_layer_weights": "--style-layer-weights",
    "content_layers": "--content-layers", "style_layers": "--style-layers",
}

# Options no style-transfer command line takes, and why.
_EXPLORER = ("reconstructions (reconstruct_content / reconstruct_style) are the layer explorer's, not a style "
             "transfer; `python -m nst_core.bench.texture {}` runs them from the command line")
ENGINE_ONLY = {"reconstruction_steps": _EXPLORER.format("--steps"),
               "reconstruction_max_size": _EXPLORER.format("--size")}

# Where each option's flag is listed in --help. The network options are load_vgg's, under the names NETWORK gives.
GROUPS = {
    "the run": ("max_size", "steps", "optimizer", "lr", "init", "seed", "max_memory_gb", "tile_size",
                "coarse_precision", "coarse_to_fine"),
    "the loss": ("content_weight", "style_weight", "weighting", "tv_weight", "style_scale", "look_size",
                 "style_loss", "preserve_color"),
    "the network": ("pooling", "high_res_pooling", "architecture", "convention", "normalized"),
}
NETWORK = {"architecture": "arch", "pooling": "pooling", "convention": "convention", "normalized": "normalized"}


def transfer_options() -> tuple[str, ...]:
    """Every settings option a style-transfer command line takes: all but ENGINE_ONLY."""
    return tuple(name for name in OPTIONS if name not in ENGINE_ONLY)


def flag_of(name: str) -> str:
    """The flag that sets engine option `name` (for messages)."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def flag_message(exc: OptionError) -> str:
    """An engine OptionError as the command line's message: '--flag: what is wrong', with the engine's
    `name=value` advice written as the flags to type."""
    detail = re.sub(r"\b([a-z][a-z0-9_]*)=", lambda m: f"{FLAGS[m.group(1)]} " if m.group(1) in FLAGS
                    else m.group(0), exc.detail)
    return f"{flag_of(exc.option)}: {detail}"


def _shown(value) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def checked(option: Option):
    """argparse `type` applying the engine's check; argparse names the flag in the error (exit 2)."""
    def convert(text: str):
        if option.allow_none and text.strip().lower() in ("none", "auto", ""):
            return None
        try:
            return option.check(text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(exc.detail) from None

    convert.__name__ = option.kind.__name__
    return convert


def add_option(group, option: str | Option, *, flag: str | None = None, default=None, help: str | None = None):
    """One engine option as a checked flag of `group` (a parser or an argument group).

    `option`: a settings.OPTIONS name or an Option (the video ones). The flag is FLAGS' unless `flag` is
    given (a benchmark naming its own protocol); `default` replaces the engine's only where a benchmark's
    protocol differs; `help` replaces the option's help text (a benchmark saying what it varies)."""
    option = OPTIONS[option] if isinstance(option, str) else option
    flag = flag or FLAGS[option.name]
    default = option.default if default is None else default
    text = (option.help if help is None else help).replace("%", "%%")
    if option.kind is bool:
        label = option.name.replace("_", "-")
        return group.add_argument(flag, dest=option.name, action="store_false" if default else "store_true",
                                  default=default, help=f"turn {label} {'off' if default else 'on'}; by default "
                                                        f"{label} is {'on' if default else 'off'}: {text}")
    limits = f"; {option.describe_range()}" if option.choices is None and option.describe_range() else ""
    kw = {"choices": option.choices} if option.choices is not None else \
        {"metavar": "N" if option.kind is int else "X"}
    return group.add_argument(flag, dest=option.name, type=checked(option), default=default,
                              help=f"{text} (default: {_shown(default)}{limits})", **kw)


def add_option_flags(parser: argparse.ArgumentParser, names, defaults: dict | None = None) -> dict:
    """The flags of the engine options `names`, in --help's groups (GROUPS order); returns {title: group}
    so that a command line can add its own flags next to them. An option with no group is a programming
    error: a new option gets a flag name (FLAGS) and a group here, or a reason in ENGINE_ONLY."""
    defaults = defaults or {}
    names = list(names)
    ungrouped = [n for n in names if not any(n in members for members in GROUPS.values())]
    if ungrouped:
        raise KeyError(f"options without a command-line group (cli_options.GROUPS): {ungrouped}")
    groups = {}
    for title, members in GROUPS.items():
        group = groups[title] = parser.add_argument_group(title)
        for name in members:
            if name in names:
                add_option(group, name, default=defaults.get(name))
    return groups


__all__ = ["ENGINE_ONLY", "FLAGS", "GROUPS", "NETWORK", "add_option", "add_option_flags", "checked", "flag_message",
           "flag_of", "transfer_options"]
