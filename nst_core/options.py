"""A run's options as one value: `RunOptions`, every field's default and check taken from settings.OPTIONS.

Built once and checked once (a refused value raises OptionError naming the option); `optimize`, `stylize`,
`optimize_batch`, `stylize_frames`, the reconstructions and the explorer's `invert` take it as `options=`; their
keyword arguments are a convenience that builds one (`RunOptions.of(options, **keywords)`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .settings import DEFAULTS, OPTIONS, Option, OptionError

# Engine-only options, not on the nodes and CLIs: what a run does on a GPU (nst_core.cuda_graph, precision).
# Their defaults come from the environment (read here and nowhere else in the engine) when a RunOptions
# is made; a caller may set them per run (the GPU benchmark compares both ways in one process).
ENGINE_ONLY: dict[str, Option] = {o.name: o for o in (
    Option("cuda_graphs", True, bool, "replay each step of a level from one CUDA graph on a GPU "
                                      "(environment NST_CUDA_GRAPHS=0 turns it off)"),
    Option("cuda_autocast", False, bool, "run every level's convs in bfloat16 on a GPU that has it "
                                         "(environment NST_CUDA_AUTOCAST=1 turns it on)"),
)}
_ENVIRONMENT = {"cuda_graphs": ("NST_CUDA_GRAPHS", "0", False), "cuda_autocast": ("NST_CUDA_AUTOCAST", "1", True)}


def environment_default(name: str) -> bool:
    """An engine-only option's default: the environment variable set to its switching value flips it."""
    variable, value, when_set = _ENVIRONMENT[name]
    return when_set if os.environ.get(variable) == value else ENGINE_ONLY[name].default


def _option(name: str):
    return field(default=DEFAULTS[name])


@dataclass(frozen=True)
class RunOptions:
    """Every option of a run (settings.OPTIONS) plus the engine-only GPU switches, checked at construction."""

    steps: int = _option("steps")
    content_weight: float = _option("content_weight")
    style_weight: float = _option("style_weight")
    tv_weight: float = _option("tv_weight")
    weighting: str = _option("weighting")
    optimizer: str = _option("optimizer")
    init: str = _option("init")
    lr: float | None = _option("lr")
    seed: int = _option("seed")
    max_size: int = _option("max_size")
    style_scale: float = _option("style_scale")
    preserve_color: str = _option("preserve_color")
    coarse_to_fine: bool = _option("coarse_to_fine")
    reconstruction_steps: int = _option("reconstruction_steps")
    reconstruction_max_size: int = _option("reconstruction_max_size")
    style_loss: str = _option("style_loss")
    pooling: str = _option("pooling")
    high_res_pooling: str = _option("high_res_pooling")
    coarse_precision: str = _option("coarse_precision")
    look_size: int = _option("look_size")
    architecture: str = _option("architecture")
    convention: str = _option("convention")
    normalized: bool = _option("normalized")
    max_memory_gb: float = _option("max_memory_gb")
    tile_size: int = _option("tile_size")
    cuda_graphs: bool = field(default_factory=lambda: environment_default("cuda_graphs"))
    cuda_autocast: bool = field(default_factory=lambda: environment_default("cuda_autocast"))

    def __post_init__(self):
        for name in NAMES:
            definition = OPTIONS[name] if name in OPTIONS else ENGINE_ONLY[name]
            object.__setattr__(self, name, definition.check(getattr(self, name)))

    @classmethod
    def of(cls, options: "RunOptions | None" = None, **keywords) -> "RunOptions":
        """`options` (default: the defaults) with `keywords` changed, checked; an unknown keyword is a
        TypeError naming it (as a misspelt keyword argument is)."""
        base = cls() if options is None else options
        if not isinstance(base, RunOptions):
            raise OptionError("options", f"expected nst_core.RunOptions, got {type(base).__name__}")
        unknown = sorted(set(keywords) - set(NAMES))
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}")
        return dataclasses.replace(base, **keywords) if keywords else base

    def replace(self, **changes) -> "RunOptions":
        """A copy with `changes`, checked."""
        return RunOptions.of(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in NAMES}


NAMES = tuple(f.name for f in dataclasses.fields(RunOptions))


# the fields are settings.OPTIONS, each with its default, and the engine-only ones: defined once
assert set(NAMES) == set(OPTIONS) | set(ENGINE_ONLY) and not set(OPTIONS) & set(ENGINE_ONLY), \
    "RunOptions must have one field per settings.OPTIONS entry"
assert all(f.default == OPTIONS[f.name].default for f in dataclasses.fields(RunOptions) if f.name in OPTIONS)


__all__ = ["ENGINE_ONLY", "NAMES", "RunOptions", "environment_default"]
