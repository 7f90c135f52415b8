"""Memory: analytic estimates of what a forward (+ backward) pass keeps alive, from the layer table; the
free memory of a device; the allocator calls a command-line process may make. The run plan and the tiling
compare the estimates with `available_bytes` or a caller's budget.
"""

from __future__ import annotations

import gc

import psutil
import torch

from .layers import layer_table

FLOAT = 4
SAFETY = 1.25          # headroom for allocator fragmentation and library workspaces


def activation_bytes(arch: str, size, layers, *, after: str | None = None) -> int:
    """Bytes of the activations (and gradients) one forward+backward pass through `layers` keeps alive.

    The weights never require grad, so a conv's backward needs no input: what is kept is each ReLU's
    output (in place over the conv's, unless that conv is a requested layer) and each pooling's int64
    indices, plus the gradients in flight at the largest layer (checked against RSS: nst_core/bench/README.md).
    `after`: only the layers behind that one count (`size` is still the image's): the tiled trunk."""
    table, layers = layer_table(arch), set(layers)
    h, w = size
    total, largest = 0, 3 * h * w if after is None else table[after].elements(size)
    for layer in table.span(layers, after):
        count = layer.elements(size)
        if layer.kind == "pool":
            total += 2 * count                             # int64 indices of the pooled map
        elif layer.kind == "relu" or layer.name in layers:
            total += count
        largest = max(largest, count)
    # backward: the gradient flowing down plus the one being produced, at the largest layer
    return int((total + 2 * largest) * FLOAT)


def layer_outputs(arch: str, size, layers) -> tuple[int, dict[str, int]]:
    """(elements of the largest layer output up to the deepest of `layers`, {layer: its output's element
    count}) for an input of `size` (H, W): what a no-grad forward holds (~2 of the largest) and keeps."""
    span = layer_table(arch).span(layers)
    largest = max([3 * size[0] * size[1]] + [layer.elements(size) for layer in span])
    return largest, {layer.name: layer.elements(size) for layer in span if layer.name in layers}


# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_LIVE_MEMORY_BLOCK = 128 * 1024


def _libc():
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6")
    except (OSError, AttributeError):          # not glibc (macOS, Windows, musl): nothing to tune
        return None


def tune_process_allocator() -> None:
    """Make resident memory follow live memory (Linux, glibc): blocks from 128 KiB up are mapped on their
    own and returned when freed, where glibc would keep them in the heap for reuse. Under a memory cap
    (max_memory_gb counts live tensors) this keeps RSS near the budget; elsewhere its page faults only cost
    CPU time. Process-wide, so only the engine's command lines call it, under a cap; never the library."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, _LIVE_MEMORY_BLOCK)
        libc.mallopt(_M_TRIM_THRESHOLD, _LIVE_MEMORY_BLOCK)


def release_freed_memory() -> None:
    """Free what only reference cycles still hold (the garbage collector runs by object counts, not bytes)
    and hand the heap's free pages back to the system (glibc malloc_trim), e.g. between a plan's levels.
    A one-off call that changes no allocator setting, so the library may make it inside a host process."""
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
