"""The layer explorer: what each VGG layer and channel encodes.

feature_maps       a layer's activation maps for one image, as a labelled grid, plus the raw tensor
visualize_channel  activation maximization (Olah et al. 2017): the image a channel responds to most
top_patches        the input patches that drive a channel most over many images (Zeiler & Fergus 2014)
receptive_field    size, stride and offset of a layer's units, from the architecture
invert             content reconstruction with natural-image priors (Mahendran & Vedaldi 2015)
"""

from .channels import ChannelVisualization, visualize_channel
from .maps import FeatureMaps, feature_maps
from .receptive import ReceptiveField, receptive_field, receptive_fields
from .inversion import Inversion, invert
from .metrics import high_frequency_share
from .patches import TopPatches, top_patches
