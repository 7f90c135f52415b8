"""The precision the convs of a plan's level run in: float32, or bfloat16 where that is fast and harmless.

bfloat16 keeps float32's range with an 8-bit mantissa: a gradient is off by ~5 % of its norm (measured at
512 px on the benchmark's objective, from a perturbed photo: 5.7e-2 relative). Near the optimum that
noise is as large as the gradient itself and L-BFGS stalls (on an H200 500 bf16 steps delivered 1.766e6
where float32 delivered 1.710e6), so the *final* level always runs in float32. The coarse levels only
settle the large-scale arrangement the final level starts from; there bfloat16 is free speed where the
hardware has it:

- A CPU with native bfloat16 (AMX tiles or AVX-512 BF16, oneDNN's bf16 convolutions): one evaluation at
  512 px (forward to relu5_1 and the input-gradient backward, 2 threads) took 0.54-0.65 s against
  1.51-2.21 s in float32 (2.8x, measured side by side). Time to quality at 512 px with bfloat16 coarse
  levels: README, "Time to quality".
- Elsewhere "auto" keeps float32: a CPU without it emulates bfloat16 (no faster), and a GPU's coarse
  steps wait on kernel launches, not arithmetic (TF32 convs are the default there; the engine-only
  option `cuda_autocast` still runs every level in bfloat16 on a GPU: nst_core.plan.with_precision).

Only the convolutions (and ReLU/pooling between them) run under autocast; the Grams, the losses and the
optimizer's vectors stay float32 (nst_core.objective). Results then depend on whether the CPU has native
bfloat16: `coarse_precision="float32"` runs float32 everywhere on every machine (nst_core.settings).
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


def autocast_dtype(device, precision: str = FLOAT32) -> torch.dtype | None:
    """The dtype a level's convs run in under autocast (None = float32, no autocast), from the level's
    `precision` (nst_core.plan.Level.precision).

    On CUDA, float32 convs run as TF32 on tensor cores (PyTorch's default, torch.backends.cudnn.allow_tf32).
    Measured on an H200, 500 L-BFGS steps at 512 px (the benchmark's objective; the CPU reference's 500
    steps deliver 1.701e6): bf16 autocast 13.1 ms a step, delivered loss 1.766e6; TF32 13.5 ms, 1.710e6;
    full float32 (TF32 off) 24.2 ms, 1.713e6. bf16 is no faster there (the step waits on launches, not
    arithmetic) and its gradients stall L-BFGS, so every level in bf16 on a GPU is opt-in (`cuda_autocast`)."""
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(DTYPES)}")
    return DTYPES[precision]
