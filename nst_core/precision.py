"""The precision the convs of a plan's level run in: float32, or bfloat16 where that is fast and harmless.

bfloat16's gradients are off by a few percent of their norm, which near the optimum stalls L-BFGS, so the
*final* level always runs in float32. The coarse levels only settle the arrangement the final level starts
from: "auto" runs them in bfloat16 on a CPU with native bfloat16 (AMX or AVX-512 BF16: about 3x faster)
and in float32 elsewhere (emulated bfloat16 is no faster; a GPU runs float32 convs as TF32 and its coarse
steps wait on launches; the opt-in option `cuda_autocast` runs every level in bfloat16 there). Only the convolutions
run under autocast; the Grams, the losses and the optimizer stay float32. `coarse_precision="float32"`
gives the same results on every machine. Measurements: nst_core/bench/README.md.
"""

from __future__ import annotations

import functools

import torch

# settings.COARSE_PRECISIONS: "auto" (bfloat16 where native, see above), "float32", "bfloat16" (forced)
BFLOAT16 = "bfloat16"
FLOAT32 = "float32"
DTYPES = {FLOAT32: None, BFLOAT16: torch.bfloat16}


@functools.lru_cache(maxsize=None)
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively: AMX tiles or AVX-512 BF16 (Linux's CPU flags; else
    PyTorch's AMX probe). torch.ops.mkldnn._is_mkldnn_bf16_supported() is not the test: it is true on any
    AVX-512 CPU, where oneDNN emulates bfloat16. Read once per process (every run, every video frame asks)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return bool({"amx_bf16", "avx512_bf16"} & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    probe = getattr(getattr(torch._C, "_cpu", None), "_init_amx", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def coarse_level_precision(choice: str, device) -> str:
    """The precision of a plan's levels below the final one for the option `coarse_precision`."""
    if choice == "auto":
        return BFLOAT16 if torch.device(device).type == "cpu" and cpu_has_native_bfloat16() else FLOAT32
    return choice


def autocast_dtype(precision: str = FLOAT32) -> torch.dtype | None:
    """The dtype a level's convs run in under autocast (None = float32, no autocast), from the level's
    `precision` (nst_core.plan.Level.precision)."""
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(DTYPES)}")
    return DTYPES[precision]
