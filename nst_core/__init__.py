"""nst_core: Gatys et al.'s neural style transfer and CNN feature reconstructions, on real VGG weights.

    import nst_core
    vgg = nst_core.load_vgg()                                   # real Caffe VGG-19, offline
    result = nst_core.stylize(content, style, vgg=vgg, steps=300)
    result.image                                                # [1,H,W,3] float32 in 0..1
    result.plan.describe()                                      # the sizes it ran at, steps per size
    result.describe()                                           # plan, weighting, photo's distance, stops
    options = nst_core.RunOptions(steps=300, style_weight=10)  # all options as one checked value
    result = nst_core.stylize(content, [a, b], style_masks=[ma, mb], vgg=vgg, options=options)
    ladder = nst_core.reconstruct_content(photo, vgg=vgg)       # the paper's Figure 1, one image per layer

Data flows one way: images -> targets -> run plan -> loop -> Result. Every option's default, choices and
range are defined once in `nst_core.settings`; a run's options are one value, `nst_core.RunOptions`.
No ComfyUI import anywhere in this package.
"""

from .api import fit, item_seed, optimize, optimize_batch, reconstruct_content, reconstruct_style, stylize
from .cache import cache_dir, set_cache_dir
from .errors import ImageError, LayerError, NSTError, WeightsError
from .explore import feature_maps, receptive_field, top_patches, visualize_channel
from .examples import DEFAULT_CONTENT, DEFAULT_STYLE, example_names, example_path, examples_dir
from .image import from_pil, load_image, to_pil
from .layers import VGG16_LAYERS, VGG19_LAYERS, layer_names
from .loader import default_device, load_vgg, release_networks
from .loop import Progress, Result, TileProgress
from .objective import Objective
from .options import RunOptions
from .plan import Level, RunPlan, make_plan, plan_run
from .progress import ConsoleProgress, console_progress
from .pretrained import default_weights_path
from .settings import (COLOR_MODES, CONTENT_LADDER, DEFAULT_CONTENT_LAYERS, DEFAULT_LR, DEFAULT_STYLE_LAYERS,
                       DEFAULTS, INITS, OPTIMIZERS, OPTIONS, PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS,
                       STYLE_LADDER, OptionError)
from .targets import ContentTarget, StyleTarget
from .vgg import VGG
from .video import stylize_frames
from .weights import load_weights, save_weights

__version__ = "0.1.0"

__all__ = [
    "feature_maps", "receptive_field", "top_patches", "visualize_channel",
    "COLOR_MODES", "CONTENT_LADDER", "DEFAULTS", "DEFAULT_CONTENT", "DEFAULT_CONTENT_LAYERS", "DEFAULT_LR",
    "DEFAULT_STYLE", "DEFAULT_STYLE_LAYERS", "INITS", "OPTIMIZERS", "OPTIONS", "PAPER_CONTENT_LAYERS",
    "PAPER_STYLE_LAYERS", "STYLE_LADDER", "VGG16_LAYERS", "VGG19_LAYERS", "ContentTarget", "ImageError",
    "LayerError", "Level", "NSTError", "Objective", "OptionError", "Progress", "Result", "RunOptions", "RunPlan", "TileProgress",
    "StyleTarget", "VGG", "WeightsError", "ConsoleProgress", "cache_dir", "console_progress", "default_device", "default_weights_path",
    "example_names", "example_path", "examples_dir", "fit", "item_seed", "optimize_batch", "from_pil", "layer_names", "load_image",
    "load_vgg", "load_weights", "make_plan", "release_networks", "optimize", "plan_run", "reconstruct_content",
    "reconstruct_style", "save_weights", "set_cache_dir", "stylize", "stylize_frames", "to_pil",
]
