"""The explorer's options (default, range, help), defined once here from the modules' constants and read
by the nodes, in the form of the engine's `settings.Option`."""

from __future__ import annotations

from ..layers import ARCHITECTURES
from ..settings import Option
from . import channels, maps, patches, receptive

ARCHS = tuple(ARCHITECTURES)

LAYER = Option("layer", "relu3_1", str, "the VGG layer: conv1_1, relu1_1, ..., pool5 (conv5_4: VGG-19 only)")
CHANNELS = Option("channels", "", str, "channel indices, comma-separated (e.g. 0, 12, 40); empty = the "
                  "channels with the most energy for this image")
TOP = Option("top", maps.DEFAULT_TOP, int, "how many channels to show when none are named (most energy "
             "first)", min=1, max=maps.MAX_CHANNELS)
VIS_CHANNELS = Option("channels", "0", str, "channel indices, comma-separated: one image per channel")
SIZE = Option("size", channels.DEFAULT_SIZE, int, "side of each visualization in pixels",
              min=channels.MIN_SIZE, max=channels.MAX_SIZE)
STEPS = Option("steps", channels.DEFAULT_STEPS, int, "optimization steps (Adam)", min=1, max=10000)
SEED = Option("seed", channels.DEFAULT_SEED, int, "random seed of the start and the jitter", min=0,
              max=0xFFFFFFFF)
CHANNEL = Option("channel", 0, int, "the channel index in the layer", min=0, max=4095)
K = Option("k", patches.DEFAULT_K, int, "how many patches", min=1, max=patches.MAX_K)
OVERLAP = Option("overlap", patches.DEFAULT_OVERLAP, float, "most overlap (IoU) allowed between two patches "
                 "of one image; 1 = no suppression", min=0.0, max=1.0)
GRADIENTS = Option("gradients", False, bool, "also project each activation back to its patch's pixels")
MAX_SIDE = Option("max_side", patches.DEFAULT_MAX_SIDE, int, "images are shrunk to this long side first",
                  min=16, max=4096)
ARCH = Option("architecture", receptive.DEFAULT_ARCH, str, "the VGG architecture", choices=ARCHS)
POSITION = Option("position", 0.5, float, "where the shown unit sits, as a fraction of the image side "
                  "(0 = top/left, 1 = bottom/right)", min=0.0, max=1.0)
