"""nst_core: Gatys et al.'s neural style transfer and CNN feature reconstructions, on real VGG weights.

    import nst_core
    vgg = nst_core.load_vgg()                                   # real Caffe VGG-19, offline
    result = nst_core.stylize(content, style, vgg=vgg, steps=300)
    result.image                                                # [1,H,W,3] float32 in 0..1
    ladder = nst_core.reconstruct_content(photo, vgg=vgg)       # the paper's Figure 1, one image per layer

No ComfyUI import anywhere in this package.
"""

from .api import DEFAULTS, optimize, reconstruct_content, reconstruct_style, stylize
from .cache import cache_dir, set_cache_dir
from .color import MODES as COLOR_MODES
from .errors import ImageError, LayerError, NSTError, WeightsError
from .examples import DEFAULT_CONTENT, DEFAULT_STYLE, example_names, example_path, examples_dir
from .image import from_pil, load_image, to_pil
from .layers import VGG16_LAYERS, VGG19_LAYERS, layer_names
from .models import default_device, default_weights_path, load_vgg
from .optimize import INITS, OPTIMIZERS, Objective, Progress, Result
from .targets import (DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS,
                      ContentTarget, StyleTarget)
from .vgg import VGG
from .weights import load_weights, save_weights

__version__ = "0.1.0"

__all__ = [
    "COLOR_MODES", "DEFAULTS", "DEFAULT_CONTENT", "DEFAULT_CONTENT_LAYERS", "DEFAULT_STYLE",
    "DEFAULT_STYLE_LAYERS", "INITS", "PAPER_CONTENT_LAYERS", "PAPER_STYLE_LAYERS", "OPTIMIZERS", "VGG16_LAYERS", "VGG19_LAYERS", "ContentTarget",
    "ImageError", "LayerError", "NSTError", "Objective", "Progress", "Result", "StyleTarget", "VGG",
    "WeightsError", "cache_dir", "default_device", "default_weights_path", "example_names", "example_path",
    "examples_dir", "from_pil", "layer_names", "load_image", "load_vgg", "load_weights", "optimize",
    "reconstruct_content", "reconstruct_style", "save_weights", "set_cache_dir", "stylize", "to_pil",
]
