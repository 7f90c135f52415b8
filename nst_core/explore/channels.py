"""Channel visualization by activation maximization (Olah, Mordvintsev & Schubert 2017, "Feature
Visualization"): the image that excites one channel most, made readable by three regularizers —
a decorrelated colour and 1/f frequency parameterization (the optimizer works on Fourier coefficients
of decorrelated colour planes, scaled so that low frequencies move first), random transformations each
step (padding, jitter, scale, rotation), and a small total-variation penalty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import LayerError
from ..image import to_bhwc
from ..losses import tv_loss
from .progress import StepProgress, check_steps
from .receptive import receptive_field

DEFAULT_SIZE = 128
DEFAULT_STEPS = 256
DEFAULT_SEED = 0
DEFAULT_LR = 0.1              # Adam on the Fourier coefficients (Lucid: 0.05 for 512 steps)
DEFAULT_TV = 1e-3             # weight of the mean squared pixel difference against the mean activation
DEFAULT_JITTER = 1 / 16       # random shift, as a fraction of the side (Lucid: 8 px at 128)
SCALES = (1.0, 0.975, 1.025, 0.95, 1.05)   # random rescaling each step (Lucid: 1 ± 0.1 in 0.02 steps)
MAX_ROTATION = 5.0            # degrees, drawn uniformly each step
SPATIAL_MIN_FIELD = 24        # px of receptive field from which scale and rotation are applied (block 3 on)
MIN_SIZE, MAX_SIZE = 32, 1024
MAX_BATCH = 64

# ImageNet colour correlation, square root of its covariance (Lucid's color_correlation_svd_sqrt):
# the optimizer sees three decorrelated colour planes; this maps them back to RGB.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]])
FREQUENCY_DECAY = 1.0         # spectrum scaled by 1/f^decay: natural images' power falls as 1/f^2
INIT_STD = 0.01


@dataclass
class ChannelVisualization:
    """images: [B,H,W,3] in 0..1, one per (layer, channel); activations: each channel's mean activation
    on its own image (the objective, without transformations)."""
    images: torch.Tensor
    layers: list[str]
    channels: list[int]
    activations: list[float]
    history: list[float] = field(default_factory=list)
    stopped: str | None = None


class FourierImage(torch.nn.Module):
    """B images parameterized by the spectrum of decorrelated colour planes; pixels via a sigmoid."""

    def __init__(self, batch: int, size: int, seed: int):
        super().__init__()
        fy = torch.fft.fftfreq(size).view(-1, 1)
        fx = torch.fft.rfftfreq(size).view(1, -1)
        freqs = (fy ** 2 + fx ** 2).sqrt()
        scale = 1.0 / freqs.clamp_min(1.0 / size) ** FREQUENCY_DECAY
        self.register_buffer("scale", scale)          # with an orthonormal inverse FFT, as Lucid's fft_image
        generator = torch.Generator().manual_seed(int(seed))
        spectrum = torch.randn(batch, 3, size, size // 2 + 1, 2, generator=generator) * INIT_STD
        self.spectrum = torch.nn.Parameter(spectrum)
        self.size = size
        colors = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()
        self.register_buffer("colors", colors)

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        planes = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        rgb = torch.einsum("bchw,rc->brhw", planes, self.colors)
        return torch.sigmoid(rgb)


def _transform(x: torch.Tensor, generator: torch.Generator, field: int) -> torch.Tensor:
    """Pad, jitter by whole pixels and, for units with a field of at least SPATIAL_MIN_FIELD px, rescale
    and rotate a batch [B,3,S,S]: the result must excite the channel at every offset (and scale), which
    removes the high-frequency patterns that only work at one alignment. Resampling blurs by up to a pixel,
    which would wash out the 3-5 px patterns of block 1, so those get whole-pixel shifts only."""
    size = x.shape[-1]
    pad = max(2, round(size * DEFAULT_JITTER))
    x = F.pad(x, (pad,) * 4, mode="constant", value=0.5)
    if field >= SPATIAL_MIN_FIELD:
        scale = SCALES[int(torch.randint(len(SCALES), (1,), generator=generator))]
        angle = math.radians(float(torch.empty(1).uniform_(-MAX_ROTATION, MAX_ROTATION, generator=generator)))
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.unsqueeze(0).expand(x.shape[0], -1, -1), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    top, left = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=generator))
    return x[..., top:top + size, left:left + size]


def _targets(vgg, layer, channel) -> tuple[list[str], list[int]]:
    """Broadcast one layer to many channels or pair a list of layers with a list of channels."""
    channels = [int(channel)] if isinstance(channel, int) else [int(c) for c in channel]
    layers = [layer] * len(channels) if isinstance(layer, str) else list(layer)
    if len(layers) == 1 and len(channels) > 1:
        layers = layers * len(channels)
    if len(layers) != len(channels) or not channels:
        raise ValueError(f"give one layer, or one layer per channel (got {len(layers)} layers for "
                         f"{len(channels)} channels)")
    if len(channels) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} channels at once, got {len(channels)}")
    layers = vgg.check_layers(layers)
    for name, c in zip(layers, channels):
        count = vgg.table[name].channels
        if not 0 <= c < count:
            raise LayerError(f"channel {c} out of range for {name}: it has channels 0..{count - 1}")
    return layers, channels


def channel_means(vgg, x: torch.Tensor, layers: Sequence[str], channels: Sequence[int],
                  leaky: bool = False) -> torch.Tensor:
    """Mean activation of channel i of layer i on image i of the batch x [B,3,H,W] (differentiable).
    `leaky`: a relu layer is read as its conv through a leaky ReLU (the optimized objective)."""
    reads = [objective_layer(name) if leaky else name for name in layers]
    feats = vgg.features(x, sorted(set(reads), key=vgg.layer_names.index))
    values = []
    for i, (name, read, c) in enumerate(zip(layers, reads, channels)):
        value = feats[read][i, c].float()
        if read != name:
            value = F.leaky_relu(value, LEAK)
        values.append(value.mean())
    return torch.stack(values)


LEAK = 0.05                   # slope below zero of the maximized ReLU (see objective_layer)


def objective_layer(layer: str) -> str:
    """The layer read for the objective: a ReLU's input conv, through a leaky ReLU, so that a channel that
    is dead at the start (all zero after the ReLU, hence zero gradient) still gets a gradient, while the
    objective stays the ReLU's (a plain conv mean of conv1_1 is maximized by a flat colour)."""
    return "conv" + layer[4:] if layer.startswith("relu") else layer


def visualize_channel(vgg, layer, channel, size: int = DEFAULT_SIZE, steps: int = DEFAULT_STEPS,
                      seed: int = DEFAULT_SEED, lr: float = DEFAULT_LR, tv: float = DEFAULT_TV,
                      transforms: bool = True, callback: Callable | None = None) -> ChannelVisualization:
    """Images [B,size,size,3] that maximize the mean activation of `channel` (an int or a list) of `layer`
    (one name, or one per channel): a batch of channels is optimized at once.

    `callback(progress)` after every step: progress.step/.total, .image (lazy), .stop()."""
    size, steps = int(size), check_steps(steps)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")
    vgg = vgg.grad_ready()
    layers, channels = _targets(vgg, layer, channel)
    field = min(receptive_field(name, vgg.arch).size for name in layers)
    device = vgg.device
    generator = torch.Generator().manual_seed(int(seed) + 1)
    history, stopped = [], None
    with torch.inference_mode(False), torch.enable_grad():
        param = FourierImage(len(channels), size, seed).to(device)
        opt = torch.optim.Adam(param.parameters(), lr=float(lr))
        for step in range(1, steps + 1):
            opt.zero_grad(set_to_none=True)
            x = param()
            seen = _transform(x, generator, field) if transforms else x
            means = channel_means(vgg, seen, layers, channels, leaky=True)
            # TV against the activation's own scale, so one weight fits every layer
            smooth = tv_loss(x) / x[0].numel() * means.detach().abs().clamp_min(1.0).sum()
            loss = -means.sum() + float(tv) * smooth
            loss.backward()
            opt.step()
            value = float(loss.detach())
            history.append(value)
            if callback is not None:
                progress = StepProgress(step, steps, lambda v=value: v, lambda: to_bhwc(param().detach()))
                callback(progress)
                if progress.stop_requested:
                    stopped = "callback"
                    break
        with torch.no_grad():
            x = param().detach()
            final = channel_means(vgg, x, layers, channels)
    return ChannelVisualization(to_bhwc(x), layers, channels, final.tolist(), history, stopped)
