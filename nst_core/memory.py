"""Will a size fit? An analytic estimate of one optimization step's memory, checked before any work.

The estimate counts, from the layer shapes, what a forward + input-gradient backward pass keeps alive:
every layer output up to the deepest layer needed (conv and ReLU outputs, pooled maps and their int64
argmax indices), the transient gradients, and the L-BFGS history (2 x history_size image-sized vectors).
It is compared with the free memory of the device (CUDA: torch.cuda.mem_get_info; CPU: psutil's available
memory, on every operating system). When the size does not fit, `check_fits` raises nst_core.ImageError naming the largest
size that does, instead of letting the run crash out of memory.
"""

from __future__ import annotations

import gc
import math

import psutil
import torch

from .errors import ImageError
from .layers import ARCHITECTURES, layer_names
from .settings import LBFGS_HISTORY

FLOAT = 4
SAFETY = 1.25          # headroom for allocator fragmentation and library workspaces


def _deepest(arch: str, layers) -> int:
    names = layer_names(arch)
    return max(names.index(name) for name in layers)


def activation_bytes(arch: str, size, layers, batch: int = 1, element_bytes: int = FLOAT, *,
                     after: str | None = None) -> int:
    """Bytes of the activations (and gradients) one forward+backward pass through `layers` keeps alive.

    The weights never require grad, so a conv's backward needs no input: what is kept is each ReLU's
    output (computed in place over the conv's, vgg.features, unless that conv is a requested layer, whose
    output is then kept too) and each pooling's int64 indices (its input is the ReLU output already
    counted), plus the gradients in flight at the largest layer. Measured RSS growth of one untiled loss +
    gradient with the default layers at 1024 px: 1.66 GiB; this estimate 1.87 GiB (x SAFETY: 2.33). The
    former count (every conv output and pooled map too) gave 3.99 GiB and halved the tiles' area.
    `after`: only the layers behind that one count (the pass starts from its output; `size` is still the
    image's), as the tiled objective's whole-image trunk (nst_core.tiling)."""
    h, w = size
    layers = set(layers)
    names = layer_names(arch)[:_deepest(arch, layers) + 1]
    channels, total, largest = 3, 0, 3 * h * w
    if after is not None:
        start = layer_names(arch).index(after) + 1
        h, w, channels = feature_shape(arch, size, after)
        names, largest = names[start:], channels * h * w
    for name in names:
        if name.startswith("conv"):
            channels = [c for c in ARCHITECTURES[arch] if c != "M"][_conv_index(arch, name)]
            if name in layers:
                total += channels * h * w                  # a requested conv output: its ReLU is not in place
        elif name.startswith("relu"):
            total += channels * h * w                      # ReLU output (kept for its backward)
        else:
            h, w = h // 2, w // 2
            total += channels * h * w * 2                  # int64 indices of the pooled map
        largest = max(largest, channels * h * w)
    # backward: the gradient flowing down plus the one being produced, at the largest layer
    return int((total + 2 * largest) * batch * element_bytes)


def feature_shape(arch: str, size, layer: str) -> tuple[int, int, int]:
    """(height, width, channels) of `layer`'s output for an input of `size` (H, W) (pools floor)."""
    h, w = size
    channels = 3
    widths = iter(c for c in ARCHITECTURES[arch] if c != "M")
    for name in layer_names(arch):
        if name.startswith("conv"):
            channels = next(widths)
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        if name == layer:
            return h, w, channels
    raise ValueError(f"unknown layer {layer!r} for {arch}")


def conv_macs(arch: str, layers, after: str | None = None) -> float:
    """Multiply-adds per input pixel of the convs up to the deepest of `layers` (behind `after` only,
    when given): a 3x3 conv from c to c' channels at stride s costs 9·c·c'/s² per input pixel. VGG-19 to
    relu5_1: 11 % of it before pool1, 26 % before pool2, 62 % before pool3, 97 % before pool4."""
    names = layer_names(arch)[:_deepest(arch, layers) + 1]
    start = 0 if after is None else layer_names(arch).index(after) + 1
    channels, area, total = 3, 1.0, 0.0
    widths = iter(c for c in ARCHITECTURES[arch] if c != "M")
    for i, name in enumerate(names):
        if name.startswith("conv"):
            out = next(widths)
            if i >= start:
                total += 9 * channels * out * area
            channels = out
        elif name.startswith("pool"):
            area /= 4
    return total


def layer_outputs(arch: str, size, layers) -> tuple[int, dict[str, int]]:
    """(elements of the largest layer output up to the deepest of `layers`, {layer: its output's element
    count}) for an input of `size` (H, W): what a no-grad forward holds (~2 of the largest) and keeps."""
    names = layer_names(arch)
    deepest = max(names.index(n) for n in layers)
    h, w = size
    channels, largest, counts = 3, 3 * h * w, {}
    widths = iter(c for c in ARCHITECTURES[arch] if c != "M")
    for name in names[:deepest + 1]:
        if name.startswith("conv"):
            channels = next(widths)
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        largest = max(largest, channels * h * w)
        if name in layers:
            counts[name] = channels * h * w
    return largest, counts


def _conv_index(arch: str, name: str) -> int:
    convs = [n for n in layer_names(arch) if n.startswith("conv")]
    return convs.index(name)


def step_bytes(arch: str, size, layers, batch: int = 1, history_size: int = LBFGS_HISTORY,
               element_bytes: int = FLOAT) -> int:
    """Estimated peak bytes of one optimization run at `size` (activations + optimizer state)."""
    h, w = size
    image = 3 * h * w * batch * FLOAT
    optimizer = (2 * history_size + 6) * image
    return int(SAFETY * activation_bytes(arch, size, layers, batch, element_bytes)) + optimizer


# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_LIVE_MEMORY_BLOCK = 128 * 1024


def _libc():
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6")
    except (OSError, AttributeError):          # not glibc (macOS, Windows, musl): nothing to tune
        return None


def track_live_memory() -> None:
    """Make the process's resident memory follow its live memory (Linux, glibc): blocks from 128 KiB up
    are mapped on their own and returned to the system when freed, instead of staying in the heap for
    reuse (glibc raises its mmap threshold to 32 MiB after the first large frees, so freed activations
    and targets stay resident). A memory budget (max_memory_gb) counts live tensors; without this a 2048 px
    coarse-to-fine run under a 2.25 GiB cap reached 3.17 GiB of RSS (4.77 GiB through nst-run), with it
    2.34 GiB (3.51 through nst-run, and 2.73 once each level's L-BFGS history stopped outliving the level:
    nst_core.loop). Process-wide and kept: runs that tile or keep fewer L-BFGS pairs call it."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, _LIVE_MEMORY_BLOCK)
        libc.mallopt(_M_TRIM_THRESHOLD, _LIVE_MEMORY_BLOCK)


def release_freed_memory() -> None:
    """Free what only reference cycles still hold (the garbage collector runs by object counts, not bytes)
    and hand the heap's free pages back to the system (glibc malloc_trim), e.g. between a plan's levels."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def available_bytes(device) -> int | None:
    """Free memory on `device`: CUDA mem_get_info (plus what PyTorch's cache holds), CPU psutil."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        return int(psutil.virtual_memory().available)
    return None


def largest_fitting(arch: str, size, layers, budget: int, batch: int = 1,
                    history_size: int = LBFGS_HISTORY) -> tuple[int, int] | None:
    """The largest (H, W) with the aspect of `size` whose estimate fits in `budget` bytes (None: none)."""
    h, w = size
    scale = 1.0
    # the estimate is ~ proportional to the pixel count: start from the square-root ratio, then step down
    need = step_bytes(arch, size, layers, batch, history_size)
    if need > 0:
        scale = min(1.0, math.sqrt(budget / need))
    while scale > 0:
        cand = (max(1, int(h * scale)), max(1, int(w * scale)))
        if step_bytes(arch, cand, layers, batch, history_size) <= budget:
            return cand
        scale *= 0.97
        if min(cand) < 16:
            return None
    return None


def check_fits(vgg, size, layers, batch: int = 1, history_size: int = LBFGS_HISTORY) -> None:
    """Raise ImageError naming the largest size that fits when `size` (H, W) would run out of memory."""
    free = available_bytes(vgg.device)
    if free is None:
        return
    size = tuple(int(s) for s in size)
    need = step_bytes(vgg.arch, size, layers, batch, history_size)
    if need <= free:
        return
    fit = largest_fitting(vgg.arch, size, layers, free, batch, history_size)
    where = f"{vgg.device.type} memory"
    hint = (f"the largest size that fits is about {fit[1]}x{fit[0]} px (width x height)"
            if fit else "no useful size fits; free some memory")
    raise ImageError(
        f"an image of {size[1]}x{size[0]} px needs about {need / 2**30:.1f} GiB of {where} for layers up to "
        f"{layers[_deepest_pos(vgg.arch, layers)]}, but only {free / 2**30:.1f} GiB is free; {hint} "
        f"(lower max_size or use a smaller image).")


def _deepest_pos(arch: str, layers) -> int:
    names = layer_names(arch)
    layers = list(layers)
    return max(range(len(layers)), key=lambda i: names.index(layers[i]))
